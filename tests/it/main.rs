//! The integration suite: one test binary, a module per concern.

mod cli;
mod common;
mod engine;
mod pipeline;
mod properties;
mod scenarios;
mod schema;
mod services;
mod video;
mod worker;
