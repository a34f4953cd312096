//! Signed updates against an in-memory store and a directory of documents.

use super::*;
use crate::control::{ControlKeys, PolicyLocations, SignedPolicyUpdate, SigningKey};
use crate::storage::PutOptions;

const V1: &str = "version: 1\nroles: { admin: { staff: true } }\ncollections: [{ id: c-1 }]\n\
                  shares: [{ id: s-a, email: a@x, scope: [c-1], kind: proxy }]\n";

struct Rig {
    key: SigningKey,
    control: ControlPlane,
    current: CurrentPolicy,
    /// A filesystem store: its buckets are its directories, so a bucket
    /// location reads what `store.put("policies/…")` wrote.
    store: FsStore,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new(locations: Option<&str>) -> Rig {
        let key = SigningKey::generate("ops").unwrap();
        let control = ControlPlane {
            keys: ControlKeys::parse(&key.public_entry()).unwrap(),
            locations: locations.map(|l| PolicyLocations::parse(l).unwrap()),
        };
        let current = CurrentPolicy::new(Policy::parse(V1, DocFormat::Yaml).unwrap());
        let dir = tempfile::tempdir().unwrap();
        Rig {
            key,
            control,
            current,
            store: FsStore::new(dir.path(), None),
            _dir: dir,
        }
    }

    fn signed(&self, replaces: Option<u64>, body: PolicyBody) -> Vec<u8> {
        serde_json::to_vec(&SignedPolicyUpdate::sign(&self.key, replaces, &body)).unwrap()
    }

    fn inline(&self, text: &str) -> Vec<u8> {
        self.signed(None, PolicyBody::Inline(text.into()))
    }

    async fn apply(&self, message: &[u8]) -> Result<Applied, UpdateError> {
        apply_update(&self.current, &self.control, &self.store, &self.store, message).await
    }

    async fn refused(&self, message: &[u8]) -> &'static str {
        let before = self.current.get().version();
        let reason = self.apply(message).await.unwrap_err().reason();
        assert_eq!(
            self.current.get().version(),
            before,
            "a refused update changed the policy ({reason})"
        );
        reason
    }
}

fn v(n: u64) -> String {
    V1.replace("version: 1", &format!("version: {n}"))
}

#[tokio::test]
async fn signed_newer_documents_apply_and_sweep_what_they_revoke() {
    let rig = Rig::new(None);
    let key = "renditions/shares/s-a/a-1/x.jpg";
    rig.store.put(key, vec![1], PutOptions::default()).await.unwrap();
    let v2 = v(2).replace("kind: proxy", "kind: proxy, revoked: true");
    let applied = rig.apply(&rig.inline(&v2)).await.unwrap();
    assert_eq!((applied.from, applied.to, applied.key_id.as_str()), (1, 2, "ops"));
    assert_eq!(applied.swept.len(), 1);
    assert!(rig.store.head(key).await.unwrap().is_none());
    // The same signed message again, and an older one: replays.
    assert_eq!(rig.refused(&rig.inline(&v2)).await, "stale_policy");
    assert_eq!(rig.refused(&rig.inline(V1)).await, "stale_policy");
    assert_eq!(
        rig.refused(&rig.inline("version: 9\nusers: { u: { role: nobody } }\n"))
            .await,
        "invalid_policy"
    );
}

#[tokio::test]
async fn unsigned_forged_and_foreign_updates_are_refused() {
    let rig = Rig::new(Some("s3://policies/prod"));
    let everyone_staff = v(3).replace(
        "admin: { staff: true }",
        "admin: { staff: true }, guest: { staff: true }",
    );
    let forger = SigningKey::generate("ops").unwrap();
    let forged = serde_json::to_vec(&SignedPolicyUpdate::sign(
        &forger,
        None,
        &PolicyBody::Inline(everyone_staff.clone()),
    ))
    .unwrap();
    let mut tampered: serde_json::Value = serde_json::from_slice(&rig.inline(&v(3))).unwrap();
    tampered["document"] = everyone_staff.clone().into();
    let frozen = v(u64::MAX);
    rig.store
        .put(
            "policies/prod/v3.yaml",
            everyone_staff.clone().into_bytes(),
            PutOptions::default(),
        )
        .await
        .unwrap();
    for (message, reason) in [
        (everyone_staff.clone().into_bytes(), "unsigned_control"),
        (frozen.into_bytes(), "unsigned_control"),
        (
            br#"{"location": "s3://policies/prod/v3.yaml"}"#.to_vec(),
            "unsigned_control",
        ),
        (forged, "bad_signature"),
        (serde_json::to_vec(&tampered).unwrap(), "bad_signature"),
    ] {
        assert_eq!(rig.refused(&message).await, reason);
    }
    let other = Rig::new(None);
    assert_eq!(rig.refused(&other.inline(&v(3))).await, "bad_signature");
}

