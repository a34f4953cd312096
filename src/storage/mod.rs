//! Object storage: originals are read from one store, renditions written to
//! another and handed out as signed, expiring links.
//!
//! - [`Store`]: the trait; [`fs::FsStore`] (the embedded default),
//!   [`s3::S3Store`] (production: any S3-compatible server) and
//!   [`memory::MemoryStore`] (unit tests) implement it.
//! - [`link::LinkSigner`]: HMAC-SHA256 links for the filesystem store,
//!   checked by `rendition serve`.

mod beneath;
pub mod fs;
pub mod link;
pub mod memory;
pub mod meta;
pub mod s3;

pub use meta::RenditionMeta;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::{Coded, ErrorCode};

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

/// The error underneath a storage failure, shared so errors stay `Clone`.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("no object at {0}")]
    NotFound(String),
    #[error("invalid key {0:?}: keys are relative paths without `..`")]
    InvalidKey(String),
    #[error("invalid bucket name {0:?}")]
    InvalidBucket(String),
    /// The message says what failed, with the cause's chain when that
    /// helps an operator (`s3: dispatch failure: connection refused`).
    #[error("storage error: {message}")]
    Io {
        message: String,
        #[source]
        source: Option<Cause>,
    },
}

impl StoreError {
    /// A failure with its underlying error kept as the source.
    pub fn io(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Io {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// A failure of our own making (nothing underneath).
    pub fn failed(message: impl Into<String>) -> StoreError {
        StoreError::Io {
            message: message.into(),
            source: None,
        }
    }
}

impl Coded for StoreError {
    fn code(&self) -> ErrorCode {
        match self {
            StoreError::NotFound(_) => ErrorCode::MissingSource,
            StoreError::InvalidKey(_) | StoreError::InvalidBucket(_) => ErrorCode::InvalidJob,
            StoreError::Io { .. } => ErrorCode::StorageError,
        }
    }
}

/// An object store. Futures are `Send` so workers can run them anywhere.
pub trait Store: Send + Sync {
    fn get(&self, key: &str) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;
    /// The object and what `head` would say of it, in one request where
    /// the store allows (an S3 GET carries the ETag and metadata).
    fn read(&self, key: &str) -> impl Future<Output = Result<(ObjectInfo, Vec<u8>), StoreError>> + Send {
        async move {
            let bytes = self.get(key).await?;
            let info = self
                .head(key)
                .await?
                .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
            Ok((info, bytes))
        }
    }
    /// The object, if it is at most `max` bytes: never more than `max + 1`
    /// bytes are held, however large the object is or grows while read
    /// (policy documents from a signed location).
    fn get_at_most(&self, key: &str, max: u64) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send {
        async move {
            let bytes = self.get(key).await?;
            match bytes.len() as u64 {
                size if size > max => Err(too_big(key, max)),
                _ => Ok(bytes),
            }
        }
    }
    /// Copies the object into the file at `to` a chunk at a time, never
    /// whole in memory (how video sources reach FFmpeg); what `head` would
    /// say of what was copied.
    fn download(&self, key: &str, to: &Path) -> impl Future<Output = Result<ObjectInfo, StoreError>> + Send {
        async move {
            let (info, bytes) = self.read(key).await?;
            tokio::fs::write(to, bytes).await.map_err(|e| local(to, e))?;
            Ok(info)
        }
    }
    /// One GET for an object of unknown size: into memory when smaller
    /// than `max` bytes (`Some`), else copied into the file at `to` a chunk
    /// at a time, as `download` does (`None`).
    fn read_or_download(
        &self,
        key: &str,
        max: u64,
        to: &Path,
    ) -> impl Future<Output = Result<(ObjectInfo, Option<Vec<u8>>), StoreError>> + Send {
        async move {
            let (info, bytes) = self.read(key).await?;
            if (bytes.len() as u64) < max {
                return Ok((info, Some(bytes)));
            }
            tokio::fs::write(to, bytes).await.map_err(|e| local(to, e))?;
            Ok((info, None))
        }
    }
    /// Stores the file at `from` without reading it whole (S3: in parts).
    fn upload(
        &self,
        key: &str,
        from: &Path,
        options: PutOptions,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let bytes = tokio::fs::read(from).await.map_err(|e| local(from, e))?;
            self.put(key, bytes, options).await
        }
    }
    /// `None` when there is no such object.
    fn head(&self, key: &str) -> impl Future<Output = Result<Option<ObjectInfo>, StoreError>> + Send;
    fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        options: PutOptions,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A link to `key` that works until `expires_at`.
    fn sign(&self, key: &str, expires_at: DateTime<Utc>)
    -> impl Future<Output = Result<SignedLink, StoreError>> + Send;
    /// Every key that starts with `prefix`, sorted.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Removes `key`; removing what is not there is not an error.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Whether the store answers (readiness): the bucket or directory is there.
    fn ready(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }
    /// The same kind of store, over another bucket.
    fn bucket(&self, name: &str) -> Result<Self, StoreError>
    where
        Self: Sized;
    /// Where a publish job's copies to `name` go: that bucket (the
    /// filesystem store keeps them under a root of their own).
    fn destination(&self, name: &str) -> Result<Self, StoreError>
    where
        Self: Sized,
    {
        self.bucket(name)
    }
}

/// A local file (a download's target, an upload's source) failed.
/// An object larger than a reader takes.
pub fn too_big(key: &str, max: u64) -> StoreError {
    StoreError::failed(format!("{key} is larger than {max} bytes"))
}

pub fn local(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::io(format!("local file {}: {e}", path.display()), e)
}

/// Bucket names as S3 allows them: 3–63 of `a-z 0-9 . -`, starting and
/// ending with a letter or digit.
pub fn check_bucket(name: &str) -> Result<(), StoreError> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidBucket(name.to_string()))
    }
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

