//! Plugin runtime benchmarks, each a ratio or percentile measured in the same run:
//! 1. instantiating the default shell sanitizer per call, with the pooling allocator and without;
//! 2. a whole sanitizer call (fresh store, instantiate, configure, sanitize) with epoch
//!    interruption on and off: what deadlines cost; and the same call of two trivial test plugins,
//!    to tell the runtime's share of a call from the plugin's;
//! 3. how long after its deadline an endless loop is interrupted;
//! 4. where a whole call's time goes: store, instantiation, `configure`, the entry point, drop,
//!    for the plugin file configured on every call and for its configured snapshot, with pages
//!    kept resident between calls and without;
//! 5. a call through a loaded version, as the gateway makes it, of the default sanitizer and
//!    validator: from a configured snapshot against `configure` on every call, and from the
//!    snapshot with the CPU caches filled by other data before each call (as in the gateway).
//!
//! The gateway-level figures (chain cost on `POST .../commands`, hot swap under load) are in the
//! `gateway` benchmark. Run with `cargo bench --bench plugins`.

#[path = "support/calls.rs"]
mod calls;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdev::plugins::bindings::types;
use rdev::plugins::cache::ArtifactCache;
use rdev::plugins::manifest::{PluginManifest, World};
use rdev::plugins::runtime::{EngineOptions, Runtime};
use rdev::plugins::snapshot;
use rdev::plugins::version::Version;

use calls::{EVICTION_BYTES, command, percentiles};

const SAMPLES: usize = 20_000;
const ROUNDS: usize = 5;

fn default_plugin(name: &str) -> std::path::PathBuf {
    Path::new(env!("RDEV_DEFAULT_PLUGINS_DIR")).join(format!("{name}.wasm"))
}

fn test_plugin(name: &str) -> std::path::PathBuf {
    Path::new(env!("RDEV_TEST_PLUGINS_DIR")).join(format!("{name}.wasm"))
}

async fn load(runtime: &Arc<Runtime>, cache_dir: &Path, manifest: PluginManifest) -> Version {
    let key = rdev::plugins::cache::CacheKey::derive(b"bench");
    let cache = Arc::new(ArtifactCache::open(cache_dir, runtime.engine(), &key).unwrap());
    let wasm = std::fs::read(manifest.path(Path::new("/"))).unwrap();
    let digest = rdev::plugins::cache::digest(&wasm);
    Version::load(runtime.clone(), cache, manifest, wasm, digest)
        .await
        .unwrap()
}

/// Instantiation alone (fresh store + instantiate), in microseconds.
async fn instantiation(options: EngineOptions, file: &Path) -> (f64, f64) {
    let runtime = Runtime::new(options).unwrap();
    let component = wasmtime::component::Component::from_file(runtime.engine(), file).unwrap();
    let pre = runtime.linker().instantiate_pre(&component).unwrap();
    let budget = PluginManifest::new("bench", World::CommandSanitizer, "x", 0).budget();
    let name: Arc<str> = "bench".into();
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let mut store = runtime.store(name.clone(), &budget);
        let started = Instant::now();
        let instance = pre.instantiate_async(&mut store).await.unwrap();
        samples.push(started.elapsed().as_secs_f64() * 1e6);
        drop((instance, store));
    }
    percentiles(samples)
}

/// Whole sanitizer calls per second on one task.
async fn calls_per_second(version: &Version) -> f64 {
    let (command, context) = command("git status && cargo test 2>&1 | tail -n 20");
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        let verdict = version.sanitize(&command, &context).await.unwrap();
        assert!(matches!(verdict, types::Verdict::Allow), "{verdict:?}");
        calls += 1;
    }
    calls as f64 / started.elapsed().as_secs_f64()
}

