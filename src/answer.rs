//! One answer path for every final outcome, the worker's and `rendition
//! render`'s alike, in the order that keeps it exact across a crash
//! (docs/contract.md#audit-record): the audit record (kept in the
//! renditions store, and meanwhile handed to the destination), then the
//! dead letter (if any), then the result. A record that cannot be kept
//! sends nothing: the caller decides what an unrecorded job becomes (the
//! worker puts it back on its queue; the CLI answers it `failed`).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::audit::{self, AuditName, AuditRecord};
use crate::error::{Coded, ErrorCode};
use crate::queue::QueueError;
use crate::result::JobResult;
use crate::storage::{Store, StoreError};
use crate::work::Work;

/// Where an answer goes: the worker's broker, or the CLI's output.
pub trait Destination: Send + Sync {
    /// The audit record, where records are announced (the worker: the
    /// audit exchange, confirmed; the CLI: nowhere).
    fn announce(&self, record: &AuditRecord) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// The job, to the dead-letter queue with why.
    fn dead_letter(&self, result: &JobResult) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// The result, to whoever asked.
    fn reply(&self, result: &JobResult) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// One final outcome to answer.
pub struct Answer<'a> {
    pub work: &'a Work,
    /// The job's bytes as received (an unreadable job's record is named
    /// by their digest).
    pub body: &'a [u8],
    pub result: &'a JobResult,
    pub answered_at: DateTime<Utc>,
    /// Names the worker (or CLI run) in the record.
    pub worker: &'a str,
    /// A redelivery or a retry: an earlier attempt may have kept a record.
    pub repeat: bool,
    pub dead_letter: bool,
    /// The job's trace (the worker's; the CLI has none).
    pub trace_id: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AnswerError {
    /// Nothing was sent: without its record, a job is not answered.
    #[error("the audit record was not written: {0}")]
    NotRecorded(StoreError),
    #[error(transparent)]
    NotSent(#[from] QueueError),
}

impl Coded for AnswerError {
    fn code(&self) -> ErrorCode {
        match self {
            AnswerError::NotRecorded(_) => ErrorCode::StorageError,
            AnswerError::NotSent(_) => ErrorCode::BrokerError,
        }
    }
}

/// How often a record is tried before the answer gives up.
const RECORD_TRIES: u32 = 3;

/// Audit record → dead letter (if any) → reply.
pub async fn answer(store: &impl Store, to: &impl Destination, answer: Answer<'_>) -> Result<(), AnswerError> {
    let mut record = AuditRecord::of(answer.work, answer.result, answer.answered_at, answer.worker);
    record.trace_id = answer.trace_id;
    let name = AuditName::of(answer.work, answer.body);
    let (kept, announced) = tokio::join!(keep(store, &record, &name, answer.repeat), to.announce(&record));
    kept?;
    announced?;
    if answer.dead_letter {
        to.dead_letter(answer.result).await?;
    }
    to.reply(answer.result).await?;
    Ok(())
}

/// Writes the record; a passing fault is tried again, twice.
async fn keep(store: &impl Store, record: &AuditRecord, name: &AuditName, repeat: bool) -> Result<(), AnswerError> {
    let mut tries = 0;
    loop {
        match audit::write(store, record, name, repeat).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tries += 1;
                if tries == RECORD_TRIES {
                    return Err(AnswerError::NotRecorded(e));
                }
                tokio::time::sleep(Duration::from_millis(200 << (2 * tries))).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::audit::AuditQuery;
    use crate::storage::memory::MemoryStore;

    /// What a destination was sent, in order.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<String>>);

    impl Recorded {
        fn note(&self, what: String) -> Result<(), QueueError> {
            self.0.lock().unwrap().push(what);
            Ok(())
        }
    }

    impl Destination for Recorded {
        async fn announce(&self, record: &AuditRecord) -> Result<(), QueueError> {
            self.note(format!("announce {}", record.job_id))
        }
        async fn dead_letter(&self, result: &JobResult) -> Result<(), QueueError> {
            self.note(format!("dead letter {}", result.job_id))
        }
        async fn reply(&self, result: &JobResult) -> Result<(), QueueError> {
            self.note(format!("reply {}", result.job_id))
        }
    }

    fn unreadable() -> (Work, JobResult) {
        let work = Work::parse(b"{not json", false);
        let result = JobResult::failed(work.job_id(), 1, None, &QueueError::new("x"));
        (work, result)
    }

    fn answering<'a>(work: &'a Work, result: &'a JobResult, dead_letter: bool) -> Answer<'a> {
        Answer {
            work,
            body: b"{not json",
            result,
            answered_at: Utc::now(),
            worker: "test",
            repeat: false,
            dead_letter,
            trace_id: None,
        }
    }

    #[tokio::test]
    async fn the_record_is_kept_before_the_dead_letter_and_the_reply() {
        let (store, to) = (MemoryStore::new(), Recorded::default());
        let (work, result) = unreadable();
        answer(&store, &to, answering(&work, &result, true)).await.unwrap();
        let id = work.job_id();
        assert_eq!(
            *to.0.lock().unwrap(),
            [
                format!("announce {id}"),
                format!("dead letter {id}"),
                format!("reply {id}")
            ]
        );
        let kept = audit::read(&store, &AuditQuery::default()).await.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].job_id, id);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_whose_record_cannot_be_kept_sends_nothing() {
        let (store, to) = (MemoryStore::new(), Recorded::default());
        store.down.store(true, Ordering::SeqCst);
        let (work, result) = unreadable();
        let e = answer(&store, &to, answering(&work, &result, true)).await.unwrap_err();
        assert!(matches!(e, AnswerError::NotRecorded(_)), "{e}");
        assert_eq!(e.code(), ErrorCode::StorageError);
        let sent = to.0.lock().unwrap();
        assert!(sent.iter().all(|s| s.starts_with("announce")), "{sent:?}");
        assert_eq!(store.requests().put, RECORD_TRIES as usize, "tried three times");
    }
}
