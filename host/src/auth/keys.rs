//! Key life cycle and request authentication, with a short-lived cache so that verifying a key
//! does not cost a database round trip per request. Revocations on this replica take effect at
//! once; other replicas see them within [`CACHE_TTL`]. Key ids the store does not know are
//! remembered too (a bounded set), so that guessed tokens do not cost a read each.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::token::{TokenHasher, key_id_of};
use super::{AuthError, Principal};
use crate::replicas::{Notice, Notices};
use crate::store::{AuditEntry, EventTag, KeyRecord, Store};
use crate::time::now_ms;

/// How long a verified key record is trusted without re-reading it.
pub const CACHE_TTL: Duration = Duration::from_secs(2);
const TOUCH_EVERY_MS: i64 = 60_000;
/// How long a key id the store did not know is answered unknown without reading it again. Ids
/// are random, so a key created on another replica meanwhile is not one a client asked about.
const UNKNOWN_TTL: Duration = Duration::from_secs(30);
/// Unknown key ids remembered at most; past this the set is emptied of expired ids, or cleared.
const UNKNOWN_MAX: usize = 10_000;

/// What a new key may do.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// Name shown in listings.
    pub name: String,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Projects it may see (`None`: all).
    pub projects: Option<Vec<String>>,
    /// Networks it may be used from (`None`: any).
    pub allowed_cidrs: Option<Vec<ipnet::IpNet>>,
    /// Expiry, Unix ms.
    pub expires_at: Option<i64>,
    /// Rate-limit tier (`None`: the default tier).
    pub rate_limit_tier: Option<String>,
}

struct Cached {
    key: Arc<KeyRecord>,
    fetched: Instant,
}

/// Creates, verifies and revokes keys.
#[derive(Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    hasher: TokenHasher,
    cache: Arc<RwLock<HashMap<String, Cached>>>,
    unknown: Arc<Mutex<HashMap<String, Instant>>>,
    revoked: broadcast::Sender<String>,
    notices: Notices,
    store_reads: Option<prometheus::IntCounter>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator")
    }
}

impl Authenticator {
    /// An authenticator over a store.
    pub fn new(store: Arc<dyn Store>, hasher: TokenHasher) -> Self {
        Self {
            store,
            hasher,
            cache: Arc::default(),
            unknown: Arc::default(),
            revoked: broadcast::channel(64).0,
            notices: Notices::local(),
            store_reads: None,
        }
    }

    /// Counts the key records read from the store in `counter`.
    pub fn counting_reads_in(self, counter: prometheus::IntCounter) -> Self {
        Self {
            store_reads: Some(counter),
            ..self
        }
    }

    /// Tells the other replicas of revocations through `notices`, and hears theirs.
    pub fn with_notices(self, notices: Notices) -> Self {
        Self { notices, ..self }
    }

