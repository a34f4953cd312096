//! How many storage requests a job costs, counted by the in-memory store,
//! so the hot path cannot silently grow a round trip.

use super::*;
use crate::storage::PutOptions;
use crate::storage::memory::{MemoryStore, Requests};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name),
    )
    .unwrap()
}

fn policy() -> Policy {
    let text = String::from_utf8(fixture("policy.yaml")).unwrap();
    Policy::parse(&text, crate::policy::DocFormat::Yaml).unwrap()
}

/// A pipeline over two counting stores, as a worker on S3 runs it.
async fn pipeline(lookups: Lookups) -> Pipeline<MemoryStore> {
    let originals = MemoryStore::new();
    let hero = fixture("originals/hero.jpg");
    originals
        .put("originals/hero.jpg", hero, PutOptions::default())
        .await
        .unwrap();
    originals.reset_requests();
    let config = PipelineConfig {
        render_threads: 1,
        lookups,
        ..PipelineConfig::default()
    };
    Pipeline::new(originals, MemoryStore::new(), config)
}

fn job(id: &str, user: &str, max_edge: u32) -> Work {
    let body = format!(
        r#"{{"schema":"rendition.job/v1","job_id":"{id}","purpose":"download","principal":{{"user":"{user}"}},
        "asset":{{"id":"a-1","collection":"g-launch","media":"image","source":"originals/hero.jpg"}},
        "request":{{"rendition":{{"max_edge":{max_edge}}},"format":"jpeg"}}}}"#
    );
    Work::parse(body.as_bytes(), false)
}

/// Renders (and transcodes) started so far.
fn renders(p: &Pipeline<MemoryStore>) -> usize {
    p.engines.started.load(std::sync::atomic::Ordering::Relaxed)
}

fn requests(p: &Pipeline<MemoryStore>) -> Requests {
    let (o, r) = (p.originals.requests(), p.renditions.requests());
    p.originals.reset_requests();
    p.renditions.reset_requests();
    Requests {
        get: o.get + r.get,
        head: o.head + r.head,
        put: o.put + r.put,
        list: o.list + r.list,
        delete: o.delete + r.delete,
    }
}

async fn run(p: &Pipeline<MemoryStore>, work: &Work, repeat: bool) -> Outcome {
    let arrival = Arrival {
        now: Utc::now(),
        repeat,
    };
    p.run(&policy(), work, arrival, None).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_image_job_costs_three_requests_and_a_repeat_renders_nothing() {
    let p = pipeline(Lookups::OnRepeat).await;
    let fresh = run(&p, &job("j-1", "u-ben", 640), false).await;
    assert_eq!(fresh.result.status, crate::result::Status::Done, "{:?}", fresh.result);
    assert!(!fresh.result.renditions[0].cached);
    let n = requests(&p);
    assert!(n.total() <= 3, "a fresh job made {n:?}");
    assert_eq!((n.get, n.put), (1, 2), "source read; rendition and memo written: {n:?}");

    // The same job id again: the remembered answer, nothing rendered or written.
    assert_eq!(renders(&p), 1);
    let again = run(&p, &job("j-1", "u-ben", 640), false).await;
    assert!(again.replayed);
    assert_eq!(again.result, fresh.result);
    assert_eq!(renders(&p), 1, "a repeat renders nothing");
    assert_eq!(requests(&p).put, 0, "a repeat writes nothing");

    // Redelivered to a worker that never saw it: the memo is read.
    let other = pipeline(Lookups::OnRepeat).await;
    other
        .renditions
        .put(
            &layout::memo_key(&job_of(&job("j-1", "u-ben", 640))),
            serde_json::to_vec(&fresh.result).unwrap(),
            PutOptions::default(),
        )
        .await
        .unwrap();
    other.renditions.reset_requests();
    let redelivered = run(&other, &job("j-1", "u-ben", 640), true).await;
    assert!(redelivered.replayed, "a redelivery answers from the memo");
    assert_eq!(
        requests(&other),
        Requests {
            get: 1,
            ..Requests::default()
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_rendition_for_another_job_is_found_not_rendered() {
    let p = pipeline(Lookups::OnRepeat).await;
    run(&p, &job("j-1", "u-ben", 640), false).await;
    requests(&p);
    let hit = run(&p, &job("j-2", "u-ben", 640), false).await;
    assert!(hit.result.renditions[0].cached, "known to this worker");
    assert_eq!(renders(&p), 1, "found, not rendered");
    let n = requests(&p);
    // The source was read moments ago and the rendition stored here: only
    // the memo is written.
    assert_eq!(
        n,
        Requests {
            put: 1,
            ..Requests::default()
        },
        "{n:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_lookups_always_the_store_is_asked_first() {
    let p = pipeline(Lookups::Always).await;
    run(&p, &job("j-1", "u-ben", 640), false).await;
    let n = requests(&p);
    // As before this issue: memo GET (miss), source HEAD, rendition HEAD
    // (miss), source GET, rendition PUT, memo PUT.
    assert_eq!(
        n,
        Requests {
            get: 2,
            head: 2,
            put: 2,
            ..Requests::default()
        },
        "{n:?}"
    );
    let again = run(&p, &job("j-1", "u-ben", 640), false).await;
    assert!(again.replayed);
}

#[tokio::test(flavor = "multi_thread")]
async fn denials_read_no_source_and_write_only_the_memo() {
    let p = pipeline(Lookups::OnRepeat).await;
    let denied = run(&p, &job("j-3", "u-dan", 640), false).await;
    assert_eq!(denied.result.status, crate::result::Status::Denied);
    assert_eq!(
        requests(&p),
        Requests {
            put: 1,
            ..Requests::default()
        }
    );
}

fn job_of(work: &Work) -> Job {
    match work {
        Work::Job(job) => (**job).clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_logo_is_read_only_by_jobs_that_draw_it_and_once_per_policy_version() {
    let p = pipeline(Lookups::OnRepeat).await;
    let mut doc = policy().document().clone();
    doc.watermark.logo = Some("originals/logo.png".into());
    let with_logo = Policy::from_document(doc).unwrap();
    let arrival = Arrival {
        now: Utc::now(),
        repeat: false,
    };
    let plain = p.run(&with_logo, &job("j-1", "u-ben", 640), arrival, None).await;
    assert_eq!(
        plain.result.status,
        crate::result::Status::Done,
        "no mark, no logo needed"
    );
    assert_eq!(requests(&p).total(), 3, "the missing logo was not even asked for");
    let marked = p.run(&with_logo, &job("j-2", "u-cleo", 640), arrival, None).await;
    assert_eq!(marked.result.error.unwrap().code, "missing_source");

    let logo = fixture("originals/logo.png");
    p.originals
        .put("originals/logo.png", logo, PutOptions::default())
        .await
        .unwrap();
    requests(&p);
    let marked = p.run(&with_logo, &job("j-3", "u-cleo", 640), arrival, None).await;
    assert!(marked.result.renditions[0].watermarked);
    assert_eq!(
        requests(&p).get,
        1,
        "the logo read once (the source was read moments ago)"
    );
    p.run(&with_logo, &job("j-4", "u-cleo", 320), arrival, None).await;
    assert_eq!(requests(&p).get, 0, "the decoded logo is kept for this policy version");
}
