//! An in-memory store for unit tests: no files, links that only name the key.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{ObjectInfo, PutOptions, SignedLink, Store, StoreError, check_key};

/// An object's bytes, what `put` was told, and how often it was replaced.
type Entry = (Vec<u8>, PutOptions, u64);

#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<HashMap<String, Entry>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.objects.lock().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let objects = self.objects.lock().unwrap();
        objects
            .get(key)
            .map(|(b, _, _)| b.clone())
            .ok_or_else(|| StoreError::NotFound(key.to_string()))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        let objects = self.objects.lock().unwrap();
        Ok(objects.get(key).map(|(bytes, options, generation)| ObjectInfo {
            size: bytes.len() as u64,
            identity: format!("{}-{generation}", bytes.len()),
            meta: options.meta.clone(),
        }))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, options: PutOptions) -> Result<(), StoreError> {
        check_key(key)?;
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
        Ok(self.keys().into_iter().filter(|k| k.starts_with(prefix)).collect())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }

    /// A fresh, empty store: in-memory buckets share nothing.
    fn bucket(&self, name: &str) -> Result<MemoryStore, StoreError> {
        super::check_bucket(name)?;
        Ok(MemoryStore::new())
    }
}
