//! The audit trail through a real worker: every answer leaves one record in
//! the renditions bucket (read back with `rendition audit`) and one message
//! on the audit exchange; repeats and redeliveries add none.

use std::time::Duration;

use rendition::audit::AuditRecord;
use rendition::policy::Rule;
use rendition::result::Status;
use serde_json::json;

use crate::lab::{Lab, job};

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn every_answered_job_has_one_audit_record_in_the_bucket_and_on_the_exchange() {
    let lab = Lab::new("audit");
    let tap = lab.audit_queue();
    let worker = lab.worker(&[("RENDITION_WORKER_ID", "pod-audit-0")]);
    lab.send(&job("1-admin-original", "a-admin"));
    lab.send(&job("3-restricted-1024-watermarked", "a-restricted"));
    let mut share = job("2-collaborator-2048", "a-share");
    share["principal"] = json!({"share": "s-7", "email": "buyer@example.com"});
    share["request"]["rendition"] = json!("proxy");
    lab.send(&share);
    let mut stranger = job("2-collaborator-2048", "a-denied");
    stranger["principal"] = json!({"user": "u-nobody"});
    lab.send(&stranger);
    let mut missing = job("2-collaborator-2048", "a-failed");
    missing["asset"]["source"] = json!("originals/nowhere.jpg");
    lab.send(&missing);
    lab.send_raw("image", b"{ not a job".to_vec(), "a-garbage");
    let first = lab.replies(6, MINUTE);
    // The same job ids again: answered again from memory, recorded once.
    lab.send(&job("1-admin-original", "a-admin"));
    lab.send(&stranger);
    lab.replies(2, MINUTE);
    lab.check_audit();

    let all = lab.audit(&[]);
    assert_eq!(all.len(), 6);
    let by_id = |id: &str| all.iter().find(|r| r.job_id == id).unwrap();
    let restricted = by_id("a-restricted");
    let decision = restricted.decision.as_ref().unwrap();
    assert!(decision.allowed && decision.watermark);
    assert_eq!(decision.role.as_deref(), Some("restricted"));
    assert!(restricted.renditions[0].watermarked);
    assert_eq!(restricted.renditions[0].width, Some(1024));
    assert_eq!(restricted.worker, "pod-audit-0");
    let denied = by_id("a-denied");
    assert_eq!(denied.status, Status::Denied);
    assert_eq!(denied.decision.as_ref().unwrap().rule, Rule::UnknownUser);
    assert!(denied.renditions.is_empty());
    assert_eq!(by_id("a-failed").error.as_ref().unwrap().code, "missing_source");
    assert!(
        all.iter()
            .any(|r| r.job_id == "unknown" && r.error.as_ref().unwrap().code == "invalid_job")
    );
    let handed_out = |id: &str| first.iter().find(|(c, _)| c == id).map(|(_, r)| r.renditions.clone());
    assert_eq!(
        by_id("a-admin").renditions[0].sha256,
        handed_out("a-admin").unwrap()[0].sha256
    );

    // The filters: by principal (a user, a share's recipient), asset, time.
    let ids = |records: Vec<AuditRecord>| records.into_iter().map(|r| r.job_id).collect::<Vec<_>>();
    assert_eq!(ids(lab.audit(&["--principal", "buyer@example.com"])), ["a-share"]);
    assert_eq!(ids(lab.audit(&["--principal", "s-7"])), ["a-share"]);
    let admin = ids(lab.audit(&["--principal", "u-anna", "--asset", "a-1001"]));
    assert_eq!(admin, ["a-admin"]);
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    assert_eq!(lab.audit(&["--since", &hour_ago]).len(), 6);
    assert!(lab.audit(&["--until", &hour_ago]).is_empty());
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    assert!(lab.audit(&["--since", &tomorrow]).is_empty());

    // On the exchange: at least once, the job id as message id.
    let published = lab.drain(&tap);
    assert!(published.len() >= 8, "{} published", published.len());
    let keys: Vec<&str> = published.iter().map(|m| m.routing_key.as_str()).collect();
    for key in ["download.done", "download.denied", "download.failed", "unknown.failed"] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    for message in &published {
        let record: AuditRecord = serde_json::from_slice(&message.body).unwrap();
        assert_eq!(message.message_id.as_deref(), Some(record.job_id.as_str()));
        assert!(all.contains(&record), "what is published is what is stored");
    }
    let metrics = worker.metrics();
    assert!(metrics.contains("rendition_jobs_total{status=\"done\"} 4"), "{metrics}");
}
