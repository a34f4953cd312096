//! A connection's reading of the policy log
//! (docs/control-plane.md#the-policy-log): append a marker, apply every
//! update up to it before the first job, then every update as it comes.

use std::future::Future;
use std::pin::Pin;

use futures_util::{FutureExt, StreamExt};
use lapin::Consumer;
use lapin::message::Delivery;
use lapin::options::BasicAckOptions;

use super::Session;
use super::policy_log::{CATCH_UP_LIMIT, MARKER_HEADER, Origin, Reading, marker};
use super::policy_updates;
use crate::queue::amqp::{header, stream_offset};
use crate::queue::{Publisher, QueueError};
use crate::storage::Store;

/// Refusals that reading the log's history again is expected to meet: a
/// version since superseded, a key since retired. Anything else (a
/// location that could not be read, a forged signature) is reported even
/// from the history: it may be an update this worker still lacks, or junk
/// someone put in the log.
const EXPECTED_IN_HISTORY: [&str; 2] = ["stale_policy", "unknown_control_key"];

impl<S: Store + 'static> Session<'_, S> {
    /// Appends this connection's marker to the log and applies the log's
    /// updates up to it, for at most [`CATCH_UP_LIMIT`]. `None` when the
    /// worker was told to stop meanwhile.
    pub(super) async fn catch_up(
        &self,
        updates: &mut Consumer,
        shutdown: &mut Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Option<Reading>, QueueError> {
        let (reading, mut end) = self.policy_log.begin();
        end.routing_key = self.handler.topology.policy_log();
        // The default exchange: the worker may append to the log, never
        // publish on the policy exchange.
        self.broker.publish("", &end).await?;
        let deadline = tokio::time::sleep(CATCH_UP_LIMIT);
        tokio::pin!(deadline);
        let mut read = 0usize;
        loop {
            let delivery = tokio::select! {
                _ = shutdown.as_mut() => return Ok(None),
                _ = &mut deadline => {
                    tracing::warn!(read, "the policy log is not read to its end after 30 s; taking jobs meanwhile");
                    break;
                }
                delivery = updates.next() => match delivery {
                    Some(Ok(delivery)) => delivery,
                    Some(Err(e)) => return Err(QueueError::from(e)),
                    None => return Err(QueueError::new("the broker closed the policy log")),
                },
            };
            if self.read_update(&reading, true, delivery).await {
                break;
            }
            read += 1;
        }
        self.policy_log.caught_up();
        let version = self.handler.policy.get().version();
        tracing::info!(read, policy_version = version, "policy log read");
        Ok(Some(reading))
    }

    /// One entry of the log: a marker is passed over, an update is applied
    /// by the version rule or refused. `true` for this reading's own marker.
    pub(super) async fn read_update(&self, reading: &Reading, catching_up: bool, delivery: Delivery) -> bool {
        // Not `message_of`: that copies the body, and an entry may be large.
        let is_marker = marker(reading, header(&delivery, MARKER_HEADER).as_deref());
        if is_marker.is_none() {
            let origin = self.policy_log.record(reading, catching_up, stream_offset(&delivery));
            self.apply(origin, &delivery.data).await;
        }
        let _ = delivery.ack(BasicAckOptions::default()).await;
        is_marker == Some(true)
    }

    async fn apply(&self, origin: Origin, message: &[u8]) {
        let pipeline = &self.handler.pipeline;
        let metrics = &self.handler.metrics;
        // Untrusted messages: a panic in verifying, parsing or validating
        // one refuses the update; it must not end the consume loop.
        let update = policy_updates::apply_update(
            &self.handler.policy,
            pipeline.control(),
            pipeline.originals(),
            pipeline.renditions(),
            message,
        );
        let refused = |reason: &'static str| {
            metrics.policy(0, false);
            metrics.control_refused("policy", reason);
        };
        match std::panic::AssertUnwindSafe(update).catch_unwind().await {
            Err(_) => {
                refused("panic");
                tracing::error!("a policy update panicked; the policy in force stays");
            }
            Ok(Err(e)) if origin == Origin::History && EXPECTED_IN_HISTORY.contains(&e.reason()) => {
                tracing::debug!(reason = e.reason(), error = %e, "an update of the policy log's history not applied");
            }
            Ok(Err(e)) => {
                refused(e.reason());
                tracing::error!(reason = e.reason(), error = %e, "policy update refused; the policy in force stays");
            }
            Ok(Ok(applied)) => {
                metrics.policy(applied.to.version, true);
                policy_updates::log_applied(applied);
            }
        }
    }
}
