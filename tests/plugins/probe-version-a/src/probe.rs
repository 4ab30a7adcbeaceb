// The probe sanitizer shared by `probe-version-a` and `probe-version-b`, which differ only in
// `VERSION` (defined by the including crate).

wit_bindgen::generate!({ path: "../../../wit", world: "command-sanitizer" });

use std::cell::RefCell;

use serde_json::Value;

/// The trigger word when the configuration names none.
const DEFAULT_WORD: &str = "probe";

thread_local! {
    static WORD: RefCell<String> = RefCell::new(DEFAULT_WORD.to_owned());
}

struct Plugin;

impl Guest for Plugin {
    fn configure(config: String) -> Result<(), String> {
        let config: Value = if config.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&config).map_err(|error| format!("the configuration is not JSON: {error}"))?
        };
        let word = match config.get("word") {
            None => DEFAULT_WORD,
            Some(Value::String(word)) if !word.is_empty() => word,
            Some(other) => return Err(format!("`word` must be a non-empty string, not {other}")),
        };
        WORD.replace(word.to_owned());
        Ok(())
    }

    fn self_test() -> Vec<SanitizerCase> {
        Vec::new()
    }

    fn sanitize(command: Command, _context: CommandContext) -> Verdict {
        let script = match (command.kind.as_str(), command.script) {
            ("shell", Some(script)) => script,
            _ => return Verdict::Allow,
        };
        WORD.with_borrow(|word| {
            if script.contains(word.as_str()) {
                Verdict::Deny(format!("{word} denied by version {VERSION}"))
            } else {
                Verdict::Allow
            }
        })
    }
}

export!(Plugin);
