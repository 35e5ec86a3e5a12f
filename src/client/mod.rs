//! The paying client behind the `x402-pay` binary, for any x402 v2 `exact` server on Solana
//! (this gateway, the official reference servers, anyone's):
//!
//! - [`call`]: one HTTP call, paid when the server answers 402 ([`challenge`] decodes the
//!   challenge and picks the offer, [`payer`] signs the transfer the official client would,
//!   [`budget`] enforces the per-call and total caps, [`error`] says why a payment failed);
//! - [`quote`]: what a call would cost, decoded, without paying;
//! - [`credits`]: a gateway's prepaid credits (top-up, wallet sign-in with [`siwx`], the
//!   session token kept by [`session`], balance, calls paid with credits);
//! - [`proxy`]: a local unpaid JSON-RPC endpoint that pays the gateway behind the scenes.
//!
//! Every outbound call has a timeout ([`call::Http`]); the wallet is read once ([`wallet`]).

pub mod assets;
pub mod budget;
pub mod call;
pub mod challenge;
pub mod credits;
pub mod error;
pub mod payer;
pub mod proxy;
pub mod quote;
pub mod session;
pub mod siwx;
pub mod wallet;

pub use error::ClientError;
