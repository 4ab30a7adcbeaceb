//! rdev's default command sanitizer. It judges the *parsed* script, never the string: every
//! program of a `shell` script must be a literal name on the allowlist, and dangerous forms
//! (privilege escalation, running text as code, recursive deletes outside the workspace, downloads
//! piped into interpreters, redirections out of the workspace) are refused whatever the allowlist
//! says. Allowed tools that run programs or write files through their own options are judged by
//! [`tools`] rules, in scripts and as argv kinds alike. Argv kinds (`git`) are also judged by
//! per-kind argument rules, `claude` prompts are allowed (never parsed as shell),
//! and every kind's environment is checked against variables that change how programs load code.
//! Text is refused if it hides control or format characters, and judged in NFKC form.
//!
//! Configuration: see [`config::Config`]; `{}` gives the built-in policy.

mod argv;
pub mod config;
mod env;
mod paths;
mod script;
mod text;
mod tools;

use config::Config;
use rdev_plugin_sdk::{Command, CommandContext, SanitizerCase, Verdict, fixtures};

/// The sanitizer.
pub struct ShellSanitizer;

impl rdev_plugin_sdk::Sanitizer for ShellSanitizer {
    type Config = Config;

    fn check(config: &Config) -> Result<(), String> {
        config.check()
    }

    fn sanitize(config: &Config, command: &Command, context: &CommandContext) -> Verdict {
        match judge(config, command, context) {
            Ok(()) => Verdict::Allow,
            Err(reason) => Verdict::Deny(reason),
        }
    }

    fn self_test() -> Vec<SanitizerCase> {
        fixtures::sanitizer_cases(include_str!("../invariants.json"))
    }
}

rdev_plugin_sdk::export_sanitizer!(ShellSanitizer);

fn judge(config: &Config, command: &Command, context: &CommandContext) -> Result<(), String> {
    text::check_characters("the command kind", &command.kind)?;
    for var in &command.env {
        text::check_characters("an environment variable", &var.name)?;
        text::check_characters("an environment value", &var.value)?;
        env::check_name(config, &text::normalize(&var.name))?;
    }
    match command.kind.as_str() {
        "shell" => {
            let script = command.script.as_deref().ok_or("a `shell` command needs a script")?;
            text::check_characters("the script", script)?;
            let env_names = command.env.iter().map(|var| text::normalize(&var.name)).collect();
            script::judge(config, context, env_names, &text::normalize(script))
        }
        "claude" => {
            if !config.allow_claude {
                return Err("`claude` commands are not allowed".into());
            }
            text::check_characters("the prompt", command.prompt.as_deref().unwrap_or_default())
        }
        kind => {
            let rules = config
                .argv_rules(kind)
                .ok_or_else(|| format!("command kind `{kind}` is not allowed"))?;
            let args = command.args.as_deref().unwrap_or_default();
            args.iter()
                .try_for_each(|arg| text::check_characters("an argument", arg))?;
            let args: Vec<String> = args.iter().map(|arg| text::normalize(arg)).collect();
            argv::check(kind, rules, &args)?;
            let args: Vec<tools::Arg> = args.iter().map(|arg| tools::Arg::literal(arg)).collect();
            script::judge_tool(config, &context.workdir, kind, &args)
        }
    }
}

#[cfg(test)]
mod tests;
