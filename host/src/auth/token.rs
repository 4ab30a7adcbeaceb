//! Token format and keyed hashing. A token is `rdev_<key id>_<64 hex secret>`; the store keeps
//! only HMAC-SHA256(server secret, token), compared in constant time.

use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "rdev_";

/// Hashes tokens with the gateway's secret.
#[derive(Clone)]
pub struct TokenHasher {
    /// The HMAC already keyed with the secret; cloned per token so the key schedule is computed once.
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHasher(..)")
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

impl TokenHasher {
    /// A hasher with a fixed secret.
    pub fn new(secret: [u8; 32]) -> Self {
        let keyed = Hmac::<Sha256>::new_from_slice(&secret).expect("HMAC accepts any key length");
        Self { keyed }
    }

    /// Loads the secret from `path`, creating it (mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Ok(bytes) = std::fs::read(path) {
            let secret = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not 32 bytes", path.display()),
                )
            })?;
            return Ok(Self::new(secret));
        }
        let secret = random_bytes::<32>();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        std::io::Write::write_all(&mut file, &secret)?;
        Ok(Self::new(secret))
    }

    /// A new key id and token.
    pub fn generate(&self) -> (String, String) {
        let id = format!("key_{}", hex::encode(random_bytes::<8>()));
        let token = format!("{PREFIX}{id}_{}", hex::encode(random_bytes::<32>()));
        (id, token)
    }

    fn mac(&self, token: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(token.as_bytes());
        mac
    }

    /// The stored hash of a token (hex).
    pub fn hash(&self, token: &str) -> String {
        hex::encode(self.mac(token).finalize().into_bytes())
    }

    /// Whether `token` hashes to `stored` (hex), compared in constant time.
    pub fn verify(&self, token: &str, stored: &str) -> bool {
        let mut expected = [0u8; 32];
        hex::decode_to_slice(stored, &mut expected).is_ok() && self.mac(token).verify_slice(&expected).is_ok()
    }
}

/// The key id inside a well-formed token.
pub fn key_id_of(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.rsplit_once('_')?;
    let well_formed =
        id.starts_with("key_") && id.len() == 20 && secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_verify_and_carry_their_id() {
        let hasher = TokenHasher::new([7; 32]);
        let (id, token) = hasher.generate();
        assert!(token.starts_with("rdev_key_"));
        assert_eq!(key_id_of(&token), Some(id.as_str()));
        let stored = hasher.hash(&token);
        assert!(hasher.verify(&token, &stored));
        let mut wrong = token.clone();
        wrong.pop();
        wrong.push('x');
        assert!(!hasher.verify(&wrong, &stored));
    }

    #[test]
    fn hash_depends_on_the_server_secret() {
        let (_, token) = TokenHasher::new([1; 32]).generate();
        assert_ne!(
            TokenHasher::new([1; 32]).hash(&token),
            TokenHasher::new([2; 32]).hash(&token)
        );
    }

    #[test]
    fn rejects_malformed_tokens() {
        for t in [
            "",
            "rdev_",
            "rdev_key_00_abc",
            "Bearer x",
            "rdev_key_0011223344556677_zz",
        ] {
            assert_eq!(key_id_of(t), None, "{t}");
        }
    }
}
