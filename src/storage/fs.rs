//! The filesystem store (the embedded default): the object for key `K` is
//! the file `ROOT/K` (docs/operating.md#commands); what `put` was told (content type, file
//! name, sizes) sits beside it in `ROOT/K.meta.json`.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::link::LinkSigner;
use super::{ObjectInfo, PutOptions, SignedLink, Store, StoreError, check_key, local};

/// The directory under the store's root that publish destinations live in.
pub const PUBLISHED_DIR: &str = "published";

/// What an object is written from.
enum Body<'a> {
    Bytes(Vec<u8>),
    File(&'a Path),
}

#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
    signer: Option<LinkSigner>,
}

/// The sidecar written next to each object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sidecar {
    pub content_type: String,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::io(e.to_string(), e)
}

/// Changes whenever the file may have: its size and modification time.
fn identity(stat: &std::fs::Metadata) -> String {
    let modified = stat
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    format!("{}-{}", stat.len(), modified.map_or(0, |d| d.as_nanos()))
}

impl FsStore {
    /// A store over `root`; `signer` makes links (read-only stores need none).
    pub fn new(root: impl Into<PathBuf>, signer: Option<LinkSigner>) -> FsStore {
        FsStore {
            root: root.into(),
            signer,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn sidecar_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".meta.json");
        PathBuf::from(name)
    }

