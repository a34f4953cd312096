//! The worker on the real services: RabbitMQ and s3s-fs (an S3 server that
//! checks SigV4 signatures). Links are downloaded over plain HTTP.

use std::time::Duration;

use rendition::control::{PolicyBody, SignedPolicyUpdate};
use rendition::result::{JobResult, Status};
use rendition::storage::{PutOptions, Store};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::lab::{Lab, job};

const MINUTE: Duration = Duration::from_secs(60);

fn download(url: &str) -> (u16, Vec<u8>, String) {
    let response = reqwest::blocking::get(url).unwrap();
    let status = response.status().as_u16();
    let disposition = response
        .headers()
        .get("content-disposition")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    (status, response.bytes().unwrap().to_vec(), disposition)
}

/// Downloads every rendition and checks it is what the record says.
fn check_downloads(result: &JobResult) {
    assert_eq!(result.status, Status::Done, "{result:?}");
    for r in &result.renditions {
        let (status, bytes, disposition) = download(&r.url);
        assert_eq!(status, 200, "{}", r.url);
        assert_eq!(bytes.len() as u64, r.bytes);
        assert_eq!(hex::encode(Sha256::digest(&bytes)), r.sha256);
        assert!(disposition.contains("launch-hero."), "{disposition:?}");
        if let (Some(w), Some(h)) = (r.width, r.height) {
            let img = image::load_from_memory(&bytes).unwrap();
            assert_eq!((img.width(), img.height()), (w, h));
        }
    }
}

#[test]
fn roles_get_what_they_may_over_presigned_links_that_the_server_checks() {
    let lab = Lab::new("roles");
    let _worker = lab.worker(&[]);
    lab.send(&job("1-admin-original", "admin"));
    lab.send(&job("2-collaborator-2048", "collab"));
    lab.send(&job("3-restricted-1024-watermarked", "restricted"));
    let mut replies = lab.replies(3, MINUTE);
    replies.sort_by(|a, b| a.0.cmp(&b.0));
    let ids: Vec<&str> = replies.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["admin", "collab", "restricted"], "correlation ids come back");
    for (_, result) in &replies {
        check_downloads(result);
        assert_eq!(result.policy_version, 42);
    }
    let size = |i: usize| (replies[i].1.renditions[0].width, replies[i].1.renditions[0].height);
    assert_eq!(size(0), (Some(2400), Some(1598)), "admin: the original");
    assert_eq!(size(1), (Some(2048), Some(1364)));
    assert_eq!(size(2), (Some(1024), Some(682)));
    assert!(replies[2].1.renditions[0].watermarked);

    // The server, not our code, rejects a tampered link.
    let url = &replies[1].1.renditions[0].url;
    let (head, signature) = url.split_once("X-Amz-Signature=").unwrap();
    let flipped = if signature.starts_with('0') { "1" } else { "0" };
    let tampered = format!("{head}X-Amz-Signature={flipped}{}", &signature[1..]);
    assert_eq!(download(&tampered).0, 403);
    let other_key = url.replacen(&replies[1].1.renditions[0].key, &replies[2].1.renditions[0].key, 1);
    assert_eq!(download(&other_key).0, 403, "a signature is for one key");

    // An expired link is refused.
    let mut short = job("2-collaborator-2048", "short-lived");
    short["link_ttl_s"] = json!(1);
    lab.send(&short);
    let short = lab.reply();
    assert!(short.renditions[0].cached, "same rendition: a cache hit, not a render");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(download(&short.renditions[0].url).0, 403);

    // The same job id again: the same answer, nothing new stored.
    let before = lab.rt.block_on(lab.renditions.list("renditions/")).unwrap();
    lab.send(&job("2-collaborator-2048", "collab"));
    assert_eq!(lab.reply(), replies[1].1);
    assert_eq!(lab.rt.block_on(lab.renditions.list("renditions/")).unwrap(), before);
    lab.check_audit();
}

