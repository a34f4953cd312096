//! `rendition-bench chaos`: N image jobs through a fleet of real workers
//! while the fleet, the broker and the S3 server are disrupted (see
//! scripts/chaos). Prints what came back: answered, lost, duplicates (and
//! whether each is identical), retries, dead letters, jobs/s — as a table
//! on stderr and one JSON line on stdout (the chaos test reads it).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use rendition::audit::{self, AuditQuery};
use rendition::queue::amqp::{AmqpBroker, message_of};
use rendition::queue::{JobQueue, Message, Priority, Publisher};
use rendition::result::{JobProgress, JobResult, Status};
use rendition::settings::{Settings, StoreSetting};
use rendition::storage::s3::S3Store;
use rendition::storage::{PutOptions, Store};
use serde_json::json;

use crate::disrupt::{Broker, ClusterNodes, Fleet, S3Server};

/// N jobs through real workers under kills, a broker restart and a storage outage.
#[derive(clap::Args)]
pub struct ChaosArgs {
    /// Source images, uploaded to the originals bucket.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[arg(long, default_value_t = 10_000)]
    jobs: usize,
    /// Worker processes (each with RENDITION_CONCURRENCY from the environment).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// SIGKILL one worker (in turn) every this many seconds, and restart it; 0: never.
    #[arg(long, default_value_t = 10)]
    kill_every_s: u64,
    /// At most this many kills.
    #[arg(long, default_value_t = usize::MAX)]
    kills: usize,
    /// Stop the S3 server for this many seconds once; 0: never.
    #[arg(long, default_value_t = 30)]
    storage_outage_s: u64,
    /// ... when this share of the jobs has been answered.
    #[arg(long, default_value_t = 0.25)]
    storage_at: f64,
    /// Restart RabbitMQ once: `node` (the whole node), `app` (stop_app/start_app) or `none`.
    #[arg(long, default_value = "node")]
    broker_restart: String,
    /// ... when this share of the jobs has been answered.
    #[arg(long, default_value_t = 0.5)]
    broker_at: f64,
    /// The broker is the cluster of scripts/cluster (RENDITION_AMQP_URL
    /// lists its nodes: `scripts/cluster url`): each node in turn is stopped
    /// for --node-down-s and started again, at --nodes-at; no broker restart.
    #[arg(long)]
    cluster: bool,
    #[arg(long, default_value_t = 20)]
    node_down_s: u64,
    /// When to stop nodes 1, 2 and 3 (shares of the jobs answered).
    #[arg(long, value_delimiter = ',', default_value = "0.2,0.45,0.7")]
    nodes_at: Vec<f64>,
    /// The cluster script.
    #[arg(long, default_value = "scripts/cluster")]
    cluster_script: PathBuf,
    /// Give up after this long without a new answer.
    #[arg(long, default_value_t = 180)]
    quiet_s: u64,
    /// The `rendition` program the workers run (default: beside this one).
    #[arg(long)]
    worker_bin: Option<PathBuf>,
    /// Where the workers' logs go.
    #[arg(long, default_value = "target/chaos")]
    logs: PathBuf,
    /// This share of the jobs (spread evenly) asks for a source that
    /// crashes the engine rendering it; each must be answered
    /// `engine_crashed` and dead-lettered, no other job touched. Needs a
    /// test build (`--features engine-test-requests`), as the tests run it.
    #[arg(long, default_value_t = 0.0)]
    engine_crashes: f64,
}

/// Whether job `i` of a run with `rate` engine crashes is one of them.
fn crashes(i: usize, rate: f64) -> bool {
    (i as f64 * rate).floor() != ((i + 1) as f64 * rate).floor()
}

/// The bytes of a source that crashes its engine (test builds only).
fn crashing_source() -> anyhow::Result<Vec<u8>> {
    #[cfg(feature = "engine-test-requests")]
    return Ok(rendition::isolated::attempts::SEGFAULT_MARK.to_vec());
    #[cfg(not(feature = "engine-test-requests"))]
    bail!("--engine-crashes needs a test build: cargo build --features engine-test-requests")
}

/// What came back.
#[derive(Default)]
struct Tally {
    answers: BTreeMap<String, Vec<JobResult>>,
}

pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    let settings = Settings::load(None)?;
    let StoreSetting::S3 {
        config,
        originals,
        renditions,
    } = &settings.store
    else {
        bail!("chaos runs against S3: set RENDITION_STORE=s3");
    };
    let endpoint = config
        .endpoint
        .clone()
        .context("chaos needs RENDITION_S3_ENDPOINT (it stops that server)")?;
    let originals = S3Store::connect(config, originals).await?;
    originals.ensure_bucket().await?;
    let mut keys = Vec::new();
    for path in &args.images {
        let key = format!("chaos/{}", path.file_name().unwrap().to_string_lossy());
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        originals.put(&key, bytes, PutOptions::default()).await?;
        keys.push(key);
    }
    let crash_key = "chaos/crash.jpg".to_string();
    if args.engine_crashes > 0.0 {
        originals
            .put(&crash_key, crashing_source()?, PutOptions::default())
            .await?;
    }
    let s3 = S3Server::find(&endpoint)?;
    let broker = match args.cluster {
        true => Broker::None,
        false => Broker::parse(&args.broker_restart)?,
    };
    let cluster = match args.cluster {
        true => Some(cluster_nodes(&args, &settings)?),
        false => None,
    };
    std::fs::create_dir_all(&args.logs)?;
    let bin = match &args.worker_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?.with_file_name("rendition"),
    };
    let mut fleet = Fleet::start(bin, args.workers, &args.logs)?;

    let replies = format!("{}chaos-replies", settings.topology.prefix);
    let nonce = format!("{:08x}", rand::random::<u32>());
    let started = Instant::now();
    let sources = Sources {
        keys: &keys,
        crash_key: &crash_key,
        crash_rate: args.engine_crashes,
    };
    publish_all(&settings, &replies, &nonce, &sources, args.jobs).await?;
    eprintln!(
        "chaos: {} jobs published in {:.1} s",
        args.jobs,
        started.elapsed().as_secs_f64()
    );

    let answered = Arc::new(AtomicUsize::new(0));
    let collecting = tokio::spawn(collect(
        settings.amqp_url.clone(),
        replies,
        args.jobs,
        answered.clone(),
        args.quiet_s,
    ));
    let mut events = Events::default();
    let (mut storage_done, mut broker_done) = (args.storage_outage_s == 0, broker == Broker::None);
    let mut nodes_stopped = 0;
    let mut next_kill = Instant::now() + Duration::from_secs(args.kill_every_s.max(1));
    while !collecting.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let share = answered.load(Ordering::Relaxed) as f64 / args.jobs as f64;
        events.exited += fleet.restart_exited();
        if args.kill_every_s > 0 && events.kills < args.kills && Instant::now() >= next_kill {
            fleet.kill_next();
            events.kills += 1;
            next_kill = Instant::now() + Duration::from_secs(args.kill_every_s);
        }
        if !storage_done && share >= args.storage_at {
            storage_done = true;
            eprintln!(
                "chaos: stopping the S3 server for {} s at {:.0} %",
                args.storage_outage_s,
                share * 100.0
            );
            s3.stop()?;
            tokio::time::sleep(Duration::from_secs(args.storage_outage_s)).await;
            s3.start()?;
            events.storage_outages += 1;
            eprintln!("chaos: S3 server back");
        }
        if !broker_done && share >= args.broker_at {
            broker_done = true;
            eprintln!(
                "chaos: restarting RabbitMQ ({}) at {:.0} %",
                args.broker_restart,
                share * 100.0
            );
            tokio::task::spawn_blocking(move || broker.restart()).await??;
            events.broker_restarts += 1;
            eprintln!("chaos: RabbitMQ back");
        }
        if let Some(cluster) = &cluster
            && let Some(at) = args.nodes_at.get(nodes_stopped)
            && share >= *at
        {
            nodes_stopped += 1;
            let queue = settings.topology.lane_queue(JobQueue::Image, Priority::Interactive);
            let leader = cluster.leader(&queue).ok();
            // In turn: the node worker 0 is on, the queue's leader, the node
            // worker 1 is on (whatever the kills made of them since).
            let node = match nodes_stopped {
                2 => leader,
                n => fleet.node_of(n / 2),
            }
            .unwrap_or(nodes_stopped);
            let on_it: Vec<usize> = (0..args.workers).filter(|i| fleet.node_of(*i) == Some(node)).collect();
            eprintln!(
                "chaos: stopping cluster node {node} (the image queue's leader: {leader:?}; workers on it: {on_it:?}) for {} s at {:.0} %",
                args.node_down_s,
                share * 100.0
            );
            cluster.stop(node)?;
            tokio::time::sleep(Duration::from_secs(args.node_down_s)).await;
            cluster.start(node)?;
            events.node_stops += 1;
            events.leader_stops += usize::from(leader == Some(node));
            events.workers_on_stopped_nodes += on_it.len();
            eprintln!("chaos: node {node} back");
        }
    }
    let tally = collecting.await??;
    let seconds = started.elapsed().as_secs_f64();
    let logs = fleet.stop();
    let dead = dead_letters(&settings).await?;
    let mut summary = summarize(&tally, args.jobs, &events, &logs, dead, seconds);
    let crash_jobs = |first: &JobResult| {
        let i = first.job_id.rsplit('-').next().and_then(|i| i.parse().ok());
        i.is_some_and(|i| crashes(i, args.engine_crashes))
    };
    let (crashed, innocent): (Vec<_>, Vec<_>) = tally.answers.values().partition(|a| crash_jobs(&a[0]));
    let code = |a: &JobResult| a.error.as_ref().map(|e| e.code.clone());
    summary["crash_jobs"] = crashed.len().into();
    summary["crash_jobs_engine_crashed"] = crashed
        .iter()
        .filter(|a| a.iter().all(|r| code(r).as_deref() == Some("engine_crashed")))
        .count()
        .into();
    summary["innocent_not_done"] = innocent.iter().filter(|a| a[0].status != Status::Done).count().into();
    // One audit record per job, whatever the workers went through.
    let trail = audit::read(&originals.bucket(renditions)?, &AuditQuery::default()).await?;
    summary["audit_records"] = trail.iter().filter(|r| r.job_id.contains(&nonce)).count().into();
    eprintln!("{}", table(&summary));
    println!("{summary}");
    Ok(())
}