    /// Forgets keys revoked on other replicas as they are revoked, and ends their streams here,
    /// until the task is aborted.
    pub fn spawn_revocation_listener(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let mut notices = self.notices.subscribe();
        tokio::spawn(async move {
            loop {
                match notices.recv().await {
                    Ok(Notice::KeyRevoked { key }) => this.forget(&key),
                    // Streams re-check their key every few seconds: a missed notice costs that much.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    }

    fn forget(&self, id: &str) {
        self.cache.write().unwrap_or_else(|e| e.into_inner()).remove(id);
        let _ = self.revoked.send(id.to_owned());
    }

    /// Creates a key; returns its record and the token, which is never available again.
    pub async fn create(
        &self,
        new: NewKey,
        audit: Option<AuditEntry>,
    ) -> Result<(KeyRecord, String), crate::store::StoreError> {
        let (record, token, audit) = self.new_key(new, audit);
        self.store.insert_key(&record, audit.as_ref()).await?;
        self.unknown
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&record.id);
        Ok((record, token))
    }

    /// Creates a key only if no key exists yet (the first admin key of a new installation, which
    /// several replicas may try to create at once); its token if this call created it.
    pub async fn create_first(&self, new: NewKey) -> Result<Option<String>, crate::store::StoreError> {
        let (record, token, _) = self.new_key(new, None);
        let created = self.store.insert_first_key(&record, None).await?;
        Ok(created.then_some(token))
    }

    fn new_key(&self, new: NewKey, audit: Option<AuditEntry>) -> (KeyRecord, String, Option<AuditEntry>) {
        let (id, token) = self.hasher.generate();
        let record = KeyRecord {
            hash: self.hasher.hash(&token),
            id,
            name: new.name,
            scopes: new.scopes,
            projects: new.projects,
            allowed_cidrs: new.allowed_cidrs,
            expires_at: new.expires_at,
            created_at: now_ms(),
            last_used_at: None,
            revoked_at: None,
            rate_limit_tier: new.rate_limit_tier,
        };
        let audit = audit.map(|a| AuditEntry {
            target: record.id.clone(),
            event: Some(EventTag::new("key.created", None)),
            ..a
        });
        (record, token, audit)
    }

    /// Revokes a key, with its audit row (a `key.revoked` event); open streams of that key are
    /// told at once.
    pub async fn revoke(&self, id: &str, audit: Option<AuditEntry>) -> Result<bool, crate::store::StoreError> {
        let audit = audit.map(|a| AuditEntry {
            target: id.to_owned(),
            event: Some(EventTag::new("key.revoked", None)),
            ..a
        });
        let done = self.store.revoke_key(id, now_ms(), audit.as_ref()).await?;
        self.forget(id);
        self.notices.publish(Notice::KeyRevoked { key: id.to_owned() });
        Ok(done)
    }

    /// Revocation notices (key ids), from this replica and the others.
    pub fn revocations(&self) -> broadcast::Receiver<String> {
        self.revoked.subscribe()
    }

    /// Authenticates a bearer token used from `client_ip`.
    pub async fn authenticate(&self, token: &str, client_ip: IpAddr) -> Result<Principal, AuthError> {
        let client_ip = client_ip.to_canonical();
        let id = key_id_of(token).ok_or(AuthError::Invalid)?;
        let key = self.lookup(id).await?.ok_or(AuthError::Invalid)?;
        if !self.hasher.verify(token, &key.hash) {
            return Err(AuthError::Invalid);
        }
        Self::check_usable(&key, now_ms())?;
        if let Some(nets) = &key.allowed_cidrs
            && !nets.iter().any(|n| super::net_contains(n, client_ip))
        {
            return Err(AuthError::Network);
        }
        self.touch(&key);
        Ok(Principal { key, client_ip })
    }

    /// Whether a key is still usable now (re-read from the store when the cache is stale).
    pub async fn still_valid(&self, id: &str) -> Result<(), AuthError> {
        let key = self.lookup(id).await?.ok_or(AuthError::Revoked)?;
        Self::check_usable(&key, now_ms())
    }

    fn check_usable(key: &KeyRecord, now: i64) -> Result<(), AuthError> {
        if key.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        if key.expires_at.is_some_and(|e| e <= now) {
            return Err(AuthError::Expired);
        }
        Ok(())
    }

    async fn lookup(&self, id: &str) -> Result<Option<Arc<KeyRecord>>, AuthError> {
        if let Some(hit) = self.cache.read().unwrap_or_else(|e| e.into_inner()).get(id)
            && hit.fetched.elapsed() < CACHE_TTL
        {
            return Ok(Some(hit.key.clone()));
        }
        if self.known_unknown(id) {
            return Ok(None);
        }
        if let Some(reads) = &self.store_reads {
            reads.inc();
        }
        let Some(key) = self.store.get_key(id).await.map_err(|e| {
            tracing::error!(error = %e, "key lookup failed");
            AuthError::Unavailable
        })?
        else {
            self.remember_unknown(id);
            return Ok(None);
        };
        let key = Arc::new(key);
        let entry = Cached {
            key: key.clone(),
            fetched: Instant::now(),
        };
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), entry);
        Ok(Some(key))
    }

    fn known_unknown(&self, id: &str) -> bool {
        let unknown = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
        unknown.get(id).is_some_and(|at| at.elapsed() < UNKNOWN_TTL)
    }

    fn remember_unknown(&self, id: &str) {
        let mut unknown = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
        if unknown.len() >= UNKNOWN_MAX {
            unknown.retain(|_, at| at.elapsed() < UNKNOWN_TTL);
            if unknown.len() >= UNKNOWN_MAX {
                unknown.clear();
            }
        }
        unknown.insert(id.to_owned(), Instant::now());
    }

    fn touch(&self, key: &KeyRecord) {
        let now = now_ms();
        if key.last_used_at.is_some_and(|t| now - t < TOUCH_EVERY_MS) {
            return;
        }
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = cache.get_mut(&key.id) {
            let mut updated = (*hit.key).clone();
            updated.last_used_at = Some(now);
            hit.key = Arc::new(updated);
        }
        let store = self.store.clone();
        let id = key.id.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_key(&id, now).await {
                tracing::warn!(error = %e, key_id = %id, "could not record key use");
            }
        });
    }
}
