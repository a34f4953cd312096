//! `rendition dlq list` / `rendition dlq replay [--all | ID]`: looks at the
//! dead letters without consuming them, and re-queues chosen ones.
//!
//! Messages are taken with `basic.get` and left unacked; closing the
//! channel puts back every one not replayed.

use anyhow::{Context, bail};
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use rendition::queue::amqp::{AmqpBroker, message_of};
use rendition::queue::{Message, Publisher};
use serde_json::json;

use rendition::settings::Settings;

/// Inspect and re-queue dead letters.
#[derive(clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
    /// A TOML file with the settings; RENDITION_* variables win over it.
    #[arg(long, global = true)]
    config: Option<std::path::PathBuf>,
}

#[derive(clap::Subcommand)]
enum DlqCommand {
    /// Print the dead letters (one JSON line each) without removing them.
    List,
    /// Re-queue dead letters to the jobs exchange, attempts counted afresh.
    Replay {
        #[arg(long, conflicts_with = "job_id", required_unless_present = "job_id")]
        all: bool,
        /// The job id of the dead letter to replay.
        job_id: Option<String>,
    },
}

/// Which dead letters to replay.
pub enum Pick {
    All,
    JobId(String),
}

pub async fn run(args: DlqArgs) -> anyhow::Result<()> {
    let settings = Settings::load(args.config.as_deref())?;
    match args.command {
        DlqCommand::List => list(&settings).await,
        DlqCommand::Replay { job_id: Some(id), .. } => replay(&settings, Pick::JobId(id)).await,
        DlqCommand::Replay { .. } => replay(&settings, Pick::All).await,
    }
}

async fn connect(settings: &Settings) -> anyhow::Result<AmqpBroker> {
    let broker = AmqpBroker::connect(&settings.amqp_url)
        .await
        .context("connecting to the broker")?;
    broker.declare_core(&settings.topology).await?;
    Ok(broker)
}

/// Every dead letter, taken unacked: closing the channel puts back each
/// one not acked.
async fn take_all(channel: &Channel, queue: &str) -> anyhow::Result<Vec<Delivery>> {
    let mut taken = Vec::new();
    while let Some(got) = channel.basic_get(queue.into(), BasicGetOptions::default()).await? {
        taken.push(got.delivery);
    }
    Ok(taken)
}

async fn list(settings: &Settings) -> anyhow::Result<()> {
    let broker = connect(settings).await?;
    let channel = broker.channel().await?;
    let queue = settings.topology.dead_queue();
    let dead = take_all(&channel, &queue).await?;
    for delivery in &dead {
        let m = message_of(delivery);
        let body: serde_json::Value = serde_json::from_slice(&m.body).unwrap_or_else(|_| json!(lossy(&m.body)));
        let why = m.death_note();
        // A job the broker gave up on carries the broker's delivery count.
        let deliveries = m.header("x-delivery-count").and_then(|n| n.parse::<u32>().ok());
        let line = json!({
            "job_id": m.message_id.clone().or_else(|| body["job_id"].as_str().map(str::to_string)),
            "routing_key": why.routing_key,
            "attempts": deliveries.map_or(m.attempt(), |n| n.max(m.attempt())),
            "error": { "code": why.code, "message": why.message },
            "job": body,
        });
        println!("{line}");
    }
    let _ = channel.close(200, "listed".into()).await;
    broker.close().await;
    eprintln!("{} dead letters in {queue}", dead.len());
    Ok(())
}

async fn replay(settings: &Settings, pick: Pick) -> anyhow::Result<()> {
    let broker = connect(settings).await?;
    let channel = broker.channel().await?;
    let queue = settings.topology.dead_queue();
    let mut replayed = 0;
    for delivery in take_all(&channel, &queue).await? {
        let dead = message_of(&delivery);
        if !picked(&pick, &dead) {
            continue;
        }
        // A fresh start: attempts count again from one.
        let again = Message {
            routing_key: dead.death_note().routing_key.unwrap_or_else(|| "image".into()),
            headers: Default::default(),
            mandatory: true,
            ..dead
        };
        broker.publish(&settings.topology.jobs_exchange(), &again).await?;
        delivery.ack(BasicAckOptions::default()).await?;
        replayed += 1;
    }
    let _ = channel.close(200, "replayed".into()).await;
    broker.close().await;
    eprintln!(
        "replayed {replayed} dead letters to {}",
        settings.topology.jobs_exchange()
    );
    if replayed == 0
        && let Pick::JobId(id) = &pick
    {
        bail!("no dead letter has job id {id}");
    }
    Ok(())
}

fn picked(pick: &Pick, dead: &Message) -> bool {
    match pick {
        Pick::All => true,
        Pick::JobId(id) => {
            let body: serde_json::Value = serde_json::from_slice(&dead.body).unwrap_or_default();
            dead.message_id.as_deref() == Some(id) || body["job_id"].as_str() == Some(id)
        }
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
