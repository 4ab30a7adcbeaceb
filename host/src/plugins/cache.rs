//! Compiled plugins, cached on disk by content digest (and configured snapshots by digest and
//! configuration) so that a restart, or a swap back to a version seen before, skips compilation.
//! Loading native code is only safe for artifacts this gateway wrote itself, so every artifact
//! carries an HMAC under a key that is never stored next to the artifacts (the plugin manager
//! derives it from the key-hashing secret); anything else in the cache directory is ignored and
//! recompiled.

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

type HmacSha256 = Hmac<Sha256>;
const MAC_LEN: usize = 32;
/// Where earlier versions kept the key, inside the directory it authenticates.
const LEGACY_KEY_FILE: &str = "artifact.key";

/// The key that authenticates cached artifacts.
#[derive(Clone)]
pub struct CacheKey([u8; 32]);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(..)")
    }
}

impl CacheKey {
    /// A key derived from a secret kept elsewhere (HMAC under the secret of a fixed label, so
    /// the secret itself is never used for two purposes).
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(b"rdev plugin artifact cache v1");
        Self(mac.finalize().into_bytes().into())
    }

    /// A key that lives only in memory: nothing written by another process is ever trusted.
    pub fn ephemeral() -> Self {
        Self(rand::random())
    }
}

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from a cached artifact.
    Cache,
    /// Compiled now (and cached).
    Compiled,
}

/// The on-disk artifact cache.
pub struct ArtifactCache {
    dir: PathBuf,
    key: CacheKey,
    engine_tag: String,
}

