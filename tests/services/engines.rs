//! Engine processes under a real worker (docs/security.md#engine-processes):
//! a source that crashes its engine fails its own job, once, with
//! `engine_crashed`, and is dead-lettered; the worker and every other job
//! are untouched.

use std::time::Duration;

use rendition::isolated::attempts::SEGFAULT_MARK;
use rendition::result::Status;
use rendition::storage::{PutOptions, Store};
use serde_json::{Value, json};

use crate::lab::{Lab, job};

const MINUTES: Duration = Duration::from_secs(180);

#[test]
fn a_source_that_crashes_its_engine_fails_only_its_own_job() {
    let lab = Lab::new("engines");
    let crasher = [SEGFAULT_MARK, b" and then anything"].concat();
    lab.rt
        .block_on(lab.originals.put("originals/crash.jpg", crasher, PutOptions::default()))
        .unwrap();
    let mut worker = lab.worker(&[]);
    for i in 0..50 {
        let mut j = job("2-collaborator-2048", &format!("job-{i}"));
        // Each its own asset, so each is rendered, not found made.
        j["asset"]["id"] = json!(format!("a-{i}"));
        if i == 25 {
            j["asset"]["source"] = json!("originals/crash.jpg");
        }
        lab.send(&j);
    }
    let replies = lab.replies(50, MINUTES);
    let failed: Vec<_> = replies.iter().filter(|(_, r)| r.status != Status::Done).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let (id, result) = failed[0];
    assert_eq!(id, "job-25");
    let error = result.error.as_ref().unwrap();
    assert_eq!(error.code, "engine_crashed", "{error:?}");
    assert!(error.message.contains("SIGSEGV"), "{error:?}");
    // Answered once each: nothing was redelivered.
    assert!(lab.try_replies(1, Duration::from_secs(3)).is_empty());
    let mut ids: Vec<_> = replies.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50);

    let (ok, listing) = lab.dlq(&["list"]);
    assert!(ok);
    let dead: Vec<Value> = listing.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(dead.len(), 1, "{listing}");
    assert_eq!(dead[0]["job_id"], "job-25");
    assert_eq!(dead[0]["error"]["code"], "engine_crashed");

    assert!(worker.child.try_wait().unwrap().is_none(), "the worker lives");
    let metrics = worker.metrics();
    assert!(metrics.contains("rendition_retries_total 0\n"), "{metrics}");
    assert!(metrics.contains("rendition_engine_crashes_total 2\n"), "{metrics}");
    // Tried once more in a new engine: two deaths, one job.
    assert_eq!(worker.log_text().matches("an engine process died").count(), 1);
    lab.check_audit();
}
