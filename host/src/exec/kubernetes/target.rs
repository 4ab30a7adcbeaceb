//! Where in the cluster a project's commands run: pod, container and workspace path, plus the
//! pod's uid when the watch knows it, so a pod deleted and re-created under the same name is
//! not mistaken for the one a command started in.

use kube::api::AttachParams;

use super::cluster::Cluster;
use crate::exec::ExecError;
use crate::projects::Project;

/// A pod and container to exec in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Pod name.
    pub pod: String,
    /// Container; `None` lets the API server pick the pod's only container.
    pub container: Option<String>,
    /// Workspace path inside the container.
    pub workspace: String,
    /// The pod's uid, if the watch had seen it.
    pub uid: Option<String>,
}

impl Target {
    /// The target of a project, as discovery placed it.
    pub fn of(cluster: &Cluster, project: &Project) -> Result<Self, ExecError> {
        let pod = project
            .placement
            .pod
            .clone()
            .ok_or_else(|| ExecError::Remote(format!("project {} has no pod", project.name)))?;
        let watched = cluster.pod(&pod);
        // As kubectl does: the pod's declared default container, else its first.
        let default_container = || {
            let pod = watched.as_ref()?;
            let annotations = pod.metadata.annotations.as_ref();
            let declared = annotations.and_then(|a| a.get("kubectl.kubernetes.io/default-container"));
            let first = pod.spec.as_ref()?.containers.first().map(|c| &c.name);
            declared.or(first).cloned()
        };
        Ok(Self {
            container: project.placement.container.clone().or_else(default_container),
            uid: watched.as_ref().and_then(|p| p.metadata.uid.clone()),
            workspace: project.workspace.to_string_lossy().into_owned(),
            pod,
        })
    }

    /// Exec parameters: stdout and stderr, stdin only when asked for, no TTY.
    pub fn attach_params(&self, stdin: bool) -> AttachParams {
        AttachParams {
            container: self.container.clone(),
            stdin,
            stdout: true,
            stderr: true,
            tty: false,
            ..AttachParams::default()
        }
    }

    /// Whether the pod this target was resolved against is gone or going (deleted, replaced
    /// under the same name, or marked for deletion). Unknown pods never count as gone.
    pub fn is_gone(&self, cluster: &Cluster) -> bool {
        let Some(uid) = &self.uid else { return false };
        match cluster.pod(&self.pod) {
            None => true,
            Some(pod) => pod.metadata.uid.as_ref() != Some(uid) || pod.metadata.deletion_timestamp.is_some(),
        }
    }

    /// Resolves once the pod is gone (never, for pods the watch did not know).
    pub async fn gone(&self, cluster: &Cluster) {
        let mut changes = cluster.changes();
        while !self.is_gone(cluster) {
            if changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// What is recorded with a command's pid: enough to find and recognise it after a gateway
    /// restart.
    pub fn runner(&self, namespace: &str, exec_id: &str) -> String {
        format!(
            "kubernetes:{namespace}/{}/{}/{}/{exec_id}",
            self.pod,
            self.uid.as_deref().unwrap_or(""),
            self.container.as_deref().unwrap_or("")
        )
    }

    /// The target and exec id a [`runner`](Self::runner) string names, if it is one of this
    /// namespace's.
    pub fn from_runner(runner: &str, namespace: &str) -> Option<(Self, String)> {
        let rest = runner
            .strip_prefix("kubernetes:")?
            .strip_prefix(namespace)?
            .strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        let [pod, uid, container, exec_id] = parts[..] else {
            return None;
        };
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let target = Self {
            pod: pod.to_owned(),
            container: some(container),
            workspace: String::new(),
            uid: some(uid),
        };
        (!pod.is_empty() && !exec_id.is_empty()).then(|| (target, exec_id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runner_string_round_trips_within_its_namespace_only() {
        let target = Target {
            pod: "web-0".into(),
            container: Some("main".into()),
            workspace: "/workspace".into(),
            uid: Some("1234-abcd".into()),
        };
        let runner = target.runner("dev", "e1");
        let expected = Target {
            workspace: String::new(),
            ..target
        };
        assert_eq!(Target::from_runner(&runner, "dev"), Some((expected, "e1".to_owned())));
        assert_eq!(Target::from_runner(&runner, "prod"), None);
        assert_eq!(Target::from_runner("local:host:boot", "dev"), None);
    }
}
