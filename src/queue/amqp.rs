//! RabbitMQ through `lapin`: connect, declare the topology (idempotently),
//! consume with a prefetch, publish with publisher confirms.

use std::collections::BTreeMap;
use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer, ExchangeKind};

use super::addresses::{BrokerAddresses, BrokerNode};
use super::{
    DEATH_COUNT_HEADER, DEATH_QUEUE_HEADER, DEATH_REASON_HEADER, DEATH_ROUTING_KEY_HEADER, JobQueue, Message, Priority,
    Publisher, QueueError, RETRY_LEVEL_HEADER, Topology,
};

fn broker(e: lapin::Error) -> QueueError {
    e.into()
}

/// What the policy log keeps: updates are rare and mostly small (a
/// location and a digest), so this is years of them.
const POLICY_LOG_BYTES: i64 = 64 << 20;
const POLICY_LOG_SEGMENT_BYTES: i32 = 4 << 20;
/// The consumer argument that says where to start reading a stream, and
/// the header each delivery of it carries its own offset in.
pub const POLICY_LOG_OFFSET_HEADER: &str = "x-stream-offset";

/// How long one node may take to open a connection before the next is
/// tried: a node that accepts TCP but hangs must not hold a fleet up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One connection: a confirming channel for publishing, and a channel per
/// consumer (so a prefetch applies to exactly one queue).
pub struct AmqpBroker {
    connection: Connection,
    publisher: Channel,
    node: String,
}

impl AmqpBroker {
    /// Connects to the first node of `urls` that answers, in an order of
    /// this process's own (docs/operating.md#a-rabbitmq-cluster): one URL, or a list.
    pub async fn connect(urls: &str) -> Result<AmqpBroker, QueueError> {
        let addresses = BrokerAddresses::parse(urls).map_err(|e| QueueError::new(format!("RENDITION_AMQP_URL {e}")))?;
        let addresses = addresses.shuffled(&mut rand::rng());
        let (_, broker) = AmqpBroker::connect_first(addresses.nodes().iter().enumerate()).await?;
        Ok(broker)
    }

    /// The first of `nodes` (each with its place in the list) that opens a
    /// connection, and its place; the error names why each refused.
    pub async fn connect_first<'a>(
        nodes: impl IntoIterator<Item = (usize, &'a BrokerNode)>,
    ) -> Result<(usize, AmqpBroker), QueueError> {
        let mut refused = Vec::new();
        for (i, node) in nodes {
            match AmqpBroker::connect_node(node).await {
                Ok(broker) => return Ok((i, broker)),
                Err(e) => refused.push(format!("{}: {}", node.name(), e.message)),
            }
        }
        Err(QueueError::new(format!(
            "no broker node answers ({})",
            refused.join("; ")
        )))
    }

