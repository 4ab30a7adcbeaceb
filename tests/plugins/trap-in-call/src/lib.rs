//! Hostile sanitizer: `sanitize` panics, which traps. The gateway must refuse the command (fail
//! closed) and keep serving later calls with fresh instances.

wit_bindgen::generate!({ path: "../../../wit", world: "command-sanitizer" });

struct Plugin;

impl Guest for Plugin {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn self_test() -> Vec<SanitizerCase> {
        Vec::new()
    }

    fn sanitize(command: Command, _context: CommandContext) -> Verdict {
        panic!(
            "trap-in-call traps on purpose while judging a `{}` command",
            command.kind
        );
    }
}

export!(Plugin);
