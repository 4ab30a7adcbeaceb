//! The plugin runtime: one wasmtime `Engine` for the process (component model, pooling
//! allocator, epoch interruption, fuel), the linker every plugin is instantiated against, and the
//! per-call store with its budgets. Calls run as async fibers that yield to the executor on every
//! epoch tick, so a busy plugin never holds a runtime worker for more than a tick.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline};

use super::bindings::{log, shell};
use super::call_state::CallState;
use super::cpu_meter::CpuMeter;
use super::limits::{MAX_CALL_SLOTS, RuntimeLimits};

/// Largest memory budget a manifest may ask for; the pooling allocator reserves slots this big.
pub const MAX_MEMORY_BYTES: usize = 256 << 20;
/// Shadow calls that may run at once across all plugins: they have call slots of their own, so
/// a candidate starved of CPU never holds a slot a serving call waits for.
pub const SHADOW_SLOTS: usize = 16;
/// Instances that may exist at once (each call holds one, so no more calls than this run).
const POOL_INSTANCES: u32 = (MAX_CALL_SLOTS + SHADOW_SLOTS) as u32;
/// Memory per pooled instance kept resident between calls. A fresh instance whose working set
/// fits takes no page faults and its reset needs no system call (no TLB shootdowns across CPUs);
/// beyond it, the rest is handed back to the kernel as before.
const KEEP_RESIDENT_BYTES: usize = 4 << 20;
/// Table memory per pooled instance kept resident between calls.
const KEEP_RESIDENT_TABLE_BYTES: usize = 64 << 10;
/// How often the epoch advances: the granularity of deadlines and of yielding to the executor.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The limits of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// CPU time for instantiation, `configure` and the call (see [`Runtime::store`]).
    pub deadline: Duration,
    /// Linear memory, in bytes.
    pub memory_bytes: usize,
    /// Wasm fuel (instructions, roughly); unlimited when absent.
    pub fuel: Option<u64>,
}

impl Budget {
    /// Wall-clock time a call may take, waiting included: a backstop for a call that waits
    /// without running (a plugin blocked on a WASI timer uses no CPU, so its deadline would
    /// never pass), far enough beyond the deadline that a busy machine does not reach it.
    pub fn wall_limit(&self) -> Duration {
        (self.deadline * 10).max(Duration::from_secs(1))
    }
}

/// Why a call did not return a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The deadline passed.
    #[error("exceeded its {0} ms deadline")]
    Deadline(u128),
    /// The call ran past its wall-clock limit without using up its deadline: it was blocked.
    #[error("was still blocked after {0} ms")]
    Blocked(u128),
    /// The plugin tried to grow its memory past the budget.
    #[error("exceeded its memory limit of {0} MiB")]
    Memory(usize),
    /// The fuel budget ran out.
    #[error("ran out of fuel")]
    Fuel,
    /// The plugin trapped (a bug in it: panic, unreachable, out-of-bounds...).
    #[error("trapped: {0}")]
    Trap(String),
    /// The plugin's `configure` refused its configuration.
    #[error("refused its configuration: {0}")]
    Configure(String),
    /// The plugin returned something the host does not accept.
    #[error("returned an invalid result: {0}")]
    BadOutput(String),
    /// No call slot freed up in time (`plugin_runtime.slot_wait_ms`): the runtime is
    /// overloaded, which says nothing about the plugin.
    #[error("could not run: every plugin call slot stayed busy for {0} ms")]
    Busy(u128),
}

#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
struct DeadlinePassed;

/// The engine, the linker and the call slots.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    permits: Arc<Semaphore>,
    shadow_permits: Arc<Semaphore>,
    limits: RuntimeLimits,
    options: EngineOptions,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runtime")
    }
}

/// Engine settings; the defaults are what the gateway runs with. Benchmarks turn them off to
/// measure what each one costs or saves.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Pooling instance allocator (else on-demand allocation).
    pub pooling: bool,
    /// Epoch interruption (else deadlines are not enforced).
    pub epochs: bool,
    /// Configured snapshots (else `configure` runs on every call).
    pub snapshots: bool,
    /// Keep the pages a call dirtied resident and reset them by copying (found with Linux's
    /// `PAGEMAP_SCAN` where the kernel has it), else hand memory back to the kernel after each
    /// call.
    pub keep_resident: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            pooling: true,
            epochs: true,
            snapshots: true,
            keep_resident: true,
        }
    }
}

