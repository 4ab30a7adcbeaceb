//! One GCRA bucket per key and quota: a key's bucket is replaced (full again) when its quota
//! changes, which happens when its tier is reconfigured or a replica joins or leaves.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::Budget;

type Gcra = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

struct Bucket {
    quota: Quota,
    gcra: Gcra,
}

/// Buckets by key id.
#[derive(Default)]
pub(super) struct PerKey {
    buckets: RwLock<HashMap<String, Arc<Bucket>>>,
    clock: DefaultClock,
}

/// `per_second` shared among `replicas`, with the full `burst` on each.
pub(super) fn quota(burst: u32, per_second: f64, replicas: i64) -> Quota {
    let interval = Duration::try_from_secs_f64(replicas.max(1) as f64 / per_second).unwrap_or(Duration::MAX);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(interval.max(Duration::from_nanos(1)))
        .expect("a positive period")
        .allow_burst(burst)
}

impl PerKey {
    /// Takes one cell from the key's bucket: its state after, or its state and how long until a
    /// cell is available.
    pub(super) fn check(&self, key: &str, quota: Quota) -> Result<Budget, (Budget, Duration)> {
        let bucket = self.bucket(key, quota);
        match bucket.gcra.check() {
            Ok(state) => Ok(budget(quota, state.remaining_burst_capacity())),
            Err(not_until) => Err((budget(quota, 0), not_until.wait_time_from(self.clock.now()))),
        }
    }

    fn bucket(&self, key: &str, quota: Quota) -> Arc<Bucket> {
        if let Some(bucket) = self.buckets.read().unwrap_or_else(|e| e.into_inner()).get(key)
            && bucket.quota == quota
        {
            return bucket.clone();
        }
        let mut buckets = self.buckets.write().unwrap_or_else(|e| e.into_inner());
        match buckets.get(key) {
            Some(bucket) if bucket.quota == quota => bucket.clone(),
            _ => {
                let gcra = RateLimiter::direct_with_clock(quota, self.clock.clone())
                    .with_middleware::<StateInformationMiddleware>();
                let bucket = Arc::new(Bucket { quota, gcra });
                buckets.insert(key.to_owned(), bucket.clone());
                bucket
            }
        }
    }
}

/// The headers' view of a bucket with `remaining` cells.
pub(super) fn budget(quota: Quota, remaining: u32) -> Budget {
    let limit = quota.burst_size().get();
    let refill = quota
        .replenish_interval()
        .saturating_mul(limit.saturating_sub(remaining));
    Budget {
        limit,
        remaining,
        reset_secs: refill.as_millis().div_ceil(1000) as u64,
    }
}

/// The state a snapshot reports, for keyed limiters.
pub(super) fn budget_of(state: &StateSnapshot) -> Budget {
    budget(state.quota(), state.remaining_burst_capacity())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_admitted_then_refused_with_a_wait() {
        let per_key = PerKey::default();
        let quota = quota(3, 1.0, 1);
        let remaining: Vec<u32> = (0..3).map(|_| per_key.check("k", quota).unwrap().remaining).collect();
        assert_eq!(remaining, [2, 1, 0]);
        let (budget, wait) = per_key.check("k", quota).unwrap_err();
        assert_eq!(budget.remaining, 0);
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(per_key.check("other", quota).is_ok(), "another key has its own bucket");
    }

    #[test]
    fn replicas_share_the_rate_and_keep_the_burst() {
        let one = quota(10, 100.0, 1);
        let four = quota(10, 100.0, 4);
        assert_eq!(one.replenish_interval(), Duration::from_millis(10));
        assert_eq!(four.replenish_interval(), Duration::from_millis(40));
        assert_eq!(four.burst_size().get(), 10);
    }

    #[test]
    fn the_reset_is_the_time_to_refill_the_burst() {
        let quota = quota(300, 100.0, 1);
        assert_eq!(budget(quota, 300).reset_secs, 0);
        assert_eq!(budget(quota, 299).reset_secs, 1);
        assert_eq!(budget(quota, 0).reset_secs, 3);
    }
}