#[test]
fn poison_messages_are_dead_lettered_while_other_jobs_flow() {
    let lab = Lab::new("poison");
    let worker = lab.worker(&[]);
    lab.send_raw("image", b"{ this is not json".to_vec(), "garbage");
    // A publish to a broken bucket (a file where the server keeps its
    // directory) fails on storage: retried with backoff, then dead-lettered.
    let out = format!("{}-out", lab.name);
    let blocker = std::path::Path::new(&std::env::var("RENDITION_TEST_S3_DATA").unwrap()).join(&out);
    std::fs::write(&blocker, b"not a bucket").unwrap();
    let mut publish = job("1-admin-original", "to-nowhere");
    publish["purpose"] = json!("publish");
    publish["destination"] = json!({"bucket": out, "prefix": "launch"});
    lab.send(&publish);
    for i in 0..4 {
        lab.send(&job("2-collaborator-2048", &format!("good-{i}")));
    }
    let replies = lab.replies(6, MINUTE);
    let by_id = |id: &str| &replies.iter().find(|(c, _)| c == id).unwrap().1;
    for i in 0..4 {
        assert_eq!(by_id(&format!("good-{i}")).status, Status::Done);
    }
    let garbage = by_id("garbage");
    assert_eq!(garbage.error.as_ref().unwrap().code, "invalid_job");
    let nowhere = by_id("to-nowhere");
    assert_eq!(nowhere.error.as_ref().unwrap().code, "storage_error", "{nowhere:?}");

    let (ok, listing) = lab.dlq(&["list"]);
    assert!(ok);
    let dead: Vec<Value> = listing.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(dead.len(), 2, "{listing}");
    let nowhere = dead
        .iter()
        .find(|d| d["job_id"] == "to-nowhere")
        .expect("the publish job");
    assert_eq!(nowhere["error"]["code"], "storage_error");
    assert_eq!(nowhere["attempts"], 3, "tried max_attempts times");
    assert_eq!(nowhere["routing_key"], "publish");
    assert!(dead.iter().any(|d| d["error"]["code"] == "invalid_job"));
    let metrics = worker.metrics();
    assert!(metrics.contains("rendition_retries_total 2\n"), "{}", worker.log_text());
    assert!(metrics.contains("rendition_dead_letters_total 2\n"), "{metrics}");
    // The retries waited in the quorum delay queues; one node, no failover.
    assert!(metrics.contains("rendition_broker_failovers_total 0\n"), "{metrics}");
    assert!(
        metrics.contains("rendition_failures_total{code=\"storage_error\"} 1\n"),
        "{metrics}"
    );
    assert_eq!(worker.broker_node().as_deref(), Some("127.0.0.1:5672"));

    // Once the bucket is repaired, replaying the dead letter finishes the job.
    std::fs::remove_file(&blocker).unwrap();
    let target = lab.originals.bucket(&out).unwrap();
    lab.rt.block_on(target.ensure_bucket()).unwrap();
    let (ok, _) = lab.dlq(&["replay", "to-nowhere"]);
    assert!(ok);
    let replayed = lab.reply();
    assert_eq!(replayed.status, Status::Done, "{replayed:?}");
    let copy = replayed.renditions[0].published.as_deref().unwrap();
    assert_eq!(copy, format!("s3://{out}/launch/launch-hero.jpg"));
    let bytes = lab.rt.block_on(target.get("launch/launch-hero.jpg")).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&bytes)), replayed.renditions[0].sha256);
    let (_, listing) = lab.dlq(&["list"]);
    assert_eq!(listing.lines().count(), 1, "only the garbage is left");
    lab.check_audit();
}

