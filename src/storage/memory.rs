//! An in-memory store for unit tests: no files, links that only name the
//! key, and a count of the requests made, so tests can pin round trips.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::{DateTime, Utc};

use super::{ObjectInfo, PutOptions, SignedLink, Store, StoreError, check_key};

/// An object's bytes, what `put` was told, and how often it was replaced.
type Entry = (Vec<u8>, PutOptions, u64);

#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<HashMap<String, Entry>>,
    counts: [AtomicUsize; 5],
    /// When set, every request fails as an unreachable server's would.
    pub down: AtomicBool,
    /// Writes under this prefix are refused (a bucket policy that forbids them).
    pub refused: Mutex<Option<String>>,
}

/// Requests made of a store, by kind. Signing is local work, not a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requests {
    /// `get` and `read`: one GET each.
    pub get: usize,
    pub head: usize,
    pub put: usize,
    pub list: usize,
    pub delete: usize,
}

impl Requests {
    pub fn total(&self) -> usize {
        self.get + self.head + self.put + self.list + self.delete
    }
}

const GET: usize = 0;
const HEAD: usize = 1;
const PUT: usize = 2;
const LIST: usize = 3;
const DELETE: usize = 4;

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Requests made since the store was made (or last [`MemoryStore::reset_requests`]).
    pub fn requests(&self) -> Requests {
        let n = |i: usize| self.counts[i].load(Ordering::SeqCst);
        Requests {
            get: n(GET),
            head: n(HEAD),
            put: n(PUT),
            list: n(LIST),
            delete: n(DELETE),
        }
    }

    pub fn reset_requests(&self) {
        self.counts.iter().for_each(|c| c.store(0, Ordering::SeqCst));
    }

    /// Counts a request; fails it while the store is down.
    fn count(&self, kind: usize) -> Result<(), StoreError> {
        self.counts[kind].fetch_add(1, Ordering::SeqCst);
        self.answering()
    }

    fn answering(&self) -> Result<(), StoreError> {
        match self.down.load(Ordering::SeqCst) {
            true => Err(StoreError::failed("memory store: connection refused")),
            false => Ok(()),
        }
    }

    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.objects.lock().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }
}

fn info(bytes: &[u8], options: &PutOptions, generation: u64) -> ObjectInfo {
    ObjectInfo {
        size: bytes.len() as u64,
        identity: format!("{}-{generation}", bytes.len()),
        meta: options.meta.clone(),
    }
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        Ok(self.read(key).await?.1)
    }

    async fn read(&self, key: &str) -> Result<(ObjectInfo, Vec<u8>), StoreError> {
        self.count(GET)?;
        let objects = self.objects.lock().unwrap();
        let (bytes, options, generation) = objects.get(key).ok_or_else(|| StoreError::NotFound(key.to_string()))?;
        Ok((info(bytes, options, *generation), bytes.clone()))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        self.count(HEAD)?;
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .get(key)
            .map(|(bytes, options, generation)| info(bytes, options, *generation)))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, options: PutOptions) -> Result<(), StoreError> {
        check_key(key)?;
        self.count(PUT)?;
        let refused = self.refused.lock().unwrap().clone();
        if refused.is_some_and(|prefix| key.starts_with(&prefix)) {
            return Err(StoreError::failed(format!("access denied: {key}")));
        }
        let mut objects = self.objects.lock().unwrap();
        let generation = objects.get(key).map_or(0, |(_, _, g)| g + 1);
        objects.insert(key.to_string(), (bytes, options, generation));
        Ok(())
    }

    async fn sign(&self, key: &str, expires_at: DateTime<Utc>) -> Result<SignedLink, StoreError> {
        check_key(key)?;
        Ok(SignedLink {
            url: format!("memory:///{key}?exp={}", expires_at.timestamp()),
            expires_at,
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.count(LIST)?;
        Ok(self.keys().into_iter().filter(|k| k.starts_with(prefix)).collect())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.count(DELETE)?;
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.answering()
    }

    /// A fresh, empty store: in-memory buckets share nothing.
    fn bucket(&self, name: &str) -> Result<MemoryStore, StoreError> {
        super::check_bucket(name)?;
        Ok(MemoryStore::new())
    }
}
