//! Credit session tokens: `v1.<payload>.<mac>`, the payload base64url JSON `{w, exp, jti}` and
//! the MAC HMAC-SHA256 over it with the shared key. Any instance holding the key verifies a
//! token without a lookup; revocation is a store key per token id, checked on use.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Tokens longer than this are refused unread.
const MAX_TOKEN_BYTES: usize = 512;

/// The key that signs and checks tokens.
#[derive(Clone)]
pub(crate) struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Session {
    /// The wallet that signed in.
    #[serde(rename = "w")]
    pub(crate) wallet: String,
    /// Expiry, Unix ms.
    pub(crate) exp: i64,
    /// The token's id (revocation).
    pub(crate) jti: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    /// Not a token of ours (shape, MAC, payload).
    #[error("invalid_session")]
    Invalid,
    /// Past its expiry.
    #[error("session_expired")]
    Expired,
}

impl SessionKey {
    /// From the configured secret (every instance derives the same key).
    pub(crate) fn from_secret(secret: &str) -> Self {
        let mut mac = HmacSha256::new_from_slice(b"x402-gateway credits session v1")
            .expect("HMAC takes any key length");
        mac.update(secret.as_bytes());
        Self(mac.finalize().into_bytes().into())
    }

    /// A key of this process only.
    pub(crate) fn random() -> Self {
        Self(rand::random())
    }

    fn mac(&self, payload: &str) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"v1.");
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A token for `session`.
    pub(crate) fn issue(&self, session: &Session) -> String {
        let payload = B64.encode(serde_json::to_vec(session).expect("a session serializes"));
        let mac = B64.encode(self.mac(&payload));
        format!("v1.{payload}.{mac}")
    }

    /// The session a token carries, if it is ours and not expired at `now_ms`.
    pub(crate) fn verify(&self, token: &str, now_ms: i64) -> Result<Session, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid);
        }
        let mut parts = token.split('.');
        let (Some("v1"), Some(payload), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid);
        };
        let given = B64.decode(mac).map_err(|_| TokenError::Invalid)?;
        if !bool::from(given.as_slice().ct_eq(&self.mac(payload))) {
            return Err(TokenError::Invalid);
        }
        let json = B64.decode(payload).map_err(|_| TokenError::Invalid)?;
        let session: Session = serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)?;
        if session.exp <= now_ms {
            return Err(TokenError::Expired);
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(exp: i64) -> Session {
        Session {
            wallet: "Wallet111".into(),
            exp,
            jti: "abc".into(),
        }
    }

    #[test]
    fn tokens_verify_on_every_instance_with_the_key_and_nowhere_else() {
        let key = SessionKey::from_secret("s3cret");
        let token = key.issue(&session(2_000));
        assert_eq!(key.verify(&token, 1_000), Ok(session(2_000)));
        assert_eq!(
            SessionKey::from_secret("s3cret").verify(&token, 1_000),
            Ok(session(2_000)),
            "another instance with the same secret"
        );
        assert_eq!(
            SessionKey::from_secret("other").verify(&token, 1_000),
            Err(TokenError::Invalid)
        );
        assert_eq!(key.verify(&token, 2_000), Err(TokenError::Expired));
        // A payload changed by the client: the MAC no longer matches.
        let forged = key.issue(&Session {
            wallet: "Other".into(),
            ..session(2_000)
        });
        let spliced = format!(
            "v1.{}.{}",
            forged.split('.').nth(1).unwrap(),
            token.split('.').nth(2).unwrap()
        );
        assert_eq!(key.verify(&spliced, 1_000), Err(TokenError::Invalid));
        for bad in ["", "v1", "v1.a.b.c", "v2.a.b", &"v1.".repeat(300)] {
            assert_eq!(key.verify(bad, 1_000), Err(TokenError::Invalid), "{bad}");
        }
    }
}
