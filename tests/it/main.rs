//! The one integration test binary: the real router against real loopback servers, the
//! embedded local cluster, the in-process facilitator and the `exact` verifier.

mod architecture;
mod audit;
mod check_config;
mod common;
mod crash;
mod credits;
mod credits_crash;
mod demo;
mod discovery;
mod facilitators;
mod health;
mod interop;
mod ledger;
mod limits;
mod local_facilitator;
mod localnet;
mod logs;
mod money_metrics;
mod openapi;
mod pay_client;
mod payments;
mod production;
mod proxy;
mod routing;
mod services;
mod settlement_price;
mod shared_state;
mod siwx;
mod slow_clients;
mod store;
mod svm_verify;
mod usage;
