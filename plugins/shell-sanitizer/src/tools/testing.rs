//! Helpers for the tool rules' unit tests: judge a script or an argv command under the default
//! configuration, in the workspace `/workspaces/demo`.

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

fn verdict(command: &Command) -> Result<(), String> {
    match crate::ShellSanitizer::sanitize(&Config::default(), command, &context()) {
        Verdict::Allow => Ok(()),
        Verdict::Deny(reason) => Err(reason),
        Verdict::Rewrite(_) => Err("rewritten".into()),
    }
}

/// Asserts that every script is allowed.
pub fn allows(scripts: &[&str]) {
    for script in scripts {
        assert_eq!(verdict(&Command::shell(*script)), Ok(()), "{script}");
    }
}

/// Asserts that `script` is refused with a reason containing `reason`.
pub fn refuses(script: &str, reason: &str) {
    match verdict(&Command::shell(script)) {
        Err(actual) => assert!(actual.contains(reason), "{script}: {actual:?} lacks {reason:?}"),
        Ok(()) => panic!("{script} was allowed"),
    }
}
