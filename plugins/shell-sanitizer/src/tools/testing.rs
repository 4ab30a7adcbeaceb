//! Helpers for the tool rules' unit tests: judge a script or an argv command under the default
//! configuration (or one given), in the workspace `/workspaces/demo`.

use crate::config::Config;
use rdev_plugin_sdk::{Command, CommandContext, Sanitizer, Verdict};

fn context() -> CommandContext {
    CommandContext {
        project: "demo".into(),
        workdir: "/workspaces/demo".into(),
        key_id: "key_test".into(),
        scopes: Vec::new(),
    }
}

fn verdict(config: &Config, command: &Command) -> Result<(), String> {
    match crate::ShellSanitizer::sanitize(config, command, &context()) {
        Verdict::Allow => Ok(()),
        Verdict::Deny(reason) => Err(reason),
        Verdict::Rewrite(_) => Err("rewritten".into()),
    }
}

fn assert_refused(verdict: Result<(), String>, shown: &str, reason: &str) {
    match verdict {
        Err(actual) => assert!(actual.contains(reason), "{shown}: {actual:?} lacks {reason:?}"),
        Ok(()) => panic!("{shown} was allowed"),
    }
}

/// The default configuration with `programs` added to the allowlist.
pub fn allowing(programs: &[&str]) -> Config {
    Config {
        extra_programs: programs.iter().map(|p| p.to_string()).collect(),
        ..Config::default()
    }
}

/// Asserts that every script is allowed.
pub fn allows(scripts: &[&str]) {
    allows_under(&Config::default(), scripts);
}

/// Asserts that `script` is refused with a reason containing `reason`.
pub fn refuses(script: &str, reason: &str) {
    refuses_under(&Config::default(), script, reason);
}

/// Asserts that every script is allowed under `config`.
pub fn allows_under(config: &Config, scripts: &[&str]) {
    for script in scripts {
        assert_eq!(verdict(config, &Command::shell(*script)), Ok(()), "{script}");
    }
}

/// Asserts that `script` is refused under `config` with a reason containing `reason`.
pub fn refuses_under(config: &Config, script: &str, reason: &str) {
    assert_refused(verdict(config, &Command::shell(script)), script, reason);
}

/// Asserts that every argv command of `kind` is allowed.
pub fn allows_argv(kind: &str, commands: &[&[&str]]) {
    for args in commands {
        let command = Command::argv(kind, args.iter().copied());
        assert_eq!(verdict(&Config::default(), &command), Ok(()), "{kind} {args:?}");
    }
}

/// Asserts that the argv command `kind args` is refused with a reason containing `reason`.
pub fn refuses_argv(kind: &str, args: &[&str], reason: &str) {
    let command = Command::argv(kind, args.iter().copied());
    assert_refused(
        verdict(&Config::default(), &command),
        &format!("{kind} {args:?}"),
        reason,
    );
}
