//! Checking a proof: every field against the server's own expectations, then the Ed25519
//! signature over the message text rebuilt from those fields. No I/O: the single-use spend of
//! the nonce and the rate limit happen in the layer, after this says yes.

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use url::Url;

use super::message::siws_message;
use super::nonce::NonceKey;
use super::time::parse_rfc3339_ms;
use super::{SiwxError, SiwxProof};
use crate::config::SiwxConfig;

/// The configured public origin: what `domain` and `uri` must name, whatever the request's
/// `Host` or `X-Forwarded-*` headers say.
#[derive(Debug, Clone)]
pub struct PublicOrigin {
    base: Url,
    domain: String,
}

impl PublicOrigin {
    /// From `server.public_base_url` (validated by the config: http(s) with a host).
    pub fn new(base: &Url) -> Self {
        let host = base.host_str().unwrap_or_default();
        // The CAIP-122 domain is the RFC 3986 authority: the port only when it is not the
        // scheme's default (the url crate already drops default ports).
        let domain = match base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        Self {
            base: base.clone(),
            domain,
        }
    }

    /// `host[:port]`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The absolute URL of a request path under the public base URL.
    pub fn resource_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    /// Whether `uri` has exactly our scheme, host and port.
    fn same_origin(&self, uri: &str) -> bool {
        Url::parse(uri).is_ok_and(|u| u.origin() == self.base.origin())
    }
}

/// A proof that passed every stateless check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The wallet (canonical base58).
    pub address: String,
    /// The nonce, to spend.
    pub nonce: String,
    /// When the proof expires (ms since the epoch).
    pub expires_at_ms: i64,
    /// SHA-256 (hex) of the signed message and the signature: identifies this exact proof.
    pub proof_hash: String,
}

/// Issues challenges and checks proofs, from `[siwx]` and the public origin. Built once.
#[derive(Debug, Clone)]
pub struct Verifier {
    origin: PublicOrigin,
    chains: Vec<String>,
    statement: String,
    expiration_ms: i64,
    max_age_ms: i64,
    skew_ms: i64,
    key: NonceKey,
}

impl Verifier {
    /// A verifier for `origin` with `config`, issuing nonces with `key`.
    pub fn new(config: &SiwxConfig, origin: PublicOrigin, key: NonceKey) -> Self {
        let ms = |s: u64| (s.min(86_400) * 1000) as i64;
        Self {
            origin,
            chains: config.chains.clone(),
            statement: config.statement.clone(),
            expiration_ms: ms(config.expiration_seconds),
            max_age_ms: ms(config.max_age_seconds),
            skew_ms: ms(config.clock_skew_seconds),
            key,
        }
    }

    /// The public origin.
    pub fn origin(&self) -> &PublicOrigin {
        &self.origin
    }

    pub(super) fn nonce_key(&self) -> &NonceKey {
        &self.key
    }

    pub(super) fn chains(&self) -> &[String] {
        &self.chains
    }

    pub(super) fn statement(&self) -> &str {
        &self.statement
    }

    pub(super) fn expiration_ms(&self) -> i64 {
        self.expiration_ms
    }

    /// Checks `proof` for a request to `resource_url` at `now_ms`. Cheap structural checks
    /// first, the signature last; the first failure is the answer.
    pub fn verify(
        &self,
        proof: &SiwxProof,
        resource_url: &str,
        now_ms: i64,
    ) -> Result<Verified, SiwxError> {
        if proof.version != "1" {
            return Err(SiwxError::UnsupportedVersion(clip(&proof.version)));
        }
        if !self.chains.contains(&proof.chain_id) {
            return Err(SiwxError::UnsupportedChain(format!(
                "chainId {:?} is not accepted",
                clip(&proof.chain_id)
            )));
        }
        if proof.kind != "ed25519" {
            return Err(SiwxError::UnsupportedChain(format!(
                "type {:?} (Solana needs ed25519)",
                clip(&proof.kind)
            )));
        }
        if proof
            .signature_scheme
            .as_deref()
            .is_some_and(|s| s != "siws")
        {
            return Err(SiwxError::UnsupportedChain(
                "signatureScheme must be siws for Solana".into(),
            ));
        }
        if proof.domain != self.origin.domain {
            return Err(SiwxError::WrongDomain(clip(&proof.domain)));
        }
        if !self.origin.same_origin(&proof.uri) {
            return Err(SiwxError::WrongUri(clip(&proof.uri)));
        }
        let covered = proof.uri == resource_url
            || proof.resources.iter().flatten().any(|r| r == resource_url);
        if !covered {
            return Err(SiwxError::WrongResource(resource_url.to_string()));
        }
        let key = decode_fixed::<32>(&proof.address).ok_or(SiwxError::InvalidAddress)?;
        let signature =
            decode_fixed::<64>(&proof.signature).ok_or(SiwxError::InvalidSignatureEncoding)?;

        let expiration = proof.expiration_time.as_deref().ok_or_else(|| {
            SiwxError::InvalidTime("expirationTime is required (it is in every challenge)".into())
        })?;
        let time = |field: &str, value: &str| {
            parse_rfc3339_ms(value)
                .ok_or_else(|| SiwxError::InvalidTime(format!("{field} is not an RFC 3339 time")))
        };
        let issued_at = time("issuedAt", &proof.issued_at)?;
        let expires_at = time("expirationTime", expiration)?;
        let not_before = proof
            .not_before
            .as_deref()
            .map(|v| time("notBefore", v))
            .transpose()?;
        if !self.key.check(&proof.nonce, &proof.issued_at, expiration) {
            return Err(SiwxError::InvalidNonce);
        }
        if issued_at > now_ms + self.skew_ms {
            return Err(SiwxError::IssuedInFuture);
        }
        if now_ms - issued_at > self.max_age_ms + self.skew_ms {
            return Err(SiwxError::TooOld((self.max_age_ms / 1000) as u64));
        }
        if now_ms >= expires_at {
            return Err(SiwxError::Expired);
        }
        if not_before.is_some_and(|nb| nb > now_ms + self.skew_ms) {
            return Err(SiwxError::NotYetValid);
        }

        let message = siws_message(proof);
        // verify_strict: rejects small-order keys and non-canonical (malleable) signatures.
        let verifying_key =
            VerifyingKey::from_bytes(&key).map_err(|_| SiwxError::InvalidAddress)?;
        verifying_key
            .verify_strict(message.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| SiwxError::BadSignature)?;

        let mut hasher = Sha256::new();
        hasher.update(message.as_bytes());
        hasher.update(signature);
        Ok(Verified {
            address: proof.address.clone(),
            nonce: proof.nonce.clone(),
            expires_at_ms: expires_at,
            proof_hash: hex::encode(hasher.finalize()),
        })
    }
}

/// Base58 of exactly `N` bytes, in its one canonical spelling (decode then re-encode must give
/// the same text, so one key has one address string for rate limits and logs).
fn decode_fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() > 2 * N {
        return None;
    }
    let bytes = bs58::decode(text).into_vec().ok()?;
    let fixed: [u8; N] = bytes.try_into().ok()?;
    (bs58::encode(fixed).into_string() == text).then_some(fixed)
}

/// A client string for an error message: short, so an error never echoes a big payload.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}