/// Disruptions made.
#[derive(Default)]
struct Events {
    kills: usize,
    exited: usize,
    storage_outages: usize,
    broker_restarts: usize,
    node_stops: usize,
    leader_stops: usize,
    workers_on_stopped_nodes: usize,
}

/// The cluster's nodes, checked against the broker list the workers get.
fn cluster_nodes(args: &ChaosArgs, settings: &Settings) -> anyhow::Result<ClusterNodes> {
    let cluster = ClusterNodes::new(args.cluster_script.clone())?;
    let url = cluster.url()?;
    if settings.amqp_url != url {
        bail!("--cluster: set RENDITION_AMQP_URL to the cluster's nodes ({url}), as scripts/chaos --cluster does");
    }
    if args.nodes_at.len() > ClusterNodes::NODES {
        bail!("--nodes-at: one share per node, at most {}", ClusterNodes::NODES);
    }
    Ok(cluster)
}

/// What the jobs ask for: the images, and the source that crashes its
/// engine for a share of them.
struct Sources<'a> {
    keys: &'a [String],
    crash_key: &'a str,
    crash_rate: f64,
}

/// Job `i`: a collaborator asking image `i % n` at its own size (so each
/// job really renders), or the crashing source when its turn comes,
/// answered on a durable queue that survives a broker restart.
async fn publish_all(
    settings: &Settings,
    replies: &str,
    nonce: &str,
    sources: &Sources<'_>,
    n: usize,
) -> anyhow::Result<()> {
    let broker = AmqpBroker::connect(&settings.amqp_url).await?;
    broker.declare_core(&settings.topology).await?;
    declare_replies(&broker, replies).await?;
    let keys = sources.keys;
    for i in 0..n {
        let id = format!("chaos-{nonce}-{i}");
        let source = match crashes(i, sources.crash_rate) {
            true => sources.crash_key,
            false => &keys[i % keys.len()],
        };
        let job = json!({
            "schema": "rendition.job/v1", "job_id": id, "purpose": "download",
            "principal": {"user": "u-ben"},
            "asset": {"id": format!("a-chaos-{}", i % keys.len()), "collection": "g-launch",
                      "media": "image", "source": source, "filename": "chaos.jpg"},
            "request": {"rendition": {"max_edge": 200 + i / keys.len()}, "format": "jpeg", "quality": 80},
        });
        let message = Message {
            routing_key: "image".into(),
            body: serde_json::to_vec(&job)?,
            correlation_id: Some(id),
            reply_to: Some(replies.to_string()),
            mandatory: true,
            ..Message::default()
        };
        broker.publish(&settings.topology.jobs_exchange(), &message).await?;
    }
    broker.close().await;
    Ok(())
}

async fn declare_replies(broker: &AmqpBroker, name: &str) -> anyhow::Result<lapin::Channel> {
    let channel = broker.channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    // Quorum: on a cluster, replies outlive the node they were sent to.
    let mut quorum = FieldTable::default();
    quorum.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    channel.queue_declare(name.into(), durable, quorum).await?;
    Ok(channel)
}

