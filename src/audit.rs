//! The audit trail: one record per answer to a job (done, denied or
//! failed), saying who received what under which policy version.
//!
//! A record is written to the renditions store before the job is acked,
//! one object per answer under `audit/date=YYYY-MM-DD/` ([`layout::audit_key`]),
//! and published on the `rendition.audit` exchange. S3 cannot append, so each
//! object holds one JSON line, named by the job and by what the answer said:
//! a redelivered job replays its remembered answer (with its first time), so
//! it writes the same object again, never a second record, and workers never
//! contend for a file. Query engines read the objects as JSON Lines with
//! `date` as a Hive partition.

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    #[serde(deserialize_with = "Option::deserialize")]
    pub principal: Option<Principal>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub asset: Option<String>,
    /// The share a revoke stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_share: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub decision: Option<Decision>,
    /// What was handed out.
    pub renditions: Vec<HandedOut>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub error: Option<ErrorBody>,
    pub policy_version: u64,
    /// Which worker answered ([`crate::settings::Settings::worker_id`]).
    pub worker: String,
    /// The W3C trace the job's work is in (docs/operating.md#traces): the
    /// upstream's from its `traceparent`, or one started for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
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
    /// The delivery id in the image's forensic mark (docs/forensic.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forensic_mark: Option<String>,
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
                forensic_mark: r.forensic_mark.clone(),
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
            trace_id: None,
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
}

/// What names a record's object: the job (or, for a body that is not one,
/// the body) and the answer, so a repeat of the same answer is the same
/// object and a different answer to the same job id (a dead letter
/// replayed by an operator) is a record of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditName(String);

impl AuditName {
    pub fn of(work: &Work, body: &[u8]) -> AuditName {
        let job = match work {
            Work::Unreadable { .. } => format!("body:{}", hex::encode(Sha256::digest(body))),
            _ => format!("job:{}", work.job_id()),
        };
        AuditName(job)
    }

    fn key(&self, record: &AuditRecord, day: NaiveDate) -> String {
        // The answer without its time or worker: a replay says the same.
        let answer = AuditRecord {
            time: DateTime::UNIX_EPOCH,
            worker: String::new(),
            ..record.clone()
        };
        let answer = hex::encode(Sha256::digest(answer.to_line()));
        layout::audit_key(day, &self.0, &answer[..16])
    }
}

