//! Timestamps: stored as Unix milliseconds, shown to clients as RFC 3339.

use ::time::OffsetDateTime;
use ::time::format_description::well_known::Rfc3339;

/// Runs `task` every `period` (the first run at once; a run that overruns delays the next one
/// instead of bunching them up) until the returned handle is aborted.
pub fn spawn_every<F, Fut>(period: std::time::Duration, mut task: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            task().await;
        }
    })
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_millis() as i64
}

/// Formats Unix milliseconds as RFC 3339 in UTC (`2026-11-22T10:00:00.123Z`).
pub fn to_rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses an RFC 3339 timestamp (any offset) into Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Serde helpers that render optional millisecond timestamps as RFC 3339 strings.
pub mod serde_rfc3339 {
    use serde::Serializer;

    /// Serializes a timestamp in milliseconds.
    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_rfc3339(*ms))
    }

    /// Serializes an optional timestamp in milliseconds.
    pub mod option {
        use serde::Serializer;

        /// Serializes `None` as null, otherwise the RFC 3339 text.
        pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => s.serialize_str(&super::super::to_rfc3339(*ms)),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339_with_offsets() {
        let ms = parse_rfc3339("2026-11-22T10:00:00.250+01:00").unwrap();
        assert_eq!(to_rfc3339(ms), "2026-11-22T09:00:00.25Z");
        assert!(parse_rfc3339("yesterday").is_none());
    }
}
