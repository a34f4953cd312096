//! The worker on the real services: RabbitMQ and s3s-fs, as
//! `scripts/services` starts them. Left out of a plain `cargo test`
//! (`test = false` in Cargo.toml); `scripts/test` starts the services and
//! runs it with `cargo test --test services`. Without the services' settings
//! the tests fail; they never skip.

mod audit;
#[path = "../common/mod.rs"]
mod common;
mod control_plane;
mod credentials;
mod engines;
mod lab;
mod priority;
mod side_doors;
mod traces;
mod video;
mod worker;
