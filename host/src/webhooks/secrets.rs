//! Signing secrets: generated as `whsec_` + base64 of 24 random bytes, shown once, and stored
//! sealed (ChaCha20-Poly1305 under a key derived from the gateway's key-hashing secret, which
//! replicas share, bound to the subscription id), so that neither the database nor the API can
//! give one back.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use ring::aead::{self, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use sha2::Sha256;

/// What a secret starts with (the Standard Webhooks convention).
pub const PREFIX: &str = "whsec_";
const SECRET_BYTES: usize = 24;

/// A signing secret in clear: its raw bytes (what the HMAC is keyed with).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A new random secret.
    pub fn generate() -> Self {
        Self(rand::random::<[u8; SECRET_BYTES]>().to_vec())
    }

    /// Reads `whsec_<base64>`.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = STANDARD.decode(text.strip_prefix(PREFIX)?).ok()?;
        (!bytes.is_empty()).then_some(Self(bytes))
    }

    /// `whsec_<base64>`, as shown to the user once.
    pub fn reveal(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The HMAC key.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Seals and opens secrets with the gateway's key.
#[derive(Clone)]
pub struct Sealer {
    key: std::sync::Arc<LessSafeKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// A sealer keyed from the gateway's key-hashing secret.
    pub fn derive(gateway_secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(gateway_secret).expect("HMAC accepts any key length");
        mac.update(b"rdev webhook signing secrets v1");
        let derived = mac.finalize().into_bytes();
        let key = UnboundKey::new(&CHACHA20_POLY1305, &derived).expect("a 32-byte key");
        Self {
            key: std::sync::Arc::new(LessSafeKey::new(key)),
        }
    }

    /// The sealed form of `secret` for subscription `id`: nonce, then ciphertext and tag.
    pub fn seal(&self, id: &str, secret: &Secret) -> Vec<u8> {
        let nonce_bytes = rand::random::<[u8; aead::NONCE_LEN]>();
        let mut sealed = secret.0.clone();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(id.as_bytes()),
                &mut sealed,
            )
            .expect("sealing a short secret cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// The secret sealed for subscription `id`; None if it was sealed under another key or for
    /// another subscription, or was altered.
    pub fn open(&self, id: &str, sealed: &[u8]) -> Option<Secret> {
        if sealed.len() < aead::NONCE_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(aead::NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut buffer)
            .ok()?;
        Some(Secret(plain.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_through_their_text_and_their_seal() {
        let secret = Secret::generate();
        let text = secret.reveal();
        assert!(text.starts_with("whsec_"));
        assert_eq!(Secret::parse(&text), Some(secret.clone()));
        let sealer = Sealer::derive(b"gateway");
        let sealed = sealer.seal("whk_1", &secret);
        assert!(!sealed.windows(secret.bytes().len()).any(|w| w == secret.bytes()));
        assert_eq!(sealer.open("whk_1", &sealed), Some(secret));
    }

    #[test]
    fn a_seal_opens_only_for_its_subscription_and_key() {
        let secret = Secret::generate();
        let sealed = Sealer::derive(b"gateway").seal("whk_1", &secret);
        assert_eq!(Sealer::derive(b"gateway").open("whk_2", &sealed), None);
        assert_eq!(Sealer::derive(b"other").open("whk_1", &sealed), None);
        let mut altered = sealed.clone();
        altered[20] ^= 1;
        assert_eq!(Sealer::derive(b"gateway").open("whk_1", &altered), None);
        assert_eq!(format!("{secret:?}"), "Secret(…)");
    }
}
