//! The integration test binary: the real router against real loopback servers.

mod common;
mod facilitators;
mod health;
mod logs;
mod openapi;
mod payments;
mod proxy;
mod shared_state;
mod siwx;
mod store;
