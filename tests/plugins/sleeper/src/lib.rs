//! Hostile sanitizer: `sanitize` sleeps for an hour on a WASI timer. Blocked, it uses no CPU, so
//! its deadline never passes; the gateway must cut it off at the call's wall-clock limit.

wit_bindgen::generate!({ path: "../../../wit", world: "command-sanitizer" });

struct Plugin;

impl Guest for Plugin {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn self_test() -> Vec<SanitizerCase> {
        Vec::new()
    }

    fn sanitize(_command: Command, _context: CommandContext) -> Verdict {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        Verdict::Allow
    }
}

export!(Plugin);
