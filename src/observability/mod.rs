//! Logs: tracing initialisation and the one structured line written per request.

mod request_log;
mod tracing_init;

pub use request_log::{request_log, RequestSummary};
pub use tracing_init::init_tracing;
