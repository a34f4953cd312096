//! A broker that only remembers what was published: unit tests check the
//! handler's routing (reply, retry, dead letter) without a server.

use std::sync::Mutex;

use super::{AUDIT_EXCHANGE, Message, Publisher, QueueError};

#[derive(Debug, Default)]
pub struct MemoryBroker {
    published: Mutex<Vec<(String, Message)>>,
    /// When set, every publish fails (a broker that went away).
    pub down: std::sync::atomic::AtomicBool,
}

impl MemoryBroker {
    pub fn new() -> MemoryBroker {
        MemoryBroker::default()
    }

    /// `(exchange, message)` pairs, oldest first, and forgets them; audit
    /// records are kept apart ([`MemoryBroker::take_audit`]).
    pub fn take(&self) -> Vec<(String, Message)> {
        self.take_where(|exchange| !exchange.ends_with(AUDIT_EXCHANGE))
    }

    /// What was published on the audit exchange, and forgets it.
    pub fn take_audit(&self) -> Vec<Message> {
        let audit = self.take_where(|exchange| exchange.ends_with(AUDIT_EXCHANGE));
        audit.into_iter().map(|(_, m)| m).collect()
    }

    fn take_where(&self, keep: impl Fn(&str) -> bool) -> Vec<(String, Message)> {
        let mut published = self.published.lock().unwrap();
        let (taken, left) = std::mem::take(&mut *published).into_iter().partition(|(x, _)| keep(x));
        *published = left;
        taken
    }
}

impl Publisher for MemoryBroker {
    async fn publish(&self, exchange: &str, message: &Message) -> Result<(), QueueError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(QueueError::new("connection lost"));
        }
        self.published
            .lock()
            .unwrap()
            .push((exchange.to_string(), message.clone()));
        Ok(())
    }
}
