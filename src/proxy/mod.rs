//! The JSON-RPC proxy routes.
//!
//! A request goes through two steps so that payment, replay and rate-limit layers can sit
//! between them without rewiring: [`parse_rpc_request`] (a route layer) reads and validates the
//! body into an [`RpcRequest`] extension or answers the error itself; [`forward`] (the handler)
//! calls the upstream with it. Nothing reaches a provider that did not pass parsing, the
//! method allow-list and the guardrails.

mod body;
mod describe;
mod error;
mod forward;
mod request;

pub use describe::describe_method;
pub use error::ProxyError;
pub use forward::{forward, UpstreamOutcome};
pub use request::{parse_rpc_request, RouteKind, RpcRequest};
