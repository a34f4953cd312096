//! The broker side (docs/contract.md#broker-topology): names, messages, and publishing with
//! confirms. [`amqp::AmqpBroker`] talks to RabbitMQ; [`memory::MemoryBroker`]
//! records what would have been published, for unit tests.

pub mod addresses;
pub mod amqp;
pub mod memory;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use crate::error::{Coded, ErrorCode};
pub use crate::priority::Priority;
use crate::routing::usual_priority;
pub use crate::routing::{REVOKE_ROUTING_KEY, lane_key, lane_of};

/// Header: how many times this job has been tried (1 on first delivery).
pub const ATTEMPT_HEADER: &str = "x-rendition-attempt";
/// Header on a retry: which delay queue the message waits in.
// Not `x-…`: a headers exchange ignores those when matching.
pub const RETRY_LEVEL_HEADER: &str = "rendition-retry-level";
/// Headers on a dead letter: why it died and where it was going.
pub const ERROR_CODE_HEADER: &str = "x-error-code";
pub const ERROR_MESSAGE_HEADER: &str = "x-error-message";
pub const ROUTING_KEY_HEADER: &str = "x-original-routing-key";
/// Read from RabbitMQ's `x-death` on a message the broker dead-lettered
/// itself (e.g. `delivery_limit`: every worker that took it died first).
pub const DEATH_REASON_HEADER: &str = "x-death-reason";
pub const DEATH_QUEUE_HEADER: &str = "x-death-queue";
pub const DEATH_COUNT_HEADER: &str = "x-death-count";
pub const DEATH_ROUTING_KEY_HEADER: &str = "x-death-routing-key";

#[derive(Debug, Clone, thiserror::Error)]
#[error("broker: {message}")]
pub struct QueueError {
    pub message: String,
    /// The AMQP client's own error, when there is one.
    #[source]
    pub source: Option<std::sync::Arc<lapin::Error>>,
}

impl QueueError {
    pub fn new(message: impl Into<String>) -> QueueError {
        QueueError {
            message: message.into(),
            source: None,
        }
    }
}

impl From<lapin::Error> for QueueError {
    fn from(e: lapin::Error) -> QueueError {
        QueueError {
            message: e.to_string(),
            source: Some(std::sync::Arc::new(e)),
        }
    }
}

impl Coded for QueueError {
    fn code(&self) -> ErrorCode {
        ErrorCode::BrokerError
    }
}

/// A message as we send and receive it; AMQP details stay in [`amqp`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub routing_key: String,
    pub body: Vec<u8>,
    pub headers: BTreeMap<String, String>,
    pub correlation_id: Option<String>,
    pub reply_to: Option<String>,
    pub message_id: Option<String>,
    /// Refuse to publish if no queue takes it (retries, dead letters, jobs);
    /// answers go out without it: a caller that went away is not our error.
    pub mandatory: bool,
    /// The broker delivered this message before (to a worker that did not ack it).
    pub redelivered: bool,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// 1 on the first delivery; retries carry the count forward.
    pub fn attempt(&self) -> u32 {
        self.header(ATTEMPT_HEADER)
            .and_then(|a| a.parse().ok())
            .unwrap_or(1)
            .max(1)
    }
}

/// Why a message is in the dead-letter queue, from our headers (the worker
/// dead-lettered it) or RabbitMQ's `x-death` (the broker did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeathNote {
    pub code: Option<String>,
    pub message: Option<String>,
    /// Where the job was first sent (what a replay publishes it under).
    pub routing_key: Option<String>,
}

impl Message {
    pub fn death_note(&self) -> DeathNote {
        let header = |name: &str| self.header(name).map(str::to_string);
        if self.header(ERROR_CODE_HEADER).is_some() || self.header(DEATH_REASON_HEADER).is_none() {
            return DeathNote {
                code: header(ERROR_CODE_HEADER),
                message: header(ERROR_MESSAGE_HEADER),
                routing_key: header(ROUTING_KEY_HEADER),
            };
        }
        let reason = self.header(DEATH_REASON_HEADER).unwrap_or_default();
        let queue = self.header(DEATH_QUEUE_HEADER).unwrap_or("its queue");
        let why = match reason {
            "delivery_limit" => {
                "every worker that took it stopped before answering it (a crash, a kill or running out of memory)"
            }
            "rejected" => "a worker gave it up without answering (a task that panicked on two deliveries)",
            "expired" => "it waited longer than the queue's time to live",
            _ => "the broker gave it up",
        };
        DeathNote {
            code: Some(reason.to_string()),
            message: Some(format!("RabbitMQ dead-lettered it from {queue} ({reason}): {why}")),
            routing_key: header(DEATH_ROUTING_KEY_HEADER),
        }
    }
}

