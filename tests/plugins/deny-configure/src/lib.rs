//! Helper sanitizer: `configure` refuses any configuration with `"reject": true` (and anything
//! that is not JSON); `sanitize` allows everything. The gateway must never make a version (or a
//! configuration) live that fails this check, and must keep serving the previous one.

wit_bindgen::generate!({ path: "../../../wit", world: "command-sanitizer" });

use serde_json::Value;

struct Plugin;

impl Guest for Plugin {
    fn configure(config: String) -> Result<(), String> {
        if config.trim().is_empty() {
            return Ok(());
        }
        let config: Value = serde_json::from_str(&config)
            .map_err(|error| format!("this configuration is refused: it is not JSON: {error}"))?;
        if config.get("reject") == Some(&Value::Bool(true)) {
            return Err("this configuration is refused: it sets \"reject\": true".to_owned());
        }
        Ok(())
    }

    fn self_test() -> Vec<SanitizerCase> {
        Vec::new()
    }

    fn sanitize(_command: Command, _context: CommandContext) -> Verdict {
        Verdict::Allow
    }
}

export!(Plugin);
