//! The integration tests: one binary, one module per area.

mod access;
mod audit;
mod cli;
mod completeness;
mod crash;
mod demo;
mod http;
mod import;
mod layout;
mod personal;
mod pipeline;
mod postgres;
mod read;
mod receipt;
mod record;
mod recovery;
mod rules;
mod server;
mod store_contract;
mod support;
mod vc;
mod vectors;
mod web;
mod witness;