/// Publishes and waits for the broker to confirm: once this returns `Ok`,
/// the message survives a broker restart.
pub trait Publisher: Send + Sync {
    fn publish(&self, exchange: &str, message: &Message) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// A queue jobs are consumed from, and the routing keys bound to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobQueue {
    Image,
    Video,
    Publish,
}

impl JobQueue {
    pub const ALL: [JobQueue; 3] = [JobQueue::Image, JobQueue::Video, JobQueue::Publish];

    pub fn name(&self) -> &'static str {
        match self {
            JobQueue::Image => "image",
            JobQueue::Video => "video",
            JobQueue::Publish => "publish",
        }
    }

    pub fn parse(name: &str) -> Option<JobQueue> {
        JobQueue::ALL.into_iter().find(|q| q.name() == name)
    }

    /// Audio and other files are copies, quick like images; revokes ride
    /// with them so they are never stuck behind a transcode.
    pub fn routing_keys(&self) -> &'static [&'static str] {
        match self {
            JobQueue::Image => &["image", "audio", "other", REVOKE_ROUTING_KEY],
            JobQueue::Video => &["video"],
            JobQueue::Publish => &["publish"],
        }
    }

    /// The lane its keys without a prefix go to (docs/contract.md#broker-topology).
    pub fn usual_priority(&self) -> Priority {
        usual_priority(self.routing_keys()[0])
    }

    /// The keys bound to one lane: the usual lane takes the plain keys
    /// (revokes too) and `{priority}.{key}`; the other lane only
    /// `{priority}.{key}` (`bulk.image`, `interactive.publish`).
    pub fn lane_routing_keys(&self, priority: Priority) -> Vec<String> {
        let mut keys = Vec::new();
        for key in self.routing_keys() {
            if priority == self.usual_priority() {
                keys.push(key.to_string());
            }
            if *key != REVOKE_ROUTING_KEY {
                keys.push(format!("{}.{key}", priority.as_str()));
            }
        }
        keys
    }
}

/// The audit exchange's name without the prefix.
pub const AUDIT_EXCHANGE: &str = "rendition.audit";

/// The names of docs/contract.md#broker-topology, with an optional prefix (several environments
/// on one broker), and the retry delays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub prefix: String,
    /// Delay before retry n (n = 1…): one delay queue each.
    pub retry_delays: Vec<Duration>,
    /// Deliveries of one message before the broker gives up on it (a job
    /// that kills every worker that takes it ends in the dead-letter queue).
    pub delivery_limit: u32,
}

impl Topology {
    /// Exponential backoff: `base`, 2×`base`, … for `max_attempts - 1` retries.
    pub fn new(prefix: &str, max_attempts: u32, base: Duration) -> Topology {
        let retry_delays = (0..max_attempts.saturating_sub(1))
            .map(|n| base.saturating_mul(1 << n.min(16)))
            .collect();
        Topology {
            prefix: prefix.to_string(),
            retry_delays,
            delivery_limit: 5,
        }
    }

