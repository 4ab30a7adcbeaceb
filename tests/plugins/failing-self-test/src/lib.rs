//! Hostile sanitizer: its bundled self-test expects `ls` to be denied, but `sanitize` allows
//! everything. The gateway must run the self-test before a swap, see it fail, and never let this
//! version go live.

wit_bindgen::generate!({ path: "../../../wit", world: "command-sanitizer" });

use rdev::plugin::types::ExpectedVerdict;

struct Plugin;

impl Guest for Plugin {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn self_test() -> Vec<SanitizerCase> {
        vec![SanitizerCase {
            name: "ls is denied".to_owned(),
            command: Command {
                kind: "shell".to_owned(),
                script: Some("ls".to_owned()),
                args: None,
                prompt: None,
                env: Vec::new(),
            },
            context: CommandContext {
                project: "self-test".to_owned(),
                workdir: "/workspace".to_owned(),
                key_id: "self-test".to_owned(),
                scopes: Vec::new(),
            },
            expect: ExpectedVerdict::Deny,
        }]
    }

    fn sanitize(_command: Command, _context: CommandContext) -> Verdict {
        Verdict::Allow
    }
}

export!(Plugin);
