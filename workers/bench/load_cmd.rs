//! `rendition load`: the load figure (see scripts/load). Puts the images in
//! the originals bucket, measures the bare engine on the very renditions
//! the jobs will ask for, then sends the jobs through the broker to the
//! running workers and times every answer. Not a test: it prints figures.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use lapin::options::BasicAckOptions;
use rayon::prelude::*;
use rendition::job::Job;
use rendition::plan::{Facts, LogoFact, MAX_LINK_TTL_S, Make, plan};
use rendition::policy::Policy;
use rendition::queue::amqp::{AmqpBroker, message_of};
use rendition::queue::{Message, Publisher};
use rendition::rendition::{EngineLimits, Spec, render};
use rendition::result::{JobProgress, JobResult, Status};
use rendition::settings::{Settings, StoreSetting};
use rendition::storage::s3::{S3Config, S3Store};
use rendition::storage::{PutOptions, Store};
use serde_json::json;

use crate::common::percentile_ms;

/// The load figure: jobs through the broker to running workers, against
/// the bare engine on the same renditions (see scripts/load).
#[derive(clap::Args)]
pub struct LoadArgs {
    /// Source images, uploaded to the originals bucket.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[arg(long, default_value_t = 2000)]
    jobs: usize,
    /// A TOML file with the settings; RENDITION_* variables win over it.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let settings = Settings::load(args.config.as_deref())?;
    let StoreSetting::S3 { config, originals, .. } = &settings.store else {
        bail!("the load figure runs against S3: set RENDITION_STORE=s3");
    };
    let policy = Policy::load(Path::new(settings.policy()?)).context("the policy")?;
    let sources = upload(config, originals, &args.images).await?;
    let nonce = format!("{:08x}", rand::random::<u32>());
    let jobs: Vec<Job> = (0..args.jobs).map(|i| load_job(&nonce, i, &sources, 0)).collect();
    eprintln!("{} jobs over {} images", jobs.len(), sources.len());

    let engine = engine_rate(&policy, &jobs, &sources)?;
    eprintln!("bare engine: {engine:.1} renditions/s (all cores, no queue, no storage)");
    let (rate, mut latencies, failed) = through_the_broker(&settings, &jobs).await?;
    latencies.sort();
    let at = |q| percentile_ms(&latencies, q);
    println!("| jobs | workers' jobs/s | engine renditions/s | ratio | p50 ms | p99 ms | failed |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {} | {rate:.1} | {engine:.1} | {:.2} | {:.0} | {:.0} | {failed} |",
        jobs.len(),
        rate / engine,
        at(0.5),
        at(0.99)
    );
    eprintln!(
        "queue + storage overhead: {:.1} % of the bare engine's throughput",
        (1.0 - rate / engine) * 100.0
    );
    Ok(())
}

/// The images, put in the originals bucket under `load/`: (key, bytes).
pub async fn upload(config: &S3Config, bucket: &str, images: &[PathBuf]) -> anyhow::Result<Sources> {
    let originals = S3Store::connect(config, bucket).await?;
    originals.ensure_bucket().await?;
    let mut sources = Vec::new();
    for path in images {
        let key = format!("load/{}", path.file_name().unwrap().to_string_lossy());
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        originals.put(&key, bytes.clone(), PutOptions::default()).await?;
        sources.push((key, Arc::new(bytes)));
    }
    Ok(sources)
}

/// Uploaded images: (key, bytes).
pub type Sources = Vec<(String, Arc<Vec<u8>>)>;

