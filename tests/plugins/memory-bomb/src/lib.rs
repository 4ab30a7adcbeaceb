//! Hostile sanitizer: `sanitize` allocates and writes 1 MiB blocks forever. The gateway's memory
//! limit must stop it (a failed allocation traps), the command must be refused, and the host
//! must not grow past the limit.

wit_bindgen::generate!({ path: "../../../wit", world: "command-sanitizer" });

/// Size of each block the plugin hoards.
const BLOCK: usize = 1 << 20;

struct Plugin;

impl Guest for Plugin {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn self_test() -> Vec<SanitizerCase> {
        Vec::new()
    }

    fn sanitize(_command: Command, _context: CommandContext) -> Verdict {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // A non-zero fill writes every byte, so every page is really touched.
            let block = vec![0xA5_u8; BLOCK];
            hoard.push(core::hint::black_box(block));
        }
    }
}

export!(Plugin);
