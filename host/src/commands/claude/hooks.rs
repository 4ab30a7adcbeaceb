//! The `PreToolUse` hook a `claude` run is given: its settings (passed with `--settings`, so
//! the workspace's own `.claude/settings.json` is never edited), and the run's credential. A
//! credential is random, handed to the process in its environment only, kept here as a hash,
//! valid for one command and gone when its run ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::projects::Project;

/// The variable that carries the run's credential; Claude Code puts it in the hook's header.
pub(crate) const TOKEN_ENV: &str = "RDEV_HOOK_TOKEN";
/// Seconds Claude Code waits for the gateway before the hook fails (and blocks the call).
const HOOK_TIMEOUT_SECS: u64 = 30;

/// The URL of a command's hook under the gateway's base URL.
pub(crate) fn hook_url(base: &str, command_id: &str) -> String {
    format!("{}/hooks/claude/{command_id}/pre-tool-use", base.trim_end_matches('/'))
}

/// The `--settings` of a run: one HTTP `PreToolUse` hook for every tool, failing closed.
/// `disableAllHooks` is set false so that the workspace's settings cannot switch it off.
pub(crate) fn settings_json(base: &str, command_id: &str) -> String {
    serde_json::json!({
        "disableAllHooks": false,
        "hooks": {
            "PreToolUse": [{
                "matcher": "*",
                "hooks": [{
                    "type": "http",
                    "url": hook_url(base, command_id),
                    "timeout": HOOK_TIMEOUT_SECS,
                    "onFailure": "block",
                    "headers": { "Authorization": format!("Bearer ${TOKEN_ENV}") },
                    "allowedEnvVars": [TOKEN_ENV],
                }],
            }],
        },
    })
    .to_string()
}

/// A run the hook speaks for.
#[derive(Clone)]
pub(crate) struct HookRun {
    /// Its project.
    pub(crate) project: Arc<Project>,
    /// The key that submitted the command.
    pub(crate) key_id: String,
    /// That key's scopes when the run started.
    pub(crate) scopes: Vec<String>,
    /// Where its tool decisions join its output stream.
    pub(crate) events: mpsc::Sender<String>,
    token_hash: [u8; 32],
}

/// The `claude` runs of this replica that a hook call may speak for.
#[derive(Default)]
pub(crate) struct HookRuns {
    runs: Mutex<HashMap<String, HookRun>>,
}

/// Keeps a run's credential valid; dropping it (when the run ends, however) revokes it.
pub(crate) struct Registration {
    runs: Arc<HookRuns>,
    command_id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.runs.lock().remove(&self.command_id);
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl HookRuns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HookRun>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues a credential for a run of `command_id`; returns it with its registration.
    pub(crate) fn register(
        self: &Arc<Self>,
        command_id: &str,
        (project, key_id, scopes): (Arc<Project>, &str, Vec<String>),
        events: mpsc::Sender<String>,
    ) -> (Registration, String) {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let token = format!("rdh_{}", hex::encode(secret));
        let run = HookRun {
            project,
            key_id: key_id.to_owned(),
            scopes,
            events,
            token_hash: hash(&token),
        };
        self.lock().insert(command_id.to_owned(), run);
        let registration = Registration {
            runs: self.clone(),
            command_id: command_id.to_owned(),
        };
        (registration, token)
    }

    /// The run of `command_id`, if `token` is its credential and it still runs here.
    pub(crate) fn find(&self, command_id: &str, token: &str) -> Option<HookRun> {
        let runs = self.lock();
        let run = runs.get(command_id)?;
        // Digests are compared, not tokens: how long a comparison takes says nothing of the token.
        (run.token_hash == hash(token)).then(|| run.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> Arc<Project> {
        Arc::new(Project {
            name: "demo".into(),
            description: None,
            workspace: "/w/demo".into(),
            placement: Default::default(),
            settings: Default::default(),
        })
    }

    #[test]
    fn a_credential_speaks_for_its_own_run_only_and_only_while_it_runs() {
        let runs = Arc::new(HookRuns::default());
        let (tx, _rx) = mpsc::channel(1);
        let (first, token_a) = runs.register("cmd_a", (project(), "key_1", Vec::new()), tx.clone());
        let (_second, token_b) = runs.register("cmd_b", (project(), "key_1", Vec::new()), tx);
        assert!(runs.find("cmd_a", &token_a).is_some());
        assert!(runs.find("cmd_a", &token_b).is_none(), "another run's credential");
        assert!(runs.find("cmd_a", "rdh_forged").is_none());
        drop(first);
        assert!(runs.find("cmd_a", &token_a).is_none(), "a finished run's credential");
        assert!(runs.find("cmd_b", &token_b).is_some());
    }

    #[test]
    fn settings_name_the_commands_hook_and_never_the_credential() {
        let settings: serde_json::Value =
            serde_json::from_str(&settings_json("http://127.0.0.1:7000/", "cmd_1")).unwrap();
        let hook = &settings["hooks"]["PreToolUse"][0]["hooks"][0];
        assert_eq!(hook["url"], "http://127.0.0.1:7000/hooks/claude/cmd_1/pre-tool-use");
        assert_eq!(hook["onFailure"], "block");
        assert_eq!(hook["headers"]["Authorization"], "Bearer $RDEV_HOOK_TOKEN");
    }
}
