//! The `[commands]` section of the configuration: programs, environment and output bounds.

use std::collections::BTreeMap;

use serde::Deserialize;

/// How command kinds map to programs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommandsConfig {
    /// Argv command kinds and the program each runs (`git = "git"`). `claude` is the program for prompts.
    pub programs: BTreeMap<String, String>,
    /// Arguments added to those the gateway gives every `claude` run (`-p`, stream-json output,
    /// the project's turn cap and permission mode), before the prompt.
    pub claude_args: Vec<String>,
    /// The gateway's base URL as a workspace reaches it, for the tool hook of `claude` runs
    /// (default: the address the gateway listens on, `0.0.0.0` read as `127.0.0.1`). Give it
    /// when workspaces reach the gateway by another name (pods, a proxy); each replica needs its
    /// own, since a run's hook is answered by the replica that runs it.
    pub hook_url: Option<String>,
    /// Environment variable names a request may set.
    pub env_allowlist: Vec<String>,
    /// Variables copied from the gateway's own environment into every command.
    pub inherit_env: Vec<String>,
    /// Longest `timeout_secs` a request may ask for.
    pub max_timeout_secs: u64,
    /// Output kept per command, in bytes; later output is dropped with a notice.
    pub max_output_bytes: u64,
    /// Seconds a command's output may wait for the database to come back before the command is
    /// interrupted (its output is held in memory and stored in order meanwhile).
    pub output_outage_secs: u64,
    /// Bytes of a command's output held in memory while the database is unavailable; past
    /// this the command is interrupted.
    pub output_outage_bytes: u64,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        let programs = [("git", "git"), ("claude", "claude")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self {
            programs,
            claude_args: Vec::new(),
            hook_url: None,
            env_allowlist: [
                "GIT_AUTHOR_NAME",
                "GIT_AUTHOR_EMAIL",
                "GIT_COMMITTER_NAME",
                "GIT_COMMITTER_EMAIL",
                "CI",
            ]
            .map(String::from)
            .to_vec(),
            inherit_env: ["PATH", "HOME", "LANG", "TZ"].map(String::from).to_vec(),
            max_timeout_secs: 24 * 3600,
            max_output_bytes: 64 * 1024 * 1024,
            output_outage_secs: 30,
            output_outage_bytes: 8 * 1024 * 1024,
        }
    }
}
