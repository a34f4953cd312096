//! What exactly is signed.
//!
//! A **policy update** on the policy exchange is one JSON object:
//!
//! ```json
//! {"schema": "rendition.policy-update/v1", "key_id": "ops-2026",
//!  "document": "version: 8\nroles: …",          // the document itself, or
//!  "location": "s3://policies/v8.yaml", "sha256": "…", // where it is, its digest,
//!  "epoch": 0, "version": 8,                     // and where it stands
//!  "signature": "base64 Ed25519"}
//! ```
//!
//! The signature covers `rendition.control/v1 NUL policy NUL` followed by
//! `document NUL {the document's exact bytes}` or `location NUL {epoch} NUL
//! {version} NUL {sha256 hex} NUL {location}`: the bytes that are applied,
//! or the digest they must have (swapping the object behind a location
//! fails) and the standing the document must have (so a replayed location
//! is refused before anything is fetched). A **revoke** carries `key_id` and `signature` beside `share`;
//! its signature covers `rendition.control/v1 NUL revoke NUL {share}`.
//! The domain prefix keeps one kind of signature from passing as another.

use serde::{Deserialize, Serialize};

use super::{ControlError, ControlKeys, SigningKey};
use crate::policy::Standing;

/// The `schema` of a signed policy update.
pub const POLICY_UPDATE_SCHEMA: &str = "rendition.policy-update/v1";
const DOMAIN: &[u8] = b"rendition.control/v1\0";
/// What a revoke's signature covers before the share id.
pub const REVOKE_DOMAIN: &[u8] = b"rendition.control/v1\0revoke\0";

/// A policy update as it travels (module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedPolicyUpdate {
    pub schema: String,
    pub key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// With a location: the document's epoch and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub signature: String,
}

/// What a verified update brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyBody {
    /// The document, exactly as signed.
    Inline(String),
    /// Where the document is, the SHA-256 it must have, and where it stands.
    At {
        location: String,
        sha256: [u8; 32],
        standing: Standing,
    },
}

/// A policy update whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedUpdate {
    pub key_id: String,
    pub body: PolicyBody,
}

fn policy_bytes(body: &PolicyBody) -> Vec<u8> {
    let mut bytes = [DOMAIN, b"policy\0"].concat();
    match body {
        PolicyBody::Inline(document) => bytes.extend([b"document\0".as_slice(), document.as_bytes()].concat()),
        PolicyBody::At {
            location,
            sha256,
            standing,
        } => {
            // The location last: the fields before it hold no NUL.
            let head = format!(
                "location\0{}\0{}\0{}\0",
                standing.epoch,
                standing.version,
                hex::encode(sha256)
            );
            bytes.extend([head.as_bytes(), location.as_bytes()].concat())
        }
    }
    bytes
}

/// The bytes a revoke of `share` is signed over.
pub fn revoke_bytes(share: &str) -> Vec<u8> {
    [REVOKE_DOMAIN, share.as_bytes()].concat()
}

impl SignedPolicyUpdate {
    pub fn sign(key: &SigningKey, body: &PolicyBody) -> SignedPolicyUpdate {
        let unsigned = SignedPolicyUpdate {
            schema: POLICY_UPDATE_SCHEMA.into(),
            key_id: key.id.clone(),
            document: None,
            location: None,
            sha256: None,
            epoch: None,
            version: None,
            signature: key.sign(&policy_bytes(body)),
        };
        match body {
            PolicyBody::Inline(doc) => SignedPolicyUpdate {
                document: Some(doc.clone()),
                ..unsigned
            },
            PolicyBody::At {
                location,
                sha256,
                standing,
            } => SignedPolicyUpdate {
                location: Some(location.clone()),
                sha256: Some(hex::encode(sha256)),
                epoch: Some(standing.epoch),
                version: Some(standing.version),
                ..unsigned
            },
        }
    }

    /// What the message carries, checked for shape (not yet for signature).
    fn body(&self) -> Result<PolicyBody, ControlError> {
        let malformed = |m: &str| ControlError::Malformed(m.to_string());
        let located = (&self.location, &self.sha256, self.version);
        match (&self.document, located) {
            (Some(doc), (None, None, None)) if self.epoch.is_none() => Ok(PolicyBody::Inline(doc.clone())),
            (None, (Some(location), Some(digest), Some(version))) => {
                let mut sha256 = [0u8; 32];
                hex::decode_to_slice(digest, &mut sha256).map_err(|_| malformed("sha256 must be 64 hex digits"))?;
                Ok(PolicyBody::At {
                    location: location.clone(),
                    sha256,
                    standing: Standing {
                        epoch: self.epoch.unwrap_or(0),
                        version,
                    },
                })
            }
            (None, (Some(_), _, _)) => Err(malformed("a location needs the document's sha256 and version")),
            _ => Err(malformed(
                "expected either document, or location with sha256 and version",
            )),
        }
    }
}

impl ControlKeys {
    /// Reads and verifies a policy update message. A bare document or a
    /// bare `{"location": …}` (the unsigned forms) is `Unsigned`.
    pub fn verify_update(&self, message: &[u8]) -> Result<VerifiedUpdate, ControlError> {
        let value: serde_json::Value = serde_json::from_slice(message).map_err(|_| {
            ControlError::Unsigned("the message is not a signed update (a bare policy document?)".into())
        })?;
        if value.get("schema").and_then(|s| s.as_str()) != Some(POLICY_UPDATE_SCHEMA) {
            return Err(ControlError::Unsigned(format!(
                "the message has no schema {POLICY_UPDATE_SCHEMA:?} (a bare document or location?)"
            )));
        }
        let update: SignedPolicyUpdate =
            serde_json::from_value(value).map_err(|e| ControlError::Malformed(e.to_string()))?;
        let body = update.body()?;
        self.verify(&update.key_id, &policy_bytes(&body), &update.signature)?;
        Ok(VerifiedUpdate {
            key_id: update.key_id,
            body,
        })
    }

