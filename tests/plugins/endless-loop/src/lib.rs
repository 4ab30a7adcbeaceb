//! Hostile sanitizer: `sanitize` never returns. The gateway must interrupt it at the epoch
//! deadline, fail closed (refuse the command) and keep serving with fresh instances.

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
        let mut spins = 0_u64;
        loop {
            // `black_box` keeps the optimiser from proving anything about the loop.
            spins = core::hint::black_box(spins.wrapping_add(1));
        }
    }
}

export!(Plugin);