    /// Connects to one node, within [`CONNECT_TIMEOUT`].
    pub async fn connect_node(node: &BrokerNode) -> Result<AmqpBroker, QueueError> {
        let open = async {
            let connection = Connection::connect(node.url(), ConnectionProperties::default())
                .await
                .map_err(broker)?;
            let publisher = connection.create_channel().await.map_err(broker)?;
            publisher
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(broker)?;
            Ok(AmqpBroker {
                connection,
                publisher,
                node: node.name().to_string(),
            })
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
            Ok(opened) => opened,
            Err(_) => Err(QueueError::new(format!(
                "{} did not open a connection in {} s",
                node.name(),
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The node this connection is open to (`host:port`).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Connects and declares the core topology when this broker user may;
    /// a user without configure rights (an upstream app's, the policy
    /// signer's: docs/control-plane.md) publishes into what the workers
    /// declared. The refusal closes the channel, so this connects again.
    pub async fn connect_as_publisher(url: &str, topology: &Topology) -> Result<AmqpBroker, QueueError> {
        let broker = AmqpBroker::connect(url).await?;
        match broker.declare_core(topology).await {
            Err(e) if e.to_string().contains("ACCESS_REFUSED") => {
                broker.close().await;
                AmqpBroker::connect(url).await
            }
            declared => declared.map(|()| broker),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }

    pub async fn close(&self) {
        let _ = self.connection.close(200, "bye".into()).await;
    }

    /// Declares every exchange and queue of docs/contract.md#broker-topology. Declaring what
    /// exists with the same arguments is a no-op, so every worker does it
    /// (workers sharing a prefix must share their retry settings: a delay
    /// queue cannot be redeclared with another TTL).
    pub async fn declare(&self, topology: &Topology) -> Result<(), QueueError> {
        self.declare_core(topology).await?;
        for (i, delay) in topology.retry_delays.iter().enumerate() {
            self.declare_retry_level(topology, i + 1, delay.as_millis() as u32)
                .await?;
        }
        Ok(())
    }

    /// Everything but the delay queues: what `enqueue` and `dlq` need,
    /// without guessing the workers' retry settings.
    pub async fn declare_core(&self, topology: &Topology) -> Result<(), QueueError> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let jobs = topology.jobs_exchange();
        self.exchange(&jobs, ExchangeKind::Topic, durable).await?;
        self.exchange(&topology.results_exchange(), ExchangeKind::Topic, durable)
            .await?;
        self.exchange(&topology.policy_exchange(), ExchangeKind::Fanout, durable)
            .await?;
        self.declare_policy_log(topology).await?;
        self.exchange(&topology.audit_exchange(), ExchangeKind::Topic, durable)
            .await?;
        self.exchange(&topology.retry_exchange(), ExchangeKind::Headers, durable)
            .await?;
        let dead = topology.dead_queue();
        self.queue(&dead, quorum()).await?;
        for (queue, priority) in JobQueue::ALL.into_iter().flat_map(|q| Priority::ALL.map(|p| (q, p))) {
            let name = topology.lane_queue(queue, priority);
            let mut args = quorum();
            // A message that keeps killing workers goes to the dead letters.
            args.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongInt(topology.delivery_limit as i32),
            );
            args.insert("x-dead-letter-exchange".into(), string(""));
            args.insert("x-dead-letter-routing-key".into(), string(&dead));
            self.queue(&name, args).await?;
            for key in queue.lane_routing_keys(priority) {
                self.bind(&name, &jobs, &key, FieldTable::default()).await?;
            }
        }
        Ok(())
    }

    /// A delay queue: holds a retry for `delay_ms`, then dead-letters it to
    /// the jobs exchange under its own routing key. A quorum queue, like
    /// every queue a job waits in: on a cluster a classic one lives on one
    /// node, and while that node is down no worker could even declare the
    /// topology. Dead-lettering is at-least-once, so a retry is not dropped
    /// when it expires while the jobs' queues are electing a leader.
    async fn declare_retry_level(&self, topology: &Topology, level: usize, delay_ms: u32) -> Result<(), QueueError> {
        let name = topology.retry_queue(level);
        let mut args = quorum();
        args.insert("x-message-ttl".into(), AMQPValue::LongUInt(delay_ms));
        args.insert("x-dead-letter-exchange".into(), string(&topology.jobs_exchange()));
        args.insert("x-dead-letter-strategy".into(), string("at-least-once"));
        args.insert("x-overflow".into(), string("reject-publish"));
        self.queue(&name, args).await.map_err(|e| older_retry_queue(&name, e))?;
        let mut bind = FieldTable::default();
        bind.insert("x-match".into(), string("all"));
        bind.insert(RETRY_LEVEL_HEADER.into(), string(&level.to_string()));
        self.bind(&name, &topology.retry_exchange(), "", bind).await
    }

    /// The policy log: a stream (RabbitMQ 3.9+) bound to the policy
    /// exchange, keeping the newest 64 MiB of updates in 4 MiB segments.
    async fn declare_policy_log(&self, topology: &Topology) -> Result<(), QueueError> {
        let name = topology.policy_log();
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), string("stream"));
        args.insert("x-max-length-bytes".into(), AMQPValue::LongLongInt(POLICY_LOG_BYTES));
        args.insert(
            "x-stream-max-segment-size-bytes".into(),
            AMQPValue::LongInt(POLICY_LOG_SEGMENT_BYTES),
        );
        self.queue(&name, args).await?;
        let policy = topology.policy_exchange();
        self.bind(&name, &policy, "", FieldTable::default()).await
    }

    async fn bind(&self, queue: &str, exchange: &str, key: &str, args: FieldTable) -> Result<(), QueueError> {
        let options = QueueBindOptions::default();
        self.publisher
            .queue_bind(queue.into(), exchange.into(), key.into(), options, args)
            .await
            .map_err(broker)
    }

    async fn exchange(
        &self,
        name: &str,
        kind: ExchangeKind,
        options: ExchangeDeclareOptions,
    ) -> Result<(), QueueError> {
        self.publisher
            .exchange_declare(name.into(), kind, options, FieldTable::default())
            .await
            .map_err(broker)
    }

    async fn queue(&self, name: &str, args: FieldTable) -> Result<(), QueueError> {
        let options = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        self.publisher
            .queue_declare(name.into(), options, args)
            .await
            .map_err(broker)?;
        Ok(())
    }

    /// Consumes `queue` on its own channel, at most `prefetch` unacked.
    pub async fn consume(&self, queue: &str, prefetch: u16) -> Result<(Channel, Consumer), QueueError> {
        let channel = self.connection.create_channel().await.map_err(broker)?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .map_err(broker)?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(broker)?;
        Ok((channel, consumer))
    }

    /// Reads the policy log from the oldest update kept, on its own
    /// channel; every delivery carries its offset
    /// ([`POLICY_LOG_OFFSET_HEADER`]) and must be acked. Two at a time: an
    /// entry may be a large inline document.
    pub async fn read_policy_log(&self, topology: &Topology) -> Result<(Channel, Consumer), QueueError> {
        let channel = self.connection.create_channel().await.map_err(broker)?;
        channel.basic_qos(2, BasicQosOptions::default()).await.map_err(broker)?;
        let mut args = FieldTable::default();
        args.insert(POLICY_LOG_OFFSET_HEADER.into(), string("first"));
        let consumer = channel
            .basic_consume(
                topology.policy_log().as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                args,
            )
            .await
            .map_err(broker)?;
        Ok((channel, consumer))
    }

    /// A private, server-named queue for replies (`enqueue --wait`, the
    /// benchmarks; its name is `consumer.queue()`).
    pub async fn reply_queue(&self) -> Result<(Channel, Consumer), QueueError> {
        let channel = self.connection.create_channel().await.map_err(broker)?;
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        let queue = channel
            .queue_declare("".into(), options, FieldTable::default())
            .await
            .map_err(broker)?;
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(broker)?;
        Ok((channel, consumer))
    }

    /// Messages ready in `queue` (a passive declare on `channel`: the queue
    /// must exist, or the broker closes the channel).
    pub async fn ready_count(channel: &Channel, queue: &str) -> Result<u32, QueueError> {
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let queue = channel
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .map_err(broker)?;
        Ok(queue.message_count())
    }

    /// A channel for one-off work (`dlq`, tests): gets, acks, purges.
    pub async fn channel(&self) -> Result<Channel, QueueError> {
        self.connection.create_channel().await.map_err(broker)
    }
}

impl Publisher for AmqpBroker {
    async fn publish(&self, exchange: &str, message: &Message) -> Result<(), QueueError> {
        let confirm = self
            .publisher
            .basic_publish(
                exchange.into(),
                message.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: message.mandatory,
                    ..BasicPublishOptions::default()
                },
                &message.body,
                properties_of(message),
            )
            .await
            .map_err(broker)?;
        match confirm.await.map_err(broker)? {
            Confirmation::Nack(_) => Err(QueueError::new(format!("the broker refused a message for {exchange}"))),
            Confirmation::Ack(Some(_)) => Err(QueueError::new(format!(
                "no queue takes {exchange} / {}",
                message.routing_key
            ))),
            _ => Ok(()),
        }
    }
}

/// Versions before the cluster support declared the delay queues as
/// classic queues, which cannot be redeclared as quorum queues: say what
/// to do (docs/operating.md#a-rabbitmq-cluster).
fn older_retry_queue(name: &str, e: QueueError) -> QueueError {
    if !e.message.contains("PRECONDITION_FAILED") {
        return e;
    }
    QueueError::new(format!(
        "{name} was declared by an older version as a classic queue; delay queues are quorum queues now: \
         stop the old workers, then `rabbitmqctl delete_queue {name} --if-empty` ({})",
        e.message
    ))
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), string("quorum"));
    args
}

