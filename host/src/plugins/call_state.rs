//! What a plugin instance can reach during one call: an empty WASI context (no files, network,
//! environment, stdio; clocks frozen at the epoch), a memory limit, and the `log` and `shell`
//! imports. One `CallState` per store, one store per call.

use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::bindings::{log, shell};
use super::cpu_meter::CpuMeter;
use super::shell_convert;

/// Log records one call may write; more are dropped so that a chatty plugin cannot flood the log.
const MAX_LOG_RECORDS: u32 = 32;
/// Bytes of a log message or field kept; the rest is cut.
const MAX_LOG_TEXT: usize = 1024;
/// Scripts the shell import accepts, in bytes.
const MAX_SCRIPT_BYTES: usize = 256 * 1024;

/// Store data of one plugin call.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory_limit: usize,
    memory_exceeded: bool,
    plugin: std::sync::Arc<str>,
    log_records: u32,
    meter: std::sync::Arc<CpuMeter>,
}

impl CallState {
    /// State for a call of `plugin` with a memory limit of `memory_bytes`, its CPU time counted
    /// by `meter`.
    pub fn new(plugin: std::sync::Arc<str>, memory_bytes: usize, meter: std::sync::Arc<CpuMeter>) -> Self {
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            memory_limit: memory_bytes,
            memory_exceeded: false,
            plugin,
            log_records: 0,
            meter,
        }
    }
}

impl CallState {
    /// The meter of this call's CPU time: run the call through it.
    pub fn meter(&self) -> std::sync::Arc<CpuMeter> {
        self.meter.clone()
    }

    /// Whether the plugin tried to grow its memory past the limit during this call.
    pub fn memory_exceeded(&self) -> bool {
        self.memory_exceeded
    }
}

/// Elements a table may grow to; generous for real guests, a wall for runaway ones.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for CallState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_exceeded = true;
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A clock that always reads the epoch: plugins are pure functions of their inputs.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

fn cut(text: &str) -> &str {
    if text.len() <= MAX_LOG_TEXT {
        return text;
    }
    let mut end = MAX_LOG_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl log::Host for CallState {
    fn log(&mut self, level: log::Level, message: String, fields: Vec<(String, String)>) {
        if self.log_records >= MAX_LOG_RECORDS {
            return;
        }
        self.log_records += 1;
        let fields = fields
            .iter()
            .map(|(k, v)| format!("{}={}", cut(k), cut(v)))
            .collect::<Vec<_>>()
            .join(" ");
        let (plugin, message) = (&*self.plugin, cut(&message));
        match level {
            log::Level::Trace => tracing::trace!(plugin, fields, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, fields, "{message}"),
            log::Level::Info => tracing::info!(plugin, fields, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, fields, "{message}"),
            log::Level::Error => tracing::error!(plugin, fields, "{message}"),
        }
    }
}

impl shell::Host for CallState {
    fn parse(&mut self, script: String) -> Result<shell::Script, shell::ParseError> {
        if script.len() > MAX_SCRIPT_BYTES {
            return Err(shell::ParseError {
                message: format!("script is longer than {MAX_SCRIPT_BYTES} bytes"),
                span: shell::Span { start: 0, end: 0 },
            });
        }
        rdev_shell::parse(&script)
            .map(shell_convert::script)
            .map_err(shell_convert::error)
    }
}
