//! `rendition enqueue JOB.json… [--wait]`: publishes jobs to the jobs
//! exchange (routing key = the asset's media, `publish`, or `revoke`) and,
//! with `--wait`, prints each result as it arrives.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lapin::options::BasicAckOptions;
use rendition::job::Job;
use rendition::queue::amqp::{AmqpBroker, message_of};
use rendition::queue::{Message, Publisher, REVOKE_ROUTING_KEY};
use rendition::result::JobProgress;
use rendition::revocation::REVOKE_SCHEMA;
use rendition::settings::Settings;

use crate::common::percentile_ms;
use crate::job_files::job_files;

/// Publish jobs to the broker; with --wait, print their results.
#[derive(clap::Args)]
pub struct EnqueueArgs {
    /// Job files, or directories of them.
    #[arg(required = true)]
    jobs: Vec<PathBuf>,
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (exit 2).
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// With --wait: print jobs/s and latency percentiles to stderr.
    #[arg(long, requires = "wait")]
    stats: bool,
    /// A TOML file with the settings; RENDITION_* variables win over it.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub async fn run(args: EnqueueArgs) -> anyhow::Result<()> {
    let settings = Settings::load(args.config.as_deref())?;
    let topology = &settings.topology;
    let broker = AmqpBroker::connect_as_publisher(&settings.amqp_url, topology)
        .await
        .context("connecting to the broker")?;
    let replies = match args.wait {
        true => Some(broker.reply_queue().await?),
        false => None,
    };
    let reply_to = replies.as_ref().map(|(_, c)| c.queue().as_str().to_string());
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let started = Instant::now();
    for file in job_files(&args.jobs)? {
        let body = std::fs::read(&file).with_context(|| file.display().to_string())?;
        let id = job_id(&body, &file);
        let message = Message {
            routing_key: routing_key(&body),
            body,
            correlation_id: Some(id.clone()),
            message_id: Some(id.clone()),
            reply_to: reply_to.clone(),
            mandatory: true,
            ..Message::default()
        };
        broker.publish(&topology.jobs_exchange(), &message).await?;
        sent.insert(id, Instant::now());
    }
    eprintln!("published {} jobs", sent.len());
    let Some((_channel, mut consumer)) = replies else {
        return Ok(());
    };
    let mut latencies = Vec::new();
    let mut bars = Bars::default();
    let deadline = tokio::time::sleep(Duration::from_secs(args.timeout));
    tokio::pin!(deadline);
    while !sent.is_empty() {
        let delivery = tokio::select! {
            d = consumer.next() => d,
            _ = &mut deadline => break,
        };
        let Some(Ok(delivery)) = delivery else {
            bail!("the broker closed the reply queue");
        };
        let _ = delivery.ack(BasicAckOptions::default()).await;
        let reply = message_of(&delivery);
        if let Some(progress) = JobProgress::from_reply(&reply.body) {
            bars.show(&progress);
            continue;
        }
        if let Some(id) = &reply.correlation_id {
            bars.finish(id);
        }
        if let Some(at) = reply.correlation_id.as_ref().and_then(|id| sent.remove(id)) {
            latencies.push(at.elapsed());
            bars.multi
                .suspend(|| println!("{}", String::from_utf8_lossy(&reply.body)));
        }
    }
    if args.stats {
        print_stats(&mut latencies, started.elapsed());
    }
    if !sent.is_empty() {
        bail!(
            "{} jobs had no result within {:?}",
            sent.len(),
            Duration::from_secs(args.timeout)
        );
    }
    Ok(())
}

/// One progress bar per job that reports progress (video transcodes).
#[derive(Default)]
struct Bars {
    multi: MultiProgress,
    by_job: HashMap<String, ProgressBar>,
}

impl Bars {
    fn show(&mut self, progress: &JobProgress) {
        let multi = &self.multi;
        let bar = self.by_job.entry(progress.job_id.clone()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr()));
            bar.set_style(ProgressStyle::with_template("{prefix} {bar:30} {msg}").expect("a valid template"));
            bar.set_prefix(progress.job_id.clone());
            bar
        });
        bar.set_position(progress.percent.round() as u64);
        bar.set_message(progress.describe());
    }

    fn finish(&mut self, job_id: &str) {
        if let Some(bar) = self.by_job.remove(job_id) {
            bar.finish_and_clear();
        }
    }
}

/// Where the job goes: the routing keys of docs/contract.md#broker-topology, in its priority's lane.
fn routing_key(body: &[u8]) -> String {
    if let Ok(job) = Job::parse(body) {
        return job.routing_key();
    }
    let job: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    if job["schema"] == REVOKE_SCHEMA {
        return REVOKE_ROUTING_KEY.into();
    }
    // Unreadable jobs still get an answer (`invalid_job`) from a worker.
    "image".into()
}

fn job_id(body: &[u8], file: &Path) -> String {
    let job: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    match job["job_id"].as_str() {
        Some(id) => id.to_string(),
        None => file
            .file_stem()
            .map_or("unknown".into(), |s| s.to_string_lossy().into()),
    }
}

fn print_stats(latencies: &mut [Duration], elapsed: Duration) {
    if latencies.is_empty() {
        return;
    }
    latencies.sort();
    let at = |q| percentile_ms(latencies, q);
    eprintln!(
        "results: {} in {:.1} s = {:.1} jobs/s; latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_media_purpose_priority_and_revoke() {
        let job = |media: &str, purpose: &str, priority: Option<&str>| {
            let mut job = serde_json::json!({
                "schema": "rendition.job/v1", "job_id": "j", "purpose": purpose,
                "principal": {"user": "u"},
                "asset": {"id": "a", "collection": "c", "media": media, "source": "o/a"},
                "request": {"rendition": "original"},
            });
            if purpose == "publish" {
                job["destination"] = serde_json::json!({"bucket": "b"});
            }
            if let Some(p) = priority {
                job["priority"] = p.into();
            }
            serde_json::to_vec(&job).unwrap()
        };
        assert_eq!(routing_key(&job("video", "download", None)), "video");
        assert_eq!(routing_key(&job("audio", "share", None)), "audio");
        assert_eq!(routing_key(&job("image", "publish", None)), "publish");
        assert_eq!(routing_key(&job("image", "download", Some("bulk"))), "bulk.image");
        assert_eq!(
            routing_key(&job("image", "publish", Some("interactive"))),
            "interactive.publish"
        );
        assert_eq!(
            routing_key(br#"{"schema":"rendition.revoke/v1","share":"s"}"#),
            "revoke"
        );
        assert_eq!(routing_key(b"not json"), "image");
    }
}
