//! A delivery (or a CLI job file) read once, at the edge, into what it is:
//! a job, a revoke, or something unreadable. Logging, routing, metrics and
//! the pipeline all read this one value.

use crate::job::{Job, JobError};
use crate::revocation::{REVOKE_SCHEMA, RevokeMessage};
use crate::routing::REVOKE_ROUTING_KEY;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    Job(Box<Job>),
    /// Stop sharing (docs/control-plane.md).
    Revoke(RevokeMessage),
    /// Not a job we can run: answered `failed` (`invalid_job`) and
    /// dead-lettered for an operator to look at.
    Unreadable {
        /// The body's `job_id` if it has one, else `unknown`.
        job_id: String,
        /// The body's `purpose` if it names one (for the result's routing key).
        purpose: Option<&'static str>,
        error: JobError,
    },
}

impl Work {
    /// Reads a message body; `revoke` when it came with the revoke routing key.
    pub fn parse(body: &[u8], revoke: bool) -> Work {
        if revoke {
            return match serde_json::from_slice::<RevokeMessage>(body) {
                Ok(r) if r.schema == REVOKE_SCHEMA => Work::Revoke(r),
                Ok(r) => Work::Unreadable {
                    job_id: r.job_id,
                    purpose: Some(REVOKE_ROUTING_KEY),
                    error: JobError::at("schema", format!("schema must be {REVOKE_SCHEMA}")),
                },
                Err(e) => unreadable(body, JobError::at("share", format!("revoke message: {e}")), true),
            };
        }
        match Job::parse(body) {
            Ok(job) => Work::Job(Box::new(job)),
            Err(error) => unreadable(body, error, false),
        }
    }

    pub fn job_id(&self) -> &str {
        match self {
            Work::Job(job) => &job.job_id,
            Work::Revoke(revoke) => &revoke.job_id,
            Work::Unreadable { job_id, .. } => job_id,
        }
    }

    /// The first part of the result's routing key: the job's purpose,
    /// `revoke`, or `unknown`.
    pub fn purpose(&self) -> &'static str {
        match self {
            Work::Job(job) => job.purpose.as_str(),
            Work::Revoke(_) => REVOKE_ROUTING_KEY,
            Work::Unreadable { purpose, .. } => purpose.unwrap_or("unknown"),
        }
    }
}

/// What can still be read of a body that is not a valid job.
fn unreadable(body: &[u8], error: JobError, revoke: bool) -> Work {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let job_id = value["job_id"].as_str().filter(|id| !id.trim().is_empty());
    let job_id = job_id.unwrap_or("unknown").to_string();
    let purpose = if revoke {
        Some(REVOKE_ROUTING_KEY)
    } else {
        ["download", "share", "preview", "publish"]
            .into_iter()
            .find(|p| value["purpose"].as_str() == Some(p))
    };
    Work::Unreadable { job_id, purpose, error }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_body_is_read_once_into_what_it_is() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let job = std::fs::read(root.join("fixtures/demo/2-collaborator-2048.json")).unwrap();
        let work = Work::parse(&job, false);
        assert!(matches!(work, Work::Job(_)));
        assert_eq!((work.job_id(), work.purpose()), ("demo-collaborator-2048", "download"));

        let bad = br#"{"job_id":"j-9","purpose":"publish","schema":"nope"}"#;
        let Work::Unreadable { job_id, purpose, .. } = Work::parse(bad, false) else {
            panic!()
        };
        assert_eq!((job_id.as_str(), purpose), ("j-9", Some("publish")));
        assert_eq!(Work::parse(b"{ not json", false).job_id(), "unknown");
        assert_eq!(Work::parse(b"{ not json", false).purpose(), "unknown");

        let revoke = br#"{"schema":"rendition.revoke/v1","job_id":"r-1","share":"s-7"}"#;
        assert!(matches!(Work::parse(revoke, true), Work::Revoke(ref r) if r.share == "s-7"));
        let wrong = br#"{"schema":"v0","job_id":"r-2","share":"s-7"}"#;
        let work = Work::parse(wrong, true);
        assert!(matches!(work, Work::Unreadable { .. }));
        assert_eq!((work.job_id(), work.purpose()), ("r-2", "revoke"));
    }
}
