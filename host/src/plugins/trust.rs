//! Signed plugins. With `[plugin_trust]` keys configured, a component loads only with a detached
//! Ed25519 signature (`<file>.sig`: the base64 of the 64-byte signature of the file's bytes) made
//! by one of those keys; anything else is refused and the last good version keeps serving.
//! Keys are base64: a public key of 32 bytes in the config, a private key (the 32-byte seed) in a
//! file of its own, made by `rdev plugins keygen` and used by `rdev plugins sign`.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Deserialize;

/// The `[plugin_trust]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// Public keys whose signatures are trusted (base64 of 32 bytes); none: signatures are not
    /// required.
    #[serde(default)]
    pub keys: Vec<String>,
}

/// The keys plugins must be signed by.
#[derive(Debug, Clone)]
pub struct Trust {
    keys: Vec<VerifyingKey>,
}

/// The signature file of a component file.
pub fn signature_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

impl Trust {
    /// The trust the section configures: none when it names no key.
    pub fn from_config(config: &TrustConfig) -> Result<Option<Self>, String> {
        if config.keys.is_empty() {
            return Ok(None);
        }
        let keys = config
            .keys
            .iter()
            .enumerate()
            .map(|(i, key)| public_key(key).map_err(|e| format!("plugin_trust.keys[{i}]: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Some(Self { keys }))
    }

    /// Checks that `signature` (the signature file's content, if there is one) signs `wasm` by a
    /// trusted key.
    pub fn verify(&self, wasm: &[u8], signature: Option<&[u8]>) -> Result<(), String> {
        let Some(signature) = signature else {
            return Err("is not signed: trusted keys are configured and it has no signature file (.sig)".into());
        };
        let text = std::str::from_utf8(signature).map_err(|_| "has a signature file that is not base64 text")?;
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "has a signature file that is not base64 text")?;
        let signature = Signature::from_slice(&bytes).map_err(|_| "has a signature that is not 64 bytes")?;
        if self.keys.iter().any(|key| key.verify(wasm, &signature).is_ok()) {
            return Ok(());
        }
        Err("has a signature that no trusted key made (or the file changed after it was signed)".into())
    }
}

fn public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("is not the base64 of a 32-byte Ed25519 public key")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "is not a valid Ed25519 public key".into())
}

/// A new key pair: the private key's text (for its file) and the public key's (for the config).
pub fn generate() -> (String, String) {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
    let key = SigningKey::from_bytes(&seed);
    (STANDARD.encode(seed), STANDARD.encode(key.verifying_key().as_bytes()))
}

/// The signature file's content for `wasm`, signed by the private key `secret` (a key file's
/// text).
pub fn sign(wasm: &[u8], secret: &str) -> Result<String, String> {
    let seed: [u8; 32] = STANDARD
        .decode(secret.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the key file does not hold the base64 of a 32-byte Ed25519 private key")?;
    let signature = SigningKey::from_bytes(&seed).sign(wasm);
    Ok(format!("{}\n", STANDARD.encode(signature.to_bytes())))
}

/// The public key of a private key file's text.
pub fn public_of(secret: &str) -> Result<String, String> {
    let seed: [u8; 32] = STANDARD
        .decode(secret.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the key file does not hold the base64 of a 32-byte Ed25519 private key")?;
    Ok(STANDARD.encode(SigningKey::from_bytes(&seed).verifying_key().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_by_a_trusted_key_verifies_and_nothing_else_does() {
        let (secret, public) = generate();
        let (other_secret, _) = generate();
        let trust = Trust::from_config(&TrustConfig { keys: vec![public] })
            .unwrap()
            .unwrap();
        let wasm = b"component bytes";
        let signature = sign(wasm, &secret).unwrap();
        trust.verify(wasm, Some(signature.as_bytes())).unwrap();
        let refused = [
            trust.verify(wasm, None),
            trust.verify(b"component bytez", Some(signature.as_bytes())),
            trust.verify(wasm, Some(sign(wasm, &other_secret).unwrap().as_bytes())),
            trust.verify(wasm, Some(b"not base64!")),
            trust.verify(wasm, Some(b"AAAA")),
        ];
        for outcome in refused {
            assert!(outcome.is_err());
        }
    }

    #[test]
    fn bad_keys_are_named_and_no_keys_means_no_trust() {
        assert!(Trust::from_config(&TrustConfig::default()).unwrap().is_none());
        let error = Trust::from_config(&TrustConfig {
            keys: vec!["short".into()],
        })
        .unwrap_err();
        assert!(error.contains("plugin_trust.keys[0]"), "{error}");
        assert_eq!(signature_path(Path::new("/p/a.wasm")), Path::new("/p/a.wasm.sig"));
        let (secret, public) = generate();
        assert_eq!(public_of(&secret).unwrap(), public);
    }
}
