//! The result message (docs/contract.md#result): one per job, whatever happened.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Coded;
use crate::policy::Decision;

/// The `schema` value of a version 1 result.
pub const RESULT_SCHEMA: &str = "rendition.result/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobResult {
    pub schema: String,
    pub job_id: String,
    pub status: Status,
    pub policy_version: u64,
    /// `None` when the job failed before the resolver was asked.
    pub decision: Option<Decision>,
    pub renditions: Vec<RenditionRecord>,
    pub error: Option<ErrorBody>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Done,
    Denied,
    Failed,
}

/// One stored rendition and its signed link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenditionRecord {
    pub key: String,
    pub url: String,
    pub expires_at: DateTime<Utc>,
    pub content_type: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub bytes: u64,
    pub sha256: String,
    pub watermarked: bool,
    /// The delivery id the image's forensic mark carries (10 hex digits;
    /// docs/forensic.md), which `rendition trace` finds again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forensic_mark: Option<String>,
    pub cached: bool,
    /// Publish jobs: where the copy went, as `s3://bucket/key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl JobResult {
    fn new(job_id: &str, status: Status, policy_version: u64, decision: Option<Decision>) -> JobResult {
        JobResult {
            schema: RESULT_SCHEMA.to_string(),
            job_id: job_id.to_string(),
            status,
            policy_version,
            decision,
            renditions: Vec::new(),
            error: None,
        }
    }

    /// The resolver said no: nothing was made.
    pub fn denied(job_id: &str, policy_version: u64, decision: Decision) -> JobResult {
        JobResult::new(job_id, Status::Denied, policy_version, Some(decision))
    }

    /// Allowed and produced.
    pub fn done(job_id: &str, policy_version: u64, decision: Decision, renditions: Vec<RenditionRecord>) -> JobResult {
        JobResult {
            renditions,
            ..JobResult::new(job_id, Status::Done, policy_version, Some(decision))
        }
    }

    /// Done with nothing to deliver and nothing to decide (a revoke).
    pub fn acknowledged(job_id: &str, policy_version: u64) -> JobResult {
        JobResult::new(job_id, Status::Done, policy_version, None)
    }

    /// A permanent error, with its stable code.
    pub fn failed(
        job_id: &str,
        policy_version: u64,
        decision: Option<Decision>,
        error: &(impl Coded + std::fmt::Display),
    ) -> JobResult {
        let error = Some(ErrorBody {
            code: error.code().to_string(),
            message: error.to_string(),
        });
        JobResult {
            error,
            ..JobResult::new(job_id, Status::Failed, policy_version, decision)
        }
    }
}

/// The `schema` value of a progress message.
pub const PROGRESS_SCHEMA: &str = "rendition.progress/v1";

/// How far a long job (a video transcode) has come. Sent to the same place
/// as the job's result, with the same correlation id, about once a second;
/// the result itself still follows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobProgress {
    pub schema: String,
    pub job_id: String,
    /// 0–100, from the timestamp reached over the source's duration.
    pub percent: f32,
    pub frames: u64,
    /// Frames per second so far.
    pub fps: f32,
}

impl JobProgress {
    /// A reply that is a progress message rather than a result.
    pub fn from_reply(body: &[u8]) -> Option<JobProgress> {
        serde_json::from_slice::<JobProgress>(body)
            .ok()
            .filter(|p| p.schema == PROGRESS_SCHEMA)
    }

    /// "42% · 310 frames · 96 fps", for progress bars and logs.
    pub fn describe(&self) -> String {
        format!("{:.0}% · {} frames · {:.0} fps", self.percent, self.frames, self.fps)
    }

    pub fn new(job_id: &str, percent: f32, frames: u64, fps: f32) -> JobProgress {
        JobProgress {
            schema: PROGRESS_SCHEMA.to_string(),
            job_id: job_id.to_string(),
            percent,
            frames,
            fps,
        }
    }
}
