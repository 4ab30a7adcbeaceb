//! The `[plugin_runtime]` config section: how many plugin calls run at once and how long a call
//! may wait for a slot, and the bounds on reading and compiling a plugin file.

use std::time::Duration;

use serde::Deserialize;

/// Bounds of the plugin runtime as a whole (a plugin's own budgets are in its manifest).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeLimits {
    /// Plugin calls that may run at once (each holds an instance of the pool). Calls take turns
    /// on the CPUs every epoch tick, so a slow plugin does not hold up the others.
    pub call_slots: usize,
    /// Milliseconds a call may wait for a slot; past that the request is answered 503
    /// `overloaded` with `Retry-After` (a plugin's deadline counts only the CPU time it runs).
    pub slot_wait_ms: u64,
    /// Largest plugin component file, in bytes; larger files are refused without being read.
    pub max_file_bytes: u64,
    /// Seconds reading and compiling one plugin file may take before the load is refused.
    pub load_timeout_secs: u64,
}

/// Upper bound of `call_slots`: the pooling allocator holds this many instances.
pub const MAX_CALL_SLOTS: usize = 128;

impl Default for RuntimeLimits {
    fn default() -> Self {
        Self {
            call_slots: 64,
            slot_wait_ms: 1000,
            // componentize-py components are about 18 MB: 16 MiB would refuse every Python plugin.
            max_file_bytes: 32 << 20,
            load_timeout_secs: 60,
        }
    }
}

impl RuntimeLimits {
    /// How long a call may wait for a slot.
    pub fn slot_wait(&self) -> Duration {
        Duration::from_millis(self.slot_wait_ms)
    }

    /// How long reading and compiling one file may take.
    pub fn load_timeout(&self) -> Duration {
        Duration::from_secs(self.load_timeout_secs)
    }

    /// The problems with these values, if any.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_CALL_SLOTS).contains(&self.call_slots) {
            return Err(format!(
                "plugin_runtime.call_slots must be between 1 and {MAX_CALL_SLOTS}"
            ));
        }
        if !(1..=60_000).contains(&self.slot_wait_ms) {
            return Err("plugin_runtime.slot_wait_ms must be between 1 and 60000".into());
        }
        if !(1024..=1 << 30).contains(&self.max_file_bytes) {
            return Err("plugin_runtime.max_file_bytes must be between 1 KiB and 1 GiB".into());
        }
        if !(1..=3600).contains(&self.load_timeout_secs) {
            return Err("plugin_runtime.load_timeout_secs must be between 1 and 3600".into());
        }
        Ok(())
    }
}
