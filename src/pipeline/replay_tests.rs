//! A remembered result answers only the job it remembers: the same id
//! with another body (another principal, asset or request) is a new job,
//! and a policy update is decided afresh (docs/security.md, "Replays").

use super::*;
use crate::result::Status;
use crate::storage::PutOptions;
use crate::storage::memory::MemoryStore;

fn policy_text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/policy.yaml")).unwrap()
}

fn policy(text: &str) -> Policy {
    Policy::parse(text, crate::policy::DocFormat::Yaml).unwrap()
}

async fn pipeline(lookups: Lookups) -> Pipeline<MemoryStore> {
    let originals = MemoryStore::new();
    let hero = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/originals/hero.jpg")).unwrap();
    originals
        .put("originals/hero.jpg", hero, PutOptions::default())
        .await
        .unwrap();
    let config = PipelineConfig {
        render_threads: 1,
        lookups,
        ..PipelineConfig::default()
    };
    Pipeline::new(originals, MemoryStore::new(), config)
}

fn job(id: &str, user: &str, rendition: &str) -> Work {
    let body = format!(
        r#"{{"schema":"rendition.job/v1","job_id":"{id}","purpose":"download","principal":{{"user":"{user}"}},
        "asset":{{"id":"a-1","collection":"g-launch","media":"image","source":"originals/hero.jpg"}},
        "request":{{"rendition":{rendition},"format":"jpeg"}}}}"#
    );
    Work::parse(body.as_bytes(), false)
}

async fn run(p: &Pipeline<MemoryStore>, policy: &Policy, work: &Work, repeat: bool) -> Outcome {
    let arrival = Arrival {
        now: Utc::now(),
        repeat,
    };
    p.run(policy, work, arrival, None).await
}

#[tokio::test(flavor = "multi_thread")]
async fn another_principal_under_a_known_job_id_gets_its_own_decision() {
    for lookups in [Lookups::Always, Lookups::OnRepeat] {
        let (p, policy) = (pipeline(lookups).await, policy(&policy_text()));
        let admin = run(&p, &policy, &job("j-1", "u-anna", r#""original""#), false).await;
        assert_eq!(admin.result.status, Status::Done, "{:?}", admin.result);
        // A guest replays the admin's id: never the admin's links.
        let guest = run(&p, &policy, &job("j-1", "u-dan", r#""original""#), true).await;
        assert_eq!(guest.result.status, Status::Denied, "{lookups:?}: {:?}", guest.result);
        assert!(guest.result.renditions.is_empty() && !guest.replayed);
        // And the admin's own repeat still gets the admin's answer, not the guest's.
        let again = run(&p, &policy, &job("j-1", "u-anna", r#""original""#), true).await;
        assert!(again.replayed, "{lookups:?}");
        assert_eq!(again.result, admin.result);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_larger_request_under_a_known_job_id_is_decided_not_replayed() {
    let (p, policy) = (pipeline(Lookups::OnRepeat).await, policy(&policy_text()));
    let small = run(&p, &policy, &job("j-2", "u-ben", r#"{"max_edge":320}"#), false).await;
    assert_eq!(
        small.result.renditions[0].width.max(small.result.renditions[0].height),
        Some(320)
    );
    let large = run(&p, &policy, &job("j-2", "u-ben", r#"{"max_edge":900}"#), true).await;
    assert!(!large.replayed);
    assert_eq!(
        large.result.renditions[0].width.max(large.result.renditions[0].height),
        Some(900)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_demoted_principal_gets_the_new_decision_on_its_next_repeat() {
    let text = policy_text();
    let p = pipeline(Lookups::OnRepeat).await;
    let work = job("j-3", "u-ben", r#"{"max_edge":320}"#);
    let before = run(&p, &policy(&text), &work, false).await;
    assert_eq!(before.result.status, Status::Done, "{:?}", before.result);
    let demoted = text.replace("version: 42", "version: 43").replace(
        "u-ben:  { role: collaborator, groups: [press] }",
        "u-ben:  { role: guest }",
    );
    let after = run(&p, &policy(&demoted), &work, true).await;
    assert!(!after.replayed);
    assert_eq!(after.result.status, Status::Denied, "{:?}", after.result);
    assert_eq!(after.result.policy_version, 43);
}
