//! The integration test binary: the real router against real loopback servers.

mod architecture;
mod check_config;
mod common;
mod demo;
mod facilitators;
mod health;
mod interop;
mod limits;
mod logs;
mod openapi;
mod payments;
mod production;
mod proxy;
mod shared_state;
mod siwx;
mod slow_clients;
mod store;
mod usage;
