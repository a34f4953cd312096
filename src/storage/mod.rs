//! Object storage: originals are read from one store, renditions written to
//! another and handed out as signed, expiring links.
//!
//! - [`Store`]: the trait; [`fs::FsStore`] (the embedded default) and
//!   [`memory::MemoryStore`] (unit tests) implement it.
//! - [`link::LinkSigner`]: HMAC-SHA256 links for the filesystem store,
//!   checked by `rendition serve`.

pub mod fs;
pub mod link;
pub mod memory;

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};

use crate::error::{Coded, Disposition};

/// What a store knows of an object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// Changes whenever the content may have (size and mtime, or an ETag).
    pub identity: String,
    /// What was given at `put` (content type, width, sha256, …).
    pub meta: BTreeMap<String, String>,
}

/// How an object is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    pub content_type: String,
    /// The file name a download is saved as.
    pub filename: Option<String>,
    pub meta: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedLink {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("no object at {0}")]
    NotFound(String),
    #[error("invalid key {0:?}: keys are relative paths without `..`")]
    InvalidKey(String),
    #[error("storage error: {0}")]
    Io(String),
}

impl Coded for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::NotFound(_) => "missing_source",
            StoreError::InvalidKey(_) => "invalid_job",
            StoreError::Io(_) => "storage_error",
        }
    }
    fn disposition(&self) -> Disposition {
        match self {
            StoreError::Io(_) => Disposition::Retry,
            _ => Disposition::Reject,
        }
    }
}

/// An object store. Futures are `Send` so workers can run them anywhere.
pub trait Store: Send + Sync {
    fn get(&self, key: &str) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;
    /// `None` when there is no such object.
    fn head(&self, key: &str) -> impl Future<Output = Result<Option<ObjectInfo>, StoreError>> + Send;
    fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        options: PutOptions,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A link to `key` that works until `expires_at`.
    fn sign(&self, key: &str, expires_at: DateTime<Utc>) -> Result<SignedLink, StoreError>;
}

/// Keys are relative, `/`-separated, without empty or `..` parts.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.contains('\\')
        || key.split('/').any(|p| p.is_empty() || p == "." || p == "..");
    if bad {
        Err(StoreError::InvalidKey(key.to_string()))
    } else {
        Ok(())
    }
}

/// The content type of a key, by its extension.
pub fn content_type_of(key: &str) -> &'static str {
    match key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("tif" | "tiff") => "image/tiff",
        Some("bmp") => "image/bmp",
        Some("mp4") => "video/mp4",
        Some("mov") => "video/quicktime",
        Some("wav") => "audio/wav",
        Some("mp3") => "audio/mpeg",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_climb_out() {
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a\\b", "a/"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key("renditions/a-1/x.jpg").is_ok());
    }
}
