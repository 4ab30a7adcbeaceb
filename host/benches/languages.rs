//! Plugins in Rust, Python and JavaScript (issue #18): each language's example sanitizer (the
//! `command-sanitizer` template, the same rules in each), written by `rdev plugins new` and built
//! by `rdev plugins build` with the language's own tool, then
//! 1. its size and how long it takes to load: compiled (and snapshotted) the first time, then
//!    from the artifact cache, as a restart or a second replica loads it;
//! 2. a whole call through the loaded version, a fresh instance of the configured snapshot per
//!    call, as the gateway makes it — what the plugin adds to accepting a command, since the
//!    chain runs its sanitizers one after the other on the request path;
//! 3. the same with the CPU caches filled by other data before each call (untimed);
//! 4. for Python and JavaScript, the same call of a sanitizer that allows everything without
//!    looking (the template with its entry file replaced): what the language's runtime costs
//!    per call, apart from the plugin's own work.
//!
//! Needs `cargo`, `componentize-py` and `componentize-js` on PATH (`scripts/test.sh` installs
//! them). Run with `cargo bench --bench languages`.

#[path = "support/calls.rs"]
mod calls;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rdev::authoring::{self, Lang, Project};
use rdev::plugins::bindings::types;
use rdev::plugins::cache::{ArtifactCache, CacheKey};
use rdev::plugins::manifest::{PluginManifest, World};
use rdev::plugins::runtime::{EngineOptions, Runtime};
use rdev::plugins::version::Version;

use calls::{EVICTION_BYTES, command, percentiles};

const SAMPLES: usize = 5_000;
const ROUNDS: usize = 3;

/// Loads `file` as a sanitizer through `cache`; the version and the seconds it took.
async fn load(runtime: &Arc<Runtime>, cache: &Arc<ArtifactCache>, file: &Path) -> (Version, f64) {
    let mut manifest = PluginManifest::new("bench", World::CommandSanitizer, &file.display().to_string(), 0);
    manifest.config = serde_json::json!({"refused_programs": ["rm", "shred"]});
    let wasm = std::fs::read(file).unwrap();
    let digest = rdev::plugins::cache::digest(&wasm);
    let started = Instant::now();
    let version = Version::load(runtime.clone(), cache.clone(), manifest, wasm, digest)
        .await
        .unwrap();
    (version, started.elapsed().as_secs_f64())
}

/// p50 and p99 microseconds of a call; with `evict`, caches filled with other data first.
async fn per_call(version: &Version, evict: bool) -> (f64, f64) {
    let mut other_data = vec![0u8; if evict { EVICTION_BYTES } else { 0 }];
    let (command, context) = command("git status && cargo test 2>&1 | tail -n 20");
    let mut samples = Vec::with_capacity(SAMPLES);
    for round in 0..SAMPLES {
        other_data
            .iter_mut()
            .for_each(|b| *b = std::hint::black_box(round as u8));
        let started = Instant::now();
        let verdict = version.sanitize(&command, &context).await.unwrap();
        samples.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(matches!(verdict, types::Verdict::Allow), "{verdict:?}");
    }
    percentiles(samples)
}

/// An entry file that allows every command without looking at it.
fn allow_all(lang: Lang) -> Option<(&'static str, &'static str)> {
    match lang {
        Lang::Rust => None,
        Lang::Python => Some((
            "app.py",
            "import wit_world\nfrom rdev_plugin import allow\n\n\nclass WitWorld(wit_world.WitWorld):\n    \
             def configure(self, config):\n        pass\n\n    def self_test(self):\n        return []\n\n    \
             def sanitize(self, command, context):\n        return allow()\n",
        )),
        Lang::Js => Some((
            "app.js",
            "export function configure(text) {}\nexport function selfTest() { return []; }\n\
             export function sanitize(command, context) { return { tag: 'allow' }; }\n",
        )),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let work = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(EngineOptions::default()).unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(ArtifactCache::open(cache_dir.path(), runtime.engine(), &CacheKey::derive(b"bench")).unwrap());
    println!("the command-sanitizer template in each language");
    for lang in [Lang::Rust, Lang::Python, Lang::Js] {
        let dir = work.path().join(lang.as_str());
        authoring::scaffold(&dir, "no-rm", World::CommandSanitizer, lang).unwrap();
        let project = Project::read(&dir).unwrap();
        let started = Instant::now();
        let file = authoring::build(&dir, &project).unwrap();
        let built = started.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(&file).unwrap().len();
        let (version, compiled) = load(&runtime, &cache, &file).await;
        let (cached_version, cached) = load(&runtime, &cache, &file).await;
        assert!(version.snapshot && cached_version.snapshot, "{lang:?} is snapshotted");
        println!(
            "1. {}: {:.1} MB, built in {built:.1} s; loaded in {compiled:.2} s compiling, {cached:.3} s from the artifact cache",
            lang.as_str(),
            bytes as f64 / 1e6
        );
        for round in 1..=ROUNDS {
            let ((p50, p99), (e50, e99)) = (
                per_call(&cached_version, false).await,
                per_call(&cached_version, true).await,
            );
            println!(
                "2./3. {} round {round}: call p50 {p50:.1} µs p99 {p99:.1} µs | caches evicted before each call p50 {e50:.1} µs p99 {e99:.1} µs",
                lang.as_str()
            );
        }
        if let Some((entry, source)) = allow_all(lang) {
            std::fs::write(dir.join(entry), source).unwrap();
            let file = authoring::build(&dir, &project).unwrap();
            let (version, _) = load(&runtime, &cache, &file).await;
            let (p50, p99) = per_call(&version, false).await;
            println!(
                "4. {}: a sanitizer that allows everything, call p50 {p50:.1} µs p99 {p99:.1} µs",
                lang.as_str()
            );
        }
    }
}