impl std::fmt::Debug for ArtifactCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The SHA-256 of a plugin file, as lowercase hex: its version digest.
pub fn digest(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

/// The cache name of the configured snapshot of the file `digest` under `config_json`.
pub fn snapshot_name(digest: &str, config_json: &str) -> String {
    let mut sha = Sha256::new();
    for part in ["rdev snapshot v1", digest, config_json] {
        sha.update((part.len() as u64).to_le_bytes());
        sha.update(part);
    }
    hex::encode(sha.finalize())
}

/// Feeds a `Hash` value into SHA-256, to name artifacts by engine compatibility.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ArtifactCache {
    /// Opens (creating if needed) the cache in `dir`, trusting only artifacts written under `key`.
    pub fn open(dir: &Path, engine: &Engine, key: &CacheKey) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // A key file left next to the artifacts by an earlier version is not used: whoever
        // could write an artifact could have written it.
        match std::fs::remove_file(dir.join(LEGACY_KEY_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(error = %e, "cannot remove the unused artifact key file");
            }
            _ => {}
        }
        let key = key.clone();
        let mut hasher = ShaHasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let engine_tag = hex::encode(&hasher.0.finalize()[..8]);
        Ok(Self {
            dir: dir.to_owned(),
            key,
            engine_tag,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-{}.cwasm", self.engine_tag))
    }

    fn mac(&self, name: &str, artifact: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key.0).expect("HMAC takes keys of any length");
        mac.update(self.engine_tag.as_bytes());
        mac.update(name.as_bytes());
        mac.update(artifact);
        mac
    }

    /// The component for `wasm` (whose digest is `digest`): from the cache when a valid artifact
    /// is there, else compiled and cached. Blocking: call it off the async runtime.
    pub fn load_or_compile(&self, engine: &Engine, wasm: &[u8], digest: &str) -> anyhow::Result<(Component, Origin)> {
        if let Some(component) = self.load(engine, digest) {
            return Ok((component, Origin::Cache));
        }
        Ok((self.compile(engine, wasm, digest)?, Origin::Compiled))
    }

    /// Compiles `wasm` and caches the artifact under `name`. Blocking.
    pub fn compile(&self, engine: &Engine, wasm: &[u8], name: &str) -> anyhow::Result<Component> {
        let component = Component::new(engine, wasm)?;
        if let Err(e) = self.store(name, &component.serialize()?) {
            tracing::warn!(error = %e, "could not write a plugin artifact to the cache");
        }
        Ok(component)
    }

    /// The artifact cached under `name`, if this gateway wrote it. Blocking.
    pub fn load(&self, engine: &Engine, name: &str) -> Option<Component> {
        let bytes = std::fs::read(self.path(name)).ok()?;
        if bytes.len() < MAC_LEN {
            return None;
        }
        let (tag, artifact) = bytes.split_at(MAC_LEN);
        if self.mac(name, artifact).verify_slice(tag).is_err() {
            tracing::warn!(name, "ignoring a cached plugin artifact this gateway did not write");
            return None;
        }
        deserialize(engine, artifact)
            .inspect_err(|e| tracing::warn!(name, error = %e, "ignoring an unusable cached plugin artifact"))
            .ok()
    }

    fn store(&self, name: &str, artifact: &[u8]) -> std::io::Result<()> {
        let tag = self.mac(name, artifact).finalize().into_bytes();
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(&tag)?;
        file.write_all(artifact)?;
        file.persist(self.path(name)).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Loads a precompiled component.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> anyhow::Result<Component> {
    // SAFETY: wasmtime trusts precompiled artifacts to be its own output. The caller only passes
    // bytes whose HMAC, under a key only this gateway holds, proves this gateway wrote them.
    Ok(unsafe { Component::deserialize(engine, artifact) }?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::runtime::{EngineOptions, Runtime};

    fn plugin() -> Vec<u8> {
        std::fs::read(Path::new(env!("RDEV_TEST_PLUGINS_DIR")).join("probe_version_a.wasm")).unwrap()
    }

    fn origin(dir: &Path, engine: &Engine, key: &CacheKey, wasm: &[u8]) -> Origin {
        let cache = ArtifactCache::open(dir, engine, key).unwrap();
        cache.load_or_compile(engine, wasm, &digest(wasm)).unwrap().1
    }

    #[test]
    fn a_restart_loads_the_artifact_it_wrote() {
        let runtime = Runtime::new(EngineOptions::default()).unwrap();
        let (dir, wasm) = (tempfile::tempdir().unwrap(), plugin());
        let key = CacheKey::derive(b"the key-hashing secret");
        assert_eq!(origin(dir.path(), runtime.engine(), &key, &wasm), Origin::Compiled);
        let again = CacheKey::derive(b"the key-hashing secret");
        assert_eq!(origin(dir.path(), runtime.engine(), &again, &wasm), Origin::Cache);
    }

    #[test]
    fn an_artifact_it_did_not_write_is_never_loaded() {
        let runtime = Runtime::new(EngineOptions::default()).unwrap();
        let (dir, wasm) = (tempfile::tempdir().unwrap(), plugin());
        let (engine, key) = (runtime.engine(), CacheKey::derive(b"secret"));
        assert_eq!(origin(dir.path(), engine, &key, &wasm), Origin::Compiled);
        let cache = ArtifactCache::open(dir.path(), engine, &key).unwrap();
        let file = cache.path(&digest(&wasm));
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&file, &bytes).unwrap();
        assert_eq!(
            origin(dir.path(), engine, &key, &wasm),
            Origin::Compiled,
            "a tampered artifact"
        );
        let other = CacheKey::derive(b"another gateway's secret");
        assert_eq!(
            origin(dir.path(), engine, &other, &wasm),
            Origin::Compiled,
            "an artifact under another key"
        );
    }

    /// Someone who can write the cache directory (a copy of another gateway's cache, say) signs
    /// an artifact under a key of their own and leaves that key where earlier versions read it.
    #[test]
    fn a_cache_with_a_forged_key_file_next_to_it_is_not_trusted() {
        let runtime = Runtime::new(EngineOptions::default()).unwrap();
        let (dir, wasm) = (tempfile::tempdir().unwrap(), plugin());
        let engine = runtime.engine();
        let forged = CacheKey([7u8; 32]);
        assert_eq!(origin(dir.path(), engine, &forged, &wasm), Origin::Compiled);
        assert_eq!(
            origin(dir.path(), engine, &forged, &wasm),
            Origin::Cache,
            "valid under the forged key"
        );
        std::fs::write(dir.path().join(LEGACY_KEY_FILE), forged.0).unwrap();
        let gateway = CacheKey::derive(b"the gateway's key-hashing secret");
        assert_eq!(origin(dir.path(), engine, &gateway, &wasm), Origin::Compiled);
        assert!(
            !dir.path().join(LEGACY_KEY_FILE).exists(),
            "the key file is removed, never read"
        );
    }
}
