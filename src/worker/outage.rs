//! Storage outages. When a job fails on storage and the stores then do not
//! answer a probe, the worker stops taking new jobs and the jobs it holds
//! wait for the stores instead of spending their attempts: retries that
//! back off 1 + 2 + 4 + 8 s burn out inside a 30 s outage, which once sent
//! three quarters of a backlog to the dead letters. Waiting is bounded;
//! past it a job takes the usual retry path.

use std::time::Duration;

use tokio::sync::watch;

use crate::ops::Metrics;

/// Whether the stores answer, shared by the consumer loop (which takes no
/// delivery while they do not), `/readyz` and every job task.
#[derive(Debug)]
pub struct StorageGate {
    up: watch::Sender<bool>,
    /// Longest a job waits for the stores to come back.
    pub wait: Duration,
    /// How often a waiting job probes the stores.
    pub probe_every: Duration,
}

impl StorageGate {
    pub fn new(wait: Duration) -> StorageGate {
        StorageGate {
            up: watch::Sender::new(true),
            wait,
            probe_every: Duration::from_secs(1),
        }
    }

    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.up.subscribe()
    }

    /// Marks the stores down (once per outage: logged and counted).
    pub fn down(&self, metrics: &Metrics, why: &str) {
        if self.up.send_replace(false) {
            metrics.storage_paused(true);
            tracing::warn!(error = why, "storage unreachable: taking no new jobs until it answers");
        }
    }

    /// Marks the stores up again (logged once).
    pub fn up(&self, metrics: &Metrics) {
        if !self.up.send_replace(true) {
            metrics.storage_paused(false);
            tracing::info!("storage answers again: taking jobs");
        }
    }

    /// Waits until another task saw the stores come back, or `every` passes.
    pub async fn changed_or(&self, every: Duration) -> bool {
        let mut up = self.subscribe();
        tokio::time::timeout(every, up.wait_for(|up| *up)).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_outage_is_counted_once_and_waiters_hear_the_end() {
        let (gate, metrics) = (
            std::sync::Arc::new(StorageGate::new(Duration::from_secs(5))),
            Metrics::default(),
        );
        gate.down(&metrics, "refused");
        gate.down(&metrics, "refused again");
        assert!(!gate.is_up());
        assert!(metrics.render().contains("rendition_storage_outages_total 1\n"));
        assert!(metrics.render().contains("rendition_storage_paused 1\n"));
        assert!(!gate.changed_or(Duration::from_millis(20)).await, "still down");
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.changed_or(Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        gate.up(&metrics);
        assert!(waiter.await.unwrap(), "the waiter heard the stores come back");
        assert!(metrics.render().contains("rendition_storage_paused 0\n"));
    }
}
