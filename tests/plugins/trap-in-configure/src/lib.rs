//! Hostile sanitizer: `configure` panics, which traps; `sanitize` would allow everything. The
//! gateway must refuse to load this version (its configuration check fails), and if it is ever
//! called, must refuse the command rather than skip the failed configure.

wit_bindgen::generate!({ path: "../../../wit", world: "command-sanitizer" });

struct Plugin;

impl Guest for Plugin {
    fn configure(config: String) -> Result<(), String> {
        panic!(
            "trap-in-configure traps on purpose while configuring ({} bytes)",
            config.len()
        );
    }

    fn self_test() -> Vec<SanitizerCase> {
        Vec::new()
    }

    fn sanitize(_command: Command, _context: CommandContext) -> Verdict {
        Verdict::Allow
    }
}

export!(Plugin);
