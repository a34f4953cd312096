//! A crafted job never gets around the resolver (docs/security.md), on a
//! real worker against RabbitMQ and S3: publish aimed at the stores' own
//! buckets or anywhere unlisted, sources naming dot-files or carrying a
//! NUL, and another principal's job id are each answered at once (never
//! retried), while good jobs flow.

use serde_json::{Value, json};

use super::lab::{Lab, job};
use rendition::result::Status;
use rendition::storage::Store;

const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);

fn publish_to(id: &str, bucket: &str, prefix: &str) -> Value {
    let mut publish = job("1-admin-original", id);
    publish["purpose"] = json!("publish");
    publish["destination"] = json!({"bucket": bucket, "prefix": prefix});
    publish
}

#[test]
fn crafted_jobs_are_refused_at_once_and_other_jobs_flow() {
    let lab = Lab::new("doors");
    let worker = lab.worker(&[]);
    let (rend, orig, out) = (
        lab.renditions.bucket_name().to_string(),
        lab.originals.bucket_name().to_string(),
        format!("{}-out", lab.name),
    );
    let refused = [
        publish_to("to-renditions", &rend, ""),
        publish_to("to-audit", &rend, "audit/date=2026-12-07"),
        publish_to("to-results", &rend, "results"),
        publish_to("to-originals", &orig, "originals"),
        publish_to("unlisted", &format!("{}-other", lab.name), ""),
        publish_to("climbing-out", &out, "launch/../../x"),
    ];
    let mut sources = Vec::new();
    for (id, source) in [
        ("dot-file", ".link-secret"),
        ("dot-dir", "a/.hidden/b.jpg"),
        ("nul", "hero\u{0}.jpg"),
    ] {
        let mut j = job("2-collaborator-2048", id);
        j["asset"]["source"] = json!(source);
        sources.push(j);
    }
    for j in refused.iter().chain(&sources) {
        lab.send(j);
    }
    for i in 0..2 {
        lab.send(&job("2-collaborator-2048", &format!("good-{i}")));
    }
    let replies = lab.replies(refused.len() + sources.len() + 2, MINUTE);
    for (id, answer) in &replies {
        if id.starts_with("good-") {
            assert_eq!(answer.status, Status::Done, "{answer:?}");
            continue;
        }
        let error = answer.error.as_ref().unwrap_or_else(|| panic!("{id}: {answer:?}"));
        assert_eq!(
            (answer.status, error.code.as_str()),
            (Status::Failed, "invalid_job"),
            "{id}: {answer:?}"
        );
        assert!(answer.renditions.is_empty(), "{id}");
    }
    let publishes = replies
        .iter()
        .filter(|(id, _)| refused.iter().any(|j| j["job_id"] == id.as_str()));
    for (id, answer) in publishes {
        let message = &answer.error.as_ref().unwrap().message;
        assert!(
            message.contains("RENDITION_PUBLISH_DESTINATIONS") || message.contains("prefix"),
            "{id}: {message}"
        );
    }
    // Nothing was written where a publish was aimed, nothing retried; only
    // the jobs that do not parse are dead-lettered too (as every unreadable
    // job is), not the refused publishes.
    let listed = lab.rt.block_on(lab.renditions.list("")).unwrap();
    assert!(
        listed
            .iter()
            .all(|k| !k.starts_with("results/") || k.ends_with(".json")),
        "{listed:?}"
    );
    assert!(!listed.iter().any(|k| k.ends_with("launch-hero.jpg")), "{listed:?}");
    let metrics = worker.metrics();
    assert!(metrics.contains("rendition_retries_total 0\n"), "{metrics}");
    let dead = format!("rendition_dead_letters_total {}\n", sources.len());
    assert!(metrics.contains(&dead), "{metrics}");
    lab.check_audit();
}

#[test]
fn another_principals_job_id_gets_its_own_decision() {
    let lab = Lab::new("replay");
    let _worker = lab.worker(&[]);
    let admin = job("1-admin-original", "shared-id");
    lab.send(&admin);
    let first = lab.reply();
    assert_eq!(first.status, Status::Done, "{first:?}");
    // A guest sends the admin's id: a decision of its own, no admin links.
    let mut guest = admin.clone();
    guest["principal"] = json!({"user": "u-dan"});
    lab.send(&guest);
    let stolen = lab.reply();
    assert_eq!(stolen.status, Status::Denied, "{stolen:?}");
    assert!(stolen.renditions.is_empty());
    // The admin's repeat is still the admin's answer.
    lab.send(&admin);
    assert_eq!(lab.reply(), first);
    lab.check_audit();
}
