//! One delivery, start to finish: run the job (or the revoke), then route
//! its answer: reply, retry after a delay, or dead-letter. The caller acks
//! only when this returns `Ok`, i.e. once the broker confirmed the answer.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;

use crate::ops::{Metrics, Stage};
use crate::pipeline::{Arrival, Outcome, Pipeline};
use crate::policy::{CurrentPolicy, Policy};
use crate::queue::{
    ATTEMPT_HEADER, ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER, Message, Publisher, QueueError, RETRY_LEVEL_HEADER,
    REVOKE_ROUTING_KEY, ROUTING_KEY_HEADER, Topology,
};
use crate::result::{JobResult, Status};
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
}

impl<S: Store> Handler<S> {
    pub fn new(pipeline: Pipeline<S>, policy: Policy, topology: Topology, metrics: Arc<Metrics>) -> Handler<S> {
        Handler {
            pipeline: Arc::new(pipeline),
            policy: Arc::new(CurrentPolicy::new(policy)),
            topology,
            metrics,
        }
    }

    pub async fn handle(&self, broker: &impl Publisher, message: &Message) -> Result<(), QueueError> {
        let _in_flight = self.metrics.in_flight();
        let started = Instant::now();
        let work = Work::parse(&message.body, message.routing_key == REVOKE_ROUTING_KEY);
        let outcome = self.run_reporting(broker, message, &work).await;
        self.metrics.observe(Stage::Pipeline, started.elapsed());
        if matches!(work, Work::Revoke(_)) && outcome.result.status == Status::Done {
            self.metrics.revoked();
        }
        self.log(message, &work, &outcome, started);
        let attempt = message.attempt();
        let purpose = work.purpose();
        match settle(outcome.retry, attempt, self.topology.max_attempts()) {
            Settlement::Reply => {
                if matches!(work, Work::Unreadable { .. }) {
                    self.dead_letter(broker, message, &outcome.result).await?;
                }
                self.reply(broker, message, &outcome, purpose).await
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
                self.dead_letter(broker, message, &outcome.result).await?;
                self.reply(broker, message, &outcome, purpose).await
            }
        }
    }

    /// Runs the work while passing its progress messages on to where its
    /// result will go. Progress is best effort: a lost one is not an error.
    async fn run_reporting(&self, broker: &impl Publisher, message: &Message, work: &Work) -> Outcome {
        let (sink, mut progress) = tokio::sync::mpsc::unbounded_channel();
        let policy = self.policy.get();
        let arrival = Arrival {
            now: Utc::now(),
            repeat: message.redelivered || message.attempt() > 1,
        };
        let run = async move { self.pipeline.run(&policy, work, arrival, Some(&sink)).await };
        let forward = async {
            while let Some(update) = progress.recv().await {
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
            }
        };
        let (outcome, ()) = tokio::join!(run, forward);
        outcome
    }

    /// `reply_to` through the default exchange, else the results exchange
    /// under `results_key`.
    fn destination(&self, message: &Message, results_key: &str) -> (String, String) {
        match &message.reply_to {
            Some(to) => (String::new(), to.clone()),
            None => (self.topology.results_exchange(), results_key.to_string()),
        }
    }

