//! Shared test helpers.

pub mod app;
pub mod redis;
pub mod upstream;

pub use app::TestApp;
pub use upstream::{MockUpstream, Mode};
