//! The handler's routing, on the in-memory broker and stores.

use super::*;
use crate::audit::{self, AuditQuery};
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

async fn audit_trail(handler: &Handler<MemoryStore>) -> Vec<AuditRecord> {
    audit::read(handler.pipeline.renditions(), &AuditQuery::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_leaves_one_audit_record_in_the_store_and_on_the_exchange() {
    let (handler, broker) = (tokio::task::block_in_place(handler), MemoryBroker::new());
    let handler = handler.with_worker_id("pod-a-1");
    let done = job_from("audited-done", "originals/hero.jpg");
    let missing = job_from("audited-failed", "originals/nowhere.jpg");
    let garbage = Message {
        body: b"{ not json".to_vec(),
        ..job_message(None)
    };
    for message in [&done, &missing, &garbage] {
        handler.handle(&broker, message).await.unwrap();
    }
    // A redelivery, after this worker forgot it answered: the same record.
    let redelivered = Message {
        redelivered: true,
        ..done.clone()
    };
    handler.handle(&broker, &redelivered).await.unwrap();
    let answers = broker.take();
    assert_eq!(answers.len(), 5, "four answers and one dead letter");

    let trail = audit_trail(&handler).await;
    let ids: Vec<_> = trail.iter().map(|r| (r.job_id.as_str(), r.status)).collect();
    assert_eq!(trail.len(), 3, "{ids:?}");
    let done = trail.iter().find(|r| r.job_id == "audited-done").unwrap();
    let result = answer(&answers[..1]);
    assert_eq!(done.worker, "pod-a-1");
    assert_eq!(done.decision, result.decision);
    assert_eq!(done.renditions[0].sha256, result.renditions[0].sha256);
    assert_eq!(done.renditions[0].expires_at, result.renditions[0].expires_at);
    assert_eq!(done.asset.as_deref(), Some("a-1001"));
    let failed = trail.iter().find(|r| r.job_id == "audited-failed").unwrap();
    assert_eq!(failed.error.as_ref().unwrap().code, "missing_source");
    assert!(
        trail
            .iter()
            .any(|r| r.job_id == "unknown" && r.status == Status::Failed)
    );

    let published = broker.take_audit();
    assert_eq!(
        published.len(),
        4,
        "at least once on the exchange, with the job id to dedup"
    );
    assert_eq!(published[0].routing_key, "download.done");
    assert_eq!(published[0].message_id.as_deref(), Some("audited-done"));
    let first: AuditRecord = serde_json::from_slice(&published[0].body).unwrap();
    let again: AuditRecord = serde_json::from_slice(&published[3].body).unwrap();
    assert_eq!(first, again, "a replayed answer is the same record");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_cannot_be_kept_leaves_the_job_unanswered_and_unacked() {
    let (handler, broker) = (tokio::task::block_in_place(handler), MemoryBroker::new());
    let refuse =
        |prefix: Option<&str>| *handler.pipeline.renditions().refused.lock().unwrap() = prefix.map(str::to_string);
    refuse(Some("audit/"));
    let job = job_from("audit-refused", "originals/hero.jpg");
    let verdict = handler.supervise(&broker, &job, handler.handle(&broker, &job)).await;
    assert_eq!(verdict, Verdict::Requeue, "back to the queue, not acked");
    assert!(broker.take().is_empty(), "no answer without its record");
    // Once the record can be written, the redelivery is answered (replayed).
    refuse(None);
    let again = Message {
        redelivered: true,
        ..job.clone()
    };
    assert_eq!(
        handler
            .supervise(&broker, &again, handler.handle(&broker, &again))
            .await,
        Verdict::Ack
    );
    assert_eq!(answer(&broker.take()).status, Status::Done);
    assert_eq!(audit_trail(&handler).await.len(), 1);
}

/// A worker killed after a dead-lettered answer's record but before the
/// answer went out: its redelivery must answer, record and dead-letter the
/// same, even though the fault has passed meanwhile (one record per answer
/// upstream can have received).
#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_dead_letter_is_answered_and_recorded_the_same() {
    let (handler, broker) = (tokio::task::block_in_place(handler), MemoryBroker::new());
    let refuse =
        |prefix: Option<&str>| *handler.pipeline.renditions().refused.lock().unwrap() = prefix.map(str::to_string);
    let mut last = job_from("dead-once", "originals/hero.jpg");
    last.headers.insert(ATTEMPT_HEADER.into(), "3".into());
    refuse(Some("renditions/"));
    handler.handle(&broker, &last).await.unwrap();
    let first = broker.take();
    assert_eq!(first[0].1.routing_key, "rendition.dead", "{first:?}");
    let failed = answer(&first[1..]);
    assert_eq!(failed.status, Status::Failed);
    // The fault passes; the broker redelivers (the ack was lost with the worker).
    refuse(None);
    let again = Message {
        redelivered: true,
        ..last.clone()
    };
    handler.handle(&broker, &again).await.unwrap();
    let second = broker.take();
    assert_eq!(
        second[0].1.routing_key, "rendition.dead",
        "dead-lettered again: {second:?}"
    );
    assert_eq!(answer(&second[1..]), failed, "the same answer");
    assert_eq!(audit_trail(&handler).await.len(), 1, "one record");
}
