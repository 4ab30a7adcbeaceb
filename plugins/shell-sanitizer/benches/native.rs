//! The sanitizer's own logic natively: the script and configuration that step 4 of the host's
//! `plugins` benchmark judges in wasm (its `sanitize` step), so that the two give the wasm/native
//! ratio. Run with `cargo bench --manifest-path plugins/Cargo.toml -p shell-sanitizer`.

use std::time::Instant;

use rdev_plugin_sdk::{Command, CommandContext, Sanitizer};
use shell_sanitizer::ShellSanitizer;
use shell_sanitizer::config::Config;

const SAMPLES: usize = 20_000;
const ROUNDS: usize = 5;

fn main() {
    let config = Config::default();
    let command = Command::shell("git status && cargo test 2>&1 | tail -n 20");
    let context = CommandContext::new("demo", "/workspaces/demo");
    println!("the default sanitizer natively ({SAMPLES} calls per round, microseconds)");
    for round in 1..=ROUNDS {
        let mut samples: Vec<f64> = (0..SAMPLES)
            .map(|_| {
                let started = Instant::now();
                let verdict = ShellSanitizer::sanitize(&config, &command, &context);
                let elapsed = started.elapsed().as_secs_f64() * 1e6;
                assert!(verdict.is_allow(), "{verdict:?}");
                elapsed
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
        println!("   round {round}: p50 {:.2} p99 {:.2}", at(0.5), at(0.99));
    }
}
