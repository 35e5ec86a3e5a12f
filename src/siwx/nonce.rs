//! Server-issued nonces that cost no store write to issue.
//!
//! A nonce is 32 lowercase hex characters (16 bytes): 8 random bytes, then the first 8 bytes of
//! `HMAC-SHA256(key, "x402-siwx-nonce-v1" ‖ random ‖ issuedAt ‖ "\n" ‖ expirationTime)`. The
//! server can tell a nonce it issued (for exactly those times) from one a client invented
//! without remembering anything, so a flood of unauthenticated challenges writes nothing to
//! the store. Spending is what is stored: the first valid use writes the nonce with `put_once`
//! until the proof expires (see the module docs of [`crate::siwx`]).
//!
//! Because the times are inside the MAC, a client cannot stretch its proof's life by editing
//! `expirationTime` or `issuedAt`: those are the server's, as issued. A forged nonce needs a
//! 64-bit MAC guess per attempt.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const DOMAIN_TAG: &[u8] = b"x402-siwx-nonce-v1";

/// The HMAC key nonces are issued and checked with. Several instances behind one origin must
/// share it (`SIWX_SECRET`); otherwise each process draws its own at start.
#[derive(Clone)]
pub struct NonceKey([u8; 32]);

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey([redacted])")
    }
}

impl NonceKey {
    /// A key derived from a shared secret (any length; hashed to 32 bytes).
    pub fn from_secret(secret: &str) -> Self {
        use sha2::Digest;
        let mut hasher = Sha256::new();
        hasher.update(b"x402-siwx-nonce-key-v1");
        hasher.update(secret.as_bytes());
        Self(hasher.finalize().into())
    }

    /// A fresh random key (single instance, or tests).
    pub fn random() -> Self {
        Self(rand::random())
    }

    fn tag(&self, random: &[u8; 8], issued_at: &str, expiration_time: &str) -> [u8; 8] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(DOMAIN_TAG);
        mac.update(random);
        mac.update(issued_at.as_bytes());
        mac.update(b"\n");
        mac.update(expiration_time.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&full[..8]);
        tag
    }

    /// A new nonce for a challenge with these times.
    pub fn issue(&self, issued_at: &str, expiration_time: &str) -> String {
        let random: [u8; 8] = rand::random();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&random);
        bytes[8..].copy_from_slice(&self.tag(&random, issued_at, expiration_time));
        hex::encode(bytes)
    }

    /// Whether `nonce` is one this key issued for exactly these times.
    pub fn check(&self, nonce: &str, issued_at: &str, expiration_time: &str) -> bool {
        if nonce.len() != 32
            || !nonce
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return false;
        }
        let mut bytes = [0u8; 16];
        if hex::decode_to_slice(nonce, &mut bytes).is_err() {
            return false;
        }
        let mut random = [0u8; 8];
        random.copy_from_slice(&bytes[..8]);
        let expected = self.tag(&random, issued_at, expiration_time);
        bool::from(expected.ct_eq(&bytes[8..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: &str = "2024-01-15T10:30:00.000Z";
    const EXP: &str = "2024-01-15T10:35:00.000Z";

    #[test]
    fn issued_nonces_check_and_are_32_hex() {
        let key = NonceKey::random();
        let nonce = key.issue(AT, EXP);
        assert_eq!(nonce.len(), 32);
        assert!(nonce
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(key.check(&nonce, AT, EXP));
        assert_ne!(nonce, key.issue(AT, EXP), "each challenge gets its own");
    }

    #[test]
    fn other_times_keys_or_edits_fail() {
        let key = NonceKey::from_secret("shared");
        let nonce = key.issue(AT, EXP);
        assert!(NonceKey::from_secret("shared").check(&nonce, AT, EXP));
        assert!(!NonceKey::from_secret("other").check(&nonce, AT, EXP));
        assert!(!key.check(&nonce, AT, "2024-01-15T11:35:00.000Z"));
        assert!(!key.check(&nonce, "2024-01-15T10:31:00.000Z", EXP));
        let mut flipped = nonce.clone().into_bytes();
        flipped[31] = if flipped[31] == b'0' { b'1' } else { b'0' };
        assert!(!key.check(std::str::from_utf8(&flipped).unwrap(), AT, EXP));
        assert!(!key.check(&nonce.to_uppercase(), AT, EXP));
        assert!(!key.check(&nonce[..30], AT, EXP));
        assert!(!key.check("a1b2c3d4e5f67890a1b2c3d4e5f67890", AT, EXP));
    }
}
