//! Recently read originals, by key, with the identity (ETag or size and
//! mtime) they had: a popular asset, or a download set split over several
//! jobs, is downloaded once and afterwards only checked. Bounded by bytes;
//! the least recently used goes first.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A source's bytes and the identity they were read with.
#[derive(Debug, Clone)]
pub struct Cached {
    pub identity: String,
    pub bytes: Arc<Vec<u8>>,
}

pub struct SourceCache {
    budget: usize,
    entries: Mutex<VecDeque<(String, Cached)>>,
}

impl SourceCache {
    /// Keeps at most `budget` bytes; 0 keeps nothing.
    pub fn new(budget: usize) -> SourceCache {
        SourceCache {
            budget,
            entries: Mutex::new(VecDeque::new()),
        }
    }

    pub fn get(&self, key: &str) -> Option<Cached> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let at = entries.iter().position(|(k, _)| k == key)?;
        let entry = entries.remove(at)?;
        let cached = entry.1.clone();
        entries.push_back(entry);
        Some(cached)
    }

    /// Sources larger than a quarter of the budget are not kept: one huge
    /// original should not flush every other.
    pub fn insert(&self, key: &str, identity: &str, bytes: Arc<Vec<u8>>) {
        if bytes.len() > self.budget / 4 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(k, _)| k != key);
        let identity = identity.to_string();
        entries.push_back((key.to_string(), Cached { identity, bytes }));
        let mut total: usize = entries.iter().map(|(_, c)| c.bytes.len()).sum();
        while total > self.budget {
            let Some((_, dropped)) = entries.pop_front() else { break };
            total -= dropped.bytes.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_recent_sources_within_the_budget() {
        let cache = SourceCache::new(100);
        cache.insert("a", "1", Arc::new(vec![0; 20]));
        cache.insert("b", "1", Arc::new(vec![0; 20]));
        cache.insert("huge", "1", Arc::new(vec![0; 26]));
        assert!(cache.get("huge").is_none(), "over a quarter of the budget");
        assert!(cache.get("a").is_some()); // a is now the most recent
        for k in ["c", "d", "e", "f"] {
            cache.insert(k, "1", Arc::new(vec![0; 20]));
        }
        assert!(cache.get("b").is_none(), "the least recent went first");
        assert_eq!(cache.get("a").unwrap().identity, "1");
        assert!(SourceCache::new(0).get("a").is_none());
    }
}
