//! One delivery, start to finish: run the job (or the revoke), then route
//! its answer: reply, retry after a delay, or dead-letter. The caller acks
//! only when this returns `Ok`, i.e. once the broker confirmed the answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::outage::StorageGate;
use crate::answer::{self, Answer, AnswerError, Destination};
use crate::audit::AuditRecord;
use crate::error::ErrorCode;
use crate::ops::trace::{JobTrace, TRACE_HEADERS};
use crate::ops::{Metrics, Stage};
use crate::pipeline::{Arrival, Outcome, Pipeline};
use crate::policy::{CurrentPolicy, Policy};
use crate::queue::{
    ATTEMPT_HEADER, ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER, Message, Publisher, QueueError, RETRY_LEVEL_HEADER,
    REVOKE_ROUTING_KEY, ROUTING_KEY_HEADER, Topology, lane_key, lane_of,
};
use crate::result::{JobProgress, JobResult, Status};
use crate::storage::Store;
use crate::work::Work;

/// Where a job's answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Final: the result goes to the caller.
    Reply,
    /// Transient failure: wait in delay queue `level`, then run again.
    Retry { level: usize },
    /// Transient failure, out of attempts: the dead-letter queue, and a
    /// `failed` result so upstream is not left waiting.
    DeadLetter,
}

pub fn settle(retry: bool, attempt: u32, max_attempts: u32) -> Settlement {
    match (retry, attempt < max_attempts) {
        (false, _) => Settlement::Reply,
        (true, true) => Settlement::Retry {
            level: attempt as usize,
        },
        (true, false) => Settlement::DeadLetter,
    }
}

pub struct Handler<S> {
    pub pipeline: Arc<Pipeline<S>>,
    pub policy: Arc<CurrentPolicy>,
    pub topology: Topology,
    pub metrics: Arc<Metrics>,
    /// Whether the stores answer; see [`super::outage`].
    pub storage: StorageGate,
    /// Names this worker in audit records.
    pub worker: String,
}

/// How long a job waits out a storage outage unless told otherwise.
pub const STORAGE_WAIT: Duration = Duration::from_secs(300);

/// `{host}-{pid}`: the host name is the pod's name on Kubernetes, and the
/// pid tells two workers on one host apart.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}

impl<S: Store> Handler<S> {
    pub fn new(pipeline: Pipeline<S>, policy: Policy, topology: Topology, metrics: Arc<Metrics>) -> Handler<S> {
        Handler {
            pipeline: Arc::new(pipeline),
            policy: Arc::new(CurrentPolicy::new(policy)),
            topology,
            metrics,
            storage: StorageGate::new(STORAGE_WAIT),
            worker: default_worker_id(),
        }
    }

    /// Names this worker in audit records (default: host name and pid).
    pub fn with_worker_id(mut self, worker: &str) -> Handler<S> {
        self.worker = worker.to_string();
        self
    }

    /// The longest a job waits for unreachable stores before its usual retry.
    pub fn with_storage_wait(mut self, wait: Duration) -> Handler<S> {
        self.storage = StorageGate::new(wait);
        self
    }

    pub async fn handle(&self, broker: &impl Publisher, message: &Message) -> Result<(), QueueError> {
        let _in_flight = self.metrics.in_flight();
        let started = Instant::now();
        let work = Work::parse(&message.body, message.routing_key == REVOKE_ROUTING_KEY);
        if let Some(key) = wrong_lane(message, &work) {
            return self.move_to_lane(broker, message, key).await;
        }
        let trace = JobTrace::start(&message.headers, work.job_id(), message.attempt());
        let outcome = {
            let _stage = trace.stage("pipeline", None);
            self.run_through_outages(broker, message, &work).await
        };
        self.metrics.observe(Stage::Pipeline, started.elapsed());
        self.note_engine_panic(&outcome);
        if let Some((started, crashed)) = self.pipeline.engine_counts() {
            self.metrics.engines(started, crashed);
        }
        if let Work::Revoke(_) = work {
            match (&outcome.result.status, outcome.error) {
                (Status::Done, _) => self.metrics.revoked(),
                // Refused for its signature (docs/control-plane.md).
                (Status::Failed, Some(code)) if !outcome.retry => self.metrics.control_refused("revoke", code.as_str()),
                _ => {}
            }
        }
        self.log(message, &work, &outcome, started);
        let settled = {
            let _stage = trace.stage("answer", None);
            self.settle(broker, message, &work, &outcome, &trace).await
        };
        trace.end(status_name(outcome.result.status), outcome.error.map(ErrorCode::as_str));
        settled
    }

