//! rendition: turns a digital-asset library's untouched originals into the
//! renditions each principal is allowed to download.
//!
//! # Layout
//!
//! Pure (no I/O):
//! - [`job`], [`result`], [`work`]: the messages (docs/contract.md#messages); a delivery
//!   is read once into a [`work::Work`]: a job, a revoke or unreadable.
//! - [`policy`]: the policy document, its validation and the resolver:
//!   (policy, principal, asset, request) → [`policy::Decision`].
//! - [`plan`]: (policy, job, facts) → [`plan::Plan`]: the decision, what to
//!   make as plain engine specs, where, with which watermark, until when.
//! - [`layout`]: every object key. [`error`]: stable codes, retry or reject.
//! - [`destinations`]: where publish jobs may copy to (an allow-list).
//! - [`control`]: signed policy updates and revokes: which keys, which bytes.
//! - [`forensic`]: forensic keys, delivery ids, and tracing a suspect
//!   image back to them (docs/forensic.md).
//! - [`priority`]: interactive before bulk, without starving bulk.
//! - [`routing`]: the broker's routing keys, below both messages and broker.
//! - [`audit`]: one record per answered job: who received what, under
//!   which policy version (written to the store, read back by the CLI).
//!
//! CPU (synchronous, on rayon pools; knows no policy, job or store):
//! - [`rendition`]: the image engine. [`video`]: the FFmpeg engine.
//! - [`isolated`]: both engines in confined child processes
//!   (`rendition-engine`, `rendition-video-engine`), one job at a time
//!   each; the worker's side (a pool) and the engine's.
//!
//! I/O:
//! - [`pipeline`]: the executor: one job top to bottom, for CLI and worker.
//! - [`budget`]: the memory budget renders reserve from before decoding.
//! - [`storage`]: the store trait (filesystem, S3, in-memory), signed links.
//! - [`queue`], [`worker`]: RabbitMQ topology, the consumer, retries, dead
//!   letters, policy updates. [`revocation`]: stop sharing.
//! - [`answer`]: one answer path (audit record → dead letter → reply)
//!   that the worker and the CLI both take.
//! - [`settings`]: file + environment → validated settings, once.
//! - [`ops`]: health and metrics; [`serve`]: the fs store's link server.
//!
//! The data path of one job:
//!
//! ```text
//! AMQP delivery / job file ── Work::parse ──► Work::Job
//!   └► Pipeline::run
//!        remembered result?  (only for a repeat: redelivery, retry, id seen here)
//!        facts               (share revocation marker, policy logo: cached)
//!        plan()              PURE: decision, denial, specs, keys, expiry, publish
//!        for each target:    lookup → render in an engine process (+sha256) → put → sign
//!        publish             (publish jobs: copy to the destination bucket)
//!        answer + remember   (JobResult, remembered with when it was made)
//!   └► audit record         (store, then the audit exchange) → reply → ack
//! ```

pub mod answer;
pub mod audit;
pub mod budget;
pub mod control;
pub mod destinations;
pub mod error;
pub mod forensic;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod isolated;
pub mod job;
pub mod layout;
pub mod ops;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod priority;
pub mod queue;
pub mod rendition;
pub mod result;
pub mod revocation;
pub mod routing;
pub mod serve;
pub mod settings;
pub mod storage;
pub mod video;
pub mod work;
pub mod worker;
