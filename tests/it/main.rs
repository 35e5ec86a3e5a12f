//! The integration test binary: the real router against real loopback servers.

mod common;
mod facilitators;
mod health;
mod limits;
mod logs;
mod openapi;
mod payments;
mod proxy;
mod usage;
