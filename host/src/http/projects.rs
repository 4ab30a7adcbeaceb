//! Projects visible to the caller.

use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::context::Caller;
use super::error::ApiError;
use super::extract::{Json, Path};
use crate::config::ProjectSettings;
use crate::projects::Project;

/// A project as clients see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectView {
    name: String,
    description: Option<String>,
    /// `local` or `kubernetes`.
    backend: &'static str,
    /// The pod that runs its commands (`kubernetes` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pod: Option<String>,
    settings: ProjectSettings,
}

impl From<&Project> for ProjectView {
    fn from(p: &Project) -> Self {
        Self {
            name: p.name.clone(),
            description: p.description.clone(),
            backend: if p.placement.pod.is_some() {
                "kubernetes"
            } else {
                "local"
            },
            pod: p.placement.pod.clone(),
            settings: p.settings.clone(),
        }
    }
}

/// List of projects.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectList {
    projects: Vec<ProjectView>,
}

/// Projects the key may see.
#[utoipa::path(get, path = "/v1/projects", tag = "projects", responses((status = 200, body = ProjectList)))]
pub async fn list_projects(State(state): State<AppState>, caller: Caller) -> Result<Json<ProjectList>, ApiError> {
    caller.require("projects:read")?;
    let projects = state
        .projects
        .list()
        .iter()
        .filter(|p| caller.principal.can_see(&p.name))
        .map(|p| ProjectView::from(p.as_ref()))
        .collect();
    Ok(Json(ProjectList { projects }))
}

/// One project.
#[utoipa::path(get, path = "/v1/projects/{project}", tag = "projects",
    params(("project" = String, Path, description = "Project name")),
    responses((status = 200, body = ProjectView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_project(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<ProjectView>, ApiError> {
    caller.require("projects:read")?;
    let project = state.visible_project(&caller.principal, &project)?;
    Ok(Json(ProjectView::from(project.as_ref())))
}