    /// The result to `reply_to` (with the correlation id), else to the
    /// results exchange under `purpose.status`.
    async fn reply(
        &self,
        broker: &impl Publisher,
        message: &Message,
        outcome: &Outcome,
        purpose: &str,
    ) -> Result<(), QueueError> {
        let result = &outcome.result;
        let started = Instant::now();
        let (exchange, routing_key) = self.destination(message, &format!("{purpose}.{}", status_name(result.status)));
        let reply = Message {
            routing_key,
            body: serde_json::to_vec(result).expect("a result serializes"),
            correlation_id: message.correlation_id.clone(),
            message_id: Some(result.job_id.clone()),
            ..Message::default()
        };
        broker.publish(&exchange, &reply).await?;
        self.metrics.observe(Stage::Reply, started.elapsed());
        self.metrics.job_finished(result.status);
        if outcome.replayed {
            self.metrics.replayed();
        } else {
            self.metrics
                .cache_hits(result.renditions.iter().filter(|r| r.cached).count());
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        broker: &impl Publisher,
        message: &Message,
        result: &JobResult,
    ) -> Result<(), QueueError> {
        let mut dead = carried(message);
        dead.routing_key = self.topology.dead_queue();
        dead.headers
            .insert(ATTEMPT_HEADER.into(), message.attempt().to_string());
        dead.headers
            .insert(ROUTING_KEY_HEADER.into(), message.routing_key.clone());
        if let Some(error) = &result.error {
            dead.headers.insert(ERROR_CODE_HEADER.into(), error.code.clone());
            dead.headers.insert(ERROR_MESSAGE_HEADER.into(), error.message.clone());
        }
        broker.publish("", &dead).await?;
        self.metrics.dead_lettered();
        Ok(())
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

/// The job as it was, for a retry or a dead letter: body, routing and
/// correlation, without the broker's own headers.
fn carried(message: &Message) -> Message {
    Message {
        headers: Default::default(),
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
mod tests {
    use super::*;
    use crate::pipeline::PipelineConfig;
    use crate::queue::memory::MemoryBroker;
    use crate::storage::PutOptions;
    use crate::storage::memory::MemoryStore;
    use std::time::Duration;

    fn handler() -> Handler<MemoryStore> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let originals = MemoryStore::new();
        let hero = std::fs::read(root.join("originals/hero.jpg")).unwrap();
        let put = originals.put("originals/hero.jpg", hero, PutOptions::default());
        tokio::runtime::Handle::current().block_on(put).unwrap();
        let config = PipelineConfig {
            render_threads: 1,
            max_link_ttl_s: 900,
            ..PipelineConfig::default()
        };
        Handler::new(
            Pipeline::new(originals, MemoryStore::new(), config),
            Policy::load(&root.join("policy.yaml")).unwrap(),
            Topology::new("", 3, Duration::from_secs(1)),
            Arc::new(Metrics::default()),
        )
    }

    fn job_message(reply_to: Option<&str>) -> Message {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        Message {
            routing_key: "image".into(),
            body: std::fs::read(root.join("fixtures/demo/2-collaborator-2048.json")).unwrap(),
            correlation_id: Some("c-1".into()),
            reply_to: reply_to.map(str::to_string),
            ..Message::default()
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn answers_go_to_reply_to_else_to_the_results_exchange() {
        let (handler, broker) = (tokio::task::block_in_place(handler), MemoryBroker::new());
        handler.handle(&broker, &job_message(Some("amq.gen-1"))).await.unwrap();
        handler.handle(&broker, &job_message(None)).await.unwrap();
        let sent = broker.take();
        assert_eq!(sent.len(), 2);
        assert_eq!((sent[0].0.as_str(), sent[0].1.routing_key.as_str()), ("", "amq.gen-1"));
        assert_eq!(sent[0].1.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(sent[1].0, "rendition.results");
        assert_eq!(sent[1].1.routing_key, "download.done");
        assert_eq!(sent[0].1.body, sent[1].1.body, "the same job id: the same result");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unreadable_jobs_are_answered_and_dead_lettered() {
        let (handler, broker) = (tokio::task::block_in_place(handler), MemoryBroker::new());
        let garbage = Message {
            body: b"{ not json".to_vec(),
            ..job_message(Some("amq.gen-1"))
        };
        handler.handle(&broker, &garbage).await.unwrap();
        let sent = broker.take();
        assert_eq!(sent[0].1.routing_key, "rendition.dead");
        assert_eq!(sent[0].1.header(ERROR_CODE_HEADER), Some("invalid_job"));
        assert_eq!(sent[0].1.header(ROUTING_KEY_HEADER), Some("image"));
        let answer: JobResult = serde_json::from_slice(&sent[1].1.body).unwrap();
        assert_eq!(answer.status, Status::Failed);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_unconfirmed_answer_is_an_error_so_the_job_is_not_acked() {
        let (handler, broker) = (tokio::task::block_in_place(handler), MemoryBroker::new());
        broker.down.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(handler.handle(&broker, &job_message(None)).await.is_err());
    }

    #[test]
    fn transient_failures_retry_until_the_last_attempt() {
        assert_eq!(settle(false, 1, 3), Settlement::Reply);
        assert_eq!(settle(false, 9, 3), Settlement::Reply);
        assert_eq!(settle(true, 1, 3), Settlement::Retry { level: 1 });
        assert_eq!(settle(true, 2, 3), Settlement::Retry { level: 2 });
        assert_eq!(settle(true, 3, 3), Settlement::DeadLetter);
        assert_eq!(settle(true, 1, 1), Settlement::DeadLetter);
    }
}
