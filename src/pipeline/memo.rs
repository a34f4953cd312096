//! Remembered results: `job_id` is the idempotency key, so a job delivered
//! twice answers the first result again and renders nothing new.
//!
//! A share's results are kept under its prefix, so revoking the share
//! forgets them with its renditions.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::job::{Job, Principal};
use crate::result::JobResult;
use crate::revocation::share_prefix;
use crate::storage::{PutOptions, Store, StoreError};

pub(super) fn memo_key(job: &Job) -> String {
    let digest = hex::encode(Sha256::digest(job.job_id.as_bytes()));
    let name = format!("results/{}.json", &digest[..32]);
    match &job.principal {
        Principal::Share { share, .. } => format!("{}{name}", share_prefix(share)),
        _ => name,
    }
}

/// The result remembered for this job, unless one of its links has expired
/// (then the job runs again: its renditions are cache hits, its links new).
pub(super) async fn recall(store: &impl Store, key: &str, job_id: &str, now: DateTime<Utc>) -> Option<JobResult> {
    let bytes = store.get(key).await.ok()?;
    let result: JobResult = serde_json::from_slice(&bytes).ok()?;
    let fresh = result.renditions.iter().all(|r| r.expires_at > now);
    (result.job_id == job_id && fresh).then_some(result)
}

pub(super) async fn remember(store: &impl Store, key: &str, result: &JobResult) -> Result<(), StoreError> {
    let options = PutOptions {
        content_type: "application/json".into(),
        ..PutOptions::default()
    };
    let bytes = serde_json::to_vec(result).expect("a result serializes");
    store.put(key, bytes, options).await
}
