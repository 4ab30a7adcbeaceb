//! Rate limits for benchmarks.

use rdev::config::LimitsConfig;
use rdev::limits::Tier;

/// Rate limits as configured by default, with a default tier that no benchmark exceeds: every
/// request pays for the limiter and none is refused.
pub fn unrefused_limits() -> LimitsConfig {
    let mut limits = LimitsConfig::default();
    let tier = Tier {
        requests_per_second: 1e9,
        burst: 1_000_000_000,
        commands_per_minute: 1_000_000_000,
        max_streams: 1_000_000,
        max_queued_per_project: 1_000_000,
    };
    limits.tiers.insert("default".into(), tier);
    limits
}
