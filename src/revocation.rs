//! Stop sharing (docs/control-plane.md): a revoked share's renditions are deleted, so
//! links already issued stop working, and a marker in the renditions store
//! makes every worker deny the share's new jobs before any policy update
//! reaches it.
//!
//! A share's renditions (and remembered results) all live under
//! [`layout::share_prefix`], so revoking is one listing.

use serde::{Deserialize, Serialize};

use crate::layout::{self, share_prefix};
use crate::policy::Policy;
use crate::storage::{PutOptions, Store, StoreError};

/// The `schema` of a revoke message (routing key `revoke`).
pub const REVOKE_SCHEMA: &str = "rendition.revoke/v1";

/// "Stop sharing `share`", sent on the jobs exchange by the holder of a
/// control key: obeyed only with a valid signature over the share id
/// ([`crate::control::message`]). The fields are optional here so that an
/// unsigned revoke is answered `unsigned_control`, not `invalid_job`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeMessage {
    pub schema: String,
    pub job_id: String,
    pub share: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl RevokeMessage {
    /// A revoke of `share` signed with `key` (`rendition sign revoke`).
    pub fn signed(key: &crate::control::SigningKey, job_id: &str, share: &str) -> RevokeMessage {
        RevokeMessage {
            schema: REVOKE_SCHEMA.into(),
            job_id: job_id.into(),
            share: share.into(),
            key_id: Some(key.id.clone()),
            signature: Some(key.sign(&crate::control::message::revoke_bytes(share))),
        }
    }
}

/// What one revocation removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub share: String,
    pub deleted: usize,
}

/// Marks the share revoked, then deletes everything made for it. Safe to
/// repeat: every worker does it when a policy update revokes a share.
pub async fn revoke_share(store: &impl Store, share: &str) -> Result<Revoked, StoreError> {
    crate::storage::check_key(&layout::revocation_marker(share))?;
    let marker = PutOptions {
        content_type: "text/plain".into(),
        ..PutOptions::default()
    };
    store
        .put(&layout::revocation_marker(share), b"revoked".to_vec(), marker)
        .await?;
    let keys = store.list(&share_prefix(share)).await?;
    for key in &keys {
        store.delete(key).await?;
    }
    Ok(Revoked {
        share: share.to_string(),
        deleted: keys.len(),
    })
}

/// Whether a revoke message has been seen for `share`.
pub async fn is_revoked(store: &impl Store, share: &str) -> Result<bool, StoreError> {
    Ok(store.head(&layout::revocation_marker(share)).await?.is_some())
}

/// Shares revoked in `new` that were not in `old` (every revoked share
/// when there is no `old`: a worker starting after the fact sweeps them).
pub fn newly_revoked(old: Option<&Policy>, new: &Policy) -> Vec<String> {
    let was_revoked = |id: &str| old.and_then(|p| p.share(id)).is_some_and(|s| s.revoked);
    new.document()
        .shares
        .iter()
        .filter(|s| s.revoked && !was_revoked(&s.id))
        .map(|s| s.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStore;

    #[tokio::test]
    async fn revoking_deletes_only_that_shares_renditions() {
        let store = MemoryStore::new();
        for key in [
            "renditions/shares/s-1/a-1/x.jpg",
            "renditions/shares/s-1/results/r.json",
            "renditions/shares/s-10/a-1/x.jpg",
            "renditions/a-1/x.jpg",
        ] {
            store.put(key, vec![1], PutOptions::default()).await.unwrap();
        }
        assert!(!is_revoked(&store, "s-1").await.unwrap());
        let revoked = revoke_share(&store, "s-1").await.unwrap();
        assert_eq!(revoked.deleted, 2);
        assert!(is_revoked(&store, "s-1").await.unwrap());
        assert!(!is_revoked(&store, "s-10").await.unwrap());
        assert_eq!(
            store.keys(),
            [
                "renditions/a-1/x.jpg",
                "renditions/shares/s-10/a-1/x.jpg",
                "revocations/shares/s-1"
            ]
        );
        assert_eq!(revoke_share(&store, "s-1").await.unwrap().deleted, 0);
    }

    #[test]
    fn only_shares_revoked_by_the_update_are_swept() {
        let yaml = |revoked: bool| {
            format!(
                "version: 1\nroles: {{ admin: {{ staff: true }} }}\ncollections: [{{ id: c-1 }}]\n\
                 shares:\n  - {{ id: s-a, email: a@x, scope: [c-1], kind: proxy, revoked: true }}\n  \
                 - {{ id: s-b, email: b@x, scope: [c-1], kind: proxy, revoked: {revoked} }}\n"
            )
        };
        let old = Policy::parse(&yaml(false), crate::policy::DocFormat::Yaml).unwrap();
        let new = Policy::parse(&yaml(true), crate::policy::DocFormat::Yaml).unwrap();
        assert_eq!(newly_revoked(Some(&old), &new), ["s-b"]);
        assert_eq!(newly_revoked(None, &new), ["s-a", "s-b"]);
        assert!(newly_revoked(Some(&new), &new).is_empty());
    }
}
