//! `rendition-bench priority`: interactive latency with and without a bulk
//! backlog (see scripts/priority). Three rounds against the running
//! workers: interactive jobs alone; the same after a bulk backlog sent to
//! the bulk lane; and after a backlog sent to the interactive lane, which
//! is what one queue without priorities would do. Not a test: it prints
//! figures.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use futures_util::StreamExt;
use lapin::Consumer;
use lapin::options::BasicAckOptions;
use rendition::job::{Job, Priority};
use rendition::queue::amqp::{AmqpBroker, message_of};
use rendition::queue::{Message, Publisher, Topology};
use rendition::result::{JobProgress, JobResult, Status};
use rendition::settings::{Settings, StoreSetting};

use crate::common::percentile_ms;
use crate::load_cmd::{Sources, load_job, upload};

#[derive(clap::Args)]
pub struct PriorityArgs {
    /// Source images, uploaded to the originals bucket.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Bulk jobs queued before the interactive ones.
    #[arg(long, default_value_t = 300)]
    bulk: usize,
    /// Interactive jobs per round, sent one every `--every-ms`.
    #[arg(long, default_value_t = 40)]
    interactive: usize,
    #[arg(long, default_value_t = 100)]
    every_ms: u64,
    /// A TOML file with the settings; RENDITION_* variables win over it.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// One round's figures.
struct Round {
    name: &'static str,
    interactive: Vec<Duration>,
    /// From the round's start until its last bulk job was answered.
    bulk_drained: Option<Duration>,
    failed: usize,
}

pub async fn run(args: PriorityArgs) -> anyhow::Result<()> {
    let settings = Settings::load(args.config.as_deref())?;
    let StoreSetting::S3 { config, originals, .. } = &settings.store else {
        bail!("the priority figure runs against S3: set RENDITION_STORE=s3");
    };
    let sources = upload(config, originals, &args.images).await?;
    let broker = AmqpBroker::connect(&settings.amqp_url).await?;
    broker.declare(&settings.topology).await?;
    let (_channel, mut replies) = broker.reply_queue().await?;
    let mut session = Session {
        broker: &broker,
        topology: &settings.topology,
        reply_to: replies.queue().as_str().to_string(),
        replies: &mut replies,
        every: Duration::from_millis(args.every_ms),
        sources: &sources,
        nonce: format!("{:08x}", rand::random::<u32>()),
        next_edge: 0,
    };
    let rounds = [
        ("none", None),
        ("bulk lane (priorities)", Some(Priority::Bulk)),
        ("interactive lane (no priorities)", Some(Priority::Interactive)),
    ];
    let mut figures = Vec::new();
    for (name, backlog) in rounds {
        let bulk = if backlog.is_some() { args.bulk } else { 0 };
        eprintln!("round: {bulk} queued first, {name}");
        figures.push(session.round(name, bulk, backlog, args.interactive).await?);
    }
    broker.close().await;
    print_table(&figures, args.bulk);
    Ok(())
}

fn print_table(rounds: &[Round], bulk: usize) {
    println!("| backlog sent to | interactive p50 ms | p99 ms | max ms | {bulk} bulk drained after s | failed |");
    println!("|---|---|---|---|---|---|");
    for round in rounds {
        let mut sorted = round.interactive.clone();
        sorted.sort();
        let at = |q| percentile_ms(&sorted, q);
        let drained = round
            .bulk_drained
            .map_or("–".into(), |d| format!("{:.1}", d.as_secs_f64()));
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {drained} | {} |",
            round.name,
            at(0.5),
            at(0.99),
            at(1.0),
            round.failed
        );
    }
}

struct Session<'a> {
    broker: &'a AmqpBroker,
    topology: &'a Topology,
    reply_to: String,
    replies: &'a mut Consumer,
    every: Duration,
    sources: &'a Sources,
    nonce: String,
    /// Each job asks a size no earlier job asked: every job renders.
    next_edge: usize,
}

impl Session<'_> {
    /// Queues `bulk` jobs in `backlog`'s lane, then sends `interactive`
    /// jobs at a steady pace, and waits for every answer.
    async fn round(
        &mut self,
        name: &'static str,
        bulk: usize,
        backlog: Option<Priority>,
        interactive: usize,
    ) -> anyhow::Result<Round> {
        let started = Instant::now();
        let mut pending = HashMap::new();
        let bulk_jobs = self.jobs("bulk", bulk, backlog);
        for job in &bulk_jobs {
            pending.insert(self.send(job).await?, (Instant::now(), false));
        }
        let live = self.jobs("live", interactive, Some(Priority::Interactive));
        let mut round = Round {
            name,
            interactive: Vec::new(),
            bulk_drained: None,
            failed: 0,
        };
        let mut next = live.iter();
        let mut tick = tokio::time::interval(self.every);
        // After a stall, keep the pace rather than send a burst.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !pending.is_empty() || next.len() > 0 {
            tokio::select! {
                _ = tick.tick(), if next.len() > 0 => {
                    let job = next.next().expect("a job is left");
                    pending.insert(self.send(job).await?, (Instant::now(), true));
                }
                reply = tokio::time::timeout(Duration::from_secs(120), self.replies.next()) => {
                    let Ok(Some(Ok(delivery))) = reply else {
                        bail!("{} jobs unanswered after 2 minutes of silence", pending.len());
                    };
                    let _ = delivery.ack(BasicAckOptions::default()).await;
                    let message = message_of(&delivery);
                    if JobProgress::from_reply(&message.body).is_some() {
                        continue;
                    }
                    let id = message.correlation_id.unwrap_or_default();
                    let Some((sent, is_live)) = pending.remove(&id) else { continue };
                    let result: JobResult = serde_json::from_slice(&message.body)?;
                    round.failed += usize::from(result.status != Status::Done);
                    if is_live {
                        round.interactive.push(sent.elapsed());
                    } else if bulk > 0 && !pending.values().any(|(_, live)| !live) {
                        round.bulk_drained = Some(started.elapsed());
                    }
                }
            }
        }
        Ok(round)
    }

    fn jobs(&mut self, tag: &str, n: usize, priority: Option<Priority>) -> Vec<Job> {
        let nonce = format!("{}-{tag}-{}", self.nonce, self.next_edge);
        let jobs = (0..n)
            .map(|i| {
                let mut job = load_job(&nonce, i, self.sources, self.next_edge);
                job.priority = priority;
                job
            })
            .collect();
        self.next_edge += n.div_ceil(self.sources.len()) + 1;
        jobs
    }

    /// Publishes under the job's lane key; returns its correlation id.
    async fn send(&self, job: &Job) -> anyhow::Result<String> {
        let message = Message {
            routing_key: job.routing_key(),
            body: serde_json::to_vec(job)?,
            correlation_id: Some(job.job_id.clone()),
            reply_to: Some(self.reply_to.clone()),
            mandatory: true,
            ..Message::default()
        };
        self.broker.publish(&self.topology.jobs_exchange(), &message).await?;
        Ok(job.job_id.clone())
    }
}
