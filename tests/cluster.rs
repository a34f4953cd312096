//! Jobs through a three-node RabbitMQ cluster (scripts/cluster) while its
//! nodes stop and come back: the node a worker consumes from, then the
//! node leading the job queue, then all three. Every job is answered
//! (repeats identical), the workers move to live nodes, nothing is
//! dead-lettered. A binary of its own, left out of a plain `cargo test`
//! (`test = false`); scripts/test runs it. It starts the cluster itself and
//! fails if it cannot: it is never skipped.

#[allow(dead_code)] // the other binaries use the rest
#[path = "common/mod.rs"]
mod common;
#[allow(dead_code)] // the worker tests use the rest
#[path = "services/lab.rs"]
mod lab;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use lab::{Lab, Worker, job};
use rendition::queue::{JobQueue, Priority};
use rendition::result::{JobResult, Status};
use serde_json::json;

/// `scripts/cluster ARGS`, which must succeed; its stdout.
fn cluster(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster");
    let out = Command::new(script).args(args).output().expect("scripts/cluster runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scripts/cluster {args:?} failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Node N of scripts/cluster listens on 5680 + N.
fn node_number(node: &str) -> String {
    let port: u16 = node.rsplit(':').next().unwrap().parse().unwrap();
    assert!((5681..=5683).contains(&port), "{node} is not a cluster node");
    (port - 5680).to_string()
}

fn failovers(worker: &Worker) -> u64 {
    let metrics = worker.metrics();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("rendition_broker_failovers_total "))
        .unwrap_or_else(|| panic!("no failover counter:\n{metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Every answer to `ids`, reconnecting the lab when its node went away.
fn answers(lab: &Lab, ids: &[String], workers: &[Worker]) -> BTreeMap<String, Vec<JobResult>> {
    let mut answers: BTreeMap<String, Vec<JobResult>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    while ids.iter().any(|id| !answers.contains_key(id)) {
        if Instant::now() > deadline {
            let logs: Vec<String> = workers.iter().map(Worker::log_text).collect();
            panic!(
                "{} of {} answered; worker logs:\n{}",
                answers.len(),
                ids.len(),
                logs.join("\n----\n")
            );
        }
        let got = lab.try_replies(ids.len(), Duration::from_secs(10));
        if got.is_empty() {
            lab.connect();
        }
        for (id, result) in got {
            answers.entry(id).or_default().push(result);
        }
    }
    answers
}

fn send_batch(lab: &Lab, name: &str, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("{name}-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let mut j = job("2-collaborator-2048", id);
        j["request"]["rendition"] = json!({"max_edge": 600 + i});
        lab.send(&j);
    }
    ids
}

fn check(answers: &BTreeMap<String, Vec<JobResult>>) -> usize {
    for (id, results) in answers {
        assert_eq!(results[0].status, Status::Done, "{id}: {:?}", results[0]);
        assert!(results.iter().all(|r| r == &results[0]), "{id}: a repeat differs");
    }
    answers.values().map(|a| a.len() - 1).sum()
}

/// Stops node `n` once the first answers of a batch are in, while the rest
/// are in flight or queued; returns every answer of the batch.
fn stop_mid_batch(lab: &Lab, workers: &[Worker], batch: &str, n: &str) -> BTreeMap<String, Vec<JobResult>> {
    let ids = send_batch(lab, batch, 40);
    let mut early = BTreeMap::new();
    for (id, result) in lab.replies(3, Duration::from_secs(120)) {
        early.insert(id, vec![result]);
    }
    cluster(&["stop", n]);
    // The lab may have been on that node: its unread replies wait in the
    // quorum reply queue on the nodes still up.
    lab.connect();
    let mut all = answers(
        lab,
        &ids.iter()
            .filter(|i| !early.contains_key(*i))
            .cloned()
            .collect::<Vec<_>>(),
        workers,
    );
    all.extend(early);
    all
}

#[test]
fn stopping_a_workers_node_and_the_queue_leader_loses_no_job_and_the_workers_move_on() {
    cluster(&["start"]);
    let lab = Lab::on_broker("cluster", &cluster(&["url"]));
    let workers = [lab.worker(&[]), lab.worker(&[])];
    let nodes: Vec<String> = workers.iter().map(|w| w.broker_node().expect("ready")).collect();
    eprintln!("workers on {nodes:?}");

    // (a) The node worker 0 consumes from.
    let victim = node_number(&nodes[0]);
    let stopped = Instant::now();
    let a = stop_mid_batch(&lab, &workers, "a", &victim);
    let moved_to = workers[0]
        .broker_node()
        .expect("worker 0 is ready while its node is down");
    eprintln!(
        "(a) stopped node {victim}; worker 0 moved to {moved_to}; batch answered in {:?}",
        stopped.elapsed()
    );
    assert_ne!(node_number(&moved_to), victim, "worker 0 left the stopped node");
    assert!(failovers(&workers[0]) >= 1, "{}", workers[0].metrics());
    assert!(workers[0].log_text().contains("trying the next node"));
    let repeats_a = check(&a);

    // (c) It comes back and rejoins: three nodes run, the job queue has its
    // member there again, and jobs flow.
    cluster(&["start", &victim]);
    let status = cluster(&["status"]);
    assert_eq!(status.matches(" running on ").count(), 3, "{status}");
    let queue = lab.topology.lane_queue(JobQueue::Image, Priority::Interactive);
    let members = Command::new("rabbitmqctl")
        .args([
            "-q",
            "-n",
            &format!("rendition-c{victim}@localhost"),
            "list_queues",
            "name",
            "members",
            "online",
        ])
        .output()
        .unwrap();
    let members = String::from_utf8_lossy(&members.stdout).to_string();
    let line = members
        .lines()
        .find(|l| l.starts_with(&queue))
        .unwrap_or_else(|| panic!("{queue}:\n{members}"));
    assert_eq!(
        line.matches(&format!("rendition-c{victim}@localhost")).count(),
        2,
        "a member, online: {line}"
    );
    let c = answers(&lab, &send_batch(&lab, "c", 10), &workers);
    let repeats_c = check(&c);

    // (b) The node leading the job queue.
    let leader = cluster(&["leader", &queue]);
    let b = stop_mid_batch(&lab, &workers, "b", &leader);
    eprintln!("(b) stopped node {leader}, the leader of {queue}");
    let repeats_b = check(&b);
    let now_leader = cluster(&["leader", &queue]);
    assert_ne!(now_leader, leader, "another node leads the queue");
    cluster(&["start", &leader]);

    // (d) The whole cluster down, node 1 first and node 3 last, as a
    // machine's stop can leave it, then `scripts/cluster start`: node 1
    // waits at boot for the peers that stopped after it, so the script must
    // launch all three before waiting for any (it hung 10 minutes in CI
    // when it started them one by one). The workers wait it out and the
    // queued jobs are not lost.
    let d = send_batch(&lab, "d", 10);
    for n in ["1", "2", "3"] {
        cluster(&["stop", n]);
    }
    cluster(&["start"]);
    let status = cluster(&["status"]);
    assert_eq!(status.matches(" running on ").count(), 3, "{status}");
    lab.connect();
    let d = answers(&lab, &d, &workers);
    let repeats_d = check(&d);

    // One worker may have answered batch (d) while the other still waited
    // out its backoff (up to 10 s) after the whole cluster went away.
    for w in &workers {
        let deadline = Instant::now() + Duration::from_secs(60);
        while w.broker_node().is_none() {
            assert!(
                Instant::now() < deadline,
                "every worker ready at the end:\n{}",
                w.log_text()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    eprintln!(
        "answered {} jobs; repeats (identical): a {repeats_a}, c {repeats_c}, b {repeats_b}, d {repeats_d}",
        a.len() + b.len() + c.len() + d.len()
    );
    let (ok, dead) = lab.dlq(&["list"]);
    assert!(ok && dead.trim().is_empty(), "nothing dead-lettered:\n{dead}");
    lab.check_audit();
}
