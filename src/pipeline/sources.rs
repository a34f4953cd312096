//! Recently read originals, kept by source identity (key and ETag/mtime):
//! a popular asset, or a download set split over several jobs, is read
//! from storage once. Bounded by bytes; the least recently used goes first.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

pub struct SourceCache {
    budget: usize,
    entries: Mutex<VecDeque<(String, Arc<Vec<u8>>)>>,
}

impl SourceCache {
    /// Keeps at most `budget` bytes; 0 keeps nothing.
    pub fn new(budget: usize) -> SourceCache {
        SourceCache {
            budget,
            entries: Mutex::new(VecDeque::new()),
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Vec<u8>>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let at = entries.iter().position(|(k, _)| k == id)?;
        let entry = entries.remove(at)?;
        let bytes = entry.1.clone();
        entries.push_back(entry);
        Some(bytes)
    }

    /// Sources larger than a quarter of the budget are not kept: one huge
    /// original should not flush every other.
    pub fn insert(&self, id: &str, bytes: Arc<Vec<u8>>) {
        if bytes.len() > self.budget / 4 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(k, _)| k != id);
        entries.push_back((id.to_string(), bytes));
        let mut total: usize = entries.iter().map(|(_, b)| b.len()).sum();
        while total > self.budget {
            let Some((_, dropped)) = entries.pop_front() else { break };
            total -= dropped.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_recent_sources_within_the_budget() {
        let cache = SourceCache::new(100);
        cache.insert("a", Arc::new(vec![0; 20]));
        cache.insert("b", Arc::new(vec![0; 20]));
        cache.insert("huge", Arc::new(vec![0; 26]));
        assert!(cache.get("huge").is_none(), "over a quarter of the budget");
        assert!(cache.get("a").is_some()); // a is now the most recent
        for k in ["c", "d", "e", "f"] {
            cache.insert(k, Arc::new(vec![0; 20]));
        }
        assert!(cache.get("b").is_none(), "the least recent went first");
        assert!(cache.get("a").is_some());
        assert!(SourceCache::new(0).get("a").is_none());
    }
}
