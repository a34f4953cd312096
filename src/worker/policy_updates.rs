//! Policy updates (docs/control-plane.md): a signed message on the fanout
//! exchange carries the document, or its location and SHA-256. Every
//! worker verifies the signature, fetches a location only from
//! `RENDITION_POLICY_LOCATIONS` (bounded in size and time), checks the
//! digest, validates the document and swaps it in by the version rule
//! ([`crate::policy::CurrentPolicy`]). Anything else is refused and the
//! policy in force stays. Shares the update revokes are swept at once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::control::{ControlError, ControlPlane, Place, PolicyBody};
use crate::error::Coded;
use crate::policy::{CurrentPolicy, DocFormat, Policy, PolicyError, Update};
use crate::revocation::{Revoked, newly_revoked, revoke_share};
use crate::storage::fs::FsStore;
use crate::storage::{Store, StoreError};

/// The largest policy document a location may hold.
pub const MAX_POLICY_BYTES: u64 = 16 << 20;
/// How long fetching a document from its location may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("policy at {0}: {1}")]
    Fetch(String, String),
    #[error("sweeping revoked shares: {0}")]
    Sweep(#[from] StoreError),
}

impl UpdateError {
    /// The `reason` label of `rendition_control_refused_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            UpdateError::Control(e) => e.code().as_str(),
            UpdateError::Policy(e) => e.code().as_str(),
            UpdateError::Fetch(..) => "policy_unreadable",
            UpdateError::Sweep(_) => "storage_error",
        }
    }
}

/// An update that was swapped in.
#[derive(Debug)]
pub struct Applied {
    pub from: u64,
    pub to: u64,
    /// The key that signed it.
    pub key_id: String,
    pub swept: Vec<Revoked>,
    pub before: Arc<Policy>,
    pub after: Arc<Policy>,
}

/// Loads the start-up policy from `s3://bucket/key` (read through `store`'s
/// client) or a file path: the operator's own setting, so not signed.
pub async fn load_policy<S: Store>(location: &str, store: &S) -> Result<Policy, UpdateError> {
    let fetch = |e: &dyn std::fmt::Display| UpdateError::Fetch(location.to_string(), e.to_string());
    let Some(rest) = location.strip_prefix("s3://") else {
        return Ok(Policy::load(Path::new(location))?);
    };
    let (bucket, key) = rest.split_once('/').ok_or_else(|| fetch(&"expected s3://bucket/key"))?;
    let bytes = store
        .bucket(bucket)
        .map_err(|e| fetch(&e))?
        .get(key)
        .await
        .map_err(|e| fetch(&e))?;
    let text = String::from_utf8(bytes).map_err(|e| fetch(&e))?;
    let format = DocFormat::from_path(Path::new(key)).unwrap_or_else(|| sniff(&text));
    Ok(Policy::parse(&text, format)?)
}

/// Applies one update message, or says why not.
pub async fn apply_update<S: Store>(
    current: &CurrentPolicy,
    control: &ControlPlane,
    originals: &S,
    renditions: &S,
    message: &[u8],
) -> Result<Applied, UpdateError> {
    let verified = control.keys.verify_update(message)?;
    let text = match verified.body {
        PolicyBody::Inline(text) => text,
        PolicyBody::At { location, sha256 } => fetch_signed(control, originals, &location, sha256).await?,
    };
    let policy = Policy::parse(&text, sniff(&text))?;
    let before = current.get();
    let (from, to) = match current.replace(policy, verified.replaces) {
        Update::Applied { from, to } => (from, to),
        Update::Stale { current, offered } => return Err(ControlError::Stale { current, offered }.into()),
        Update::NotReplacing { current, replaces } => {
            return Err(ControlError::NotReplacing { current, replaces }.into());
        }
    };
    let after = current.get();
    let mut swept = Vec::new();
    for share in newly_revoked(Some(&before), &after) {
        swept.push(revoke_share(renditions, &share).await?);
    }
    Ok(Applied {
        from,
        to,
        key_id: verified.key_id,
        swept,
        before,
        after,
    })
}

/// The document at a signed location: inside the configured place, at most
/// [`MAX_POLICY_BYTES`], within [`FETCH_TIMEOUT`], with the signed digest.
async fn fetch_signed<S: Store>(
    control: &ControlPlane,
    originals: &S,
    location: &str,
    sha256: [u8; 32],
) -> Result<String, UpdateError> {
    let locations = control.locations.as_ref().ok_or_else(|| {
        ControlError::Location(format!(
            "{location}: updates by location are off (RENDITION_POLICY_LOCATIONS is not set)"
        ))
    })?;
    let place = locations.place(location)?;
    let read = async {
        match place {
            Place::Bucket { bucket, key } => read_bounded(&originals.bucket(&bucket)?, &key).await,
            Place::Dir { dir, key } => read_bounded(&FsStore::new(dir, None), &key).await,
        }
    };
    let unreadable = |e: &dyn std::fmt::Display| UpdateError::Fetch(location.to_string(), e.to_string());
    let bytes = tokio::time::timeout(FETCH_TIMEOUT, read)
        .await
        .map_err(|_| unreadable(&format!("not read within {FETCH_TIMEOUT:?}")))?
        .map_err(|e| unreadable(&e))?;
    if Sha256::digest(&bytes).as_slice() != sha256 {
        return Err(ControlError::Digest(location.to_string()).into());
    }
    String::from_utf8(bytes).map_err(|e| unreadable(&e))
}

async fn read_bounded(store: &impl Store, key: &str) -> Result<Vec<u8>, StoreError> {
    let too_large = |size: u64| StoreError::failed(format!("{size} bytes, more than {MAX_POLICY_BYTES}"));
    let info = store
        .head(key)
        .await?
        .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
    if info.size > MAX_POLICY_BYTES {
        return Err(too_large(info.size));
    }
    let bytes = store.get(key).await?;
    match bytes.len() as u64 {
        size if size > MAX_POLICY_BYTES => Err(too_large(size)),
        _ => Ok(bytes),
    }
}

/// Every share the policy revokes, swept (a worker starting after the fact).
pub async fn sweep_all<S: Store>(policy: &Policy, renditions: &S) -> Result<Vec<Revoked>, StoreError> {
    let mut swept = Vec::new();
    for share in newly_revoked(None, policy) {
        swept.push(revoke_share(renditions, &share).await?);
    }
    Ok(swept)
}

fn sniff(text: &str) -> DocFormat {
    if text.trim_start().starts_with('{') {
        DocFormat::Json
    } else {
        DocFormat::Yaml
    }
}

#[cfg(test)]
#[path = "policy_updates_tests.rs"]
mod tests;