/// What RFC 5987 lets stand unencoded in `filename*` (its attr-char).
const NOT_ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="…"` (RFC 6266), plus `filename*=UTF-8''…`
/// (RFC 5987) when the quoted name had to lose something, so clients that
/// read it (all current browsers) keep a non-ASCII name whole. Controls and
/// path separators go in both: a saved file's name has no use for them. The
/// quoted fallback also loses `"` (it would end the string), `%` (some
/// clients decode it) and anything not ASCII, so the value stays one valid
/// header, which S3 also needs of its object metadata.
pub fn content_disposition(filename: &str) -> String {
    let name: String = filename
        .chars()
        .map(|c| {
            if c.is_control() || c == '/' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let fallback: String = name
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() && c != '"' && c != '%' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if fallback == name {
        return format!("attachment; filename=\"{name}\"");
    }
    let encoded = utf8_percent_encode(&name, NOT_ATTR_CHAR);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The content type of a key, by its extension.
pub fn content_type_of(key: &str) -> &'static str {
    match key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("heic" | "heif") => "image/heif",
        Some("gif") => "image/gif",
        Some("tif" | "tiff") => "image/tiff",
        Some("bmp") => "image/bmp",
        Some("mp4") => "video/mp4",
        Some("m4a") => "audio/mp4",
        Some("vtt") => "text/vtt",
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

    #[test]
    fn dispositions_name_the_file_safely() {
        assert_eq!(
            content_disposition("launch hero.jpg"),
            "attachment; filename=\"launch hero.jpg\""
        );
        assert_eq!(
            content_disposition("a\"b\r\n.jpg"),
            "attachment; filename=\"a_b__.jpg\"; filename*=UTF-8''a%22b__.jpg"
        );
        assert_eq!(
            content_disposition("../etc\\x/y.jpg"),
            "attachment; filename=\".._etc_x_y.jpg\""
        );
        assert_eq!(
            content_disposition("100% ok.jpg"),
            "attachment; filename=\"100_ ok.jpg\"; filename*=UTF-8''100%25%20ok.jpg"
        );
    }

    #[test]
    fn non_ascii_names_survive_in_filename_star() {
        assert_eq!(
            content_disposition("café.jpg"),
            "attachment; filename=\"caf_.jpg\"; filename*=UTF-8''caf%C3%A9.jpg"
        );
        assert_eq!(
            content_disposition("日本.png"),
            "attachment; filename=\"__.png\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.png"
        );
    }

    proptest::proptest! {
        /// Whatever the name, the value is one header's worth of visible
        /// ASCII: a quoted fallback that nothing escapes, then at most an
        /// RFC 5987 value made only of attr-chars and %XX.
        #[test]
        fn any_name_makes_a_valid_header(name in "\\PC*|[\\x00-\\x7f]*") {
            let value = content_disposition(&name);
            proptest::prop_assert!(value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()), "{value:?}");
            let rest = value.strip_prefix("attachment; filename=\"").unwrap();
            let (fallback, star) = rest.split_once('"').unwrap();
            proptest::prop_assert!(!fallback.contains(['\\', '/', '%']), "{fallback:?}");
            if !star.is_empty() {
                let encoded = star.strip_prefix("; filename*=UTF-8''").unwrap();
                let attr = |c: char| c.is_ascii_alphanumeric() || "!#$&+-.^_`|~%".contains(c);
                proptest::prop_assert!(encoded.chars().all(attr), "{encoded:?}");
                // It decodes to the name itself, bar controls and slashes.
                let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8().unwrap();
                let kept = |c: char| if c.is_control() || c == '/' || c == '\\' { '_' } else { c };
                proptest::prop_assert_eq!(decoded, name.chars().map(kept).collect::<String>());
            }
        }
    }

    #[test]
    fn bucket_names_follow_s3() {
        for bad in ["ab", "Upper", "a_b", "-ab", "ab-", "a/b", "..", &"a".repeat(64)] {
            assert!(check_bucket(bad).is_err(), "{bad:?}");
        }
        for good in ["abc", "press-kit", "web.assets-2", "0ab"] {
            assert!(check_bucket(good).is_ok(), "{good:?}");
        }
    }
}
