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

    fn signed(&self, body: PolicyBody) -> Vec<u8> {
        serde_json::to_vec(&SignedPolicyUpdate::sign(&self.key, &body)).unwrap()
    }

    fn inline(&self, text: &str) -> Vec<u8> {
        self.signed(PolicyBody::Inline(text.into()))
    }

    async fn put(&self, key: &str, text: &str) {
        let bytes = text.as_bytes().to_vec();
        self.store.put(key, bytes, PutOptions::default()).await.unwrap();
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

fn standing(version: u64) -> Standing {
    Standing { epoch: 0, version }
}

#[tokio::test]
async fn signed_newer_documents_apply_and_sweep_what_they_revoke() {
    let rig = Rig::new(None);
    let key = "renditions/shares/s-a/a-1/x.jpg";
    rig.put(key, "x").await;
    let v2 = v(2).replace("kind: proxy", "kind: proxy, revoked: true");
    let applied = rig.apply(&rig.inline(&v2)).await.unwrap();
    assert_eq!(
        (applied.from, applied.to, applied.key_id.as_str()),
        (standing(1), standing(2), "ops")
    );
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
    let forged = SignedPolicyUpdate::sign(&forger, &PolicyBody::Inline(everyone_staff.clone()));
    let mut tampered: serde_json::Value = serde_json::from_slice(&rig.inline(&v(3))).unwrap();
    tampered["document"] = everyone_staff.clone().into();
    let frozen = v(u64::MAX);
    rig.put("policies/prod/v3.yaml", &everyone_staff).await;
    for (message, reason) in [
        (everyone_staff.clone().into_bytes(), "unsigned_control"),
        (frozen.into_bytes(), "unsigned_control"),
        (
            br#"{"location": "s3://policies/prod/v3.yaml"}"#.to_vec(),
            "unsigned_control",
        ),
        (serde_json::to_vec(&forged).unwrap(), "bad_signature"),
        (serde_json::to_vec(&tampered).unwrap(), "bad_signature"),
    ] {
        assert_eq!(rig.refused(&message).await, reason);
    }
    let other = Rig::new(None);
    assert_eq!(rig.refused(&other.inline(&v(3))).await, "bad_signature");
}

fn at(location: &str, text: &str, version: u64) -> PolicyBody {
    PolicyBody::At {
        location: location.into(),
        sha256: Sha256::digest(text.as_bytes()).into(),
        standing: standing(version),
    }
}

#[tokio::test]
async fn locations_are_read_only_inside_the_configured_place_with_the_signed_digest() {
    let rig = Rig::new(Some("s3://policies/prod"));
    let text = v(4);
    rig.put("policies/prod/v4.yaml", &text).await;
    rig.put("originals/v4.yaml", &text).await;
    let outside = rig.signed(at("s3://originals/v4.yaml", &text, 4));
    assert_eq!(rig.refused(&outside).await, "policy_location_refused");
    let missing = rig.signed(at("s3://policies/prod/missing.yaml", &text, 4));
    assert_eq!(rig.refused(&missing).await, "policy_unreadable");
    // The object behind the signed location swapped for another document.
    let swapped = text.replace(
        "admin: { staff: true }",
        "admin: { staff: true }, guest: { staff: true }",
    );
    rig.put("policies/prod/v4.yaml", &swapped).await;
    let message = rig.signed(at("s3://policies/prod/v4.yaml", &text, 4));
    assert_eq!(rig.refused(&message).await, "policy_digest_mismatch");
    rig.put("policies/prod/v4.yaml", &text).await;
    assert_eq!(rig.apply(&message).await.unwrap().to, standing(4));
    // The same message again is refused before anything is read: with the
    // object gone, a fetch would say `policy_unreadable`.
    std::fs::remove_file(rig.store.root().join("policies/prod/v4.yaml")).unwrap();
    assert_eq!(rig.refused(&message).await, "stale_policy");
    // A document that does not stand where its signed message says.
    rig.put("policies/prod/v6.yaml", &v(6)).await;
    let mislabelled = rig.signed(at("s3://policies/prod/v6.yaml", &v(6), 5));
    assert_eq!(rig.refused(&mislabelled).await, "policy_digest_mismatch");
    // Without RENDITION_POLICY_LOCATIONS no location is read.
    let inline_only = Rig::new(None);
    let anywhere = inline_only.signed(at("s3://policies/prod/v6.yaml", &v(6), 6));
    assert_eq!(inline_only.refused(&anywhere).await, "policy_location_refused");
}

#[tokio::test]
async fn a_directory_location_refuses_fifos_links_and_large_files_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::new(Some(dir.path().to_str().unwrap()));
    let fifo = dir.path().join("fifo.yaml");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link.yaml")).unwrap();
    let big = String::from_utf8(vec![b'#'; MAX_POLICY_BYTES as usize + 1]).unwrap();
    std::fs::write(dir.path().join("big.yaml"), &big).unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    for (name, text) in [("fifo.yaml", ""), ("link.yaml", ""), ("big.yaml", big.as_str())] {
        let message = rig.signed(at(&path(name), text, 5));
        let refused = tokio::time::timeout(Duration::from_secs(20), rig.refused(&message)).await;
        assert_eq!(refused.expect(name), "policy_unreadable", "{name}");
    }
    std::fs::write(dir.path().join("v5.yaml"), v(5)).unwrap();
    let applied = rig.apply(&rig.signed(at(&path("v5.yaml"), &v(5), 5))).await.unwrap();
    assert_eq!(applied.to, standing(5));
}

#[tokio::test]
async fn a_runaway_version_is_undone_by_the_next_epoch_for_good() {
    let rig = Rig::new(None);
    let runaway = rig.inline(&v(u64::MAX));
    rig.apply(&runaway).await.unwrap();
    assert_eq!(rig.refused(&rig.inline(&v(6))).await, "stale_policy");
    let next_epoch = rig.inline(&v(6).replace("version: 6", "version: 6\nepoch: 1"));
    assert_eq!(
        rig.apply(&next_epoch).await.unwrap().to,
        Standing { epoch: 1, version: 6 }
    );
    assert_eq!(rig.refused(&runaway).await, "stale_policy", "the runaway replayed");
    assert_eq!(rig.refused(&next_epoch).await, "stale_policy", "the reset replayed");
    let skipped = rig.inline(&v(1).replace("version: 1", "version: 1\nepoch: 3"));
    assert_eq!(rig.refused(&skipped).await, "stale_policy", "an epoch skipped");
}
