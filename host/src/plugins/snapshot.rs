//! Configure once: when a version loads, its `configure` runs in an instance instrumented by
//! wasmtime-wizer, and the configured memories and globals are written into a new component.
//! Calls instantiate that snapshot: every call still gets a fresh, never-used instance, and it
//! starts configured.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{Component, Instance, WasmList};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use super::call_state::CallState;
use super::runtime::{Budget, CallError, Runtime};

/// The export every world has, run once with the version's configuration.
const CONFIGURE: &str = "configure";

/// Why a version has no snapshot.
#[derive(Debug)]
pub enum SnapshotError {
    /// The plugin's `configure` refused its configuration.
    Refused(String),
    /// `configure` failed (trap, deadline, memory, fuel).
    Failed(CallError),
    /// The component cannot be snapshotted (a form wizer does not handle): the version is
    /// configured on every call instead.
    Unsupported(String),
}

/// The component `wasm` with `configure(config_json)` already run, as a new component.
pub async fn configured(
    runtime: &Arc<Runtime>,
    plugin: Arc<str>,
    wasm: Vec<u8>,
    config_json: String,
    budget: Budget,
) -> Result<Vec<u8>, SnapshotError> {
    let runtime = runtime.clone();
    // Wizer's own consistency checks panic; a panic in the task is an unsupported component.
    let task = tokio::spawn(async move { snapshot(&runtime, plugin, &wasm, &config_json, &budget).await });
    task.await
        .unwrap_or_else(|e| Err(SnapshotError::Unsupported(format!("the snapshot failed: {e}"))))
}

async fn snapshot(
    runtime: &Runtime,
    plugin: Arc<str>,
    wasm: &[u8],
    config_json: &str,
    budget: &Budget,
) -> Result<Vec<u8>, SnapshotError> {
    let unsupported = |e: wasmtime::Error| SnapshotError::Unsupported(format!("{e:#}"));
    let mut wizer = Wizer::new();
    wizer.init_func(CONFIGURE).keep_init_func(true);
    let (context, instrumented) = wizer.instrument_component(wasm).map_err(unsupported)?;
    let engine = runtime.engine().clone();
    let component = tokio::task::spawn_blocking(move || Component::new(&engine, &instrumented))
        .await
        .map_err(|e| SnapshotError::Unsupported(format!("compilation failed: {e}")))?
        .map_err(unsupported)?;
    let mut store = runtime.store(plugin, budget);
    let meter = store.data().meter();
    // A component that does not instantiate or has no `configure` is judged by the ordinary
    // load, which says what is wrong with it.
    let instance = meter
        .run(runtime.linker().instantiate_async(&mut store, &component))
        .await
        .map_err(unsupported)?;
    let configure = instance
        .get_typed_func::<(&str,), (Result<(), String>,)>(&mut store, CONFIGURE)
        .map_err(unsupported)?;
    let (outcome,) = meter
        .run(configure.call_async(&mut store, (config_json,)))
        .await
        .map_err(|e| SnapshotError::Failed(Runtime::classify(&e, &store, budget)))?;
    outcome.map_err(SnapshotError::Refused)?;
    let mut state = Access {
        store: &mut store,
        instance,
        error: None,
    };
    let snapshot = wizer
        .snapshot_component(&context, &mut state)
        .await
        .map_err(unsupported)?;
    match state.error {
        Some(e) => Err(unsupported(e)),
        None => Ok(snapshot),
    }
}

/// Wizer's view of the configured instance: the accessor functions it added. The trait has no
/// way to fail, so the first error is kept and the snapshot thrown away.
struct Access<'a> {
    store: &'a mut Store<CallState>,
    instance: Instance,
    error: Option<wasmtime::Error>,
}

impl Access<'_> {
    /// Calls the accessor `instance#func`; an error is kept and yields `None`.
    async fn call<R>(&mut self, instance: &str, func: &str) -> Option<R>
    where
        R: wasmtime::component::Lift + Send + Sync + 'static,
    {
        match self.try_call(instance, func).await {
            Ok(value) => Some(value),
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }

    async fn try_call<R>(&mut self, instance: &str, func: &str) -> wasmtime::Result<R>
    where
        R: wasmtime::component::Lift + Send + Sync + 'static,
    {
        let index = self
            .instance
            .get_export_index(&mut *self.store, None, instance)
            .and_then(|parent| self.instance.get_export_index(&mut *self.store, Some(&parent), func))
            .ok_or_else(|| wasmtime::Error::msg(format!("no accessor `{instance}#{func}`")))?;
        let typed = self.instance.get_typed_func::<(), (R,)>(&mut *self.store, index)?;
        Ok(typed.call_async(&mut *self.store, ()).await?.0)
    }
}

impl ComponentInstanceState for Access<'_> {
    async fn call_func_ret_list_u8(&mut self, instance: &str, func: &str, contents: impl FnOnce(&[u8]) + Send) {
        match self.call::<WasmList<u8>>(instance, func).await {
            Some(list) => contents(list.as_le_slice(&*self.store)),
            None => contents(&[]),
        }
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func).await.unwrap_or_default()
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func).await.unwrap_or_default()
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call::<f32>(instance, func).await.unwrap_or_default().to_bits()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call::<f64>(instance, func).await.unwrap_or_default().to_bits()
    }
}
