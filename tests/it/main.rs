//! The integration tests: one binary, one module per area.

mod audit;
mod crash;
mod demo;
mod http;
mod journal;
mod personal;
mod pipeline;
mod postgres;
mod rules;
mod server;
mod store_contract;
mod support;
mod vectors;
