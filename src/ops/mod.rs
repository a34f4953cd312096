//! Operating a worker: Prometheus metrics and the health endpoint.

pub mod http;
pub mod metrics;
pub mod trace;

pub use metrics::{Metrics, Stage};
