//! Hostile sanitizer: answers with 16 MiB. With `{"mode":"deny"}` (the default) `sanitize`
//! denies with a 16 MiB reason; with `{"mode":"rewrite"}` it rewrites to a shell command whose
//! script is 16 MiB of `echo x;`. The gateway must bound what it copies out of the guest (and
//! what it logs, audits and returns) and fail closed instead of passing such verdicts on.

wit_bindgen::generate!({ path: "../../../wit", world: "command-sanitizer" });

use std::cell::Cell;

use serde_json::Value;

/// Size of the reason or script the plugin returns.
const HUGE: usize = 16 << 20;

/// The statement the rewritten script repeats.
const STATEMENT: &str = "echo x;";

/// What `sanitize` answers with.
#[derive(Clone, Copy)]
enum Mode {
    /// A denial with a huge reason.
    Deny,
    /// A rewrite to a huge script.
    Rewrite,
}

thread_local! {
    static MODE: Cell<Mode> = const { Cell::new(Mode::Deny) };
}

struct Plugin;

impl Guest for Plugin {
    fn configure(config: String) -> Result<(), String> {
        let config: Value = if config.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&config).map_err(|error| format!("the configuration is not JSON: {error}"))?
        };
        let mode = match config.get("mode") {
            None => Mode::Deny,
            Some(Value::String(mode)) if mode == "deny" => Mode::Deny,
            Some(Value::String(mode)) if mode == "rewrite" => Mode::Rewrite,
            Some(other) => return Err(format!("`mode` must be \"deny\" or \"rewrite\", not {other}")),
        };
        MODE.set(mode);
        Ok(())
    }

    fn self_test() -> Vec<SanitizerCase> {
        Vec::new()
    }

    fn sanitize(command: Command, _context: CommandContext) -> Verdict {
        match MODE.get() {
            Mode::Deny => Verdict::Deny("x".repeat(HUGE)),
            Mode::Rewrite => Verdict::Rewrite(Command {
                kind: "shell".to_owned(),
                script: Some(STATEMENT.repeat(HUGE.div_ceil(STATEMENT.len()))),
                args: None,
                prompt: None,
                env: command.env,
            }),
        }
    }
}

export!(Plugin);
