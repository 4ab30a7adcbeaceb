//! Failed authentications per client network: past the budget, the network is refused for a
//! while before its tokens are looked at, so guessing keys costs neither a hash nor a database
//! read. IPv6 clients are counted per /64, the block one host usually holds.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::DefaultClock;
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::Budget;
use super::per_key::{budget, budget_of};

type PerNetwork = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;

/// Failures recorded between two sweeps that forget networks whose budget is full again, which
/// keeps the memory of an attack from many addresses bounded.
const SWEEP_EVERY: u64 = 4096;

pub(super) struct Failures {
    limiter: PerNetwork,
    quota: Quota,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    recorded: AtomicU64,
}

/// The network a client address is counted in.
fn network(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

impl Failures {
    pub(super) fn new(per_minute: u32, burst: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            quota,
            blocked: Mutex::default(),
            recorded: AtomicU64::new(0),
        }
    }

    /// How long `ip`'s network is still refused, if it is.
    pub(super) fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        let until = *self
            .blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&network(ip))?;
        until
            .checked_duration_since(Instant::now())
            .filter(|wait| !wait.is_zero())
    }

    /// The budget of a refused network.
    pub(super) fn exhausted(&self) -> Budget {
        budget(self.quota, 0)
    }

    /// Counts a failure; once over budget the network is refused until a cell is due.
    pub(super) fn record(&self, ip: IpAddr) -> Budget {
        let net = network(ip);
        if self
            .recorded
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            self.forget_idle();
        }
        match self.limiter.check_key(&net) {
            Ok(state) => budget_of(&state),
            Err(_) => {
                let wait = self.quota.replenish_interval();
                let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
                blocked.insert(net, Instant::now() + wait);
                self.exhausted()
            }
        }
    }

    fn forget_idle(&self) {
        self.limiter.retain_recent();
        let now = Instant::now();
        self.blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_past_its_budget_is_blocked_and_others_are_not() {
        let failures = Failures::new(1, 3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            failures.record(a);
            assert_eq!(failures.blocked(a), None);
        }
        assert_eq!(failures.record(a).remaining, 0);
        assert!(failures.blocked(a).is_some_and(|w| w <= Duration::from_secs(60)));
        assert_eq!(failures.blocked("192.0.2.2".parse().unwrap()), None);
    }

    #[test]
    fn ipv6_hosts_are_counted_per_64() {
        let failures = Failures::new(1, 1);
        failures.record("2001:db8::1".parse().unwrap());
        failures.record("2001:db8::2".parse().unwrap());
        assert!(failures.blocked("2001:db8::ffff".parse().unwrap()).is_some());
        assert_eq!(failures.blocked("2001:db8:0:1::1".parse().unwrap()), None);
    }
}
