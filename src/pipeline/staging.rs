//! Sources on local disk: FFmpeg reads files, so a video original is
//! copied from the store into a private temporary directory a chunk at a
//! time (never whole in memory), its proxy written beside it and uploaded
//! from there; originals too large to hold (`STREAM_ORIGINALS_FROM`) are
//! handed out and rendered the same way. The directory goes when the job's work does: on success,
//! failure, deadline or panic alike (it is dropped with the job's future).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::TempDir;

use super::engines::ImageSource;
use super::{Pipeline, PipelineError, STREAM_ORIGINALS_FROM};
use crate::layout;
use crate::storage::{ObjectInfo, RenditionMeta, Store, StoreError};
use crate::video::VideoError;

/// Room kept free beside a source for what is made of it (a proxy is far
/// smaller than a master; a poster smaller still).
pub(super) const OUTPUT_ROOM: u64 = 256 << 20;

/// A source copied to local disk, in its own directory.
pub(super) struct Staged {
    /// Shared with the engine's work on the pool, which a dropped job
    /// cannot stop: the directory goes when both are done with it.
    dir: Arc<TempDir>,
    pub(super) source: PathBuf,
    /// The identity of what was copied (it may have changed since a HEAD).
    pub(super) identity: String,
}

impl Staged {
    /// Where to write something made from the source.
    pub(super) fn output(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Keeps the directory while held (moved into the pool's closure).
    pub(super) fn keep(&self) -> Arc<TempDir> {
        self.dir.clone()
    }
}

impl<S: Store> Pipeline<S> {
    /// Copies the source at `key` (of size `info.size`) to local disk,
    /// once the disk has room for it.
    pub(super) async fn stage(&self, key: &str, info: &ObjectInfo) -> Result<Staged, PipelineError> {
        let parent = self.config.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
        check_room(&parent, info.size)?;
        let dir = self.temp_dir()?;
        let source = dir.path().join("source");
        let copied = match self.originals.download(key, &source).await {
            Err(StoreError::NotFound(_)) => return Err(PipelineError::MissingSource(key.to_string())),
            other => other?,
        };
        if copied.identity != info.identity || copied.size != info.size {
            // Replaced since the HEAD the limits were checked on: again, later.
            return Err(PipelineError::Changed(key.to_string()));
        }
        self.memory.sources.insert(key, copied.identity.clone());
        Ok(Staged {
            dir: Arc::new(dir),
            source,
            identity: copied.identity,
        })
    }

    /// An image original and its digest: from the cache, else one GET,
    /// kept in memory when small and copied to local disk when not, where
    /// PNG and TIFF are decoded a strip at a time.
    pub(super) async fn image_source(
        &self,
        key: &str,
        known: Option<&str>,
    ) -> Result<(String, ImageSource), PipelineError> {
        if let (Some(identity), Some(cached)) = (known, self.sources.get(key))
            && cached.identity == identity
        {
            return Ok((layout::source_digest(key, identity), ImageSource::Bytes(cached.bytes)));
        }
        let dir = self.temp_dir()?;
        let file = dir.path().join("source");
        let (info, bytes) = match self.originals.read_or_download(key, STREAM_ORIGINALS_FROM, &file).await {
            Err(StoreError::NotFound(_)) => return Err(PipelineError::MissingSource(key.to_string())),
            other => other?,
        };
        self.memory.sources.insert(key, info.identity.clone());
        let digest = layout::source_digest(key, &info.identity);
        match bytes {
            Some(bytes) => {
                let bytes = Arc::new(bytes);
                self.sources.insert(key, &info.identity, bytes.clone());
                Ok((digest, ImageSource::Bytes(bytes)))
            }
            None => Ok((digest, ImageSource::File(file, Arc::new(dir)))),
        }
    }

    /// A job's own directory under the temporary one.
    pub(super) fn temp_dir(&self) -> Result<TempDir, PipelineError> {
        let parent = self.config.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
        tempfile::Builder::new()
            .prefix("rendition-")
            .tempdir_in(&parent)
            // A full or unwritable temporary disk passes: retried, as storage is.
            .map_err(|e| crate::storage::local(&parent, e).into())
    }

    /// A video is refused before download when over the size limit.
    pub(super) fn check_video_size(&self, info: &ObjectInfo) -> Result<(), PipelineError> {
        let max = self.config.video_limits.max_source_bytes;
        if info.size > max {
            let value = info.size;
            return Err(VideoError::TooLarge {
                what: "source bytes",
                value,
                max,
            }
            .into());
        }
        Ok(())
    }

    /// Stores a rendition made as a file, without reading it whole.
    pub(super) async fn store_file(
        &self,
        key: &str,
        file: &std::path::Path,
        meta: &RenditionMeta,
        content_type: &str,
        filename: &str,
    ) -> Result<(), PipelineError> {
        let options = meta.put_options(content_type, filename);
        self.renditions.upload(key, file, options).await?;
        self.memory.stored.insert(key, meta.clone());
        Ok(())
    }
}

/// A source of `size` bytes fits in `dir`'s file system with room for its
/// outputs: too large for the whole file system is final (`too_large`);
/// too large for what is free now is worth a retry (`temp_space`), as
/// other jobs' files go.
fn check_room(dir: &Path, size: u64) -> Result<(), PipelineError> {
    let stat =
        rustix::fs::statvfs(dir).map_err(|e| VideoError::Engine(format!("free space in {}: {e}", dir.display())))?;
    let block = stat.f_frsize.max(1);
    let (total, free) = (stat.f_blocks.saturating_mul(block), stat.f_bavail.saturating_mul(block));
    let needed = size.saturating_add(OUTPUT_ROOM);
    if needed > total {
        return Err(VideoError::TooLarge {
            what: "source bytes for the temporary disk",
            value: size,
            max: total.saturating_sub(OUTPUT_ROOM),
        }
        .into());
    }
    if needed > free {
        return Err(PipelineError::TempSpace {
            needed,
            free,
            dir: dir.display().to_string(),
        });
    }
    Ok(())
}
