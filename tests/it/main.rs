//! The integration test binary: the real router against real loopback servers.

mod common;
mod health;
mod logs;
mod openapi;
mod proxy;