fn string(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

/// Persistent JSON with our headers and reply routing.
fn properties_of(message: &Message) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (k, v) in &message.headers {
        headers.insert(k.as_str().into(), string(v));
    }
    let sent = chrono::Utc::now().timestamp().max(0) as u64;
    let mut props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_timestamp(sent)
        .with_headers(headers);
    if let Some(id) = &message.correlation_id {
        props = props.with_correlation_id(id.as_str().into());
    }
    if let Some(to) = &message.reply_to {
        props = props.with_reply_to(to.as_str().into());
    }
    if let Some(id) = &message.message_id {
        props = props.with_message_id(id.as_str().into());
    }
    props
}

/// What we need of a delivery. Headers we did not set are kept when they
/// are text or numbers; RabbitMQ's `x-death` list (why the broker itself
/// dead-lettered it) is read into [`DEATH_REASON_HEADER`] and its kin.
pub fn message_of(delivery: &Delivery) -> Message {
    let props = &delivery.properties;
    let text = |s: &Option<ShortString>| s.as_ref().map(|s| s.as_str().to_string());
    let mut headers = BTreeMap::new();
    if let Some(table) = props.headers() {
        for (k, v) in table {
            if let Some(value) = scalar(v) {
                headers.insert(k.as_str().to_string(), value);
            }
        }
        if let Some(AMQPValue::FieldArray(deaths)) = table.inner().get("x-death") {
            headers.extend(death_headers(deaths.as_slice()));
        }
    }
    Message {
        routing_key: delivery.routing_key.as_str().to_string(),
        body: delivery.data.clone(),
        headers,
        correlation_id: text(props.correlation_id()),
        reply_to: text(props.reply_to()),
        message_id: text(props.message_id()),
        mandatory: false,
        redelivered: delivery.redelivered,
    }
}

