//! The worker: consumes job queues, runs each job through the pipeline,
//! answers, and acks only after the broker confirmed the answer
//! (at-least-once; `job_id` makes repeats harmless).
//!
//! - [`handler`]: one delivery → reply, retry or dead letter.
//! - [`lanes`]: which delivery starts next (interactive before bulk).
//! - [`policy_updates`]: policy documents from the fanout exchange.
//! - [`policy_log`]: where the worker stands in the log of those updates;
//!   `policy_reader`: a connection's reading of it.
//! - [`run`]: connect (and fail over to the next node of a cluster, with
//!   backoff once every node refused), declare, consume, drain on shutdown.

pub mod handler;
pub mod lanes;
pub mod outage;
pub mod policy_log;
mod policy_reader;
pub mod policy_updates;
pub mod supervise;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicNackOptions};
use supervise::Verdict;
use tokio::task::JoinSet;

pub use handler::Handler;
use lanes::{Lanes, Slot};
use policy_log::PolicyLogCursor;

use crate::ops::Stage;
use crate::ops::http::BrokerFlag;
use crate::queue::addresses::{BrokerAddresses, Failover};
use crate::queue::amqp::{AmqpBroker, message_of};
use crate::queue::{JobQueue, Priority, QueueError};
use crate::storage::Store;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The broker's nodes (one, or a cluster's), tried in a shuffled order.
    pub brokers: BrokerAddresses,
    /// Which job queues this worker takes (image and video pools can differ).
    pub queues: Vec<JobQueue>,
    /// Jobs in flight at once per queue (both lanes together); also each
    /// lane's prefetch.
    pub concurrency: u16,
    /// How long SIGTERM waits for jobs in flight.
    pub drain_timeout: Duration,
}