/// Job `i`: a collaborator (2048 px cap, no watermark) asking image
/// `i % n` at a size no other job of the run asks for it (from
/// `first_edge` px up), so every job really renders (no cache hits).
pub fn load_job(nonce: &str, i: usize, sources: &[(String, Arc<Vec<u8>>)], first_edge: usize) -> Job {
    let (key, _) = &sources[i % sources.len()];
    let edge = 256 + first_edge + i / sources.len();
    let job = json!({
        "schema": "rendition.job/v1",
        "job_id": format!("load-{nonce}-{i}"),
        "purpose": "download",
        "principal": {"user": "u-ben"},
        "asset": {"id": format!("a-load-{}", i % sources.len()), "collection": "g-launch",
                  "media": "image", "source": key, "filename": "load.jpg"},
        "request": {"rendition": {"max_edge": edge}, "format": "jpeg", "quality": 85},
    });
    Job::parse(&serde_json::to_vec(&job).unwrap()).expect("a valid load job")
}

/// Renditions per second the engine alone makes of the same jobs, on a
/// pool as large as the machine.
fn engine_rate(policy: &Policy, jobs: &[Job], sources: &[(String, Arc<Vec<u8>>)]) -> anyhow::Result<f64> {
    let bytes: HashMap<&str, &Arc<Vec<u8>>> = sources.iter().map(|(k, b)| (k.as_str(), b)).collect();
    let facts = Facts {
        now: chrono::Utc::now(),
        max_link_ttl_s: MAX_LINK_TTL_S,
        share_revoked: false,
        logo: LogoFact::None,
        print_profiles: Default::default(),
        forensic_key: None,
    };
    let work: Vec<(Spec, &Arc<Vec<u8>>)> = jobs
        .iter()
        .map(|job| match plan(policy, job, &facts).make {
            Make::Images(spec) => (spec, bytes[job.asset.source.as_str()]),
            other => panic!("load jobs are allowed image renditions, not {other:?}"),
        })
        .collect();
    let limits = EngineLimits::default();
    let started = Instant::now();
    let made: usize = work
        .par_iter()
        .map(|(spec, source)| render(source, spec, &limits).map_or(0, |r| r.len()))
        .sum();
    if made < jobs.len() {
        bail!("the engine failed {} of the load jobs", jobs.len() - made);
    }
    Ok(made as f64 / started.elapsed().as_secs_f64())
}

/// Publishes every job, then waits for every answer: (jobs/s from first
/// publish to last answer, per-job latencies, failures).
async fn through_the_broker(settings: &Settings, jobs: &[Job]) -> anyhow::Result<(f64, Vec<Duration>, usize)> {
    let broker = AmqpBroker::connect(&settings.amqp_url).await?;
    broker.declare_core(&settings.topology).await?;
    let (_channel, mut replies) = broker.reply_queue().await?;
    let reply_to = replies.queue().as_str().to_string();
    let mut sent = HashMap::new();
    let started = Instant::now();
    for job in jobs {
        let message = Message {
            routing_key: "image".into(),
            body: serde_json::to_vec(job)?,
            correlation_id: Some(job.job_id.clone()),
            reply_to: Some(reply_to.clone()),
            mandatory: true,
            ..Message::default()
        };
        broker.publish(&settings.topology.jobs_exchange(), &message).await?;
        sent.insert(job.job_id.clone(), Instant::now());
    }
    let (mut latencies, mut failed) = (Vec::new(), 0);
    while !sent.is_empty() {
        let next = tokio::time::timeout(Duration::from_secs(120), replies.next()).await;
        let Ok(Some(Ok(delivery))) = next else {
            bail!("{} jobs unanswered after 2 minutes of silence", sent.len());
        };
        let _ = delivery.ack(BasicAckOptions::default()).await;
        let reply = message_of(&delivery);
        if JobProgress::from_reply(&reply.body).is_some() {
            continue;
        }
        let Some(at) = reply.correlation_id.as_ref().and_then(|id| sent.remove(id)) else {
            continue;
        };
        latencies.push(at.elapsed());
        let result: JobResult = serde_json::from_slice(&reply.body)?;
        if result.status != Status::Done || result.renditions.iter().any(|r| r.cached) {
            failed += 1;
        }
    }
    let rate = jobs.len() as f64 / started.elapsed().as_secs_f64();
    broker.close().await;
    Ok((rate, latencies, failed))
}
