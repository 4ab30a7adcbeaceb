//! Compiled plugins, cached on disk by content digest so that a restart (or a swap back to a
//! version seen before) skips compilation. Loading native code is only safe for artifacts this
//! gateway wrote itself, so every artifact carries an HMAC under a key kept in the data
//! directory; anything else in the cache directory is ignored and recompiled.

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

type HmacSha256 = Hmac<Sha256>;
const MAC_LEN: usize = 32;

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
    key: Vec<u8>,
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
    /// Opens (creating if needed) the cache in `dir`, with its key in `dir/artifact.key`.
    pub fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let key = load_or_create_key(&dir.join("artifact.key"))?;
        let mut hasher = ShaHasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let engine_tag = hex::encode(&hasher.0.finalize()[..8]);
        Ok(Self {
            dir: dir.to_owned(),
            key,
            engine_tag,
        })
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_tag))
    }

    fn mac(&self, digest: &str, artifact: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(self.engine_tag.as_bytes());
        mac.update(digest.as_bytes());
        mac.update(artifact);
        mac
    }

    /// The component for `wasm` (whose digest is `digest`): from the cache when a valid artifact
    /// is there, else compiled and cached. Blocking: call it off the async runtime.
    pub fn load_or_compile(&self, engine: &Engine, wasm: &[u8], digest: &str) -> anyhow::Result<(Component, Origin)> {
        if let Some(component) = self.load(engine, digest) {
            return Ok((component, Origin::Cache));
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = self.store(digest, &component.serialize()?) {
            tracing::warn!(error = %e, "could not write a plugin artifact to the cache");
        }
        Ok((component, Origin::Compiled))
    }

    fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let bytes = std::fs::read(self.path(digest)).ok()?;
        if bytes.len() < MAC_LEN {
            return None;
        }
        let (tag, artifact) = bytes.split_at(MAC_LEN);
        if self.mac(digest, artifact).verify_slice(tag).is_err() {
            tracing::warn!(digest, "ignoring a cached plugin artifact this gateway did not write");
            return None;
        }
        deserialize(engine, artifact)
            .inspect_err(|e| tracing::warn!(digest, error = %e, "ignoring an unusable cached plugin artifact"))
            .ok()
    }

    fn store(&self, digest: &str, artifact: &[u8]) -> std::io::Result<()> {
        let tag = self.mac(digest, artifact).finalize().into_bytes();
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(&tag)?;
        file.write_all(artifact)?;
        file.persist(self.path(digest)).map_err(|e| e.error)?;
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

fn load_or_create_key(path: &Path) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(key) if key.len() >= 32 => return Ok(key),
        Ok(_) => tracing::warn!(path = %path.display(), "artifact key is too short; making a new one"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let key: [u8; 32] = rand::random();
    let mut file = tempfile::NamedTempFile::new_in(path.parent().unwrap_or(Path::new(".")))?;
    file.write_all(&key)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(key.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::runtime::{EngineOptions, Runtime};

    fn plugin() -> Vec<u8> {
        std::fs::read(Path::new(env!("RDEV_TEST_PLUGINS_DIR")).join("probe_version_a.wasm")).unwrap()
    }

    fn origin(dir: &Path, engine: &Engine, wasm: &[u8]) -> Origin {
        let cache = ArtifactCache::open(dir, engine).unwrap();
        cache.load_or_compile(engine, wasm, &digest(wasm)).unwrap().1
    }

    #[test]
    fn a_restart_loads_the_artifact_it_wrote() {
        let runtime = Runtime::new(EngineOptions::default()).unwrap();
        let (dir, wasm) = (tempfile::tempdir().unwrap(), plugin());
        assert_eq!(origin(dir.path(), runtime.engine(), &wasm), Origin::Compiled);
        assert_eq!(origin(dir.path(), runtime.engine(), &wasm), Origin::Cache);
    }

    #[test]
    fn an_artifact_it_did_not_write_is_never_loaded() {
        let runtime = Runtime::new(EngineOptions::default()).unwrap();
        let (dir, wasm) = (tempfile::tempdir().unwrap(), plugin());
        let engine = runtime.engine();
        assert_eq!(origin(dir.path(), engine, &wasm), Origin::Compiled);
        let cache = ArtifactCache::open(dir.path(), engine).unwrap();
        let file = cache.path(&digest(&wasm));
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&file, &bytes).unwrap();
        assert_eq!(
            origin(dir.path(), engine, &wasm),
            Origin::Compiled,
            "a tampered artifact"
        );
        std::fs::write(dir.path().join("artifact.key"), [7u8; 32]).unwrap();
        assert_eq!(
            origin(dir.path(), engine, &wasm),
            Origin::Compiled,
            "an artifact under another key"
        );
    }
}
