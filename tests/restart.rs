//! Restarting RabbitMQ mid-run. A test binary of its own: cargo runs test
//! binaries one after another, so no other test sees the broker go away.
//! Like `services`, it needs the real services and is left out of a plain
//! `cargo test` (`test = false`); scripts/test runs it.

#[allow(dead_code)] // the other binaries use the rest
#[path = "common/mod.rs"]
mod common;
#[allow(dead_code)] // the worker tests use the rest
#[path = "services/lab.rs"]
mod lab;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use lab::{Lab, job};
use rendition::result::{JobResult, Status};
use serde_json::json;

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl")
        .args(args)
        .status()
        .expect("rabbitmqctl runs");
    assert!(status.success(), "rabbitmqctl {args:?}");
}

#[test]
fn a_broker_restart_loses_no_job_and_upstream_sees_each_answer_once() {
    let lab = Lab::new("restart");
    let workers = [lab.worker(&[]), lab.worker(&[])];
    let ids: Vec<String> = (0..120).map(|i| format!("r-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let mut j = job("2-collaborator-2048", id);
        j["request"]["rendition"] = json!({"max_edge": 1200 + i});
        lab.send(&j);
    }
    let mut answers: BTreeMap<String, Vec<JobResult>> = BTreeMap::new();
    for (id, result) in lab.replies(5, Duration::from_secs(120)) {
        answers.entry(id).or_default().push(result);
    }

    rabbitmqctl(&["stop_app"]);
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
    lab.connect();

    let deadline = Instant::now() + Duration::from_secs(180);
    while answers.len() < ids.len() {
        assert!(Instant::now() < deadline, "answered {} of {}", answers.len(), ids.len());
        let Some((id, result)) = lab.try_replies(1, Duration::from_secs(60)).pop() else {
            let _ = Command::new("rabbitmqctl")
                .args([
                    "list_queues",
                    "name",
                    "type",
                    "messages_ready",
                    "messages_unacknowledged",
                    "consumers",
                ])
                .status();
            let logs: Vec<String> = workers.iter().map(|w| w.log_text()).collect();
            panic!(
                "answered {} of {}; worker logs:\n{}",
                answers.len(),
                ids.len(),
                logs.join("\n----\n")
            );
        };
        answers.entry(id).or_default().push(result);
    }
    let repeats: usize = answers.values().map(|a| a.len() - 1).sum();
    eprintln!(
        "{} jobs answered; {repeats} answered twice (identically)",
        answers.len()
    );
    for (id, results) in &answers {
        assert_eq!(results[0].status, Status::Done, "{id}: {:?}", results[0]);
        assert!(results.iter().all(|r| r == &results[0]), "{id}: a repeat differs");
    }
    let mut after_restart = 0;
    for worker in &workers {
        let ready = reqwest::blocking::get(format!("http://{}/readyz", worker.http)).unwrap();
        assert_eq!(ready.status(), 200, "the worker reconnected:\n{}", worker.log_text());
        let log = worker.log_text();
        let (_, after) = log.split_once("broker unavailable").expect("it saw the restart");
        after_restart += after.matches(" job ").count();
    }
    eprintln!("{after_restart} jobs were run after the restart");
    assert!(after_restart > 0, "the restart came mid-run, not after it");
    lab.check_audit();
}
