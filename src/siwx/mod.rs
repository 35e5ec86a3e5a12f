//! Wallet sign-in (x402 `sign-in-with-x`, CAIP-122 / SIWS) for auth-only routes: no I/O, no
//! HTTP. The layer that puts this on a route is [`crate::authgate`].
//!
//! Flow: a request without a proof gets a 402 whose `PAYMENT-REQUIRED` carries the
//! `sign-in-with-x` extension ([`Verifier::challenge`]); the client signs the SIWS text of that
//! challenge with its Solana key and sends the fields back, base64 JSON, in `SIGN-IN-WITH-X`
//! ([`SiwxProof::from_header`]). [`Verifier::verify`] then checks, in order: version `"1"`; a
//! chain id we accept, type `ed25519`; `domain` equal to the configured public origin's
//! authority and `uri` on that exact origin (the request's `Host` and `X-Forwarded-*` are never
//! read); the requested resource is `uri` or one of `resources`; base58 address of 32 bytes and
//! signature of 64 bytes (canonical spelling); a nonce this server issued for exactly these
//! `issuedAt`/`expirationTime`; `issuedAt` not in the future and not older than `max_age`
//! (both with the configured clock skew), `expirationTime` not passed, `notBefore` passed; and
//! last `verify_strict` over the message text rebuilt from the fields ([`siws_message`]). A
//! client-sent message string is never read.
//!
//! # Nonces: server-issued, HMAC-authenticated, spent once
//!
//! Two designs were on the table. Storing each nonce when the challenge is issued and taking it
//! on use lets an unauthenticated client grow the store with every 402 it asks for. Accepting
//! any client-invented nonce and only recording it on use (`put_once`) lets a client choose its
//! own times and stockpile proofs. Here the nonce carries its own proof of origin: 8 random
//! bytes and a 64-bit HMAC over them and the challenge's times ([`nonce`]). Issuing a challenge
//! writes nothing; a nonce the server did not issue, or one moved to other times, is refused
//! before any store call; and the first valid use spends it with `put_once` for the rest of the
//! proof's life (at most `expiration_seconds` + skew), so the store holds one short-lived key per
//! *signed* request, never per challenge. Several instances must share the HMAC key
//! (`SIWX_SECRET`); without it each process draws its own, and a proof signed for one instance's
//! challenge is refused by another as `siwx_invalid_nonce` (the client just signs again).
//!
//! # Session mode (off by default)
//!
//! By default one proof opens exactly one request: the nonce is spent and a second use is
//! `siwx_nonce_reused`, so a stolen header is worth one request at most, at the price of a
//! challenge round trip and a wallet signature per call. With `session = true` the nonce record
//! holds the hash of the proof that spent it, and the *same* proof (same signed text and
//! signature) is accepted again for its wallet and the resources it names until it expires; a
//! different proof with that nonce is still refused. That saves the round trip and the signing,
//! but anyone who copies the header (a log, a proxy, a browser extension) can use the wallet's
//! access until `expirationTime` (5 minutes by default): keep it off unless the clients are
//! trusted to guard the header like a bearer token, and keep `expiration_seconds` short.
//!
//! Rate limits are per wallet (`rl:siwx:<address>`, GCRA) and are checked after the signature,
//! so nobody can exhaust another wallet's budget with forged proofs.

mod challenge;
mod error;
pub mod message;
pub mod nonce;
mod proof;
pub mod time;
mod verify;

pub use challenge::{proof_schema, ChallengeInfo, SiwxExtension, SupportedChain, EXTENSION_KEY};
pub use error::SiwxError;

/// The signed-in wallet, in the request extensions of an auth-only route's handler (put there
/// by `authgate`; here, in the leaf, so handlers read it without depending on the layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// Base58 address.
    pub wallet: String,
}
pub use message::siws_message;
pub use nonce::NonceKey;
pub use proof::{SiwxProof, MAX_SIWX_HEADER_BYTES};
pub use verify::{PublicOrigin, Verified, Verifier};

#[cfg(test)]
mod tests;
