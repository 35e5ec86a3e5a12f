//! Logs and metrics: tracing initialisation, the one observing layer (a structured line,
//! metrics and usage counts per request, from the request record), and the Prometheus recorder
//! behind `/metrics`.

mod observe;
pub(crate) mod prometheus;
mod tracing_init;

pub(crate) use observe::observe;
pub use tracing_init::init_tracing;
