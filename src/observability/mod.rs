//! Logs and metrics: tracing initialisation, the one structured line written per request, and
//! the Prometheus recorder behind `/metrics`.

pub mod prometheus;
mod request_log;
mod tracing_init;

pub use prometheus::track_metrics;
pub use request_log::{request_log, RequestSummary};
pub use tracing_init::init_tracing;