#[tokio::test]
async fn locations_are_read_only_inside_the_configured_place_with_the_signed_digest() {
    let rig = Rig::new(Some("s3://policies/prod"));
    let text = v(4);
    let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
    rig.store
        .put(
            "policies/prod/v4.yaml",
            text.clone().into_bytes(),
            PutOptions::default(),
        )
        .await
        .unwrap();
    rig.store
        .put("originals/v4.yaml", text.clone().into_bytes(), PutOptions::default())
        .await
        .unwrap();
    let at = |location: &str| PolicyBody::At {
        location: location.into(),
        sha256: digest,
    };
    assert_eq!(
        rig.refused(&rig.signed(None, at("s3://originals/v4.yaml"))).await,
        "policy_location_refused"
    );
    assert_eq!(
        rig.refused(&rig.signed(None, at("s3://policies/prod/missing.yaml")))
            .await,
        "policy_unreadable"
    );
    // The object behind the signed location swapped for another document.
    let swapped = v(4).replace(
        "admin: { staff: true }",
        "admin: { staff: true }, guest: { staff: true }",
    );
    rig.store
        .put("policies/prod/v4.yaml", swapped.into_bytes(), PutOptions::default())
        .await
        .unwrap();
    let message = rig.signed(None, at("s3://policies/prod/v4.yaml"));
    assert_eq!(rig.refused(&message).await, "policy_digest_mismatch");
    rig.store
        .put("policies/prod/v4.yaml", text.into_bytes(), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(rig.apply(&message).await.unwrap().to, 4);
    // Without RENDITION_POLICY_LOCATIONS no location is read.
    let inline_only = Rig::new(None);
    assert_eq!(
        inline_only
            .refused(&inline_only.signed(None, at("s3://policies/prod/v4.yaml")))
            .await,
        "policy_location_refused"
    );
}

#[tokio::test]
async fn a_directory_location_refuses_fifos_links_and_large_files_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::new(Some(dir.path().to_str().unwrap()));
    let fifo = dir.path().join("fifo.yaml");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link.yaml")).unwrap();
    let big = vec![b'#'; MAX_POLICY_BYTES as usize + 1];
    std::fs::write(dir.path().join("big.yaml"), &big).unwrap();
    for (name, digest) in [
        ("fifo.yaml", [0u8; 32]),
        ("link.yaml", [0u8; 32]),
        ("big.yaml", Sha256::digest(&big).into()),
    ] {
        let location = dir.path().join(name).to_str().unwrap().to_string();
        let message = rig.signed(
            None,
            PolicyBody::At {
                location,
                sha256: digest,
            },
        );
        let refused = tokio::time::timeout(Duration::from_secs(20), rig.refused(&message)).await;
        assert_eq!(refused.expect(name), "policy_unreadable", "{name}");
    }
    let text = v(5);
    std::fs::write(dir.path().join("v5.yaml"), &text).unwrap();
    let location = dir.path().join("v5.yaml").to_str().unwrap().to_string();
    let sha256 = Sha256::digest(text.as_bytes()).into();
    assert_eq!(
        rig.apply(&rig.signed(None, PolicyBody::At { location, sha256 }))
            .await
            .unwrap()
            .to,
        5
    );
}

#[tokio::test]
async fn a_runaway_version_is_reset_by_a_signed_replacement_once() {
    let rig = Rig::new(None);
    rig.apply(&rig.inline(&v(u64::MAX))).await.unwrap();
    assert_eq!(rig.refused(&rig.inline(&v(6))).await, "stale_policy");
    let reset = rig.signed(Some(u64::MAX), PolicyBody::Inline(v(6)));
    assert_eq!(rig.apply(&reset).await.unwrap().to, 6);
    assert_eq!(rig.refused(&reset).await, "stale_policy", "a replayed reset");
    assert_eq!(rig.apply(&rig.inline(&v(7))).await.unwrap().to, 7);
}