#[test]
fn a_killed_worker_s_jobs_are_finished_by_another() {
    let lab = Lab::new("kill");
    let first = lab.worker(&[("RENDITION_CONCURRENCY", "1")]);
    let ids: Vec<String> = (0..8).map(|i| format!("k-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let mut j = job("2-collaborator-2048", id);
        j["request"]["rendition"] = json!({"max_edge": 1500 + i});
        lab.send(&j);
    }
    let mut replies = lab.replies(1, MINUTE);
    // Mid-run: the next job is taken (prefetch 1) and unacked.
    let mut first = first;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let second = lab.worker(&[]);
    replies.extend(replies_for_all(&lab, &ids, &replies));
    let taken_over = second.log_text().matches(" job ").count();
    assert!(taken_over > 0, "the second worker finished what the first left");
    for (id, result) in &replies {
        assert_eq!(result.status, Status::Done, "{id}");
        let same = replies.iter().filter(|(other, _)| other == id);
        assert!(
            same.clone().all(|(_, r)| r == result),
            "a repeat answers the same result"
        );
    }
    lab.check_audit();
}

/// Replies until every id in `ids` is answered (repeats are possible: a job
/// answered just before its worker died is delivered again).
fn replies_for_all(lab: &Lab, ids: &[String], so_far: &[(String, JobResult)]) -> Vec<(String, JobResult)> {
    let mut missing: std::collections::BTreeSet<&String> = ids.iter().collect();
    for (id, _) in so_far {
        missing.remove(id);
    }
    let mut out = Vec::new();
    while !missing.is_empty() {
        let reply = lab.replies(1, MINUTE).remove(0);
        missing.remove(&reply.0);
        out.push(reply);
    }
    out
}

#[test]
fn sigterm_drains_jobs_in_flight_and_exits_zero() {
    let lab = Lab::new("term");
    let mut worker = lab.worker(&[]);
    for i in 0..6 {
        let mut j = job("2-collaborator-2048", &format!("t-{i}"));
        j["request"]["rendition"] = json!({"max_edge": 1200 + i});
        lab.send(&j);
    }
    let mut replies = lab.replies(1, MINUTE);
    let ids: Vec<String> = (0..6).map(|i| format!("t-{i}")).collect();
    worker.signal("TERM");
    let status = worker.child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", worker.log_text());
    let log = worker.log_text();
    assert!(log.contains("draining") && log.contains("drained"), "{log}");
    // What it had not started is still queued: a new worker answers it.
    let _next = lab.worker(&[]);
    replies.extend(replies_for_all(&lab, &ids, &replies));
    assert!(replies.iter().all(|(_, r)| r.status == Status::Done));
    lab.check_audit();
}

/// A proxy of the demo photograph for the buyer's share s-7.
fn share_proxy_job(id: &str) -> Value {
    let mut share = job("2-collaborator-2048", id);
    share["principal"] = json!({"share": "s-7", "email": "buyer@example.com"});
    share["request"]["rendition"] = json!("proxy");
    share
}

#[test]
fn revoking_a_share_breaks_its_links_and_denies_new_jobs() {
    let lab = Lab::new("revoke");
    let worker = lab.worker(&[]);
    let mut share = share_proxy_job("share-1");
    lab.send(&share);
    let mut user = job("2-collaborator-2048", "user-1");
    user["request"]["rendition"] = json!({"max_edge": 700});
    lab.send(&user);
    let replies = lab.replies(2, MINUTE);
    let shared = &replies.iter().find(|(id, _)| id == "share-1").unwrap().1;
    let unshared = &replies.iter().find(|(id, _)| id == "user-1").unwrap().1;
    assert!(shared.renditions[0].key.starts_with("renditions/shares/s-7/"));
    assert_eq!(download(&shared.renditions[0].url).0, 200);

    // Anyone who may publish jobs may send this: unsigned, it is refused.
    let unsigned = json!({"schema": "rendition.revoke/v1", "job_id": "revoke-0", "share": "s-7"});
    lab.send_raw("revoke", serde_json::to_vec(&unsigned).unwrap(), "revoke-0");
    let refused = lab.reply();
    assert_eq!(refused.status, Status::Failed);
    assert_eq!(refused.error.unwrap().code, "unsigned_control");
    assert_eq!(
        download(&shared.renditions[0].url).0,
        200,
        "an unsigned revoke changes nothing"
    );
    let refused = "rendition_control_refused_total{kind=\"revoke\",reason=\"unsigned_control\"} 1\n";
    assert!(worker.metrics().contains(refused), "{}", worker.metrics());
    lab.send_signed_revoke("revoke-1", "s-7");
    assert_eq!(lab.reply().status, Status::Done);
    assert_eq!(download(&shared.renditions[0].url).0, 404, "issued links stop working");
    assert_eq!(download(&unshared.renditions[0].url).0, 200, "other links keep working");

    share["job_id"] = json!("share-2");
    lab.send(&share);
    let denied = lab.reply();
    assert_eq!(denied.status, Status::Denied);
    assert_eq!(denied.decision.unwrap().reason, "denied: share s-7 was revoked");
    let left = lab.rt.block_on(lab.renditions.list("renditions/shares/s-7/")).unwrap();
    let renditions: Vec<_> = left.iter().filter(|k| !k.contains("/results/")).collect();
    assert!(renditions.is_empty(), "only the remembered denial is left: {left:?}");
    lab.check_audit();
}

#[test]
fn policy_updates_apply_newer_versions_and_sweep_revoked_shares() {
    let lab = Lab::new("policy");
    let worker = lab.worker(&[]);
    let mut share = share_proxy_job("before");
    lab.send(&share);
    let before = lab.reply();
    assert_eq!((before.status, before.policy_version), (Status::Done, 42));

    let text = std::fs::read_to_string(&lab.policy_path).unwrap();
    let mut policy: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    policy["version"] = 43.into();
    policy["shares"][0]["revoked"] = true.into();
    lab.send_signed_policy("version: 7\nroles: {}\n");
    lab.send_signed_policy("version: 99\nusers: { u-x: { role: nobody } }\n");
    // As a signed pointer to an object under the lab's policy location.
    let key = "policies/v43.yaml";
    let yaml = serde_yaml::to_string(&policy).unwrap();
    lab.rt
        .block_on(lab.originals.put(key, yaml.clone().into_bytes(), PutOptions::default()))
        .unwrap();
    let location = format!("s3://{}/{key}", lab.originals.bucket_name());
    let sha256 = Sha256::digest(yaml.as_bytes()).into();
    let standing = rendition::policy::Standing { epoch: 0, version: 43 };
    let pointer = SignedPolicyUpdate::sign(
        &lab.control_key,
        &PolicyBody::At {
            location,
            sha256,
            standing,
        },
    );
    lab.send_policy(&serde_json::to_vec(&pointer).unwrap());

    let mut after = None;
    for attempt in 0..50 {
        let mut probe = job("2-collaborator-2048", &format!("probe-{attempt}"));
        probe["request"]["rendition"] = json!({"max_edge": 300});
        lab.send(&probe);
        let result = lab.reply();
        if result.policy_version == 43 {
            after = Some(result);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(after.is_some(), "v43 never applied:\n{}", worker.log_text());
    assert_eq!(download(&before.renditions[0].url).0, 404, "the update swept the share");
    share["job_id"] = json!("after");
    lab.send(&share);
    let denied = lab.reply();
    assert_eq!((denied.status, denied.policy_version), (Status::Denied, 43));
    let metrics = worker.metrics();
    assert!(metrics.contains("rendition_policy_version 43\n"), "{metrics}");
    assert!(metrics.contains("rendition_policy_rejected_total 2\n"), "{metrics}");
    assert!(
        metrics.contains("rendition_control_refused_total{kind=\"policy\",reason=\"stale_policy\"} 1\n"),
        "{metrics}"
    );
    assert!(worker.log_text().contains("does not follow"));
    assert!(
        worker.wait_for_log("policy change", 1).contains("decision(s) changed"),
        "the applied update's diff is logged"
    );
    lab.check_audit();
}

#[test]
fn large_objects_go_up_in_parts_and_keep_their_headers() {
    let lab = Lab::new("multi");
    let bytes: Vec<u8> = (0..6 * 1024 * 1024 + 17).map(|i| (i * 7 % 251) as u8).collect();
    let options = PutOptions {
        content_type: "video/mp4".into(),
        filename: Some("clip.mp4".into()),
        meta: [("sha256".to_string(), "abc".to_string())].into(),
    };
    let store = &lab.renditions;
    lab.rt
        .block_on(store.put("big/clip.mp4", bytes.clone(), options))
        .unwrap();
    assert_eq!(lab.rt.block_on(store.get("big/clip.mp4")).unwrap(), bytes);
    let info = lab.rt.block_on(store.head("big/clip.mp4")).unwrap().unwrap();
    assert_eq!(info.size, bytes.len() as u64);
    assert_eq!(info.meta.get("sha256").map(String::as_str), Some("abc"));
    let link = lab
        .rt
        .block_on(store.sign("big/clip.mp4", chrono::Utc::now() + chrono::Duration::seconds(60)))
        .unwrap();
    let (status, body, disposition) = download(&link.url);
    assert_eq!((status, body.len()), (200, bytes.len()));
    assert_eq!(disposition, "attachment; filename=\"clip.mp4\"");
    assert!(lab.rt.block_on(store.head("big/none.mp4")).unwrap().is_none());
    // The same through local files: uploaded in parts read from the file,
    // downloaded a chunk at a time.
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("from.mp4"), dir.path().join("to.mp4"));
    std::fs::write(&from, &bytes).unwrap();
    let options = PutOptions {
        content_type: "video/mp4".into(),
        filename: Some("streamed.mp4".into()),
        meta: [("sha256".to_string(), "def".to_string())].into(),
    };
    lab.rt
        .block_on(store.upload("big/streamed.mp4", &from, options))
        .unwrap();
    let info = lab.rt.block_on(store.download("big/streamed.mp4", &to)).unwrap();
    assert_eq!(std::fs::read(&to).unwrap(), bytes, "the bytes survive both ways");
    assert_eq!(
        (info.size, info.meta.get("sha256").map(String::as_str)),
        (bytes.len() as u64, Some("def"))
    );
    assert!(info.identity.contains('-'), "a multipart ETag: {}", info.identity);
    assert!(matches!(
        lab.rt.block_on(store.get("big/none.mp4")),
        Err(rendition::storage::StoreError::NotFound(_))
    ));
}

/// A job that takes down every worker that takes it (a native decoder's
/// segfault cannot be caught): each stand-in worker here takes it and drops
/// its connection without an answer, as a crashed process does. The
/// broker's delivery limit dead-letters it; `dlq list` says why; replayed
/// to a real worker it is answered.
#[test]
fn a_job_that_crashes_every_worker_is_dead_lettered_by_the_broker_and_listed_with_why() {
    use lapin::options::BasicGetOptions;
    let lab = Lab::new("crash");
    lab.send(&job("2-collaborator-2048", "crasher"));
    let queue = lab.topology.job_queue(rendition::queue::JobQueue::Image);
    let mut deliveries = 0;
    lab.rt.block_on(async {
        let deadline = std::time::Instant::now() + MINUTE;
        while std::time::Instant::now() < deadline {
            let broker = rendition::queue::amqp::AmqpBroker::connect(&lab.amqp_url)
                .await
                .unwrap();
            let channel = broker.channel().await.unwrap();
            let got = channel
                .basic_get(queue.as_str().into(), BasicGetOptions::default())
                .await
                .unwrap();
            // Gone without ack: the broker counts a delivery and takes it back.
            broker.close().await;
            match got {
                Some(_) => deliveries += 1,
                None if deliveries > lab.topology.delivery_limit as usize => break,
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    assert_eq!(
        deliveries,
        lab.topology.delivery_limit as usize + 1,
        "delivered until the limit"
    );
    let (ok, listing) = lab.dlq(&["list"]);
    assert!(ok);
    let dead: Vec<Value> = listing.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(dead.len(), 1, "{listing}");
    assert_eq!(dead[0]["job_id"], "crasher", "{listing}");
    assert_eq!(dead[0]["error"]["code"], "delivery_limit", "{listing}");
    let why = dead[0]["error"]["message"].as_str().unwrap();
    assert!(why.contains(&queue), "{why}");
    assert_eq!(dead[0]["routing_key"], "image", "{listing}");

    let _worker = lab.worker(&[]);
    let (ok, _) = lab.dlq(&["replay", "crasher"]);
    assert!(ok);
    assert_eq!(lab.reply().status, Status::Done);
    lab.check_audit();
}

/// A broker with a delay queue an older version declared as a classic
/// queue: the worker names the queue and the fix, and waits its backoff
/// between rounds over the nodes instead of going round them without pause.
#[test]
fn an_old_classic_delay_queue_is_named_and_the_worker_backs_off() {
    use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
    let lab = Lab::new("oldretry");
    let old = lab.topology.retry_queue(1);
    lab.rt.block_on(async {
        let broker = rendition::queue::amqp::AmqpBroker::connect(&lab.amqp_url)
            .await
            .unwrap();
        let channel = broker.channel().await.unwrap();
        channel
            .queue_delete(old.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(old.as_str().into(), durable, Default::default())
            .await
            .unwrap();
        broker.close().await;
    });
    // Two names for the one broker: a "cluster" whose every node refuses the topology.
    let two = format!("{},localhost:5672", lab.amqp_url);
    let keys = lab.s3.keys.as_ref().unwrap();
    let worker = lab.start_worker(&[
        ("RENDITION_AMQP_URL", two.as_str()),
        ("RENDITION_S3_ACCESS_KEY", keys.access_key.as_str()),
        ("RENDITION_S3_SECRET_KEY", keys.secret_key.as_str()),
    ]);
    // Backing off: three rounds that each end in a wait (0.2 s, 0.4 s, 0.8 s).
    let log = worker.wait_for_log("broker unavailable", 3);
    assert!(
        log.contains(&format!("{old} was declared by an older version as a classic queue")),
        "{log}"
    );
    assert!(log.contains("--if-empty"), "the fix is named: {log}");
    assert!(
        !log.contains("trying the next node"),
        "a connection that never served is no failover: {log}"
    );
    assert!(worker.broker_node().is_none(), "not ready");
}