    /// The sidecar of `key`, if one was written.
    pub async fn sidecar(&self, key: &str) -> Result<Option<Sidecar>, StoreError> {
        let file = match self.open_beneath(&format!("{key}.meta.json")).await {
            Ok(file) => file,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let bytes = read_all(file, 0).await?;
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// `ROOT/key` opened for reading, never through a symbolic link nor
    /// outside the root ([`super::beneath`]).
    async fn open_beneath(&self, key: &str) -> Result<tokio::fs::File, StoreError> {
        check_key(key)?;
        let (root, owned) = (self.root.clone(), key.to_string());
        let opened = tokio::task::spawn_blocking(move || super::beneath::open(&root, &owned))
            .await
            .map_err(|e| StoreError::io(e.to_string(), e))?;
        match opened {
            Ok(file) => Ok(tokio::fs::File::from_std(file)),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(StoreError::NotFound(key.to_string())),
            Err(e) => Err(io(e)),
        }
    }

    /// The object opened, with what `head` says of that very handle.
    async fn open(&self, key: &str) -> Result<(ObjectInfo, tokio::fs::File), StoreError> {
        let file = self.open_beneath(key).await?;
        let stat = file.metadata().await.map_err(io)?;
        if !stat.is_file() {
            return Err(StoreError::NotFound(key.to_string()));
        }
        let meta = self.sidecar(key).await?.map(|s| s.meta).unwrap_or_default();
        let info = ObjectInfo {
            size: stat.len(),
            identity: identity(&stat),
            meta,
        };
        Ok((info, file))
    }

    /// Writes the object and its sidecar, each to a temporary name that is
    /// renamed into place (the sidecar first), so a reader never sees half
    /// an object.
    async fn commit(&self, key: &str, options: PutOptions, body: Body<'_>) -> Result<(), StoreError> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        let sidecar = Sidecar {
            content_type: options.content_type,
            filename: options.filename,
            meta: options.meta,
        };
        let sidecar = serde_json::to_vec_pretty(&sidecar).expect("a sidecar serializes");
        let unique = format!(".tmp-{}-{}", std::process::id(), rand::random::<u64>());
        let tmp = |p: &Path| PathBuf::from(format!("{}{unique}", p.display()));
        let side = Self::sidecar_path(&path);
        // Both written in full under temporary names first (the object may
        // be gigabytes), then renamed; a failure leaves neither behind.
        let written = async {
            match body {
                Body::Bytes(bytes) => tokio::fs::write(tmp(&path), bytes).await.map_err(io)?,
                Body::File(from) => {
                    tokio::fs::copy(from, tmp(&path)).await.map_err(|e| local(from, e))?;
                }
            }
            tokio::fs::write(tmp(&side), sidecar).await.map_err(io)?;
            tokio::fs::rename(tmp(&side), &side).await.map_err(io)?;
            tokio::fs::rename(tmp(&path), &path).await.map_err(io)
        };
        let outcome = written.await;
        if outcome.is_err() {
            let _ = tokio::fs::remove_file(tmp(&path)).await;
            let _ = tokio::fs::remove_file(tmp(&side)).await;
        }
        outcome
    }
}

impl Store for FsStore {
    /// Opened beneath the root (no links, no FIFOs), its sidecar unread,
    /// and read through a `take` of `max + 1` bytes.
    async fn get_at_most(&self, key: &str, max: u64) -> Result<Vec<u8>, StoreError> {
        use tokio::io::AsyncReadExt;
        let file = self.open_beneath(key).await?;
        if !file.metadata().await.map_err(io)?.is_file() {
            return Err(StoreError::NotFound(key.to_string()));
        }
        let mut bytes = Vec::new();
        file.take(max + 1).read_to_end(&mut bytes).await.map_err(io)?;
        match bytes.len() as u64 {
            size if size > max => Err(super::too_big(key, max)),
            _ => Ok(bytes),
        }
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        Ok(self.read(key).await?.1)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        match self.open(key).await {
            Ok((info, _)) => Ok(Some(info)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the file once: its identity comes from the same handle.
    async fn read(&self, key: &str) -> Result<(ObjectInfo, Vec<u8>), StoreError> {
        let (info, file) = self.open(key).await?;
        let bytes = read_all(file, info.size).await?;
        Ok((info, bytes))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, options: PutOptions) -> Result<(), StoreError> {
        self.commit(key, options, Body::Bytes(bytes)).await
    }

    /// A copy from one open handle (its identity from the same handle, as
    /// `read` does), a chunk at a time.
    async fn download(&self, key: &str, to: &Path) -> Result<ObjectInfo, StoreError> {
        let (info, mut from) = self.open(key).await?;
        let mut file = tokio::fs::File::create(to).await.map_err(|e| local(to, e))?;
        tokio::io::copy(&mut from, &mut file).await.map_err(|e| local(to, e))?;
        Ok(info)
    }

    async fn read_or_download(
        &self,
        key: &str,
        max: u64,
        to: &Path,
    ) -> Result<(ObjectInfo, Option<Vec<u8>>), StoreError> {
        let (info, mut from) = self.open(key).await?;
        if info.size < max {
            let bytes = read_all(from, info.size).await?;
            return Ok((info, Some(bytes)));
        }
        let mut file = tokio::fs::File::create(to).await.map_err(|e| local(to, e))?;
        tokio::io::copy(&mut from, &mut file).await.map_err(|e| local(to, e))?;
        Ok((info, None))
    }

    async fn upload(&self, key: &str, from: &Path, options: PutOptions) -> Result<(), StoreError> {
        self.commit(key, options, Body::File(from)).await
    }

    async fn sign(&self, key: &str, expires_at: DateTime<Utc>) -> Result<SignedLink, StoreError> {
        check_key(key)?;
        let signer = self
            .signer
            .as_ref()
            .ok_or_else(|| StoreError::failed("this store signs no links"))?;
        Ok(SignedLink {
            url: signer.sign(key, expires_at),
            expires_at,
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // Start from the deepest directory the prefix names, then filter.
        let dir = prefix.rsplit_once('/').map_or("", |(d, _)| d);
        let start = if dir.is_empty() {
            self.root.clone()
        } else {
            self.path(dir)?
        };
        let root = self.root.clone();
        let mut keys = tokio::task::spawn_blocking(move || walk(&root, &start))
            .await
            .map_err(|e| StoreError::io(e.to_string(), e))??;
        keys.retain(|k| k.starts_with(prefix));
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        for p in [Self::sidecar_path(&path), path] {
            match tokio::fs::remove_file(&p).await {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(io(e)),
                _ => {}
            }
        }
        Ok(())
    }

    async fn ready(&self) -> Result<(), StoreError> {
        match tokio::fs::metadata(&self.root).await {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(StoreError::failed(format!(
                "{} is not a directory",
                self.root.display()
            ))),
            Err(e) => Err(StoreError::io(format!("{}: {e}", self.root.display()), e)),
        }
    }

    /// `ROOT/NAME`: a directory per bucket.
    fn bucket(&self, name: &str) -> Result<FsStore, StoreError> {
        super::check_bucket(name)?;
        Ok(FsStore::new(self.root.join(name), self.signer.clone()))
    }

    /// `ROOT/published/NAME`: published copies never land among the
    /// store's own files (renditions, results, audit, revocations).
    fn destination(&self, name: &str) -> Result<FsStore, StoreError> {
        super::check_bucket(name)?;
        Ok(FsStore::new(
            self.root.join(PUBLISHED_DIR).join(name),
            self.signer.clone(),
        ))
    }
}

/// The rest of `file`, `size` bytes expected.
async fn read_all(mut file: tokio::fs::File, size: u64) -> Result<Vec<u8>, StoreError> {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut bytes).await.map_err(io)?;
    Ok(bytes)
}

/// The object keys under `start`, relative to `root`; sidecars, temporary
/// files and dot-files (the link secret) are not objects.
fn walk(root: &Path, start: &Path) -> Result<Vec<String>, StoreError> {
    let mut keys = Vec::new();
    let mut dirs = vec![start.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(io(e)),
        };
        for entry in entries {
            let path = entry.map_err(io)?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') || name.ends_with(".meta.json") || name.contains(".tmp-") {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                keys.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStore;

    /// A file uploaded and downloaded again keeps its bytes and metadata.
    async fn round_trip(store: &impl Store, dir: &Path) {
        let bytes: Vec<u8> = (0..3_000_017u32).map(|i| (i * 31 % 251) as u8).collect();
        let (from, to) = (dir.join("from.bin"), dir.join("to.bin"));
        std::fs::write(&from, &bytes).unwrap();
        let options = PutOptions {
            content_type: "video/mp4".into(),
            meta: [("sha256".to_string(), "abc".to_string())].into(),
            ..PutOptions::default()
        };
        store.upload("big/clip.mp4", &from, options).await.unwrap();
        assert_eq!(store.get("big/clip.mp4").await.unwrap(), bytes);
        let info = store.download("big/clip.mp4", &to).await.unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), bytes);
        assert_eq!(info.size, bytes.len() as u64);
        assert_eq!(info.meta.get("sha256").map(String::as_str), Some("abc"));
        let missing = store.download("big/none.mp4", &dir.join("none")).await;
        assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    }

    /// A symbolic link among the originals, to a file or a directory
    /// outside the root, is no object: nothing is read through it.
    #[tokio::test]
    async fn symbolic_links_out_of_the_root_are_not_objects() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("originals"), dir.path().join("elsewhere"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("canary.jpg"), b"canary").unwrap();
        std::os::unix::fs::symlink(outside.join("canary.jpg"), root.join("a.jpg")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("dir")).unwrap();
        let store = FsStore::new(&root, None);
        for key in ["a.jpg", "dir/canary.jpg"] {
            assert!(store.head(key).await.unwrap().is_none(), "{key}");
            assert!(matches!(store.get(key).await, Err(StoreError::NotFound(_))), "{key}");
            assert!(matches!(store.read(key).await, Err(StoreError::NotFound(_))), "{key}");
            let to = dir.path().join("copy");
            assert!(store.download(key, &to).await.is_err(), "{key}");
        }
    }

    #[tokio::test]
    async fn files_stream_through_the_fs_and_memory_stores_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        round_trip(&FsStore::new(dir.path().join("store"), None), dir.path()).await;
        round_trip(&MemoryStore::new(), dir.path()).await;
    }
}
