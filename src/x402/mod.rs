//! x402 wire format (v2, and v1 where clients still send it): typed structs parsed once, the
//! base64 header codec, header names and Solana network ids. No I/O, no HTTP.

pub mod exact;
pub mod header;
pub mod network;
pub mod reasons;
pub mod receipt;
mod types;

pub use header::{decode_header, decode_header_bytes, encode_header, DecodeError};
pub use types::*;