    /// Replies, retries or dead-letters a finished job.
    async fn settle(
        &self,
        broker: &impl Publisher,
        message: &Message,
        work: &Work,
        outcome: &Outcome,
        trace: &JobTrace,
    ) -> Result<(), QueueError> {
        let attempt = message.attempt();
        let settlement = match outcome.dead_letter {
            true => Settlement::DeadLetter,
            false => settle(outcome.retry, attempt, self.topology.max_attempts()),
        };
        match settlement {
            Settlement::Reply => {
                // A job that crashed an engine twice is kept for a person to
                // look at, never handed to another worker to crash it too.
                let dead = matches!(work, Work::Unreadable { .. }) || outcome.error == Some(ErrorCode::EngineCrashed);
                self.answer(broker, message, work, outcome, dead, trace).await
            }
            Settlement::Retry { level } => {
                let mut retry = carried(message);
                retry.headers.insert(ATTEMPT_HEADER.into(), (attempt + 1).to_string());
                retry.headers.insert(RETRY_LEVEL_HEADER.into(), level.to_string());
                broker.publish(&self.topology.retry_exchange(), &retry).await?;
                self.metrics.retried();
                Ok(())
            }
            Settlement::DeadLetter => {
                // Remembered before its record: a crash before the answer
                // then answers the redelivery the same. A memo that cannot
                // be kept sends nothing: the job goes back to its queue.
                if !outcome.replayed
                    && let Err(e) = self.pipeline.remember_dead_letter(work, outcome).await
                {
                    tracing::error!(job_id = work.job_id(), error = %e, "could not remember the dead-lettered answer");
                    return Err(QueueError::new(format!("the answer was not remembered: {e}")));
                }
                self.answer(broker, message, work, outcome, true, trace).await
            }
        }
    }

    /// Everything a final outcome sends, through the one answer path the
    /// CLI shares ([`crate::answer`]): the audit record, the dead letter (if
    /// any), the result. A record that cannot be kept sends nothing: the
    /// job goes back to its queue unanswered.
    pub(super) async fn answer(
        &self,
        broker: &impl Publisher,
        message: &Message,
        work: &Work,
        outcome: &Outcome,
        dead_letter: bool,
        trace: &JobTrace,
    ) -> Result<(), QueueError> {
        let to = Delivery {
            handler: self,
            broker,
            message,
            work,
            outcome,
            trace,
        };
        let answer = Answer {
            work,
            body: &message.body,
            result: &outcome.result,
            answered_at: outcome.answered_at,
            worker: &self.worker,
            repeat: message.redelivered || message.attempt() > 1,
            dead_letter,
            trace_id: Some(trace.trace_id()),
        };
        match answer::answer(self.pipeline.renditions(), &to, answer).await {
            Ok(()) => Ok(()),
            Err(AnswerError::NotSent(e)) => Err(e),
            Err(e @ AnswerError::NotRecorded(_)) => {
                tracing::error!(job_id = %outcome.result.job_id, error = %e, "the job goes back to its queue");
                self.metrics.audit_failed();
                Err(QueueError::new(e.to_string()))
            }
        }
    }

