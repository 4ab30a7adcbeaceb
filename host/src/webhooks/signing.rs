//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{webhook-id}.{webhook-timestamp}.{body}">`, one per signing secret (two during a rotation),
//! separated by spaces. [`verify`] is the receiver's check, as our tests and users run it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::secrets::Secret;

/// How far a receiver's clock may be from the timestamp (the Standard Webhooks default).
pub const TOLERANCE_SECS: i64 = 5 * 60;

fn mac(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.bytes()).expect("HMAC accepts any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` header value for a message signed with each of `secrets`.
pub fn sign(secrets: &[&Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| {
            format!(
                "v1,{}",
                STANDARD.encode(mac(s, id, timestamp, body).finalize().into_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a message did not verify.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The timestamp is too far from `now`.
    #[error("timestamp outside the tolerance")]
    Timestamp,
    /// No signature matched.
    #[error("no matching signature")]
    Signature,
}

/// Checks a received message the way a Standard Webhooks receiver does: the timestamp within
/// [`TOLERANCE_SECS`] of `now` and one `v1` signature made with `secret` (in constant time).
pub fn verify(
    secret: &Secret,
    id: &str,
    timestamp: i64,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(VerifyError::Timestamp);
    }
    let matched = signatures.split(' ').any(|sig| {
        sig.strip_prefix("v1,")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .is_some_and(|expected| mac(secret, id, timestamp, body).verify_slice(&expected).is_ok())
    });
    matched.then_some(()).ok_or(VerifyError::Signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        // The example of the Standard Webhooks specification.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let header = sign(&[&secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(
            verify(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                &header,
                body,
                1614265331
            ),
            Ok(())
        );
    }

    #[test]
    fn a_rotation_signs_twice_and_either_secret_verifies() {
        let (old, new) = (Secret::generate(), Secret::generate());
        let header = sign(&[&new, &old], "msg_1", 100, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert_eq!(verify(&old, "msg_1", 100, &header, b"{}", 100), Ok(()));
        assert_eq!(verify(&new, "msg_1", 100, &header, b"{}", 100), Ok(()));
        let other = Secret::generate();
        assert_eq!(
            verify(&other, "msg_1", 100, &header, b"{}", 100),
            Err(VerifyError::Signature)
        );
        assert_eq!(
            verify(&new, "msg_1", 100, &header, b"{!}", 100),
            Err(VerifyError::Signature)
        );
        assert_eq!(
            verify(&new, "msg_1", 100, &header, b"{}", 1000),
            Err(VerifyError::Timestamp)
        );
    }
}
