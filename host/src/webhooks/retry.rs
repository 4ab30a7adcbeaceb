//! The retry schedule: the configured delays with ±10 % jitter (so that a receiver that comes
//! back is not hit by every retry at once), never sooner than a receiver's `Retry-After`.

use std::time::Duration;

use super::WebhooksConfig;

/// How long to wait before the next attempt, after `attempts` attempts of this round failed
/// (the one just made included is `attempts + 1`); None when the schedule is used up.
pub fn next_delay(config: &WebhooksConfig, attempts: i64, retry_after: Option<Duration>) -> Option<Duration> {
    let index = usize::try_from(attempts).ok()?;
    let base = *config.retry_schedule_secs.get(index)?;
    let jitter = rand::random_range(0.9..=1.1);
    let scheduled = Duration::from_secs_f64(base * jitter);
    let asked = retry_after.map_or(Duration::ZERO, |d| {
        d.min(Duration::from_secs(config.max_retry_after_secs))
    });
    Some(scheduled.max(asked))
}

/// A `Retry-After` value: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_with_jitter_until_it_is_used_up() {
        let config = WebhooksConfig::default();
        for (attempts, base) in [(0, 5.0), (1, 30.0), (7, 21_600.0)] {
            let delay = next_delay(&config, attempts, None).unwrap().as_secs_f64();
            assert!((base * 0.9..=base * 1.1).contains(&delay), "{attempts}: {delay}");
        }
        assert_eq!(next_delay(&config, 8, None), None);
    }

    #[test]
    fn a_retry_after_is_honoured_up_to_its_bound() {
        let config = WebhooksConfig::default();
        let delay = next_delay(&config, 0, Some(Duration::from_secs(120))).unwrap();
        assert_eq!(delay, Duration::from_secs(120));
        let capped = next_delay(&config, 0, Some(Duration::from_secs(100_000))).unwrap();
        assert_eq!(capped, Duration::from_secs(config.max_retry_after_secs));
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
