//! One delivery, start to finish: run the job (or the revoke), then route
//! its answer: reply, retry after a delay, or dead-letter. The caller acks
//! only when this returns `Ok`, i.e. once the broker confirmed the answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::outage::StorageGate;
use crate::ops::{Metrics, Stage};
use crate::pipeline::{Arrival, Outcome, Pipeline};
use crate::policy::{CurrentPolicy, Policy};
use crate::queue::{
    ATTEMPT_HEADER, ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER, Message, Publisher, QueueError, RETRY_LEVEL_HEADER,
    REVOKE_ROUTING_KEY, ROUTING_KEY_HEADER, Topology, lane_key, lane_of,
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
    /// Whether the stores answer; see [`super::outage`].
    pub storage: StorageGate,
}

/// How long a job waits out a storage outage unless told otherwise.
pub const STORAGE_WAIT: Duration = Duration::from_secs(300);

impl<S: Store> Handler<S> {
    pub fn new(pipeline: Pipeline<S>, policy: Policy, topology: Topology, metrics: Arc<Metrics>) -> Handler<S> {
        Handler {
            pipeline: Arc::new(pipeline),
            policy: Arc::new(CurrentPolicy::new(policy)),
            topology,
            metrics,
            storage: StorageGate::new(STORAGE_WAIT),
        }
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
        let outcome = self.run_through_outages(broker, message, &work).await;
        self.metrics.observe(Stage::Pipeline, started.elapsed());
        self.note_engine_panic(&outcome);
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
            let on_storage = outcome.result.error.as_ref().is_some_and(|e| e.code == "storage_error");
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
    pub(super) async fn reply(
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

    pub(super) async fn dead_letter(
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
    use crate::worker::supervise::Verdict;
    use std::time::Duration;

    fn handler() -> Handler<MemoryStore> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let originals = MemoryStore::new();
        let hero = std::fs::read(root.join("originals/hero.jpg")).unwrap();
        let put = originals.put("originals/hero.jpg", hero, PutOptions::default());
        tokio::runtime::Handle::current().block_on(put).unwrap();
        let poison = crate::pipeline::PANIC_TRIGGER.to_vec();
        let put = originals.put("originals/poison.jpg", poison, PutOptions::default());
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
    async fn a_job_sent_to_the_other_lane_moves_to_its_own_unrun_with_its_attempts() {
        let (handler, broker) = (tokio::task::block_in_place(handler), MemoryBroker::new());
        let mut job: serde_json::Value = serde_json::from_slice(&job_message(None).body).unwrap();
        job["priority"] = "bulk".into();
        let mut bulk = Message {
            body: serde_json::to_vec(&job).unwrap(),
            ..job_message(Some("amq.gen-1"))
        };
        bulk.headers.insert(ATTEMPT_HEADER.into(), "2".into());
        handler.handle(&broker, &bulk).await.unwrap();
        let sent = broker.take();
        assert_eq!(sent.len(), 1, "moved, not answered");
        assert_eq!(
            (sent[0].0.as_str(), sent[0].1.routing_key.as_str()),
            ("rendition.jobs", "bulk.image")
        );
        assert_eq!(sent[0].1.attempt(), 2);
        assert_eq!(sent[0].1.reply_to.as_deref(), Some("amq.gen-1"));
        assert!(sent[0].1.mandatory, "a move no queue takes is an error, not a loss");
        // On its lane it runs.
        handler.handle(&broker, &sent[0].1).await.unwrap();
        let answer: JobResult = serde_json::from_slice(&broker.take()[0].1.body).unwrap();
        assert_eq!(answer.status, Status::Done);
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

    fn job_from(id: &str, source: &str) -> Message {
        let mut job: serde_json::Value = serde_json::from_slice(&job_message(None).body).unwrap();
        job["job_id"] = id.into();
        job["asset"]["source"] = source.into();
        Message {
            body: serde_json::to_vec(&job).unwrap(),
            ..job_message(None)
        }
    }

    fn answer(sent: &[(String, Message)]) -> JobResult {
        serde_json::from_slice(&sent.last().unwrap().1.body).unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_engine_panic_fails_its_job_is_counted_and_the_next_job_runs() {
        let (handler, broker) = (tokio::task::block_in_place(handler), MemoryBroker::new());
        let poison = job_from("poison-1", "originals/poison.jpg");
        let verdict = handler
            .supervise(&broker, &poison, handler.handle(&broker, &poison))
            .await;
        assert_eq!(verdict, Verdict::Ack, "answered, so acked");
        let failed = answer(&broker.take());
        assert_eq!(failed.status, Status::Failed);
        let error = failed.error.unwrap();
        assert_eq!(error.code, "engine_error");
        assert!(error.message.contains("an injected engine panic"), "{}", error.message);
        let metrics = handler.metrics.render();
        assert!(metrics.contains("rendition_engine_panics_total 1\n"), "{metrics}");
        assert!(
            metrics.contains("rendition_task_panics_total 0\n"),
            "caught on the pool"
        );

        let next = job_from("after-poison", "originals/hero.jpg");
        assert_eq!(
            handler.supervise(&broker, &next, handler.handle(&broker, &next)).await,
            Verdict::Ack
        );
        let done = answer(&broker.take());
        assert_eq!(done.status, Status::Done, "{done:?}");
        assert_eq!(done.renditions[0].width, Some(2048));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_task_panic_requeues_once_then_dead_letters_with_the_reason() {
        let (handler, broker) = (tokio::task::block_in_place(handler), MemoryBroker::new());
        let first = job_from("task-panic", "originals/hero.jpg");
        let panics = || async { panic!("a bug in the task") };
        assert_eq!(handler.supervise(&broker, &first, panics()).await, Verdict::Requeue);
        assert!(broker.take().is_empty(), "nothing answered: the job goes back");
        let again = Message {
            redelivered: true,
            ..first.clone()
        };
        assert_eq!(handler.supervise(&broker, &again, panics()).await, Verdict::Ack);
        let sent = broker.take();
        assert_eq!(sent[0].1.routing_key, "rendition.dead");
        assert_eq!(sent[0].1.header(ERROR_CODE_HEADER), Some("engine_error"));
        assert!(
            sent[0]
                .1
                .header(ERROR_MESSAGE_HEADER)
                .unwrap()
                .contains("a bug in the task")
        );
        let failed = answer(&sent);
        assert_eq!((failed.job_id.as_str(), failed.status), ("task-panic", Status::Failed));
        assert!(handler.metrics.render().contains("rendition_task_panics_total 2\n"));
        // Could the dead letter not be sent, the broker is left to dead-letter it.
        broker.down.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(handler.supervise(&broker, &again, panics()).await, Verdict::Reject);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_storage_outage_is_waited_out_without_spending_an_attempt() {
        let mut handler = tokio::task::block_in_place(handler);
        handler.storage.probe_every = Duration::from_millis(20);
        let handler = Arc::new(handler);
        let broker = Arc::new(MemoryBroker::new());
        let store_down = |down: bool| {
            let renditions = handler.pipeline.renditions();
            renditions.down.store(down, std::sync::atomic::Ordering::SeqCst);
        };
        store_down(true);
        let job = job_from("through-outage", "originals/hero.jpg");
        let running = tokio::spawn({
            let (handler, broker) = (handler.clone(), broker.clone());
            async move { handler.handle(&*broker, &job).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!running.is_finished(), "the job waits for the store");
        assert!(!handler.storage.is_up(), "no new jobs are taken");
        assert!(handler.metrics.render().contains("rendition_storage_paused 1\n"));
        store_down(false);
        running.await.unwrap().unwrap();
        let sent = broker.take();
        assert_eq!(sent.len(), 1, "one answer, no retry: {sent:?}");
        assert_eq!(answer(&sent).status, Status::Done);
        assert!(handler.storage.is_up());
        let metrics = handler.metrics.render();
        assert!(metrics.contains("rendition_retries_total 0\n"), "{metrics}");
        assert!(metrics.contains("rendition_storage_outages_total 1\n"), "{metrics}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_outage_longer_than_the_wait_takes_the_usual_retry() {
        let handler = tokio::task::block_in_place(handler).with_storage_wait(Duration::from_millis(50));
        let broker = MemoryBroker::new();
        handler
            .pipeline
            .renditions()
            .down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        handler
            .handle(&broker, &job_from("long-outage", "originals/hero.jpg"))
            .await
            .unwrap();
        let sent = broker.take();
        assert_eq!(sent[0].0, "rendition.retry", "{sent:?}");
        assert_eq!(sent[0].1.header(ATTEMPT_HEADER), Some("2"));
        // No job waits any more, yet the worker resumes once the store answers.
        handler.recheck_storage().await;
        assert!(!handler.storage.is_up(), "still down");
        handler
            .pipeline
            .renditions()
            .down
            .store(false, std::sync::atomic::Ordering::SeqCst);
        handler.recheck_storage().await;
        assert!(handler.storage.is_up(), "the consume loop's check lifted the pause");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_unconfirmed_answer_requeues() {
        let (handler, broker) = (tokio::task::block_in_place(handler), MemoryBroker::new());
        broker.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let job = job_message(None);
        assert_eq!(
            handler.supervise(&broker, &job, handler.handle(&broker, &job)).await,
            Verdict::Requeue
        );
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
