//! Shared test helpers, one of each: the local cluster starter (`cluster`), the gateway under
//! test (`app`, and `gateway` for a paid one on the local cluster), loopback servers
//! (`loopback`, `upstream`), the real binary (`process`), the in-process facilitator (`facilitator`), Redis (`redis`) and PostgreSQL
//! (`postgres`).

pub mod app;
pub mod cluster;
pub mod facilitator;
pub mod gateway;
pub mod loopback;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod upstream;

pub use app::TestApp;
pub use upstream::{MockUpstream, Mode};
