//! rendition: turns a digital-asset library's untouched originals into the
//! renditions each principal is allowed to download.
//!
//! # Layout
//!
//! - [`job`]: the job message (contract §2) and its checks; every malformed
//!   job becomes one `invalid_job` error naming the field.
//! - [`policy`]: the policy document (contract §1), its validation, and the
//!   resolver: a pure function from (policy, principal, asset, request) to a
//!   [`policy::Decision`]. No I/O.
//! - [`result`]: the result message (contract §3).
//! - [`error`]: what every module's error answers: a stable code and
//!   whether to retry.
//!
//! The data path of a job: parse ([`job::Job::parse`]) → decide
//! ([`policy::resolve`]) → render → store → answer ([`result::JobResult`]).

pub mod error;
pub mod job;
pub mod ops;
pub mod pipeline;
pub mod policy;
pub mod queue;
pub mod rendition;
pub mod result;
pub mod revocation;
pub mod serve;
pub mod storage;
pub mod video;
pub mod worker;
