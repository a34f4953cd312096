//! What this worker remembers between jobs, so most of them need not ask
//! the store: jobs it answered, renditions it stored or found, shares
//! it saw revoked. Bounded; the oldest entry goes first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::storage::RenditionMeta;

/// Entries with when they were made, and keys in the order they came.
type Entries<V> = (HashMap<String, (Instant, V)>, VecDeque<String>);

/// A bounded map; inserting past `capacity` forgets the oldest key, and
/// an entry older than `max_age` is not believed any more.
pub(super) struct Recent<V> {
    capacity: usize,
    max_age: Duration,
    inner: Mutex<Entries<V>>,
}

impl<V: Clone> Recent<V> {
    pub(super) fn new(capacity: usize, max_age: Duration) -> Recent<V> {
        Recent {
            capacity,
            max_age,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<V> {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (at, value) = guard.0.get(key)?;
        (at.elapsed() <= self.max_age).then(|| value.clone())
    }

    pub(super) fn insert(&self, key: &str, value: V) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *guard;
        if map.insert(key.to_string(), (Instant::now(), value)).is_none() {
            order.push_back(key.to_string());
        }
        while map.len() > self.capacity {
            let Some(oldest) = order.pop_front() else { break };
            map.remove(&oldest);
        }
    }

    pub(super) fn remove(&self, key: &str) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if guard.0.remove(key).is_some() {
            guard.1.retain(|k| k != key);
        }
    }
}

/// The worker's memory, in one place.
pub(super) struct Memory {
    /// Jobs answered here (by memo key: id and body): a second delivery
    /// reads the remembered result.
    pub(super) answered: Recent<()>,
    /// Renditions known to be in the store, with what they were stored as.
    /// Believed for an hour: a bucket's lifecycle rule may delete them.
    pub(super) stored: Recent<RenditionMeta>,
    /// Shares whose revocation marker was seen (a revocation is final).
    pub(super) revoked: Recent<()>,
    /// The identity each original had when this worker last read or
    /// checked it, believed for [`SOURCE_TRUST`].
    pub(super) sources: Recent<String>,
}

/// How long an original read (or checked) by this worker is taken as it
/// was without asking the store again. Originals are rarely replaced in
/// place; one that is gets new renditions (under its new identity) within
/// this time.
pub(super) const SOURCE_TRUST: Duration = Duration::from_secs(30);

const FOREVER: Duration = Duration::from_secs(u64::MAX / 4);

impl Memory {
    pub(super) fn new() -> Memory {
        Memory {
            answered: Recent::new(100_000, FOREVER),
            stored: Recent::new(100_000, Duration::from_secs(3600)),
            revoked: Recent::new(10_000, FOREVER),
            sources: Recent::new(100_000, SOURCE_TRUST),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_entry_goes_first() {
        let recent = Recent::new(2, FOREVER);
        recent.insert("a", 1);
        recent.insert("b", 2);
        recent.insert("a", 3); // replaced, not added
        recent.insert("c", 4);
        assert_eq!(recent.get("a"), None, "a was the oldest");
        assert_eq!((recent.get("b"), recent.get("c")), (Some(2), Some(4)));
        recent.remove("b");
        assert_eq!(recent.get("b"), None);
        let stale = Recent::new(2, Duration::ZERO);
        stale.insert("a", 1);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(stale.get("a"), None, "too old to be believed");
    }
}
