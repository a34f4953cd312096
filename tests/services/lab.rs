//! A lab on the real services: RabbitMQ and an S3 server (s3s-fs), as
//! `scripts/services` starts them. Each lab has its own queue prefix and
//! buckets, so tests run side by side; it removes its queues when dropped.
//! Without the services' settings the tests fail; they never skip.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicQosOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Consumer};
use rendition::audit::AuditRecord;
use rendition::control::{PolicyBody, SignedPolicyUpdate, SigningKey};
use rendition::queue::amqp::{AmqpBroker, message_of};
use rendition::queue::{JobQueue, Message, Priority, Publisher, Topology};
use rendition::result::{JobProgress, JobResult};
use rendition::storage::s3::{S3Config, S3Store, StaticKeys};
use rendition::storage::{PutOptions, Store};
use serde_json::Value;

use crate::common::fixture;

pub const ORIGINALS: [&str; 12] = [
    "hero.jpg",
    "photo.jpg",
    "alpha.png",
    "truncated.jpg",
    "video/clip.mp4",
    "video/silent-odd.mp4",
    "video/portrait.mp4",
    "video/fade-in.mp4",
    "video/truncated.mp4",
    "video/not-a-video.mp4",
    "video/jingle.m4a",
    "video/brief.pdf",
];

fn setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test, which starts RabbitMQ and s3s-fs")
    })
}

pub fn s3_config() -> S3Config {
    S3Config {
        endpoint: Some(setting("RENDITION_TEST_S3_ENDPOINT")),
        region: Some("us-east-1".into()),
        path_style: true,
        keys: Some(test_keys()),
        multipart_threshold: 5 * 1024 * 1024,
    }
}

/// The keys s3s-fs was started with.
pub fn test_keys() -> StaticKeys {
    StaticKeys {
        access_key: setting("RENDITION_TEST_S3_ACCESS_KEY"),
        secret_key: setting("RENDITION_TEST_S3_SECRET_KEY"),
        session_token: None,
    }
}

struct Connection {
    broker: AmqpBroker,
    _channel: Channel,
    replies: Consumer,
}

pub struct Lab {
    pub name: String,
    pub rt: tokio::runtime::Runtime,
    pub amqp_url: String,
    pub s3: S3Config,
    pub originals: S3Store,
    pub renditions: S3Store,
    pub topology: Topology,
    pub policy_path: PathBuf,
    pub dir: tempfile::TempDir,
    connection: Mutex<Option<Connection>>,
    /// Progress messages seen on the reply queue (correlation id, progress).
    pub progress: Mutex<Vec<(String, JobProgress)>>,
    /// Every result read from the reply queue, for [`Lab::check_audit`].
    answered: Mutex<Vec<JobResult>>,
    /// The headers of the last reply to each correlation id.
    pub reply_headers: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    /// The lab's control key: its workers list it in RENDITION_CONTROL_KEYS.
    pub control_key: SigningKey,
}

impl Lab {
    /// `short` names the lab's queues and buckets (keep it brief: bucket
    /// names have at most 63 characters).
    pub fn new(short: &str) -> Lab {
        Lab::on_broker(short, &setting("RENDITION_TEST_AMQP_URL"))
    }

    /// A lab on another broker: `amqp_url` is one URL or a cluster's list.
    pub fn on_broker(short: &str, amqp_url: &str) -> Lab {
        let name = format!("t{}-{short}", std::process::id());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let s3 = s3_config();
        let (originals, renditions) = rt.block_on(async {
            let originals = S3Store::connect(&s3, &format!("{name}-orig")).await.unwrap();
            let renditions = originals.bucket(&format!("{name}-rend")).unwrap();
            originals.ensure_bucket().await.unwrap();
            renditions.ensure_bucket().await.unwrap();
            for file in ORIGINALS {
                let bytes = std::fs::read(fixture(&format!("originals/{file}"))).unwrap();
                let options = PutOptions::default();
                originals
                    .put(&format!("originals/{file}"), bytes, options)
                    .await
                    .unwrap();
            }
            (originals, renditions)
        });
        let dir = tempfile::tempdir().unwrap();
        let policy_path = dir.path().join("policy.yaml");
        std::fs::write(&policy_path, serde_yaml::to_string(&test_policy()).unwrap()).unwrap();
        let lab = Lab {
            topology: Topology::new(&format!("{name}."), 3, Duration::from_millis(200)),
            name,
            rt,
            amqp_url: amqp_url.to_string(),
            s3,
            originals,
            renditions,
            policy_path,
            dir,
            connection: Mutex::new(None),
            progress: Mutex::new(Vec::new()),
            answered: Mutex::new(Vec::new()),
            reply_headers: Mutex::new(BTreeMap::new()),
            control_key: SigningKey::generate("lab").unwrap(),
        };
        lab.connect();
        lab
    }