    /// Re-sends the job under its lane's key (confirmed before the ack,
    /// so it is never lost; its attempt count goes with it).
    async fn move_to_lane(&self, broker: &impl Publisher, message: &Message, key: String) -> Result<(), QueueError> {
        let mut moved = carried(message);
        moved.headers.extend(
            message
                .headers
                .get_key_value(ATTEMPT_HEADER)
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        tracing::info!(from = %message.routing_key, to = %key, "job moved to its priority's lane");
        moved.routing_key = key;
        broker.publish(&self.topology.jobs_exchange(), &moved).await?;
        self.metrics.moved();
        Ok(())
    }

    /// Runs the work; a storage failure while the stores do not answer is
    /// waited out (within the gate's wait) and the work run again, so an
    /// outage costs no attempt.
    async fn run_through_outages(&self, broker: &impl Publisher, message: &Message, work: &Work) -> Outcome {
        let deadline = Instant::now() + self.storage.wait;
        loop {
            let outcome = self.run_reporting(broker, message, work).await;
            let on_storage = outcome.error == Some(ErrorCode::StorageError);
            let waited_out = outcome.retry && on_storage && self.outlast_outage(deadline).await;
            if !waited_out {
                return outcome;
            }
            tracing::info!(job_id = work.job_id(), "storage is back: running the job again");
        }
    }

    /// After a storage failure: `true` when the stores did not answer and
    /// answer again before `deadline`; `false` when they answered at once
    /// (a passing fault: the usual retry) or never came back in time.
    async fn outlast_outage(&self, deadline: Instant) -> bool {
        match self.probe_stores().await {
            Ok(()) => {
                self.storage.up(&self.metrics);
                return false;
            }
            Err(why) => self.storage.down(&self.metrics, &why),
        }
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if self.storage.changed_or(self.storage.probe_every.min(left)).await || self.probe_stores().await.is_ok() {
                self.storage.up(&self.metrics);
                return true;
            }
        }
        false
    }

    /// While the gate is down, probes the stores and lifts it when they
    /// answer: the consume loop calls this each second, so the worker
    /// resumes even when no job is left waiting (each gave up on its wait).
    pub async fn recheck_storage(&self) {
        if !self.storage.is_up() && self.probe_stores().await.is_ok() {
            self.storage.up(&self.metrics);
        }
    }

    /// Both stores answer (bucket or directory there) within 5 s.
    pub async fn probe_stores(&self) -> Result<(), String> {
        let (originals, renditions) = (self.pipeline.originals(), self.pipeline.renditions());
        let both = async { tokio::try_join!(originals.ready(), renditions.ready()) };
        match tokio::time::timeout(Duration::from_secs(5), both).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer in 5 s".into()),
        }
    }

    /// An engine panic was answered `engine_error`: log it loudly and count it.
    fn note_engine_panic(&self, outcome: &Outcome) {
        if let Some(error) = outcome.result.error.as_ref().filter(|_| outcome.panicked) {
            self.metrics.engine_panicked();
            tracing::error!(job_id = %outcome.result.job_id, panic = %error.message, "the engine panicked; the job failed");
        }
    }

    /// Runs the work while passing its progress messages on to where its
    /// result will go. Progress is best effort: a lost one is not an error.
    async fn run_reporting(&self, broker: &impl Publisher, message: &Message, work: &Work) -> Outcome {
        let policy = self.policy.get();
        let arrival = Arrival {
            now: Utc::now(),
            repeat: message.redelivered || message.attempt() > 1,
        };
        let forward = |update: JobProgress| async move {
            let (exchange, routing_key) = self.destination(message, &format!("{}.progress", work.purpose()));
            let note = Message {
                routing_key,
                body: serde_json::to_vec(&update).expect("progress serializes"),
                correlation_id: message.correlation_id.clone(),
                ..Message::default()
            };
            if let Err(e) = broker.publish(&exchange, &note).await {
                tracing::debug!(job_id = %update.job_id, error = %e, "progress not sent");
            }
        };
        self.pipeline
            .run_forwarding_progress(&policy, work, arrival, forward)
            .await
    }

    /// `reply_to` through the default exchange, else the results exchange
    /// under `results_key`.
    fn destination(&self, message: &Message, results_key: &str) -> (String, String) {
        match &message.reply_to {
            Some(to) => (String::new(), to.clone()),
            None => (self.topology.results_exchange(), results_key.to_string()),
        }
    }

    fn log(&self, message: &Message, work: &Work, outcome: &Outcome, started: Instant) {
        let result = &outcome.result;
        let reason = result.decision.as_ref().map(|d| d.reason.as_str()).unwrap_or("");
        let error = result.error.as_ref().map(|e| e.code.as_str()).unwrap_or("");
        let (asset, principal) = match work {
            Work::Job(job) => (
                job.asset.id.as_str(),
                serde_json::to_string(&job.principal).unwrap_or_default(),
            ),
            _ => ("", String::new()),
        };
        tracing::info!(
            job_id = %result.job_id,
            asset,
            principal,
            purpose = work.purpose(),
            status = status_name(result.status),
            decision = reason,
            error,
            attempt = message.attempt(),
            retry = outcome.retry,
            replayed = outcome.replayed,
            ms = started.elapsed().as_millis() as u64,
            "job"
        );
    }
}

