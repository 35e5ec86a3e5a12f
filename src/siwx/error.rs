//! Every way a sign-in can fail, each with a stable reason string.

use std::time::Duration;

/// Why a request was not signed in. `reason()` is stable (clients and logs match on it);
/// [`SiwxError::needs_new_proof`] says whether a fresh challenge is the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiwxError {
    /// No `SIGN-IN-WITH-X` header.
    #[error("this route needs a wallet sign-in (SIGN-IN-WITH-X)")]
    Missing,
    /// The header is over the size cap.
    #[error("the sign-in header is larger than {0} bytes")]
    TooLarge(usize),
    /// Not base64, not JSON, a field missing or with a line break.
    #[error("malformed sign-in: {0}")]
    Malformed(String),
    /// `version` is not `"1"`.
    #[error("unsupported sign-in version {0:?}")]
    UnsupportedVersion(String),
    /// A chain id we do not accept, or a signature type other than Ed25519.
    #[error("unsupported chain or signature type: {0}")]
    UnsupportedChain(String),
    /// `address` is not base58 of a 32-byte Ed25519 public key.
    #[error("address is not a base58 32-byte Ed25519 public key")]
    InvalidAddress,
    /// `signature` is not base58 of 64 bytes.
    #[error("signature is not base58 of 64 bytes")]
    InvalidSignatureEncoding,
    /// `domain` is not our configured public origin's.
    #[error("domain {0:?} is not this server's")]
    WrongDomain(String),
    /// `uri` is not under our configured public origin.
    #[error("uri {0:?} is not under this server's origin")]
    WrongUri(String),
    /// The requested resource is neither `uri` nor one of `resources`.
    #[error("the sign-in does not cover {0}")]
    WrongResource(String),
    /// A timestamp that is not RFC 3339, or an `expirationTime` missing.
    #[error("{0}")]
    InvalidTime(String),
    /// The nonce was not issued by this server for these times.
    #[error("nonce was not issued by this server for this issuedAt/expirationTime")]
    InvalidNonce,
    /// `issuedAt` is later than now (beyond the allowed clock skew).
    #[error("issuedAt is in the future")]
    IssuedInFuture,
    /// `issuedAt` is older than the allowed age.
    #[error("issuedAt is more than {0} s old")]
    TooOld(u64),
    /// `expirationTime` has passed.
    #[error("the sign-in expired")]
    Expired,
    /// `notBefore` is still in the future.
    #[error("the sign-in is not valid yet (notBefore)")]
    NotYetValid,
    /// The signature does not verify over the rebuilt message.
    #[error("signature does not verify for this address and message")]
    BadSignature,
    /// The nonce was already spent (by another request, or by another proof in session mode).
    #[error("this sign-in nonce was already used")]
    NonceReused,
    /// The wallet is over its request rate.
    #[error("too many requests for this wallet")]
    RateLimited {
        /// Wait at least this long.
        retry_after: Duration,
    },
    /// The shared store did not answer: refused (fail closed).
    #[error("sign-in state is unavailable")]
    StoreUnavailable,
}

impl SiwxError {
    /// A stable snake_case name for the failure.
    pub fn reason(&self) -> &'static str {
        match self {
            SiwxError::Missing => "siwx_required",
            SiwxError::TooLarge(_) => "siwx_too_large",
            SiwxError::Malformed(_) => "siwx_malformed",
            SiwxError::UnsupportedVersion(_) => "siwx_unsupported_version",
            SiwxError::UnsupportedChain(_) => "siwx_unsupported_chain",
            SiwxError::InvalidAddress => "siwx_invalid_address",
            SiwxError::InvalidSignatureEncoding => "siwx_invalid_signature_encoding",
            SiwxError::WrongDomain(_) => "siwx_wrong_domain",
            SiwxError::WrongUri(_) => "siwx_wrong_uri",
            SiwxError::WrongResource(_) => "siwx_wrong_resource",
            SiwxError::InvalidTime(_) => "siwx_invalid_time",
            SiwxError::InvalidNonce => "siwx_invalid_nonce",
            SiwxError::IssuedInFuture => "siwx_issued_in_future",
            SiwxError::TooOld(_) => "siwx_too_old",
            SiwxError::Expired => "siwx_expired",
            SiwxError::NotYetValid => "siwx_not_yet_valid",
            SiwxError::BadSignature => "siwx_invalid_signature",
            SiwxError::NonceReused => "siwx_nonce_reused",
            SiwxError::RateLimited { .. } => "siwx_rate_limited",
            SiwxError::StoreUnavailable => "siwx_store_unavailable",
        }
    }

    /// True when signing a fresh challenge is the fix (no proof, or one that is stale or
    /// spent): answered 402 with a new challenge. False for a proof that is wrong in itself
    /// (forged, tampered, for another origin or chain): answered 401.
    pub fn needs_new_proof(&self) -> bool {
        matches!(
            self,
            SiwxError::Missing
                | SiwxError::InvalidNonce
                | SiwxError::IssuedInFuture
                | SiwxError::TooOld(_)
                | SiwxError::Expired
                | SiwxError::NotYetValid
                | SiwxError::NonceReused
        )
    }
}
