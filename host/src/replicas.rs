//! This process as one replica of the gateway on a shared database: its identity, its heartbeat
//! lease, and the notices replicas send each other (`replicas/notices.rs`). The database is the
//! only coordinator: a replica is alive while its lease row is renewed, and a peer that finds it
//! expired removes the row, which fences the replica out (its next renewal finds nothing).

pub mod notices;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::broadcast;
use tokio::time::Instant;

pub use notices::{Notice, Notices};

use crate::store::{ReplicaRecord, Store, StoreResult};
use crate::time::now_ms;

/// The `[replicas]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicasConfig {
    /// Milliseconds between renewals of this replica's lease (and sweeps for dead peers).
    pub heartbeat_ms: u64,
    /// Milliseconds after its last renewal that a replica is taken as dead by its peers.
    pub lease_ms: u64,
}

impl Default for ReplicasConfig {
    fn default() -> Self {
        Self {
            heartbeat_ms: 2_000,
            lease_ms: 10_000,
        }
    }
}

impl ReplicasConfig {
    /// The configuration's problems, if any.
    pub fn check(&self) -> Result<(), String> {
        if self.heartbeat_ms == 0 || self.lease_ms < 2 * self.heartbeat_ms {
            return Err("replicas.lease_ms must be at least twice replicas.heartbeat_ms (and both above 0)".into());
        }
        Ok(())
    }

    fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}

/// How this replica stands with its lease.
#[derive(Debug, Clone, Copy)]
struct LeaseClock {
    /// The last successful renewal (or registration).
    renewed: Instant,
    /// Since when renewals have succeeded without a gap.
    held_since: Instant,
}

/// This gateway process among the replicas sharing its database.
pub struct Replica {
    store: Arc<dyn Store>,
    config: ReplicasConfig,
    host: String,
    started_at: i64,
    id: RwLock<String>,
    clock: Mutex<LeaseClock>,
    /// The ids this process held and lost to a peer (it was taken as dead).
    lost: broadcast::Sender<String>,
    /// True on SQLite, where the serving lock proves every other replica row is a dead process.
    sole: bool,
    /// Told at every heartbeat whether this replica has live peers.
    notices: Notices,
    /// Replicas with a live lease (this one included) at the last heartbeat.
    live: std::sync::atomic::AtomicI64,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.id())
            .field("host", &self.host)
            .finish()
    }
}

fn new_id() -> String {
    format!("rep_{}", uuid::Uuid::new_v4().simple())
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

impl Replica {
    /// Registers this process as a new replica with a fresh lease. `sole` says that no other
    /// gateway process can be using the database (SQLite's serving lock is held).
    pub async fn register(
        store: Arc<dyn Store>,
        config: ReplicasConfig,
        sole: bool,
        notices: Notices,
    ) -> StoreResult<Arc<Self>> {
        let now = Instant::now();
        let replica = Self {
            store,
            host: hostname(),
            started_at: now_ms(),
            id: RwLock::new(new_id()),
            clock: Mutex::new(LeaseClock {
                renewed: now,
                held_since: now,
            }),
            lost: broadcast::channel(4).0,
            sole,
            notices,
            live: std::sync::atomic::AtomicI64::new(1),
            config,
        };
        replica.store.register_replica(&replica.record(now_ms())).await?;
        tracing::info!(replica_id = %replica.id(), host = %replica.host, "registered as a replica");
        Ok(Arc::new(replica))
    }

    fn record(&self, now: i64) -> ReplicaRecord {
        ReplicaRecord {
            id: self.id(),
            host: self.host.clone(),
            started_at: self.started_at,
            heartbeat_at: now,
            lease_expires_at: now + self.config.lease_ms as i64,
        }
    }

    /// This replica's current id (a new one after its lease was lost).
    pub fn id(&self) -> String {
        self.id.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replicas with a live lease, this one included, as of the last heartbeat.
    pub fn live_replicas(&self) -> i64 {
        self.live.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Ids this process held and lost, as they are lost.
    pub fn lost_leases(&self) -> broadcast::Receiver<String> {
        self.lost.subscribe()
    }

    fn clock(&self) -> LeaseClock {
        *self.clock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the lease was renewed within its expiry: peers still take this replica as alive.
    pub fn lease_is_fresh(&self) -> bool {
        self.clock().renewed.elapsed() < self.config.lease()
    }

    /// Milliseconds since the last renewal.
    pub fn lease_age_ms(&self) -> u64 {
        u64::try_from(self.clock().renewed.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether this replica may take peers whose lease expired as dead. Only after it has held its
    /// own lease without a gap for a whole lease period (and holds it now): after a database
    /// outage every live peer has had the time to renew before anyone judges it. Alone on its
    /// database, at once.
    pub fn may_reconcile_peers(&self) -> bool {
        let clock = self.clock();
        let lease = self.config.lease();
        self.sole || (clock.renewed.elapsed() < lease && clock.held_since.elapsed() >= lease)
    }

    /// Whether every other replica row is a dead process (SQLite, under its serving lock), so
    /// that their commands are reconciled at once instead of when their leases expire.
    pub fn may_reconcile_at_once(&self) -> bool {
        self.sole
    }

    /// Renews the lease once. A row found gone means a peer took this replica as dead: the old id
    /// is announced as lost and the process registers again under a new one.
    pub async fn renew(&self) -> StoreResult<()> {
        let now = now_ms();
        let id = self.id();
        let renewed = self
            .store
            .renew_lease(&id, now, now + self.config.lease_ms as i64)
            .await;
        let mut clock = self.clock();
        match renewed {
            Ok(true) => {
                if clock.renewed.elapsed() >= self.config.lease() {
                    clock.held_since = Instant::now();
                }
                clock.renewed = Instant::now();
            }
            Ok(false) => {
                tracing::error!(replica_id = %id, "this replica's lease was taken as expired by a peer; registering again");
                *self.id.write().unwrap_or_else(|e| e.into_inner()) = new_id();
                self.store.register_replica(&self.record(now_ms())).await?;
                let _ = self.lost.send(id);
                clock = LeaseClock {
                    renewed: Instant::now(),
                    held_since: Instant::now(),
                };
            }
            Err(e) => {
                clock.held_since = Instant::now();
                *self.clock.lock().unwrap_or_else(|e| e.into_inner()) = clock;
                return Err(e);
            }
        }
        *self.clock.lock().unwrap_or_else(|e| e.into_inner()) = clock;
        match self.store.live_replicas(now).await {
            Ok(live) => {
                self.live.store(live, std::sync::atomic::Ordering::Relaxed);
                self.notices.set_peers(live > 1);
            }
            Err(e) => tracing::debug!(error = %e, "could not count the live replicas"),
        }
        Ok(())
    }

    /// Renews the lease every heartbeat until the task is aborted. Nothing else runs in this task:
    /// a slow sweep must never delay a renewal.
    pub fn spawn_heartbeat(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        crate::time::spawn_every(self.config.heartbeat(), move || {
            let this = this.clone();
            async move {
                if let Err(e) = this.renew().await {
                    let age = this.lease_age_ms();
                    tracing::warn!(error = %e, lease_age_ms = age, "could not renew this replica's lease");
                }
            }
        })
    }

    /// How often peers are swept for expired leases: every heartbeat.
    pub fn sweep_interval(&self) -> Duration {
        self.config.heartbeat()
    }

    /// Leaves the set of replicas on a clean stop, once nothing runs here any more.
    pub async fn leave(&self) {
        if let Err(e) = self.store.remove_replica(&self.id(), None).await {
            tracing::warn!(error = %e, "could not remove this replica's row; peers will once its lease expires");
        }
    }
}
