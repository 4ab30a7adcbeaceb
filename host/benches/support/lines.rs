//! Timestamped output lines, for benchmarks that measure how long a line takes from the command
//! that writes it to the client that reads it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// Prints `N` lines, each carrying its write time, flushing every line and pausing `pause_us`
/// microseconds between lines.
pub fn emit(lines: usize, pause_us: u64) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for i in 1..=lines {
        let _ = writeln!(out, "{} {i}", now_ns());
        let _ = out.flush();
        if pause_us > 0 {
            std::thread::sleep(Duration::from_micros(pause_us));
        }
    }
}

/// The `p` quantile of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
