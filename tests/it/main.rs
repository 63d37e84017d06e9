//! The integration tests: one binary, one module per area.

mod audit;
mod cli;
mod crash;
mod demo;
mod http;
mod journal;
mod personal;
mod pipeline;
mod postgres;
mod rules;
mod store_contract;
mod support;
mod vectors;
