//! Test sanitizer that keeps state in globals, as a careless plugin would: it counts the calls
//! and the `configure` runs its instance has seen, and denies every shell script containing
//! `count` with the reason `call N of this instance, configured M times, label L` (L from the
//! configuration `{"label": "..."}`, default `none`). A script containing `trap` makes it trap
//! after counting. On a gateway that gives every call a fresh, configured instance, every reason
//! says `call 1 of this instance, configured 1 times`, whatever came before: other calls, a trap,
//! a swap.

wit_bindgen::generate!({ path: "../../../wit", world: "command-sanitizer" });

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

static CALLS: AtomicU32 = AtomicU32::new(0);
static CONFIGURED: AtomicU32 = AtomicU32::new(0);
static LABEL: Mutex<String> = Mutex::new(String::new());

struct Plugin;

impl Guest for Plugin {
    fn configure(config: String) -> Result<(), String> {
        CONFIGURED.fetch_add(1, Ordering::SeqCst);
        let label = config
            .split("\"label\"")
            .nth(1)
            .and_then(|rest| rest.split('"').nth(1))
            .unwrap_or("none");
        *LABEL.lock().unwrap_or_else(|e| e.into_inner()) = label.to_owned();
        Ok(())
    }

    fn self_test() -> Vec<SanitizerCase> {
        Vec::new()
    }

    fn sanitize(command: Command, _context: CommandContext) -> Verdict {
        let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        let script = match (command.kind.as_str(), command.script) {
            ("shell", Some(script)) => script,
            _ => return Verdict::Allow,
        };
        if script.contains("trap") {
            panic!("trapping on purpose after call {calls}");
        }
        if !script.contains("count") {
            return Verdict::Allow;
        }
        let configured = CONFIGURED.load(Ordering::SeqCst);
        let label = LABEL.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Verdict::Deny(format!(
            "call {calls} of this instance, configured {configured} times, label {label}"
        ))
    }
}

export!(Plugin);
