//! x402 payments on paid routes. So far: building 402 challenges (`challenge`). The layer that
//! verifies, reserves, forwards and settles is built on top of it.
//!
//! Invariant (for everything that lands here): the price and the requirements are computed on
//! the server from the request body; the client's `accepted` is compared to them, never used.

pub mod challenge;