    /// (Re)connects (to any node of a cluster that answers), declares the
    /// topology and a quorum reply queue: replies survive a broker restart,
    /// and on a cluster the loss of the node they were published on.
    pub fn connect(&self) {
        let replies = self.replies_queue();
        let connection = self.rt.block_on(async {
            let broker = AmqpBroker::connect(&self.amqp_url).await.expect("RabbitMQ answers");
            broker.declare(&self.topology).await.unwrap();
            let channel = broker.channel().await.unwrap();
            let durable = QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            };
            let mut quorum = FieldTable::default();
            quorum.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
            channel
                .queue_declare(replies.as_str().into(), durable, quorum)
                .await
                .unwrap();
            // Acked one by one: replies not yet read when the connection
            // drops go back to the queue instead of vanishing with it.
            channel.basic_qos(8, BasicQosOptions::default()).await.unwrap();
            let options = BasicConsumeOptions::default();
            let replies = channel
                .basic_consume(replies.as_str().into(), "".into(), options, FieldTable::default())
                .await
                .unwrap();
            Connection {
                broker,
                _channel: channel,
                replies,
            }
        });
        *self.connection.lock().unwrap() = Some(connection);
    }

    fn replies_queue(&self) -> String {
        format!("{}replies", self.topology.prefix)
    }

    /// Publishes a job (routing key from its media or purpose, and its
    /// priority when it names one) asking for
    /// the answer on the lab's reply queue.
    pub fn send(&self, job: &Value) {
        let routing_key = match (job["purpose"].as_str(), job["asset"]["media"].as_str()) {
            (Some("publish"), _) => "publish",
            (_, Some(media)) => media,
            _ => "image",
        };
        // A job that names its priority goes to that lane, as `enqueue` sends it.
        let routing_key = match job["priority"].as_str() {
            Some(lane) => format!("{lane}.{routing_key}"),
            None => routing_key.to_string(),
        };
        let id = job["job_id"].as_str().unwrap_or("unknown").to_string();
        self.send_raw(&routing_key, serde_json::to_vec(job).unwrap(), &id);
    }

    pub fn send_raw(&self, routing_key: &str, body: Vec<u8>, correlation_id: &str) {
        self.send_with_headers(routing_key, body, correlation_id, BTreeMap::new());
    }

    /// A job with AMQP headers of its own (`traceparent`, …).
    pub fn send_with_headers(
        &self,
        routing_key: &str,
        body: Vec<u8>,
        correlation_id: &str,
        headers: BTreeMap<String, String>,
    ) {
        let message = Message {
            routing_key: routing_key.into(),
            body,
            headers,
            correlation_id: Some(correlation_id.into()),
            reply_to: Some(self.replies_queue()),
            ..Message::default()
        };
        self.publish(&self.topology.jobs_exchange(), &message);
    }

    /// Publishes `document` on the policy exchange, signed with the lab's key.
    pub fn send_signed_policy(&self, document: &str) {
        let signed = SignedPolicyUpdate::sign(&self.control_key, &PolicyBody::Inline(document.into()));
        self.send_policy(&serde_json::to_vec(&signed).unwrap());
    }

    /// Sends a revoke of `share` signed with the lab's key.
    pub fn send_signed_revoke(&self, job_id: &str, share: &str) {
        let revoke = rendition::revocation::RevokeMessage::signed(&self.control_key, job_id, share);
        self.send_raw("revoke", serde_json::to_vec(&revoke).unwrap(), job_id);
    }

    /// Publishes on the policy fanout exchange, as it is.
    pub fn send_policy(&self, body: &[u8]) {
        let message = Message {
            body: body.to_vec(),
            ..Message::default()
        };
        self.publish(&self.topology.policy_exchange(), &message);
    }

    fn publish(&self, exchange: &str, message: &Message) {
        let guard = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let broker = &guard.as_ref().unwrap().broker;
        self.rt.block_on(broker.publish(exchange, message)).unwrap();
    }

    /// The next `n` replies (correlation id, result), failing after `limit`.
    pub fn replies(&self, n: usize, limit: Duration) -> Vec<(String, JobResult)> {
        let out = self.try_replies(n, limit);
        assert_eq!(out.len(), n, "{} of {n} replies within {limit:?}", out.len());
        out
    }

    /// Up to `n` replies, as many as come within `limit`.
    pub fn try_replies(&self, n: usize, limit: Duration) -> Vec<(String, JobResult)> {
        let mut guard = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let replies = &mut guard.as_mut().unwrap().replies;
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        self.rt.block_on(async {
            while out.len() < n {
                let left = deadline.saturating_duration_since(Instant::now());
                let next = tokio::time::timeout(left, replies.next()).await;
                let Ok(Some(Ok(delivery))) = next else {
                    break;
                };
                let _ = delivery.ack(BasicAckOptions::default()).await;
                let m = message_of(&delivery);
                if let Ok(progress) = serde_json::from_slice::<JobProgress>(&m.body) {
                    let id = m.correlation_id.unwrap_or_default();
                    self.progress.lock().unwrap().push((id, progress));
                    continue;
                }
                let result: JobResult = serde_json::from_slice(&m.body).expect("a result");
                self.answered.lock().unwrap().push(result.clone());
                let id = m.correlation_id.clone().unwrap_or_default();
                self.reply_headers.lock().unwrap().insert(id, m.headers.clone());
                out.push((m.correlation_id.unwrap_or_default(), result));
            }
        });
        out
    }

    pub fn reply(&self) -> JobResult {
        self.replies(1, Duration::from_secs(60)).remove(0).1
    }

    /// Starts `rendition worker` on this lab's queues and buckets; returns
    /// once its `/readyz` answers 200.
    pub fn worker(&self, extra: &[(&str, &str)]) -> Worker {
        let keys = self.s3.keys.as_ref().expect("the lab has keys");
        let mut env = vec![
            ("RENDITION_S3_ACCESS_KEY", keys.access_key.as_str()),
            ("RENDITION_S3_SECRET_KEY", keys.secret_key.as_str()),
        ];
        env.extend_from_slice(extra);
        self.worker_without_keys(&env)
    }

    /// Starts a worker that is given no S3 keys: it finds its credentials
    /// through the AWS chain (`extra` says where: a profile, an IMDS…).
    pub fn worker_without_keys(&self, extra: &[(&str, &str)]) -> Worker {
        let worker = self.start_worker(extra);
        worker.wait_ready();
        worker
    }

    /// Starts `rendition worker` as [`Lab::worker_without_keys`] does, and
    /// returns at once, ready or not.
    pub fn start_worker(&self, extra: &[(&str, &str)]) -> Worker {
        let http = free_addr();
        let log = std::fs::File::create(self.dir.path().join(format!("worker-{}.log", http.port()))).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_rendition"));
        command
            .arg("worker")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RENDITION_AMQP_URL", &self.amqp_url)
            .env("RENDITION_POLICY", &self.policy_path)
            .env("RENDITION_STORE", "s3")
            .env("RENDITION_S3_ENDPOINT", self.s3.endpoint.as_deref().unwrap())
            .env("RENDITION_ORIGINALS_BUCKET", self.originals.bucket_name())
            .env("RENDITION_RENDITIONS_BUCKET", self.renditions.bucket_name())
            // Each lab publishes to its own `{name}-out` bucket only.
            .env("RENDITION_PUBLISH_DESTINATIONS", format!("{}-out", self.name))
            .env("RENDITION_QUEUE_PREFIX", &self.topology.prefix)
            .env("RENDITION_MAX_ATTEMPTS", "3")
            .env("RENDITION_RETRY_BASE_MS", "200")
            .env("RENDITION_CONCURRENCY", "2")
            .env("RENDITION_HTTP_ADDR", http.to_string())
            .env("RENDITION_CONTROL_KEYS", self.control_key.public_entry())
            // An S3 fleet has no store to keep a forensic key in: one is set.
            .env("RENDITION_FORENSIC_KEYS", "services-lab-forensic-key-of-32-bytes")
            .env(
                "RENDITION_POLICY_LOCATIONS",
                format!("s3://{}/policies", self.originals.bucket_name()),
            )
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in extra {
            command.env(k, v);
        }
        Worker {
            child: command.spawn().expect("the rendition binary starts"),
            http,
            log: self.dir.path().join(format!("worker-{}.log", http.port())),
        }
    }

    /// The dead letters, as `rendition dlq list` prints them.
    pub fn dlq(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_rendition"))
            .arg("dlq")
            .args(args)
            .env("RENDITION_AMQP_URL", &self.amqp_url)
            .env("RENDITION_QUEUE_PREFIX", &self.topology.prefix)
            .env("RENDITION_MAX_ATTEMPTS", "3")
            .env("RENDITION_RETRY_BASE_MS", "200")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Lab {
    /// The audit trail as `rendition audit ARGS` prints it from the lab's
    /// renditions bucket.
    pub fn audit(&self, args: &[&str]) -> Vec<AuditRecord> {
        let keys = self.s3.keys.as_ref().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_rendition"))
            .arg("audit")
            .args(args)
            .env_clear()
            .env("RENDITION_STORE", "s3")
            .env("RENDITION_S3_ENDPOINT", self.s3.endpoint.as_deref().unwrap())
            .env("RENDITION_S3_ACCESS_KEY", &keys.access_key)
            .env("RENDITION_S3_SECRET_KEY", &keys.secret_key)
            .env("RENDITION_RENDITIONS_BUCKET", self.renditions.bucket_name())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("an audit record"))
            .collect()
    }

    /// Every job answered on the reply queue has an audit record for its
    /// answer, one only when every answer it got was the same (a repeat or
    /// a redelivery adds none), each saying what one of its answers said,
    /// and there is no record of anything else.
    pub fn check_audit(&self) {
        let records = self.audit(&[]);
        let answered = self.answered.lock().unwrap().clone();
        let ids: BTreeSet<&str> = answered.iter().map(|r| r.job_id.as_str()).collect();
        let recorded: BTreeSet<&str> = records.iter().map(|r| r.job_id.as_str()).collect();
        assert_eq!(recorded, ids, "a record per answered job, and no other");
        for id in ids.iter().filter(|id| **id != "unknown") {
            let mut answers: Vec<&JobResult> = Vec::new();
            for answer in answered.iter().filter(|r| r.job_id == *id) {
                if !answers.contains(&answer) {
                    answers.push(answer);
                }
            }
            let n = records.iter().filter(|r| r.job_id == *id).count();
            assert!(
                n <= answers.len(),
                "{id}: {n} records for {} different answers",
                answers.len()
            );
        }
        let shas = |r: &JobResult| r.renditions.iter().map(|h| h.sha256.clone()).collect::<BTreeSet<_>>();
        for record in &records {
            let handed: BTreeSet<_> = record.renditions.iter().map(|h| h.sha256.clone()).collect();
            let same = |r: &&JobResult| {
                (r.job_id == record.job_id && r.status == record.status)
                    && (r.policy_version == record.policy_version && shas(r) == handed)
            };
            assert!(answered.iter().any(|r| same(&r)), "{record:?} says what no answer said");
        }
    }

    /// A queue bound to the audit exchange (declared before the jobs are sent).
    pub fn audit_queue(&self) -> String {
        let name = format!("{}audit-tap", self.topology.prefix);
        let guard = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let broker = &guard.as_ref().unwrap().broker;
        self.rt.block_on(async {
            let channel = broker.channel().await.unwrap();
            let options = QueueDeclareOptions::default();
            channel
                .queue_declare(name.as_str().into(), options, FieldTable::default())
                .await
                .unwrap();
            let exchange = self.topology.audit_exchange();
            channel
                .queue_bind(
                    name.as_str().into(),
                    exchange.as_str().into(),
                    "#".into(),
                    Default::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        });
        name
    }

    /// What is in `queue` now, without waiting.
    pub fn drain(&self, queue: &str) -> Vec<Message> {
        let guard = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let broker = &guard.as_ref().unwrap().broker;
        self.rt.block_on(async {
            let channel = broker.channel().await.unwrap();
            let mut out = Vec::new();
            while let Some(delivery) = channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                out.push(message_of(&delivery.delivery));
            }
            out
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let Some(connection) = self.connection.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let t = &self.topology;
        let mut queues = vec![t.dead_queue(), self.replies_queue(), format!("{}audit-tap", t.prefix)];
        queues.extend(
            JobQueue::ALL
                .into_iter()
                .flat_map(|q| Priority::ALL.map(|p| t.lane_queue(q, p))),
        );
        queues.extend((1..=t.retry_delays.len()).map(|l| t.retry_queue(l)));
        queues.push(t.policy_log());
        let exchanges = [
            t.jobs_exchange(),
            t.results_exchange(),
            t.policy_exchange(),
            t.retry_exchange(),
            t.audit_exchange(),
        ];
        self.rt.block_on(async {
            let Ok(channel) = connection.broker.channel().await else {
                return;
            };
            for q in queues {
                let _ = channel
                    .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            for x in exchanges {
                let _ = channel.exchange_delete(x.as_str().into(), Default::default()).await;
            }
            connection.broker.close().await;
        });
    }
}

pub struct Worker {
    pub child: Child,
    pub http: SocketAddr,
    pub log: PathBuf,
}

impl Worker {
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::blocking::get(format!("http://{}/readyz", self.http))
                && r.status() == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the worker never became ready; its log:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once it holds `needle` `times` times (lines written off the
    /// consume loop come a moment later); fails after 30 s.
    pub fn wait_for_log(&self, needle: &str, times: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log_text();
            if log.lines().filter(|l| l.contains(needle)).count() >= times {
                return log;
            }
            assert!(Instant::now() < deadline, "{needle:?} not logged {times} times:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The broker node `/readyz` names (`host:port`), if it is ready.
    pub fn broker_node(&self) -> Option<String> {
        let ready = reqwest::blocking::get(format!("http://{}/readyz", self.http)).ok()?;
        if ready.status() != 200 {
            return None;
        }
        let text = ready.text().ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("broker: "))
            .map(str::to_string)
    }

    pub fn metrics(&self) -> String {
        reqwest::blocking::get(format!("http://{}/metrics", self.http))
            .unwrap()
            .text()
            .unwrap()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo policy, with share expiry moved far out so the tests do not
/// start failing on the date in the fixture.
fn test_policy() -> serde_yaml::Value {
    let text = std::fs::read_to_string(fixture("policy.yaml")).unwrap();
    let mut policy: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    for share in policy["shares"].as_sequence_mut().unwrap() {
        if share.get("expires_at").is_some_and(|e| !e.is_null()) {
            share["expires_at"] = "2099-01-01T00:00:00Z".into();
        }
    }
    policy
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A demo job (fixtures/demo) with a new id and its source on the lab's store.
pub fn job(demo: &str, id: &str) -> Value {
    let text = std::fs::read_to_string(fixture(&format!("demo/{demo}.json"))).unwrap();
    let mut job: Value = serde_json::from_str(&text).unwrap();
    job["job_id"] = Value::from(id);
    job
}