impl Runtime {
    /// A runtime with these engine options and the default limits.
    pub fn new(options: EngineOptions) -> anyhow::Result<Arc<Self>> {
        Self::with_limits(options, RuntimeLimits::default())
    }

    /// A runtime with these engine options and limits.
    pub fn with_limits(options: EngineOptions, limits: RuntimeLimits) -> anyhow::Result<Arc<Self>> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(options.epochs);
        config.consume_fuel(true);
        if options.pooling {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(POOL_INSTANCES)
                .total_core_instances(POOL_INSTANCES * 8)
                .total_memories(POOL_INSTANCES * 2)
                .total_tables(POOL_INSTANCES * 4)
                .total_stacks(POOL_INSTANCES)
                .max_memory_size(MAX_MEMORY_BYTES);
            if options.keep_resident {
                pool.linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
                    .table_keep_resident(KEEP_RESIDENT_TABLE_BYTES)
                    .pagemap_scan(wasmtime::Enabled::Auto);
            }
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        log::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s)?;
        shell::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s)?;
        spawn_epoch_ticker(&engine);
        Ok(Arc::new(Self {
            engine,
            linker,
            permits: Arc::new(Semaphore::new(limits.call_slots)),
            shadow_permits: Arc::new(Semaphore::new(SHADOW_SLOTS)),
            limits,
            options,
        }))
    }

    /// The runtime's limits.
    pub fn limits(&self) -> &RuntimeLimits {
        &self.limits
    }

    /// The engine options it was made with.
    pub fn options(&self) -> EngineOptions {
        self.options
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker every plugin is instantiated against: WASI with nothing granted, `log`, `shell`.
    pub fn linker(&self) -> &Linker<CallState> {
        &self.linker
    }

    /// Waits for a call slot, at most `wait`.
    pub async fn permit(&self, wait: Duration) -> Result<OwnedSemaphorePermit, CallError> {
        let acquire = self.permits.clone().acquire_owned();
        match tokio::time::timeout(wait, acquire).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(CallError::Busy(wait.as_millis())),
        }
    }

    /// A shadow call slot if one is free now (a shadow call never waits).
    pub fn shadow_permit(&self) -> Result<OwnedSemaphorePermit, CallError> {
        self.shadow_permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| CallError::Busy(0))
    }

    /// A fresh store for one call of `plugin`, with the budget's deadline, memory and fuel.
    /// The deadline is CPU time, counted only while the call runs through the store's meter
    /// (`CallState::meter`): waiting for a slot, a worker or a core is not the plugin's doing.
    pub fn store(&self, plugin: Arc<str>, budget: &Budget) -> Store<CallState> {
        let meter = CpuMeter::new();
        let mut store = Store::new(&self.engine, CallState::new(plugin, budget.memory_bytes, meter.clone()));
        store.limiter(|s| s);
        // Fuel is enabled on the engine, so setting it cannot fail.
        let _ = store.set_fuel(budget.fuel.unwrap_or(u64::MAX));
        let deadline = budget.deadline;
        store.epoch_deadline_callback(move |_| {
            if meter.used() >= deadline {
                Err(DeadlinePassed.into())
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        store
    }

    /// What a failed call means, given the store it ran in.
    pub fn classify(error: &wasmtime::Error, store: &Store<CallState>, budget: &Budget) -> CallError {
        if error.downcast_ref::<DeadlinePassed>().is_some() {
            return CallError::Deadline(budget.deadline.as_millis());
        }
        if store.data().memory_exceeded() {
            return CallError::Memory(budget.memory_bytes >> 20);
        }
        if let Some(wasmtime::Trap::OutOfFuel) = error.downcast_ref::<wasmtime::Trap>() {
            return CallError::Fuel;
        }
        CallError::Trap(trap_message(error))
    }
}

/// The first line of a trap's description: enough to identify it without a guest backtrace.
fn trap_message(error: &wasmtime::Error) -> String {
    let text = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => error.to_string(),
    };
    text.lines().next().unwrap_or_default().chars().take(200).collect()
}

/// Advances the engine's epoch every tick until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("rdev-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
        .unwrap_or_else(|e| tracing::error!(error = %e, "could not start the epoch ticker"));
}
