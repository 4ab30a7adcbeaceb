//! Hostile sanitizer: traps on one input in ten (a shell script whose last word is a number
//! divisible by ten, as in `echo 30`) and allows everything else. Swapped in over a good version,
//! it must be rolled back once its traps break the rollback budget, and the inputs it trapped on
//! must have been refused (fail closed), never let through.

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
        let last = command.script.as_deref().and_then(|s| s.split_whitespace().last());
        if let Some(n) = last.and_then(|w| w.parse::<u64>().ok())
            && n % 10 == 0
        {
            panic!("flaky-trap traps on purpose on input {n}");
        }
        Verdict::Allow
    }
}

export!(Plugin);
