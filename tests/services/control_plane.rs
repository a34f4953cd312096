//! The control plane on a real worker, RabbitMQ and S3
//! (docs/control-plane.md): only signed policy updates apply, by the
//! version rule, from the configured location; and the broker users of
//! `scripts/broker-users` can each do only their part.

use std::process::Command;
use std::time::{Duration, Instant};

use rendition::control::{PolicyBody, SignedPolicyUpdate, SigningKey};
use rendition::policy::Standing;
use rendition::queue::amqp::AmqpBroker;
use rendition::queue::{Message, Publisher};
use rendition::result::Status;
use rendition::storage::{PutOptions, Store};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::lab::{Lab, Worker, job};

/// The lab's policy at `version`, with every role made staff when `staff`.
fn policy(lab: &Lab, version: u64, staff: bool) -> String {
    let text = std::fs::read_to_string(&lab.policy_path).unwrap();
    let mut policy: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    policy["version"] = version.into();
    if staff {
        for (_, role) in policy["roles"].as_mapping_mut().unwrap().iter_mut() {
            role["staff"] = true.into();
        }
    }
    serde_yaml::to_string(&policy).unwrap()
}

fn signed(key: &SigningKey, body: PolicyBody) -> Vec<u8> {
    serde_json::to_vec(&SignedPolicyUpdate::sign(key, &body)).unwrap()
}