/// A text header of `delivery`, without copying its body.
pub fn header(delivery: &Delivery, name: &str) -> Option<String> {
    scalar(delivery.properties.headers().as_ref()?.inner().get(name)?)
}

/// A stream delivery's offset (docs/control-plane.md#the-policy-log).
pub fn stream_offset(delivery: &Delivery) -> Option<u64> {
    header(delivery, POLICY_LOG_OFFSET_HEADER)?.parse().ok()
}

fn scalar(value: &AMQPValue) -> Option<String> {
    Some(match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        _ => return None,
    })
}

/// The newest `x-death` entry (RabbitMQ puts it first): reason, queue,
/// how many times, and the routing key the job was first sent with.
fn death_headers(deaths: &[AMQPValue]) -> Vec<(String, String)> {
    let Some(AMQPValue::FieldTable(death)) = deaths.first() else {
        return Vec::new();
    };
    let field = |name: &str| death.inner().get(name).and_then(scalar);
    let routing_key = match death.inner().get("routing-keys") {
        Some(AMQPValue::FieldArray(keys)) => keys.as_slice().first().and_then(scalar),
        _ => None,
    };
    [
        (DEATH_REASON_HEADER, field("reason")),
        (DEATH_QUEUE_HEADER, field("queue")),
        (DEATH_COUNT_HEADER, field("count")),
        (DEATH_ROUTING_KEY_HEADER, routing_key),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name.to_string(), value?)))
    .collect()
}
