//! Policy updates (contract §4): upstream publishes a whole document, or a
//! pointer `{"location": "s3://bucket/key"}` (or a file path), on the fanout
//! exchange. Newer versions are swapped in atomically; older ones ignored;
//! invalid ones refused while the one in force stays. Shares the update
//! revokes are swept at once.

use std::path::Path;

use crate::policy::{CurrentPolicy, DocFormat, Policy, PolicyError, Update};
use crate::revocation::{Revoked, newly_revoked, revoke_share};
use crate::storage::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("policy at {0}: {1}")]
    Fetch(String, String),
    #[error("sweeping revoked shares: {0}")]
    Sweep(#[from] StoreError),
}

/// Loads a policy from `s3://bucket/key` (read through `store`'s client) or
/// a file path.
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

/// Applies one update message; returns what it did and the shares it swept.
pub async fn apply_update<S: Store>(
    current: &CurrentPolicy,
    originals: &S,
    renditions: &S,
    body: &[u8],
) -> Result<(Update, Vec<Revoked>), UpdateError> {
    let policy = match pointer(body) {
        Some(location) => load_policy(&location, originals).await?,
        None => {
            let text = std::str::from_utf8(body).map_err(|e| UpdateError::Fetch("message".into(), e.to_string()))?;
            Policy::parse(text, sniff(text))?
        }
    };
    let before = current.get();
    let update = current.replace(policy);
    let mut swept = Vec::new();
    if let Update::Applied { .. } = update {
        for share in newly_revoked(Some(&before), &current.get()) {
            swept.push(revoke_share(renditions, &share).await?);
        }
    }
    Ok((update, swept))
}

/// Every share the policy revokes, swept (a worker starting after the fact).
pub async fn sweep_all<S: Store>(policy: &Policy, renditions: &S) -> Result<Vec<Revoked>, StoreError> {
    let mut swept = Vec::new();
    for share in newly_revoked(None, policy) {
        swept.push(revoke_share(renditions, &share).await?);
    }
    Ok(swept)
}

/// `{"location": "…"}` and nothing else is a pointer.
fn pointer(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    (object.len() == 1).then(|| object.get("location")?.as_str().map(str::to_string))?
}

fn sniff(text: &str) -> DocFormat {
    if text.trim_start().starts_with('{') {
        DocFormat::Json
    } else {
        DocFormat::Yaml
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::PutOptions;
    use crate::storage::memory::MemoryStore;

    const V1: &str = "version: 1\nroles: { admin: { staff: true } }\ncollections: [{ id: c-1 }]\n\
                      shares: [{ id: s-a, email: a@x, scope: [c-1], kind: proxy }]\n";

    #[tokio::test]
    async fn newer_documents_apply_and_sweep_what_they_revoke() {
        let current = CurrentPolicy::new(Policy::parse(V1, DocFormat::Yaml).unwrap());
        let store = MemoryStore::new();
        let key = "renditions/shares/s-a/a-1/x.jpg";
        store.put(key, vec![1], PutOptions::default()).await.unwrap();
        let v2 = V1
            .replace("version: 1", "version: 2")
            .replace("kind: proxy", "kind: proxy, revoked: true");
        let (update, swept) = apply_update(&current, &store, &store, v2.as_bytes()).await.unwrap();
        assert_eq!(update, Update::Applied { from: 1, to: 2 });
        assert_eq!(swept.len(), 1);
        assert!(store.head(key).await.unwrap().is_none());
        let (update, _) = apply_update(&current, &store, &store, V1.as_bytes()).await.unwrap();
        assert_eq!(update, Update::Stale { current: 2, offered: 1 });
        let bad = "version: 9\nusers: { u: { role: nobody } }\n";
        assert!(apply_update(&current, &store, &store, bad.as_bytes()).await.is_err());
        assert_eq!(current.get().version(), 2);
    }

    #[test]
    fn pointers_are_recognised_only_alone() {
        assert_eq!(
            pointer(br#"{"location":"s3://b/k.yaml"}"#).as_deref(),
            Some("s3://b/k.yaml")
        );
        assert_eq!(pointer(br#"{"location":"x","version":3}"#), None);
        assert_eq!(pointer(b"version: 3"), None);
    }
}