    /// Verifies a revoke's signature over its share id.
    pub fn verify_revoke(
        &self,
        share: &str,
        key_id: Option<&str>,
        signature: Option<&str>,
    ) -> Result<(), ControlError> {
        match (key_id, signature) {
            (Some(key_id), Some(signature)) => self.verify(key_id, &revoke_bytes(share), signature),
            _ => Err(ControlError::Unsigned("a revoke needs key_id and signature".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Coded;

    fn keys() -> (SigningKey, ControlKeys) {
        let key = SigningKey::generate("ops").unwrap();
        let keys = ControlKeys::parse(&key.public_entry()).unwrap();
        (key, keys)
    }

    fn code(r: Result<VerifiedUpdate, ControlError>) -> &'static str {
        r.unwrap_err().code().as_str()
    }

    #[test]
    fn signed_updates_verify_and_every_alteration_is_refused() {
        let (key, keys) = keys();
        let doc = PolicyBody::Inline("version: 8\nroles: { admin: { staff: true } }\n".into());
        let signed = SignedPolicyUpdate::sign(&key, &doc);
        let bytes = serde_json::to_vec(&signed).unwrap();
        let verified = keys.verify_update(&bytes).unwrap();
        assert_eq!(verified.body, doc.clone());

        let tampered = SignedPolicyUpdate {
            document: Some("version: 8\nroles: { guest: { staff: true } }\n".into()),
            ..signed.clone()
        };
        let wrong_key = SignedPolicyUpdate::sign(&SigningKey::generate("ops").unwrap(), &doc);
        let unknown = SignedPolicyUpdate {
            key_id: "other".into(),
            ..signed.clone()
        };
        for (altered, expected) in [
            (tampered, "bad_signature"),
            (wrong_key, "bad_signature"),
            (unknown, "unknown_control_key"),
        ] {
            assert_eq!(
                code(keys.verify_update(&serde_json::to_vec(&altered).unwrap())),
                expected
            );
        }
        // The unsigned forms of before.
        assert_eq!(code(keys.verify_update(b"version: 9\nroles: {}\n")), "unsigned_control");
        assert_eq!(code(keys.verify_update(br#"{"version": 9}"#)), "unsigned_control");
        assert_eq!(
            code(keys.verify_update(br#"{"location": "s3://p/v.yaml"}"#)),
            "unsigned_control"
        );
        // No keys listed: nothing verifies.
        assert_eq!(
            code(ControlKeys::default().verify_update(&bytes)),
            "unknown_control_key"
        );
    }

    #[test]
    fn a_location_update_signs_the_digest_and_only_the_location() {
        let (key, keys) = keys();
        let at = PolicyBody::At {
            location: "s3://policies/v8.yaml".into(),
            sha256: [7; 32],
            standing: Standing { epoch: 1, version: 8 },
        };
        let signed = SignedPolicyUpdate::sign(&key, &at);
        let verified = keys.verify_update(&serde_json::to_vec(&signed).unwrap()).unwrap();
        assert_eq!(verified.body, at);
        let older = SignedPolicyUpdate {
            version: Some(7),
            ..signed.clone()
        };
        let earlier_epoch = SignedPolicyUpdate {
            epoch: None,
            ..signed.clone()
        };
        let moved = SignedPolicyUpdate {
            location: Some("s3://policies/evil.yaml".into()),
            ..signed.clone()
        };
        let other_digest = SignedPolicyUpdate {
            sha256: Some(hex::encode([8u8; 32])),
            ..signed.clone()
        };
        let both = SignedPolicyUpdate {
            document: Some("version: 1\n".into()),
            ..signed.clone()
        };
        let no_digest = SignedPolicyUpdate {
            sha256: None,
            ..signed.clone()
        };
        assert_eq!(
            code(keys.verify_update(&serde_json::to_vec(&moved).unwrap())),
            "bad_signature"
        );
        assert_eq!(
            code(keys.verify_update(&serde_json::to_vec(&other_digest).unwrap())),
            "bad_signature"
        );
        for altered in [&older, &earlier_epoch] {
            assert_eq!(
                code(keys.verify_update(&serde_json::to_vec(altered).unwrap())),
                "bad_signature"
            );
        }
        assert_eq!(
            code(keys.verify_update(&serde_json::to_vec(&both).unwrap())),
            "invalid_control"
        );
        assert_eq!(
            code(keys.verify_update(&serde_json::to_vec(&no_digest).unwrap())),
            "invalid_control"
        );
    }

    #[test]
    fn a_revoke_signature_is_for_one_share_and_not_a_policy() {
        let (key, keys) = keys();
        let signature = key.sign(&revoke_bytes("s-7"));
        keys.verify_revoke("s-7", Some("ops"), Some(&signature)).unwrap();
        assert!(keys.verify_revoke("s-8", Some("ops"), Some(&signature)).is_err());
        assert!(keys.verify_revoke("s-7", None, None).is_err());
        // A policy signature over the same words is not a revoke's.
        let policy = key.sign(&policy_bytes(&PolicyBody::Inline("s-7".into())));
        assert!(keys.verify_revoke("s-7", Some("ops"), Some(&policy)).is_err());
    }
}
