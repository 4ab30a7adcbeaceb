//! `no-force-push`: a command sanitizer that refuses force pushes to protected branches, whether
//! they come as a `git` command or inside a shell script.
//!
//! Configuration: `{"protected_branches": ["main"]}` (default: `main` and `master`).

mod push;

use rdev_plugin_sdk::shell::{self, Element};
use rdev_plugin_sdk::{Command, CommandContext, Sanitizer, SanitizerCase, Verdict, fixtures};
use serde::Deserialize;

/// The plugin.
pub struct NoForcePush;

/// The configuration. `deny_unknown_fields`: a misspelt option is refused, not ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Branches that may not be force-pushed.
    pub protected_branches: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            protected_branches: vec!["main".into(), "master".into()],
        }
    }
}

impl Sanitizer for NoForcePush {
    type Config = Config;

    fn check(config: &Config) -> Result<(), String> {
        if config.protected_branches.is_empty() {
            return Err("protect at least one branch (or remove the plugin)".into());
        }
        match config
            .protected_branches
            .iter()
            .find(|b| b.is_empty() || b.contains(' '))
        {
            Some(branch) => Err(format!("{branch:?} is not a branch name")),
            None => Ok(()),
        }
    }

    fn sanitize(config: &Config, command: &Command, _context: &CommandContext) -> Verdict {
        let judged = match (command.kind.as_str(), &command.args, &command.script) {
            ("git", Some(args), _) => {
                push::judge(config, &args.iter().cloned().map(Some).collect::<Vec<_>>())
            }
            ("shell", _, Some(script)) => judge_script(config, script),
            _ => Ok(()),
        };
        match judged {
            Ok(()) => Verdict::Allow,
            Err(reason) => Verdict::deny(reason),
        }
    }

    fn self_test() -> Vec<SanitizerCase> {
        fixtures::sanitizer_cases(include_str!("../invariants.json"))
    }
}

rdev_plugin_sdk::export_sanitizer!(NoForcePush);

/// Judges every `git` command of a script. Subshells, loops and substitutions are scopes, and the
/// pipelines of every scope are in the one flat `pipelines` list: walking it sees them all.
fn judge_script(config: &Config, script: &str) -> Result<(), String> {
    let script = shell::parse(script).map_err(|e| format!("the script cannot be parsed: {e}"))?;
    for element in script
        .pipelines
        .iter()
        .flat_map(|pipeline| &pipeline.elements)
    {
        let Element::Simple(command) = element else {
            continue; // a compound command's body is a scope: its pipelines are in the list too
        };
        let mut words = command.words.iter().map(|word| word.literal());
        if let Some(Some(program)) = words.next()
            && program.rsplit('/').next() == Some("git")
        {
            push::judge(config, &words.collect::<Vec<_>>())?;
        }
    }
    Ok(())
}
