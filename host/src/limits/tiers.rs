//! The `[limits]` configuration section: tiers of limits that keys are given, and the limit on
//! failed authentications.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The tier a key without one gets, always defined.
pub const DEFAULT_TIER: &str = "default";

/// Limits of one tier.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tier {
    /// Sustained requests per second of one key (fractions allowed: 0.5 is one every 2 s).
    pub requests_per_second: f64,
    /// Requests a key may make at once beyond its sustained rate.
    pub burst: u32,
    /// Commands a key may start per minute (also its burst).
    pub commands_per_minute: u32,
    /// Output streams a key may hold open at once, on one replica.
    pub max_streams: u32,
    /// Queued commands a project may hold when a key of this tier submits one.
    pub max_queued_per_project: u32,
}

/// The built-in default tier: one client hammering in a loop hits it; a person or a CI job
/// does not.
const BUILT_IN_TIER: Tier = Tier {
    requests_per_second: 100.0,
    burst: 300,
    commands_per_minute: 120,
    max_streams: 50,
    max_queued_per_project: 1000,
};

impl Default for Tier {
    fn default() -> Self {
        BUILT_IN_TIER
    }
}

/// The `[limits]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Whether limits apply (off when an ingress in front of the gateway enforces them).
    pub enabled: bool,
    /// Tiers by name (`[limits.tiers.NAME]`). `default` is the tier of keys created without
    /// one; it has the built-in values unless configured (a file that configures other tiers
    /// only keeps the built-in `default`).
    pub tiers: BTreeMap<String, Tier>,
    /// Failed authentications a client network may make per minute, sustained.
    pub failed_auth_per_minute: u32,
    /// Failed authentications a client network may make at once.
    pub failed_auth_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            tiers: BTreeMap::from([(DEFAULT_TIER.to_owned(), Tier::default())]),
            failed_auth_per_minute: 30,
            failed_auth_burst: 20,
        }
    }
}

impl LimitsConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        for (name, tier) in &self.tiers {
            if !(tier.requests_per_second.is_finite() && tier.requests_per_second > 0.0) {
                return Err(format!(
                    "limits.tiers.{name}: requests_per_second must be a positive number"
                ));
            }
            let values = [
                tier.burst,
                tier.commands_per_minute,
                tier.max_streams,
                tier.max_queued_per_project,
            ];
            if values.contains(&0) {
                return Err(format!("limits.tiers.{name}: every limit must be at least 1"));
            }
        }
        if self.failed_auth_per_minute == 0 || self.failed_auth_burst == 0 {
            return Err("limits: failed_auth_per_minute and failed_auth_burst must be at least 1".into());
        }
        Ok(())
    }

    /// Whether a tier of this name is configured.
    pub fn has_tier(&self, name: &str) -> bool {
        name == DEFAULT_TIER || self.tiers.contains_key(name)
    }

    /// A tier by name; the default tier for `None` or a name no longer configured (a key keeps
    /// working after its tier is removed from the file).
    pub fn tier_of(&self, name: Option<&str>) -> &Tier {
        name.and_then(|n| self.tiers.get(n))
            .or_else(|| self.tiers.get(DEFAULT_TIER))
            .unwrap_or(&BUILT_IN_TIER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> LimitsConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_file_with_other_tiers_keeps_the_built_in_default() {
        let config = parse("[tiers.batch]\nburst = 5\n");
        assert!(config.has_tier("default") && config.has_tier("batch") && !config.has_tier("gold"));
        assert_eq!(config.tier_of(None), &Tier::default());
        assert_eq!(config.tier_of(Some("batch")).burst, 5);
        assert_eq!(
            config.tier_of(Some("removed")),
            &Tier::default(),
            "a removed tier falls back"
        );
    }

    #[test]
    fn zero_or_negative_limits_are_refused() {
        for text in [
            "[tiers.default]\nburst = 0\n",
            "[tiers.x]\nrequests_per_second = -1.0\n",
            "[tiers.x]\nmax_streams = 0\n",
            "failed_auth_burst = 0\n",
        ] {
            assert!(parse(text).validate().is_err(), "{text}");
        }
        assert!(parse("[tiers.x]\nrequests_per_second = 0.5\n").validate().is_ok());
    }
}
