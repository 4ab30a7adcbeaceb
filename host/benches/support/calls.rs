//! What plugin-call benchmarks share: percentiles of samples and a sanitizer's input.

use rdev::plugins::bindings::types;

/// Data written between calls when caches are evicted: twice the L2 cache of the 2-core VM.
pub const EVICTION_BYTES: usize = 4 << 20;

/// The p50 and p99 of `samples`.
pub fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    (at(0.50), at(0.99))
}

/// A shell command running `script` in the demo project, and its context.
pub fn command(script: &str) -> (types::Command, types::CommandContext) {
    let command = types::Command {
        kind: "shell".into(),
        script: Some(script.into()),
        args: None,
        prompt: None,
        env: vec![],
    };
    let context = types::CommandContext {
        project: "demo".into(),
        workdir: "/workspaces/demo".into(),
        key_id: "key_bench".into(),
        scopes: vec!["commands:run".into()],
    };
    (command, context)
}
