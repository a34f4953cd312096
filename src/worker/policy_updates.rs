//! Policy updates (docs/control-plane.md): a signed message on the fanout
//! exchange carries the document, or its location and SHA-256. Every
//! worker verifies the signature, fetches a location only from
//! `RENDITION_POLICY_LOCATIONS` (bounded in size and time), checks the
//! digest, validates the document and swaps it in by the version rule
//! ([`crate::policy::CurrentPolicy`]; a location's standing is signed, so a
//! replay is refused before anything is fetched). Anything else is refused and the
//! policy in force stays. Shares the update revokes are swept at once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::control::{ControlError, ControlPlane, Place, PolicyBody};
use crate::error::Coded;
use crate::policy::{CurrentPolicy, DocFormat, Policy, PolicyError, Standing, Update};
use crate::revocation::{Revoked, newly_revoked, revoke_share};
use crate::storage::fs::FsStore;
use crate::storage::{Store, StoreError};

/// The largest policy document a location may hold.
pub const MAX_POLICY_BYTES: u64 = 16 << 20;
/// The largest update message read: an inline document's JSON with its
/// signature. Refused before it is parsed, so junk in the policy log costs
/// little each time a worker reads the log.
pub const MAX_UPDATE_MESSAGE_BYTES: usize = 32 << 20;
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
    pub from: Standing,
    pub to: Standing,
    /// The key that signed it.
    pub key_id: String,
    pub swept: Vec<Revoked>,
    /// Shares the new policy revokes whose renditions could not be deleted
    /// now (the policy denies them already; a later update or a restart
    /// sweeps them again).
    pub unswept: Vec<(String, StoreError)>,
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
    if message.len() > MAX_UPDATE_MESSAGE_BYTES {
        let why = format!("{} bytes; larger documents go by location", message.len());
        return Err(ControlError::Malformed(why).into());
    }
    let verified = control.keys.verify_update(message)?;
    let (text, signed) = match verified.body {
        PolicyBody::Inline(text) => (text, None),
        PolicyBody::At {
            location,
            sha256,
            standing,
        } => {
            // A replayed or older location is refused before anything is
            // fetched: replays cost no download and no stalled consumer.
            let now = current.get().standing();
            if !now.admits(standing) {
                return Err(ControlError::Stale {
                    current: now,
                    offered: standing,
                }
                .into());
            }
            let text = fetch_signed(control, originals, &location, sha256).await?;
            (text, Some((location, standing)))
        }
    };
    let policy = Policy::parse(&text, sniff(&text))?;
    if let Some((location, signed)) = signed
        && policy.standing() != signed
    {
        let found = policy.standing();
        return Err(ControlError::Standing {
            location,
            signed,
            found,
        }
        .into());
    }
    let before = current.get();
    let (from, to) = match current.replace(policy) {
        Update::Applied { from, to } => (from, to),
        Update::Stale { current, offered } => return Err(ControlError::Stale { current, offered }.into()),
    };
    let after = current.get();
    let (mut swept, mut unswept) = (Vec::new(), Vec::new());
    for share in newly_revoked(Some(&before), &after) {
        match revoke_share(renditions, &share).await {
            Ok(revoked) => swept.push(revoked),
            Err(e) => unswept.push((share, e)),
        }
    }
    Ok(Applied {
        from,
        to,
        key_id: verified.key_id,
        swept,
        unswept,
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
            Place::Bucket { bucket, key } => originals.bucket(&bucket)?.get_at_most(&key, MAX_POLICY_BYTES).await,
            Place::Dir { dir, key } => FsStore::new(dir, None).get_at_most(&key, MAX_POLICY_BYTES).await,
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

/// Questions a worker asks to log what an update changed (about a second
/// of one core); larger policies are left to `rendition policy diff`.
const MAX_LOGGED_DIFF: usize = 2_000_000;

/// Logs an applied update at once, then what it changed (`policy diff`'s
/// summary), worked out off the consume loop: a large policy takes a while.
pub fn log_applied(applied: Applied) {
    use crate::policy::diff;
    let (from, to) = (applied.from.to_string(), applied.to.to_string());
    tracing::info!(%from, %to, key_id = %applied.key_id, revoked = ?applied.swept, "policy applied");
    for (share, error) in &applied.unswept {
        // The policy in force denies the share already; its renditions go
        // on the next update's or restart's sweep.
        tracing::error!(share, %error, "could not delete a revoked share's renditions yet");
    }
    tokio::task::spawn_blocking(move || {
        let (before, after) = (&applied.before, &applied.after);
        if diff::size(before, after) > MAX_LOGGED_DIFF {
            tracing::info!(
                from,
                to,
                "policy change too large to diff here: run `rendition policy diff`"
            );
            return;
        }
        let diff = diff::diff(before, after, chrono::Utc::now());
        let (changes, widened) = (diff.changes.len(), diff.widened());
        tracing::info!(%from, %to, changes, widened, summary = %diff.summary(), "policy change");
    });
}

#[cfg(test)]
#[path = "policy_updates_tests.rs"]
mod tests;