/// The routing key of the job's own lane, when it came in on the other:
/// upstream may send a bulk job under the plain key (`image`), and the
/// broker cannot read `priority` from the body.
fn wrong_lane(message: &Message, work: &Work) -> Option<String> {
    let Work::Job(job) = work else { return None };
    let (lane, base) = lane_of(&message.routing_key);
    (lane != job.priority()).then(|| lane_key(base, job.priority()))
}

/// The job as it was, for a retry or a dead letter: body, routing and
/// correlation, without the broker's own headers.
/// The job as it is re-sent: only its trace context among the headers
/// (so a retry stays in the job's trace).
fn carried(message: &Message) -> Message {
    let trace = TRACE_HEADERS.iter().filter_map(|h| message.headers.get_key_value(*h));
    Message {
        headers: trace.map(|(k, v)| (k.clone(), v.clone())).collect(),
        mandatory: true,
        ..message.clone()
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Done => "done",
        Status::Denied => "denied",
        Status::Failed => "failed",
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;

/// A delivery's answer as the broker carries it: the record on the audit
/// exchange, the job on the dead-letter queue, the result to `reply_to`
/// (with the correlation id), else to the results exchange under
/// `purpose.status`.
struct Delivery<'a, S: Store, P: Publisher> {
    handler: &'a Handler<S>,
    broker: &'a P,
    message: &'a Message,
    work: &'a Work,
    outcome: &'a Outcome,
    trace: &'a JobTrace,
}

impl<S: Store, P: Publisher> Destination for Delivery<'_, S, P> {
    async fn announce(&self, record: &AuditRecord) -> Result<(), QueueError> {
        let mut body = record.to_line();
        body.pop();
        let mut published = Message {
            routing_key: format!("{}.{}", self.work.purpose(), status_name(record.status)),
            body,
            message_id: Some(record.job_id.clone()),
            ..Message::default()
        };
        self.trace.inject(&mut published.headers);
        self.broker
            .publish(&self.handler.topology.audit_exchange(), &published)
            .await
    }

    async fn dead_letter(&self, result: &JobResult) -> Result<(), QueueError> {
        let message = self.message;
        let mut dead = carried(message);
        dead.routing_key = self.handler.topology.dead_queue();
        dead.headers
            .insert(ATTEMPT_HEADER.into(), message.attempt().to_string());
        dead.headers
            .insert(ROUTING_KEY_HEADER.into(), message.routing_key.clone());
        if let Some(error) = &result.error {
            dead.headers.insert(ERROR_CODE_HEADER.into(), error.code.clone());
            dead.headers.insert(ERROR_MESSAGE_HEADER.into(), error.message.clone());
        }
        self.broker.publish("", &dead).await?;
        self.handler.metrics.dead_lettered();
        Ok(())
    }

    async fn reply(&self, result: &JobResult) -> Result<(), QueueError> {
        let (handler, message) = (self.handler, self.message);
        let started = Instant::now();
        let results_key = format!("{}.{}", self.work.purpose(), status_name(result.status));
        let (exchange, routing_key) = handler.destination(message, &results_key);
        let mut reply = Message {
            routing_key,
            body: serde_json::to_vec(result).expect("a result serializes"),
            correlation_id: message.correlation_id.clone(),
            message_id: Some(result.job_id.clone()),
            ..Message::default()
        };
        self.trace.inject(&mut reply.headers);
        self.broker.publish(&exchange, &reply).await?;
        handler.metrics.observe(Stage::Reply, started.elapsed());
        handler.metrics.job_finished(result.status);
        if let (Status::Failed, Some(code)) = (result.status, self.outcome.error) {
            handler.metrics.failed_with(code.as_str());
        }
        if self.outcome.replayed {
            handler.metrics.replayed();
        } else {
            handler
                .metrics
                .cache_hits(result.renditions.iter().filter(|r| r.cached).count());
        }
        Ok(())
    }
}