/// Waits until the worker's metrics hold every line of `expected`.
fn wait_for_metrics(worker: &Worker, expected: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = worker.metrics();
        let missing: Vec<&String> = expected
            .iter()
            .filter(|line| !metrics.contains(line.as_str()))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "missing {missing:?} in\n{metrics}\n{}",
            worker.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn refused(reason: &str, n: u32) -> String {
    format!("rendition_control_refused_total{{kind=\"policy\",reason=\"{reason}\"}} {n}\n")
}

#[test]
fn only_signed_updates_apply_and_a_rotated_key_is_accepted() {
    let lab = Lab::new("signed");
    let next = SigningKey::generate("next").unwrap();
    let keys = format!("{},{}", lab.control_key.public_entry(), next.public_entry());
    let worker = lab.worker(&[("RENDITION_CONTROL_KEYS", keys.as_str())]);
    let forger = SigningKey::generate("lab").unwrap();
    let bucket = lab.originals.bucket_name().to_string();
    let put = |key: &str, text: &str| {
        lab.rt
            .block_on(lab.originals.put(key, text.as_bytes().to_vec(), PutOptions::default()))
            .unwrap()
    };
    let everyone_staff = policy(&lab, 50, true);
    // What an attacker with publish rights on the broker sends.
    lab.send_policy(everyone_staff.as_bytes());
    lab.send_policy(policy(&lab, u64::MAX, false).as_bytes());
    lab.send_policy(json!({"location": "/etc/os-release.yaml"}).to_string().as_bytes());
    lab.send_policy(&signed(&forger, PolicyBody::Inline(everyone_staff.clone())));
    let mut tampered: serde_json::Value =
        serde_json::from_slice(&signed(&lab.control_key, PolicyBody::Inline(policy(&lab, 50, false)))).unwrap();
    tampered["document"] = everyone_staff.clone().into();
    lab.send_policy(tampered.to_string().as_bytes());
    // A signed location whose object is swapped after signing.
    let v51 = policy(&lab, 51, false);
    put("policies/v51.yaml", &v51);
    let at_v51 = PolicyBody::At {
        location: format!("s3://{bucket}/policies/v51.yaml"),
        sha256: Sha256::digest(v51.as_bytes()).into(),
        standing: Standing { epoch: 0, version: 51 },
    };
    let swapped = signed(&lab.control_key, at_v51);
    put("policies/v51.yaml", &policy(&lab, 51, true));
    lab.send_policy(&swapped);
    // A signed location outside RENDITION_POLICY_LOCATIONS.
    put("originals/v52.yaml", &policy(&lab, 52, false));
    let outside = PolicyBody::At {
        location: format!("s3://{bucket}/originals/v52.yaml"),
        sha256: Sha256::digest(policy(&lab, 52, false).as_bytes()).into(),
        standing: Standing { epoch: 0, version: 52 },
    };
    lab.send_policy(&signed(&lab.control_key, outside));
    // A signed location whose object is over 16 MiB: refused from S3's
    // Content-Length, never read whole.
    let huge = "#".repeat(16 * 1024 * 1024 + 1);
    put("policies/huge.yaml", &huge);
    let at_huge = PolicyBody::At {
        location: format!("s3://{bucket}/policies/huge.yaml"),
        sha256: Sha256::digest(huge.as_bytes()).into(),
        standing: Standing { epoch: 0, version: 53 },
    };
    lab.send_policy(&signed(&lab.control_key, at_huge));
    wait_for_metrics(
        &worker,
        &[
            refused("policy_unreadable", 1),
            refused("unsigned_control", 3),
            refused("bad_signature", 2),
            refused("policy_digest_mismatch", 1),
            refused("policy_location_refused", 1),
            "rendition_policy_version 42\n".into(),
        ],
    );

    // A good update, then the same message replayed.
    let v43 = signed(&lab.control_key, PolicyBody::Inline(policy(&lab, 43, false)));
    lab.send_policy(&v43);
    wait_for_metrics(&worker, &["rendition_policy_version 43\n".into()]);
    lab.send_policy(&v43);
    wait_for_metrics(&worker, &[refused("stale_policy", 1)]);
    // Rotation: the second listed key signs the next version.
    lab.send_policy(&signed(&next, PolicyBody::Inline(policy(&lab, 44, false))));
    wait_for_metrics(&worker, &["rendition_policy_version 44\n".into()]);

    // Jobs were decided under the signed policies only: nobody became staff.
    lab.send(&job("2-collaborator-2048", "after"));
    let answer = lab.reply();
    assert_eq!((answer.status, answer.policy_version), (Status::Done, 44), "{answer:?}");
    let decision = answer.decision.unwrap();
    assert_eq!(decision.role.as_deref(), Some("collaborator"));
    assert_ne!(decision.rule, rendition::policy::Rule::Staff, "{}", decision.reason);
    let log = worker.wait_for_log("policy change", 2);
    let applied: Vec<&str> = log.lines().filter(|l| l.contains("policy applied")).collect();
    assert_eq!(applied.len(), 2, "{log}");
    assert!(
        applied[1].contains("next"),
        "the update names the key that signed it: {}",
        applied[1]
    );
    lab.check_audit();
}

/// The three users of `scripts/broker-users`, removed when dropped.
struct BrokerUsers {
    names: [String; 3],
    url: String,
}

impl BrokerUsers {
    fn create(lab: &Lab) -> BrokerUsers {
        let names = ["up", "wk", "sg"].map(|r| format!("{}-{r}", lab.name));
        let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/broker-users"))
            .args(["--prefix", &lab.topology.prefix, "--names", &names.join(",")])
            .env("RENDITION_UPSTREAM_PASSWORD", "up-secret")
            .env("RENDITION_WORKER_PASSWORD", "wk-secret")
            .env("RENDITION_SIGNER_PASSWORD", "sg-secret")
            .status()
            .expect("scripts/broker-users runs");
        assert!(status.success(), "scripts/broker-users failed");
        BrokerUsers {
            names,
            url: lab.amqp_url.clone(),
        }
    }

    /// The broker URL with user `i`'s name and password.
    fn url(&self, i: usize) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap();
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let password = ["up-secret", "wk-secret", "sg-secret"][i];
        format!("{scheme}://{}:{password}@{host}", self.names[i])
    }
}

impl Drop for BrokerUsers {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("rabbitmqctl").args(["-q", "delete_user", name]).status();
        }
    }
}

/// Publishes once on a fresh connection as the user of `url`.
fn publish_as(lab: &Lab, url: &str, exchange: &str, message: &Message) -> Result<(), String> {
    lab.rt.block_on(async {
        let broker = AmqpBroker::connect(url).await.map_err(|e| e.to_string())?;
        let sent = broker.publish(exchange, message).await.map_err(|e| e.to_string());
        broker.close().await;
        sent
    })
}

