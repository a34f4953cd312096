//! A broker that only remembers what was published: unit tests check the
//! handler's routing (reply, retry, dead letter) without a server.

use std::sync::Mutex;

use super::{Message, Publisher, QueueError};

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

    /// `(exchange, message)` pairs, oldest first, and forgets them.
    pub fn take(&self) -> Vec<(String, Message)> {
        std::mem::take(&mut *self.published.lock().unwrap())
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