async fn bench() {
    let cache_dir = tempfile::tempdir().unwrap();
    let sanitizer = default_plugin("shell_sanitizer");

    println!("1. instantiation of the shell sanitizer ({SAMPLES} per round, microseconds)");
    for round in 1..=ROUNDS {
        let (pool50, pool99) = instantiation(EngineOptions::default(), &sanitizer).await;
        let on_demand = EngineOptions {
            pooling: false,
            ..EngineOptions::default()
        };
        let (plain50, plain99) = instantiation(on_demand, &sanitizer).await;
        println!(
            "   round {round}: pooling p50 {pool50:.1} p99 {pool99:.1} | on-demand p50 {plain50:.1} p99 {plain99:.1} | speed-up p50 {:.2}x",
            plain50 / pool50
        );
    }

    println!("2. whole sanitizer calls per second, epoch interruption on vs off");
    let manifest = |file: &Path| {
        PluginManifest::new(
            "shell-sanitizer",
            World::CommandSanitizer,
            &file.display().to_string(),
            0,
        )
    };
    let with_epochs = Runtime::new(EngineOptions::default()).unwrap();
    let without = Runtime::new(EngineOptions {
        epochs: false,
        ..EngineOptions::default()
    })
    .unwrap();
    let on = load(&with_epochs, cache_dir.path(), manifest(&sanitizer)).await;
    let off = load(&without, cache_dir.path(), manifest(&sanitizer)).await;
    for round in 1..=ROUNDS {
        let (a, b) = (calls_per_second(&on).await, calls_per_second(&off).await);
        println!(
            "   round {round}: epochs on {a:.0}/s, off {b:.0}/s: on/off = {:.1}%",
            100.0 * a / b
        );
    }

    for name in ["probe_version_a", "deny_configure"] {
        let v = load(&with_epochs, cache_dir.path(), manifest(&test_plugin(name))).await;
        println!("   {name}: {:.0}/s", calls_per_second(&v).await);
    }
    println!("3. an endless loop with a 20 ms deadline: time until the call returns");
    let looping = load(&with_epochs, cache_dir.path(), manifest(&test_plugin("endless_loop"))).await;
    let (command, context) = command("ls");
    let mut samples = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let outcome = looping.sanitize(&command, &context).await;
        assert!(outcome.is_err());
        samples.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let (p50, p99) = percentiles(samples);
    println!("   interrupted after p50 {p50:.2} ms, p99 {p99:.2} ms (deadline 20 ms)");

    println!("4. one whole call, step by step (p50, microseconds)");
    let budget = PluginManifest::new("bench", World::CommandSanitizer, "x", 0).budget();
    for keep_resident in [true, false] {
        let runtime = Runtime::new(EngineOptions {
            keep_resident,
            ..EngineOptions::default()
        })
        .unwrap();
        for file in [test_plugin("probe_version_a"), sanitizer.clone()] {
            let wasm = std::fs::read(&file).unwrap();
            let snapshot = snapshot::configured(&runtime, "bench".into(), wasm.clone(), "{}".into(), budget)
                .await
                .unwrap();
            for (mode, wasm, configure) in [("file", &wasm, true), ("snapshot", &snapshot, false)] {
                let [store, instantiate, configure, entry, drop] = breakdown(&runtime, wasm, configure).await;
                println!(
                    "   {} ({mode}, keep resident {keep_resident}): store {store:.1}, instantiate {instantiate:.1}, configure {configure:.1}, sanitize {entry:.1}, drop {drop:.1}",
                    file.file_name().unwrap().to_string_lossy()
                );
            }
        }
    }

    println!("5. a call through a loaded version, snapshot vs configure per call (microseconds)");
    let per_call_configured = Runtime::new(EngineOptions {
        snapshots: false,
        ..EngineOptions::default()
    })
    .unwrap();
    for (name, world) in [
        ("shell_sanitizer", World::CommandSanitizer),
        ("request_validator", World::RequestValidator),
    ] {
        let file = default_plugin(name);
        let manifest = PluginManifest::new(name, world, &file.display().to_string(), 0);
        let snapshot = load(&with_epochs, cache_dir.path(), manifest.clone()).await;
        let configured = load(&per_call_configured, cache_dir.path(), manifest).await;
        assert!(snapshot.snapshot && !configured.snapshot);
        for round in 1..=ROUNDS {
            let ((s50, s99), (c50, c99)) = (per_call(&snapshot, false).await, per_call(&configured, false).await);
            let (e50, e99) = per_call(&snapshot, true).await;
            println!(
                "   {name} round {round}: snapshot p50 {s50:.1} p99 {s99:.1} | configure per call p50 {c50:.1} p99 {c99:.1} | snapshot, caches evicted before each call p50 {e50:.1} p99 {e99:.1}"
            );
        }
    }
}

/// p50 and p99 microseconds of a call through `version`. With `evict`, the CPU caches are
/// filled with other data before each call (untimed), as the gateway's HTTP, JSON and database
/// work does between two plugin calls.
async fn per_call(version: &Version, evict: bool) -> (f64, f64) {
    let mut other_data = vec![0u8; if evict { EVICTION_BYTES } else { 0 }];
    let (command, context) = command("git status && cargo test 2>&1 | tail -n 20");
    let request =
        r#"{"kind": "shell", "script": "git status && cargo test 2>&1 | tail -n 20", "env": {"RUST_LOG": "debug"}}"#;
    let count = if evict { SAMPLES / 4 } else { SAMPLES };
    let mut samples = Vec::with_capacity(count);
    for round in 0..count {
        other_data
            .iter_mut()
            .for_each(|b| *b = std::hint::black_box(round as u8));
        let started = Instant::now();
        match version.manifest.world {
            World::CommandSanitizer => drop(version.sanitize(&command, &context).await.unwrap()),
            _ => drop(version.validate("command", request).await.unwrap()),
        }
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    percentiles(samples)
}

/// Median microseconds of each step of a whole sanitizer call of the component `wasm`; with
/// `configure`, the call configures its instance (the `configure` step is zero otherwise).
async fn breakdown(runtime: &Arc<Runtime>, wasm: &[u8], configure: bool) -> [f64; 5] {
    use rdev::plugins::bindings::sanitizer::CommandSanitizerPre;
    let component = wasmtime::component::Component::new(runtime.engine(), wasm).unwrap();
    let pre = CommandSanitizerPre::new(runtime.linker().instantiate_pre(&component).unwrap()).unwrap();
    let budget = PluginManifest::new("bench", World::CommandSanitizer, "x", 0).budget();
    let (command, context) = command("git status && cargo test 2>&1 | tail -n 20");
    let name: Arc<str> = "bench".into();
    let mut steps: [Vec<f64>; 5] = Default::default();
    for _ in 0..SAMPLES / 4 {
        let mut lap = Instant::now();
        let mut mark = |steps: &mut [Vec<f64>; 5], i: usize| {
            steps[i].push(lap.elapsed().as_secs_f64() * 1e6);
            lap = Instant::now();
        };
        let mut store = runtime.store(name.clone(), &budget);
        mark(&mut steps, 0);
        let bindings = pre.instantiate_async(&mut store).await.unwrap();
        mark(&mut steps, 1);
        if configure {
            bindings.call_configure(&mut store, "{}").await.unwrap().unwrap();
        }
        mark(&mut steps, 2);
        bindings.call_sanitize(&mut store, &command, &context).await.unwrap();
        mark(&mut steps, 3);
        drop((bindings, store));
        mark(&mut steps, 4);
    }
    steps.map(|s| percentiles(s).0)
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench());
}