#[test]
fn broker_users_can_only_do_their_part() {
    let lab = Lab::new("users");
    let users = BrokerUsers::create(&lab);
    let (upstream, signer) = (users.url(0), users.url(2));
    let worker = lab.worker(&[("RENDITION_AMQP_URL", users.url(1).as_str())]);
    let jobs = lab.topology.jobs_exchange();
    let policy_exchange = lab.topology.policy_exchange();

    // Upstream publishes a job; the worker, as the worker user, answers it.
    let body = serde_json::to_vec(&job("2-collaborator-2048", "as-upstream")).unwrap();
    let as_job = |routing_key: &str, body: Vec<u8>| Message {
        routing_key: routing_key.into(),
        body,
        correlation_id: Some("as-upstream".into()),
        reply_to: Some(format!("{}replies", lab.topology.prefix)),
        ..Message::default()
    };
    publish_as(&lab, &upstream, &jobs, &as_job("image", body.clone())).expect("upstream may publish jobs");
    let answer = lab.reply();
    assert_eq!(answer.status, Status::Done, "{answer:?}\n{}", worker.log_text());

    // Upstream may not publish on the policy exchange, not even a validly
    // signed update, nor send a revoke.
    let v43 = signed(&lab.control_key, PolicyBody::Inline(policy(&lab, 43, false)));
    let update = Message {
        body: v43.clone(),
        ..Message::default()
    };
    let refused = publish_as(&lab, &upstream, &policy_exchange, &update);
    assert!(refused.is_err(), "the broker let upstream publish a policy update");
    let revoke = rendition::revocation::RevokeMessage::signed(&lab.control_key, "r-1", "s-7");
    let revoke = as_job("revoke", serde_json::to_vec(&revoke).unwrap());
    assert!(
        publish_as(&lab, &upstream, &jobs, &revoke).is_err(),
        "the broker let upstream send a revoke"
    );
    // The signer may publish policy updates and revokes, and no jobs.
    assert!(
        publish_as(&lab, &signer, &jobs, &as_job("image", body)).is_err(),
        "the signer published a job"
    );
    publish_as(&lab, &signer, &policy_exchange, &update).expect("the signer publishes updates");
    wait_for_metrics(&worker, &["rendition_policy_version 43\n".into()]);
    publish_as(&lab, &signer, &jobs, &revoke).expect("the signer sends revokes");
    assert_eq!(lab.reply().status, Status::Done);
    // The worker user may not publish on the policy exchange either, nor
    // send a revoke.
    assert!(publish_as(&lab, &users.url(1), &policy_exchange, &update).is_err());
    assert!(publish_as(&lab, &users.url(1), &jobs, &revoke).is_err());
    assert!(
        !worker.metrics().contains("rendition_policy_rejected_total 1"),
        "only the signer's update arrived"
    );
}

/// The policy log (docs/control-plane.md#the-policy-log): updates
/// published before a worker started reach it before its first job;
/// reading that history again raises no alarm for a superseded version,
/// but does for junk. Before the log, a worker heard only updates published
/// while it was subscribed, so this one decided its first job under the
/// start-up policy, version 42.
#[test]
fn updates_published_before_a_worker_started_apply_before_its_first_job() {
    let lab = Lab::new("log");
    let v43 = signed(&lab.control_key, PolicyBody::Inline(policy(&lab, 43, false)));
    let v41 = signed(&lab.control_key, PolicyBody::Inline(policy(&lab, 41, false)));
    lab.send_policy(&v43);
    lab.send_policy(&v41);
    lab.send_policy(policy(&lab, 44, true).as_bytes());
    let worker = lab.worker(&[]);
    lab.send(&job("2-collaborator-2048", "first"));
    let answer = lab.reply();
    assert_eq!(
        (answer.status, answer.policy_version),
        (Status::Done, 43),
        "{answer:?}\n{}",
        worker.log_text()
    );
    let metrics = worker.metrics();
    assert!(metrics.contains("rendition_policy_version 43\n"), "{metrics}");
    assert!(
        metrics.contains(&refused("unsigned_control", 1)),
        "junk is reported:\n{metrics}"
    );
    assert!(
        !metrics.contains("reason=\"stale_policy\""),
        "the superseded 41 is no alarm:\n{metrics}"
    );
    // A replay after the start is one.
    lab.send_policy(&v43);
    wait_for_metrics(&worker, &[refused("stale_policy", 1)]);
    assert!(worker.log_text().contains("policy log read"));
}
