//! Where a job's renditions are stored and what they are called and told.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::job::{Job, Principal};
use crate::rendition::{OutputFormat, Size, Spec};
use crate::revocation::share_prefix;
use crate::storage::{ObjectInfo, PutOptions};

/// Where a job's renditions live and what they are called.
pub(super) struct Placement {
    /// `renditions/{asset}`, or `renditions/shares/{share}/{asset}` so that
    /// revoking a share is one listing.
    pub(super) prefix: String,
    pub(super) source_digest: String,
    pub(super) stem: String,
    /// The original's size in bytes, for limits checked before download.
    pub(super) source_size: u64,
}

impl Placement {
    pub(super) fn of(job: &Job, source: &ObjectInfo) -> Placement {
        let prefix = match &job.principal {
            Principal::Share { share, .. } => format!("{}{}", share_prefix(share), job.asset.id),
            _ => format!("renditions/{}", job.asset.id),
        };
        let identity = format!("{}|{}", job.asset.source, source.identity);
        let name = job.asset.filename.as_deref().unwrap_or(&job.asset.source);
        let base = name.rsplit('/').next().unwrap_or(name);
        let stem = base.rsplit_once('.').map_or(base, |(s, _)| s).to_string();
        Placement {
            prefix,
            source_digest: hex::encode(Sha256::digest(identity.as_bytes())),
            stem,
            source_size: source.size,
        }
    }

    pub(super) fn key(&self, spec: &Spec, size: Size, format: OutputFormat) -> String {
        format!(
            "{}/{}.{}",
            self.prefix,
            spec.digest(&self.source_digest, size, format),
            format.extension()
        )
    }

    /// The asset's file name with the rendition's extension.
    pub(super) fn filename(&self, ext: &str) -> String {
        format!("{}.{ext}", self.stem)
    }
}

pub(super) fn stats(bytes: &[u8], dims: Option<(u32, u32)>, watermarked: bool) -> BTreeMap<String, String> {
    let mut meta = BTreeMap::new();
    meta.insert("sha256".into(), hex::encode(Sha256::digest(bytes)));
    meta.insert("bytes".into(), bytes.len().to_string());
    meta.insert("watermarked".into(), watermarked.to_string());
    if let Some((w, h)) = dims {
        meta.insert("width".into(), w.to_string());
        meta.insert("height".into(), h.to_string());
    }
    meta
}

pub(super) fn put_options(content_type: &str, filename: &str, meta: BTreeMap<String, String>) -> PutOptions {
    PutOptions {
        content_type: content_type.to_string(),
        filename: Some(filename.to_string()),
        meta,
    }
}