/// Runs until `shutdown` completes, then stops taking jobs, lets the ones
/// in flight finish (up to the drain timeout) and returns. A lost node is
/// left for the next one of the list at once; once every node refused, the
/// worker waits with backoff and tries the list again. Unacked jobs come
/// back from the broker (a quorum queue keeps them on the nodes still up).
pub async fn run<S: Store + 'static>(
    config: WorkerConfig,
    handler: Arc<Handler<S>>,
    connected: Arc<BrokerFlag>,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let addresses = config.brokers.clone().shuffled(&mut rand::rng());
    let mut failover = Failover::new(&addresses);
    let mut backoff = Duration::from_millis(200);
    let policy_log = PolicyLogCursor::default();
    loop {
        let attempt = tokio::select! {
            _ = &mut shutdown => return,
            b = AmqpBroker::connect_first(failover.round().map(|i| (i, &addresses.nodes()[i]))) => b,
        };
        let lost = match attempt {
            Ok((i, broker)) => {
                if failover.connected(i) {
                    handler.metrics.broker_failover();
                }
                tracing::info!(
                    node = broker.node(),
                    failovers = failover.failovers(),
                    "broker connected"
                );
                let broker = Arc::new(broker);
                let consumed = AtomicBool::new(false);
                let session = Session {
                    config: &config,
                    handler: &handler,
                    broker: &broker,
                    connected: &connected,
                    consumed: &consumed,
                    policy_log: &policy_log,
                };
                let outcome = session.serve(&mut shutdown, &mut backoff).await;
                connected.set(None);
                handler.metrics.broker_node(None);
                broker.close().await;
                failover.lost();
                match outcome {
                    Ok(()) => return,
                    // Straight to the next node: this one served, then
                    // failed. One that failed before consuming (a refused
                    // declare, say) waits the backoff like a refusal, or
                    // the worker would go round the nodes without pause.
                    Err(e) if addresses.nodes().len() > 1 && consumed.load(Ordering::SeqCst) => {
                        tracing::warn!(error = %e, node = broker.node(), "broker connection lost; trying the next node");
                        continue;
                    }
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        tracing::warn!(error = %lost, retry_in_ms = backoff.as_millis() as u64, "broker unavailable");
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// One connection's worth of work.
struct Session<'a, S> {
    config: &'a WorkerConfig,
    handler: &'a Arc<Handler<S>>,
    broker: &'a Arc<AmqpBroker>,
    connected: &'a BrokerFlag,
    /// Set once the session consumes (the connection served).
    consumed: &'a AtomicBool,
    policy_log: &'a PolicyLogCursor,
}

impl<S: Store + 'static> Session<'_, S> {
    /// `Ok` after a clean drain; `Err` when the connection was lost.
    async fn serve(
        &self,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
        backoff: &mut Duration,
    ) -> Result<(), QueueError> {
        let topology = &self.handler.topology;
        self.broker.declare(topology).await?;
        // Policy updates first: none published while this worker was
        // starting or between connections may be missed by a job.
        let (_policy_channel, mut updates) = self.broker.read_policy_log(topology).await?;
        let reading = match self.catch_up(&mut updates, shutdown).await? {
            Some(reading) => reading,
            None => return Ok(()),
        };
        // Both lanes of each queue, each with its own prefetch window.
        let mut consumers = Vec::new();
        let mut lanes = Vec::new();
        for queue in &self.config.queues {
            let [interactive, bulk] = Priority::ALL.map(|p| topology.lane_queue(*queue, p));
            let interactive = self.broker.consume(&interactive, self.config.concurrency).await?;
            let bulk = self.broker.consume(&bulk, self.config.concurrency).await?;
            lanes.push((interactive.1.clone(), bulk.1.clone()));
            consumers.extend([interactive, bulk]);
        }
        let mut jobs = Lanes::new(lanes, usize::from(self.config.concurrency));
        self.connected.set(Some(self.broker.node()));
        self.consumed.store(true, Ordering::SeqCst);
        self.handler.metrics.broker_node(Some(self.broker.node()));
        *backoff = Duration::from_millis(200);
        tracing::info!(queues = ?self.config.queues, prefetch = self.config.concurrency, "consuming");
        let mut tasks = JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut depth_tick = tokio::time::interval(Duration::from_secs(10));
        let depth_channel = self.broker.channel().await?;
        let mut storage = self.handler.storage.subscribe();
        let ended = loop {
            // While the stores do not answer, deliveries wait (prefetched,
            // unacked) and the jobs in flight wait for the stores.
            let storage_up = self.handler.storage.is_up();
            tokio::select! {
                _ = shutdown.as_mut() => break Ok(()),
                Ok(()) = storage.changed() => {}
                delivery = jobs.next(), if storage_up => match delivery {
                    Some((Ok(delivery), _, slot)) => { tasks.spawn(self.job_task(delivery, slot)); }
                    Some((Err(e), _, _)) => break Err(QueueError::from(e)),
                    None => break Err(QueueError::new("the broker closed the consumer")),
                },
                update = updates.next() => match update {
                    Some(Ok(delivery)) => { self.read_update(&reading, false, delivery).await; }
                    Some(Err(e)) => break Err(QueueError::from(e)),
                    None => break Err(QueueError::new("the broker closed the policy log")),
                },
                _ = tick.tick() => {
                    if !self.broker.is_connected() {
                        break Err(QueueError::new("connection lost"));
                    }
                    self.handler.recheck_storage().await;
                    let (reserved, for_jobs) = self.handler.pipeline.memory_budget();
                    self.handler.metrics.memory_budget(reserved, for_jobs);
                }
                _ = depth_tick.tick() => self.read_depths(&depth_channel).await,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        };
        if let Err(e) = ended {
            // Unacked jobs go back to the queue when the connection closes.
            tasks.abort_all();
            return Err(e);
        }
        for (channel, consumer) in &consumers {
            let _ = channel
                .basic_cancel(consumer.tag(), BasicCancelOptions::default())
                .await;
        }
        self.drain(tasks).await;
        Ok(())
    }

    /// How many jobs wait in each lane consumed, for `/metrics`.
    async fn read_depths(&self, channel: &lapin::Channel) {
        let topology = &self.handler.topology;
        for queue in &self.config.queues {
            for lane in Priority::ALL {
                let name = topology.lane_queue(*queue, lane);
                if let Ok(ready) = AmqpBroker::ready_count(channel, &name).await {
                    self.handler.metrics.queue_ready(queue.name(), lane.as_str(), ready);
                }
            }
        }
    }

    async fn drain(&self, mut tasks: JoinSet<()>) {
        let in_flight = tasks.len();
        tracing::info!(in_flight, "draining: no new jobs taken");
        let deadline = tokio::time::sleep(self.config.drain_timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = tasks.join_next() => if next.is_none() { break },
                _ = &mut deadline => {
                    tracing::warn!(left = tasks.len(), "drain deadline passed; unfinished jobs go back to the queue");
                    tasks.abort_all();
                    break;
                }
            }
        }
        tracing::info!("drained");
    }

    /// The job's task holds its `slot` until it has acked or nacked.
    fn job_task(&self, delivery: Delivery, slot: Slot) -> impl Future<Output = ()> + Send + 'static {
        let handler = Arc::clone(self.handler);
        let broker = Arc::clone(self.broker);
        async move {
            let _slot = slot;
            let message = message_of(&delivery);
            if let Some(sent) = delivery.properties.timestamp() {
                let now = chrono::Utc::now().timestamp().max(0) as u64;
                handler
                    .metrics
                    .observe(Stage::QueueWait, Duration::from_secs(now.saturating_sub(*sent)));
            }
            let handling = handler.handle(&*broker, &message);
            let _ = match handler.supervise(&*broker, &message, handling).await {
                Verdict::Ack => delivery.ack(BasicAckOptions::default()).await,
                verdict => {
                    let requeue = verdict == Verdict::Requeue;
                    let options = BasicNackOptions {
                        requeue,
                        ..BasicNackOptions::default()
                    };
                    delivery.nack(options).await
                }
            };
        }
    }
}