/// Writes the record. A `repeat` delivery (redelivered, or a retry) whose
/// answer was recorded the day before, just before midnight, writes
/// nothing: that record stands.
pub async fn write(store: &impl Store, record: &AuditRecord, name: &AuditName, repeat: bool) -> Result<(), StoreError> {
    let day = record.time.date_naive();
    if repeat
        && let Some(yesterday) = day.checked_sub_days(Days::new(1))
        && store.head(&name.key(record, yesterday)).await?.is_some()
    {
        return Ok(());
    }
    let options = PutOptions {
        content_type: "application/x-ndjson".into(),
        ..PutOptions::default()
    };
    store.put(&name.key(record, day), record.to_line(), options).await
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

    /// The day partitions to list: each day from `since` to `until` (or to
    /// tomorrow: a worker's clock may run ahead of ours), or every
    /// partition without `since` or for more than a month of days.
    fn prefixes(&self, today: NaiveDate) -> Vec<String> {
        let whole = vec![layout::AUDIT_PREFIX.to_string()];
        let Some(since) = self.since.map(|t| t.date_naive()) else {
            return whole;
        };
        let tomorrow = today.checked_add_days(Days::new(1)).unwrap_or(today);
        let last = self.until.map_or(tomorrow, |u| u.date_naive().min(tomorrow));
        let days: Vec<NaiveDate> = since.iter_days().take_while(|d| *d <= last).take(32).collect();
        if days.len() > 31 {
            return whole;
        }
        days.into_iter().map(layout::audit_day_prefix).collect()
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
    async fn one_record_per_answer_read_back_by_principal_asset_and_time() {
        let store = MemoryStore::new();
        let cases = [
            ("j-1", "alice", "a-1", "2026-11-30T23:59:00Z"),
            ("j-2", "bob", "a-1", "2026-12-01T08:00:00Z"),
            ("j-3", "alice", "a-2", "2026-12-01T09:00:00Z"),
        ];
        for (id, user, asset, time) in cases {
            let work = work(id, user, asset);
            let name = AuditName::of(&work, b"");
            let record = AuditRecord::of(&work, &JobResult::acknowledged(id, 7), at(time), "w-1");
            write(&store, &record, &name, false).await.unwrap();
            // Redelivered and answered the same, later and by another worker: still one.
            let later = AuditRecord {
                time: at(time) + chrono::Duration::seconds(90),
                worker: "w-2".into(),
                ..record.clone()
            };
            write(&store, &later, &name, true).await.unwrap();
        }
        let all = read(&store, &AuditQuery::default()).await.unwrap();
        let ids: Vec<_> = all.iter().map(|r| r.job_id.as_str()).collect();
        assert_eq!(
            ids,
            ["j-1", "j-2", "j-3"],
            "j-1's repeat fell after midnight: still one"
        );
        assert_eq!(store.list("audit/date=2026-11-30/").await.unwrap().len(), 1);

        // A different answer to the same job id (a dead letter replayed) is its own record.
        let work = work("j-2", "bob", "a-1");
        let other = AuditRecord::of(
            &work,
            &JobResult::acknowledged("j-2", 8),
            at("2026-12-01T10:00:00Z"),
            "w-1",
        );
        write(&store, &other, &AuditName::of(&work, b""), true).await.unwrap();
        assert_eq!(read(&store, &AuditQuery::default()).await.unwrap().len(), 4);

        let query =
            |principal: Option<&str>, asset: Option<&str>, since: Option<&str>, until: Option<&str>| AuditQuery {
                principal: principal.map(str::to_string),
                asset: asset.map(str::to_string),
                since: since.map(at),
                until: until.map(at),
                ..AuditQuery::default()
            };
        let ids = |q: AuditQuery| {
            let store = &store;
            async move {
                read(store, &q)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.job_id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(ids(query(Some("alice"), None, None, None)).await, ["j-1", "j-3"]);
        let day = query(
            None,
            Some("a-1"),
            Some("2026-12-01T00:00:00Z"),
            Some("2026-12-02T00:00:00Z"),
        );
        assert_eq!(ids(day).await, ["j-2", "j-2"]);
        let long_ago = query(None, None, Some("2000-01-01T00:00:00Z"), None);
        assert_eq!(ids(long_ago).await.len(), 4, "a long span lists the whole trail once");
        store.reset_requests();
        let _ = ids(query(None, None, Some("2000-01-01T00:00:00Z"), None)).await;
        assert_eq!(store.requests().list, 1);
    }

    #[test]
    fn unreadable_bodies_are_named_by_their_bytes_and_jobs_by_their_id() {
        let garbage = |body: &[u8]| AuditName::of(&Work::parse(body, false), body);
        assert_ne!(garbage(b"{ one"), garbage(b"{ two"), "the same error, different bodies");
        assert_eq!(garbage(b"{ one"), garbage(b"{ one"));
        let job = work("j-1", "alice", "a-1");
        assert_eq!(AuditName::of(&job, b"x"), AuditName::of(&job, b"y"));
        assert_eq!(Work::parse(br#"{"job_id":" "}"#, false).job_id(), "unknown");
    }

    #[tokio::test]
    async fn a_line_that_is_not_a_record_is_an_error_not_a_silent_gap() {
        let store = MemoryStore::new();
        let key = layout::audit_key(at("2026-12-01T00:00:00Z").date_naive(), "x", "0");
        store
            .put(&key, b"{\"hello\":1}\n".to_vec(), PutOptions::default())
            .await
            .unwrap();
        assert!(read(&store, &AuditQuery::default()).await.is_err());
    }
}