/// Every answer until each of `n` jobs has one (then a few seconds more for
/// late duplicates), reconnecting through broker restarts.
async fn collect(
    url: String,
    queue: String,
    n: usize,
    answered: Arc<AtomicUsize>,
    quiet_s: u64,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut last = Instant::now();
    while last.elapsed() < Duration::from_secs(quiet_s) {
        let Ok(broker) = AmqpBroker::connect(&url).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let Ok((_channel, mut consumer)) = consume_replies(&broker, &queue).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        loop {
            let complete = tally.answers.len() >= n;
            let wait = if complete {
                Duration::from_secs(3)
            } else {
                Duration::from_secs(5)
            };
            match tokio::time::timeout(wait, consumer.next()).await {
                Ok(Some(Ok(delivery))) => {
                    let _ = delivery.ack(BasicAckOptions::default()).await;
                    let reply = message_of(&delivery);
                    if JobProgress::from_reply(&reply.body).is_some() {
                        continue;
                    }
                    let result: JobResult = serde_json::from_slice(&reply.body)?;
                    tally.answers.entry(result.job_id.clone()).or_default().push(result);
                    answered.store(tally.answers.len(), Ordering::Relaxed);
                    last = Instant::now();
                }
                Ok(_) => break, // the connection went: reconnect
                Err(_) if complete => {
                    broker.close().await;
                    return Ok(tally);
                }
                Err(_) if last.elapsed() >= Duration::from_secs(quiet_s) => break,
                Err(_) => {}
            }
        }
        broker.close().await;
    }
    Ok(tally)
}

async fn consume_replies(broker: &AmqpBroker, queue: &str) -> anyhow::Result<(lapin::Channel, lapin::Consumer)> {
    let channel = declare_replies(broker, queue).await?;
    channel.basic_qos(64, BasicQosOptions::default()).await?;
    let options = BasicConsumeOptions::default();
    let consumer = channel
        .basic_consume(queue.into(), "".into(), options, FieldTable::default())
        .await?;
    Ok((channel, consumer))
}

/// Messages left in the dead-letter queue.
async fn dead_letters(settings: &Settings) -> anyhow::Result<u32> {
    let broker = AmqpBroker::connect(&settings.amqp_url).await?;
    let channel = broker.channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let dead = settings.topology.dead_queue();
    let queue = channel
        .queue_declare(dead.as_str().into(), passive, FieldTable::default())
        .await?;
    broker.close().await;
    Ok(queue.message_count())
}

/// Two answers to one job agree on what was handed out: the same status,
/// error code and renditions (keys and sha256); links may differ.
fn same_content(a: &JobResult, b: &JobResult) -> bool {
    content(a) == content(b)
}

fn content(r: &JobResult) -> (Status, Option<&str>, Vec<(&str, &str)>) {
    let renditions = r
        .renditions
        .iter()
        .map(|x| (x.key.as_str(), x.sha256.as_str()))
        .collect();
    (r.status, r.error.as_ref().map(|e| e.code.as_str()), renditions)
}

fn summarize(tally: &Tally, jobs: usize, events: &Events, logs: &str, dead: u32, seconds: f64) -> serde_json::Value {
    let mut not_done: BTreeMap<String, usize> = BTreeMap::new();
    let (mut duplicates, mut identical, mut same) = (0, 0, 0);
    for answers in tally.answers.values() {
        let first = &answers[0];
        if first.status != Status::Done {
            let code = first.error.as_ref().map_or("denied".to_string(), |e| e.code.clone());
            *not_done.entry(code).or_default() += 1;
        }
        for other in &answers[1..] {
            duplicates += 1;
            identical += usize::from(other == first);
            same += usize::from(same_content(other, first));
        }
    }
    let answered = tally.answers.len();
    let codes: HashMap<&str, usize> = not_done.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    json!({
        "jobs": jobs, "answered": answered, "lost": jobs - answered.min(jobs),
        "done": answered - not_done.values().sum::<usize>(), "not_done": codes,
        "duplicates": duplicates, "duplicates_identical": identical, "duplicates_same_content": same,
        "retries": logs.matches("\"retry\":true").count(), "dead_letters": dead,
        "kills": events.kills, "exited_on_their_own": events.exited,
        "storage_outages": events.storage_outages, "broker_restarts": events.broker_restarts,
        "node_stops": events.node_stops, "leader_stops": events.leader_stops,
        "workers_on_stopped_nodes": events.workers_on_stopped_nodes,
        "worker_failovers": logs.matches("trying the next node").count(),
        "seconds": (seconds * 10.0).round() / 10.0, "jobs_per_s": ((answered as f64 / seconds) * 10.0).round() / 10.0,
    })
}

fn table(s: &serde_json::Value) -> String {
    let rows = [
        "jobs",
        "answered",
        "lost",
        "done",
        "not_done",
        "duplicates",
        "duplicates_identical",
        "duplicates_same_content",
        "retries",
        "dead_letters",
        "kills",
        "exited_on_their_own",
        "storage_outages",
        "broker_restarts",
        "node_stops",
        "leader_stops",
        "workers_on_stopped_nodes",
        "worker_failovers",
        "audit_records",
        "crash_jobs",
        "crash_jobs_engine_crashed",
        "innocent_not_done",
        "seconds",
        "jobs_per_s",
    ];
    let mut out = String::from("| measure | value |\n|---|---|\n");
    for row in rows {
        out.push_str(&format!("| {row} | {} |\n", s[row]));
    }
    out
}
