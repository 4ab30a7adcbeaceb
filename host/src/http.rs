//! The HTTP API: routes, the layer stack, and the OpenAPI document built from the same route
//! table (a handler cannot be routed without being described).

mod audit;
mod claude;
mod commands;
mod console;
pub mod context;
mod deploy;
pub mod error;
mod explain;
mod extract;
mod health;
mod hooks;
pub mod hygiene;
mod keys;
mod openapi;
mod plugins;
mod projects;
pub mod request_id;
mod rollouts;
pub mod server;
mod stream;
mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::{Extension, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authenticator, Principal};
use crate::commands::Commands;
use crate::config::Config;
use crate::exec::ExecBackend;
use crate::projects::{Project, ProjectRegistry};
use crate::store::Store;
use crate::streaming::OutputHub;
use error::ApiError;

/// Everything handlers need, behind one `Arc` so that cloning it per request costs one atomic.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// Shares the services.
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The gateway's services.
pub struct Services {
    /// Configuration.
    pub config: Arc<Config>,
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// Keys.
    pub auth: Authenticator,
    /// Rate limits, stream caps and queue bounds.
    pub limits: crate::limits::Limits,
    /// Projects.
    pub projects: ProjectRegistry,
    /// Commands.
    pub commands: Commands,
    /// Live output.
    pub hub: OutputHub,
    /// The heartbeats of open streams.
    pub stream_clock: crate::streaming::StreamClock,
    /// Execution backend.
    pub backend: Arc<dyn ExecBackend>,
    /// Prometheus metrics.
    pub metrics: crate::telemetry::Metrics,
    /// The plugin manager.
    pub plugins: crate::plugins::manager::PluginManager,
    /// Cancelled when the gateway stops: open streams end.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// This process among the replicas.
    pub replica: Arc<crate::replicas::Replica>,
    /// Webhook subscriptions.
    pub webhooks: crate::webhooks::Subscriptions,
}

impl Services {
    /// A project the caller may see; 404 otherwise (also when it exists but is not allowed).
    pub fn visible_project(&self, who: &Principal, name: &str) -> Result<Arc<Project>, ApiError> {
        self.projects
            .get(name)
            .filter(|_| who.can_see(name))
            .ok_or_else(|| ApiError::not_found("project"))
    }
}

/// The API routes (all under `/v1`, which the pipeline authenticates and audits), with their
/// OpenAPI description.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(keys::create_key, keys::list_keys))
        .routes(routes!(keys::get_key, keys::revoke_key))
        .routes(routes!(projects::list_projects))
        .routes(routes!(projects::get_project))
        .routes(routes!(commands::create_command, commands::list_commands))
        .routes(routes!(commands::get_command))
        .routes(routes!(commands::cancel_command))
        .routes(routes!(stream::stream_output))
        .routes(routes!(claude::list_items))
        .routes(routes!(claude::get_item, claude::put_item, claude::delete_item))
        .routes(routes!(audit::list_audit))
        .routes(routes!(plugins::list_plugins))
        .routes(routes!(plugins::reload_plugins))
        .merge(
            // An upload (shadow or deployment) is a component of up to
            // `plugin_runtime.max_file_bytes`, which the handlers enforce; the others take no body.
            OpenApiRouter::new()
                .routes(routes!(
                    rollouts::get_shadow,
                    rollouts::put_shadow,
                    rollouts::delete_shadow
                ))
                .routes(routes!(deploy::deploy_plugin, deploy::undeploy_plugin))
                .layer(DefaultBodyLimit::disable()),
        )
        .routes(routes!(rollouts::promote))
        .routes(routes!(explain::explain_command))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(
            webhooks::get_webhook,
            webhooks::update_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::pause_webhook))
        .routes(routes!(webhooks::resume_webhook))
        .routes(routes!(webhooks::test_webhook))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::get_delivery))
        .routes(routes!(webhooks::redeliver))
}

fn router_parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(health::openapi_json))
        .routes(routes!(health::metrics))
        .routes(routes!(hooks::pre_tool_use))
        .merge(api_routes())
        .split_for_parts();
    openapi::complete(&mut doc);
    (router, doc)
}

async fn unknown_route() -> ApiError {
    ApiError::not_found("route")
}

async fn wrong_method() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed",
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send>) -> axum::response::Response {
    ApiError::internal(&"handler panicked").into_response()
}

/// The whole application: routes, OpenAPI document and the layer stack.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = router_parts();
    routes
        .merge(console::routes())
        .layer(Extension(Arc::new(doc)))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(
            ServiceBuilder::new()
                // Browsers' preflight requests are answered before authentication, for the
                // configured origins only.
                .option_layer(hygiene::cors(&state.config.http.cors_allowed_origins))
                // Every response, even a panic's, carries a request id and is counted;
                // `/v1` routes are authenticated and audited here too.
                .layer(from_fn_with_state(state.clone(), context::pipeline))
                // A panic becomes a 500 with the JSON envelope instead of a dropped connection.
                .layer(CatchPanicLayer::custom(panic_response))
                // Bodies beyond the limit are refused by the JSON extractor with 413.
                .layer(DefaultBodyLimit::max(state.config.max_body_bytes)),
        )
        .with_state(state)
}
