//! Priorities on the real broker: a bulk backlog does not hold up
//! interactive jobs queued after it, and the backlog still completes.

use std::time::Duration;

use rendition::result::Status;
use serde_json::json;

use crate::lab::{Lab, job};

const BULK: usize = 300;
const INTERACTIVE: usize = 20;

#[test]
fn interactive_jobs_overtake_a_bulk_backlog_that_still_completes() {
    let lab = Lab::new("prio");
    // Everything is queued before a worker exists: the backlog is real.
    for i in 0..BULK {
        let mut bulk = job("2-collaborator-2048", &format!("bulk-{i}"));
        bulk["priority"] = json!("bulk");
        bulk["request"]["rendition"] = json!({"max_edge": 64 + i % 100});
        lab.send(&bulk);
    }
    for i in 0..INTERACTIVE {
        let mut interactive = job("2-collaborator-2048", &format!("live-{i}"));
        interactive["request"]["rendition"] = json!({"max_edge": 300 + i});
        lab.send(&interactive);
    }
    let worker = lab.worker(&[("RENDITION_CONCURRENCY", "2")]);
    let replies = lab.replies(BULK + INTERACTIVE, Duration::from_secs(300));
    assert!(
        replies.iter().all(|(_, r)| r.status == Status::Done),
        "every job is done"
    );
    let order: Vec<&str> = replies.iter().map(|(id, _)| id.as_str()).collect();
    let last_live = order.iter().rposition(|id| id.starts_with("live-")).unwrap();
    let bulk_before = order[..last_live].iter().filter(|id| id.starts_with("bulk-")).count();
    // Interactive starts first whenever both wait, bulk every fifth start:
    // about INTERACTIVE / 4 bulk jobs finish first, far from most of them.
    assert!(
        bulk_before < BULK / 4,
        "{bulk_before} of {BULK} bulk jobs finished before the last interactive one: {order:?}"
    );
    assert!(bulk_before > 0, "bulk is not starved while interactive work waits");
    let metrics = worker.metrics();
    assert!(
        metrics.contains("rendition_lane_moves_total 0\n"),
        "sent to their lanes: {metrics}"
    );
    lab.check_audit();
}