    fn name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
    pub fn jobs_exchange(&self) -> String {
        self.name("rendition.jobs")
    }
    pub fn job_queue(&self, queue: JobQueue) -> String {
        self.name(&format!("rendition.jobs.{}", queue.name()))
    }
    /// A lane of a job queue: the queue of docs/contract.md#broker-topology for its usual priority,
    /// `rendition.jobs.{queue}.{priority}` for the other.
    pub fn lane_queue(&self, queue: JobQueue, priority: Priority) -> String {
        if priority == queue.usual_priority() {
            self.job_queue(queue)
        } else {
            self.name(&format!("rendition.jobs.{}.{}", queue.name(), priority.as_str()))
        }
    }
    /// A headers exchange in front of the delay queues: it keeps the job's
    /// routing key, so the delay queue dead-letters it back to its queue.
    pub fn retry_exchange(&self) -> String {
        self.name("rendition.retry")
    }
    pub fn retry_queue(&self, level: usize) -> String {
        self.name(&format!("rendition.retry.{level}"))
    }
    pub fn dead_queue(&self) -> String {
        self.name("rendition.dead")
    }
    pub fn results_exchange(&self) -> String {
        self.name("rendition.results")
    }
    pub fn policy_exchange(&self) -> String {
        self.name("rendition.policy")
    }
    /// A stream bound to the policy exchange: every update published is
    /// kept, so a worker that was starting, or between connections, reads
    /// what it missed (docs/control-plane.md#the-policy-log).
    pub fn policy_log(&self) -> String {
        self.name("rendition.policy.log")
    }
    /// A topic exchange: one audit record per answered job, under
    /// `{purpose}.{status}`; bind a queue to keep them.
    pub fn audit_exchange(&self) -> String {
        self.name(AUDIT_EXCHANGE)
    }
    pub fn max_attempts(&self) -> u32 {
        self.retry_delays.len() as u32 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_the_contract_and_only_gain_a_prefix() {
        let t = Topology::new("", 4, Duration::from_secs(1));
        assert_eq!(t.jobs_exchange(), "rendition.jobs");
        assert_eq!(t.job_queue(JobQueue::Image), "rendition.jobs.image");
        assert_eq!(t.job_queue(JobQueue::Video), "rendition.jobs.video");
        assert_eq!(t.job_queue(JobQueue::Publish), "rendition.jobs.publish");
        assert_eq!(t.dead_queue(), "rendition.dead");
        assert_eq!(t.results_exchange(), "rendition.results");
        assert_eq!(t.audit_exchange(), "rendition.audit");
        assert_eq!(t.policy_exchange(), "rendition.policy");
        assert_eq!(t.policy_log(), "rendition.policy.log");
        assert_eq!(t.retry_queue(1), "rendition.retry.1");
        let staged = Topology::new("staging.", 4, Duration::from_secs(1));
        assert_eq!(staged.jobs_exchange(), "staging.rendition.jobs");
    }

    #[test]
    fn each_queue_has_a_second_lane_and_keys_name_their_lane() {
        let t = Topology::new("", 4, Duration::from_secs(1));
        assert_eq!(
            t.lane_queue(JobQueue::Image, Priority::Interactive),
            "rendition.jobs.image"
        );
        assert_eq!(
            t.lane_queue(JobQueue::Image, Priority::Bulk),
            "rendition.jobs.image.bulk"
        );
        assert_eq!(
            t.lane_queue(JobQueue::Publish, Priority::Bulk),
            "rendition.jobs.publish"
        );
        assert_eq!(
            t.lane_queue(JobQueue::Publish, Priority::Interactive),
            "rendition.jobs.publish.interactive"
        );
        assert_eq!(lane_key("image", Priority::Interactive), "image");
        assert_eq!(lane_key("image", Priority::Bulk), "bulk.image");
        assert_eq!(lane_key("publish", Priority::Interactive), "interactive.publish");
        assert_eq!(lane_of("bulk.video"), (Priority::Bulk, "video"));
        assert_eq!(lane_of("publish"), (Priority::Bulk, "publish"));
        assert_eq!(lane_of("interactive.publish"), (Priority::Interactive, "publish"));
        assert_eq!(lane_of("revoke"), (Priority::Interactive, "revoke"));
        // Every key a job can be sent with is bound to exactly one lane.
        for queue in JobQueue::ALL {
            for base in queue.routing_keys() {
                for priority in Priority::ALL {
                    if *base == REVOKE_ROUTING_KEY && priority == Priority::Bulk {
                        continue; // revokes have one lane
                    }
                    let key = lane_key(base, priority);
                    let bound: Vec<_> = JobQueue::ALL
                        .into_iter()
                        .flat_map(|q| Priority::ALL.map(|p| (q, p)))
                        .filter(|(q, p)| q.lane_routing_keys(*p).contains(&key))
                        .collect();
                    assert_eq!(bound, [(queue, priority)], "{key}");
                }
            }
        }
    }

    #[test]
    fn backoff_doubles_and_counts_attempts() {
        let t = Topology::new("", 4, Duration::from_millis(500));
        let ms: Vec<u128> = t.retry_delays.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [500, 1000, 2000]);
        assert_eq!(t.max_attempts(), 4);
        assert!(Topology::new("", 1, Duration::from_secs(1)).retry_delays.is_empty());
    }

    #[test]
    fn a_dead_letter_says_why_from_our_headers_or_the_broker_s() {
        let mut ours = Message::default();
        ours.headers.insert(ERROR_CODE_HEADER.into(), "storage_error".into());
        ours.headers.insert(ROUTING_KEY_HEADER.into(), "publish".into());
        let note = ours.death_note();
        assert_eq!(note.code.as_deref(), Some("storage_error"));
        assert_eq!(note.routing_key.as_deref(), Some("publish"));
        let mut theirs = Message::default();
        theirs
            .headers
            .insert(DEATH_REASON_HEADER.into(), "delivery_limit".into());
        theirs
            .headers
            .insert(DEATH_QUEUE_HEADER.into(), "rendition.jobs.image".into());
        theirs.headers.insert(DEATH_ROUTING_KEY_HEADER.into(), "image".into());
        let note = theirs.death_note();
        assert_eq!(note.code.as_deref(), Some("delivery_limit"));
        assert!(note.message.unwrap().contains("rendition.jobs.image"));
        assert_eq!(note.routing_key.as_deref(), Some("image"));
        assert_eq!(Message::default().death_note().code, None);
    }

    #[test]
    fn attempts_start_at_one() {
        let mut m = Message::default();
        assert_eq!(m.attempt(), 1);
        m.headers.insert(ATTEMPT_HEADER.into(), "3".into());
        assert_eq!(m.attempt(), 3);
        m.headers.insert(ATTEMPT_HEADER.into(), "junk".into());
        assert_eq!(m.attempt(), 1);
    }
}
