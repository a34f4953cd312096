//! The audit trail: one record per answered job (done, denied or failed),
//! saying who received what under which policy version.
//!
//! A record is written to the renditions store before the job is acked,
//! one object per job id under `audit/date=YYYY-MM-DD/` ([`layout::audit_key`]),
//! and published on the `rendition.audit` exchange. S3 cannot append, so each
//! object holds one JSON line: writing it is idempotent (a redelivered job
//! writes the same key again, never a second record) and workers never
//! contend for a file. Query engines read the objects as JSON Lines with
//! `date` as a Hive partition.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::job::Principal;
use crate::layout;
use crate::policy::Decision;
use crate::result::{ErrorBody, JobResult, Status};
use crate::storage::{PutOptions, Store, StoreError};
use crate::work::Work;

/// The `schema` value of an audit record.
pub const AUDIT_SCHEMA: &str = "rendition.audit/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    pub schema: String,
    /// When the answer was made (a replayed answer keeps its first time).
    pub time: DateTime<Utc>,
    pub job_id: String,
    /// `download`, `share`, `preview`, `publish`, `revoke` or `unknown`.
    pub purpose: String,
    pub status: Status,
    /// `None` for a revoke or a job too broken to name one.
    pub principal: Option<Principal>,
    pub asset: Option<String>,
    /// The share a revoke stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_share: Option<String>,
    pub decision: Option<Decision>,
    /// What was handed out.
    pub renditions: Vec<HandedOut>,
    pub error: Option<ErrorBody>,
    pub policy_version: u64,
    /// Which worker answered ([`crate::settings::Settings::worker_id`]).
    pub worker: String,
}

/// One rendition handed out: what it is and until when its link works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandedOut {
    pub key: String,
    pub sha256: String,
    pub bytes: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub watermarked: bool,
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
}

impl AuditRecord {
    /// The record of `work`'s answer `result`, made at `time` by `worker`.
    pub fn of(work: &Work, result: &JobResult, time: DateTime<Utc>, worker: &str) -> AuditRecord {
        let (principal, asset, revoked_share) = match work {
            Work::Job(job) => (Some(job.principal.clone()), Some(job.asset.id.clone()), None),
            Work::Revoke(revoke) => (None, None, Some(revoke.share.clone())),
            Work::Unreadable { .. } => (None, None, None),
        };
        let renditions = result
            .renditions
            .iter()
            .map(|r| HandedOut {
                key: r.key.clone(),
                sha256: r.sha256.clone(),
                bytes: r.bytes,
                width: r.width,
                height: r.height,
                watermarked: r.watermarked,
                expires_at: r.expires_at,
                published: r.published.clone(),
            })
            .collect();
        AuditRecord {
            schema: AUDIT_SCHEMA.to_string(),
            time,
            job_id: result.job_id.clone(),
            purpose: work.purpose().to_string(),
            status: result.status,
            principal,
            asset,
            revoked_share,
            decision: result.decision.clone(),
            renditions,
            error: result.error.clone(),
            policy_version: result.policy_version,
            worker: worker.to_string(),
        }
    }

    /// The names a `--principal` filter matches: a user id, a share id or
    /// its recipient's e-mail, a collection (password holders), `anonymous`.
    pub fn principal_names(&self) -> Vec<&str> {
        match &self.principal {
            Some(Principal::User(id)) => vec![id],
            Some(Principal::Share { share, email }) => vec![share, email],
            Some(Principal::Password { collection }) => vec![collection],
            Some(Principal::Anonymous) => vec!["anonymous"],
            None => self.revoked_share.as_deref().into_iter().collect(),
        }
    }

    /// One JSON line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("an audit record serializes");
        line.push(b'\n');
        line
    }

    /// The key it is stored under.
    pub fn key(&self, work: &Work) -> String {
        layout::audit_key(self.time.date_naive(), &dedup_id(work))
    }
}

/// What makes two deliveries the same job for the trail: the job id, or for
/// a body without one, the body itself.
fn dedup_id(work: &Work) -> String {
    match work {
        Work::Unreadable { job_id, error, .. } if job_id == "unknown" => format!("unknown:{error}"),
        _ => work.job_id().to_string(),
    }
}

/// Writes the record (replacing the same job's record of the same day).
pub async fn write(store: &impl Store, work: &Work, record: &AuditRecord) -> Result<(), StoreError> {
    let options = PutOptions {
        content_type: "application/x-ndjson".into(),
        ..PutOptions::default()
    };
    store.put(&record.key(work), record.to_line(), options).await
}

