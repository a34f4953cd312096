//! A job's async task, supervised: a panic outside the engine pools (those
//! are caught there) must not strand its delivery unacked. The first panic
//! puts the job back on its queue; a redelivered job that panics again is
//! dead-lettered with the reason and answered `failed`, so upstream is not
//! left waiting and the next worker is not handed the same poison.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};

use futures_util::FutureExt;

use super::Handler;
use crate::error::panic_message;
use crate::job::JobError;
use crate::ops::trace::JobTrace;
use crate::pipeline::{Outcome, PipelineError};
use crate::queue::{Message, Publisher, QueueError, REVOKE_ROUTING_KEY};
use crate::result::JobResult;
use crate::storage::Store;
use crate::work::Work;

/// What becomes of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answered (or routed to a retry or the dead letters): ack it.
    Ack,
    /// Not answered: back to the queue for any worker.
    Requeue,
    /// Not answered and not to be tried again: nack without requeue, so
    /// the broker dead-letters it.
    Reject,
}

impl<S: Store> Handler<S> {
    /// Runs `handling` (the handling of `message`) and says what to do with
    /// the delivery, whether it returned or panicked.
    pub async fn supervise(
        &self,
        broker: &impl Publisher,
        message: &Message,
        handling: impl Future<Output = Result<(), QueueError>>,
    ) -> Verdict {
        match AssertUnwindSafe(handling).catch_unwind().await {
            Ok(Ok(())) => Verdict::Ack,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not answer; the job goes back to the queue");
                Verdict::Requeue
            }
            Err(panic) => self.after_panic(broker, message, &panic_message(&*panic)).await,
        }
    }

    async fn after_panic(&self, broker: &impl Publisher, message: &Message, panic: &str) -> Verdict {
        self.metrics.task_panicked();
        // The parser may be what panicked: read what can be read, safely.
        let revoke = message.routing_key == REVOKE_ROUTING_KEY;
        let work = catch_unwind(|| Work::parse(&message.body, revoke)).unwrap_or_else(|_| Work::Unreadable {
            job_id: "unknown".into(),
            purpose: None,
            error: JobError::at("job", "the job parser panicked on it"),
        });
        let job_id = work.job_id();
        tracing::error!(
            job_id,
            panic,
            redelivered = message.redelivered,
            "a job's task panicked"
        );
        if !message.redelivered {
            return Verdict::Requeue;
        }
        let error = PipelineError::Panicked(format!("the job's task panicked on two deliveries: {panic}"));
        let outcome = Outcome {
            result: JobResult::failed(job_id, self.policy.get().version(), None, &error),
            retry: false,
            replayed: false,
            panicked: true,
            dead_letter: false,
            answered_at: chrono::Utc::now(),
            error: Some(crate::error::Coded::code(&error)),
        };
        let trace = JobTrace::start(&message.headers, job_id, message.attempt());
        let answered = self.answer(broker, message, &work, &outcome, true, &trace).await;
        trace.end("failed", Some("panicked"));
        match answered {
            Ok(()) => Verdict::Ack,
            Err(_) => Verdict::Reject,
        }
    }
}