/// Which records [`read`] returns.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub principal: Option<String>,
    pub asset: Option<String>,
    pub job_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl AuditQuery {
    pub fn matches(&self, record: &AuditRecord) -> bool {
        let principal = self.principal.as_deref();
        principal.is_none_or(|p| record.principal_names().contains(&p))
            && self.asset.as_ref().is_none_or(|a| record.asset.as_ref() == Some(a))
            && self.job_id.as_ref().is_none_or(|j| &record.job_id == j)
            && self.since.is_none_or(|t| record.time >= t)
            && self.until.is_none_or(|t| record.time < t)
    }

    /// The day partitions to list: each day from `since` to `until` (or
    /// today), or every partition without `since`.
    fn prefixes(&self, today: NaiveDate) -> Vec<String> {
        let Some(since) = self.since else {
            return vec![layout::AUDIT_PREFIX.to_string()];
        };
        let last = self.until.map_or(today, |u| u.date_naive()).max(since.date_naive());
        since
            .date_naive()
            .iter_days()
            .take_while(|d| *d <= last)
            .map(layout::audit_day_prefix)
            .collect()
    }
}

/// The records the query matches, oldest first. A line that is not a record
/// (written by something else) is an error: the trail must not be misread.
pub async fn read(store: &impl Store, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
    let mut records = Vec::new();
    for prefix in query.prefixes(Utc::now().date_naive()) {
        for key in store.list(&prefix).await? {
            let bytes = store.get(&key).await?;
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let record: AuditRecord = serde_json::from_slice(line)
                    .map_err(|e| StoreError::failed(format!("{key} holds a line that is not an audit record: {e}")))?;
                if query.matches(&record) {
                    records.push(record);
                }
            }
        }
    }
    records.sort_by(|a, b| (a.time, &a.job_id).cmp(&(b.time, &b.job_id)));
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStore;

    fn work(id: &str, user: &str, asset: &str) -> Work {
        let body = serde_json::json!({
            "schema": "rendition.job/v1", "job_id": id, "purpose": "download",
            "principal": {"user": user},
            "asset": {"id": asset, "collection": "c", "media": "image", "source": "originals/a.jpg"},
            "request": {"rendition": "original"}
        });
        let work = Work::parse(&serde_json::to_vec(&body).unwrap(), false);
        assert!(matches!(work, Work::Job(_)), "{work:?}");
        work
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn one_record_per_job_id_and_day_read_back_by_principal_asset_and_time() {
        let store = MemoryStore::new();
        let cases = [
            ("j-1", "alice", "a-1", "2026-11-30T23:59:00Z"),
            ("j-2", "bob", "a-1", "2026-12-01T08:00:00Z"),
            ("j-3", "alice", "a-2", "2026-12-01T09:00:00Z"),
        ];
        for (id, user, asset, time) in cases {
            let work = work(id, user, asset);
            let result = JobResult::acknowledged(id, 7);
            let record = AuditRecord::of(&work, &result, at(time), "w-1");
            write(&store, &work, &record).await.unwrap();
            // A redelivery writes the same record again: still one.
            write(&store, &work, &record).await.unwrap();
        }
        let all = read(&store, &AuditQuery::default()).await.unwrap();
        let ids: Vec<_> = all.iter().map(|r| r.job_id.as_str()).collect();
        assert_eq!(ids, ["j-1", "j-2", "j-3"]);
        assert!(store.list("audit/date=2026-11-30/").await.unwrap().len() == 1);

        let alice = AuditQuery {
            principal: Some("alice".into()),
            ..AuditQuery::default()
        };
        let ids: Vec<_> = read(&store, &alice)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.job_id)
            .collect();
        assert_eq!(ids, ["j-1", "j-3"]);
        let since = AuditQuery {
            asset: Some("a-1".into()),
            since: Some(at("2026-12-01T00:00:00Z")),
            until: Some(at("2026-12-02T00:00:00Z")),
            ..AuditQuery::default()
        };
        let ids: Vec<_> = read(&store, &since)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.job_id)
            .collect();
        assert_eq!(ids, ["j-2"]);
    }

    #[tokio::test]
    async fn a_line_that_is_not_a_record_is_an_error_not_a_silent_gap() {
        let store = MemoryStore::new();
        let key = layout::audit_key(at("2026-12-01T00:00:00Z").date_naive(), "x");
        store
            .put(&key, b"{\"hello\":1}\n".to_vec(), PutOptions::default())
            .await
            .unwrap();
        assert!(read(&store, &AuditQuery::default()).await.is_err());
    }
}
