//! What exactly is signed.
//!
//! A **policy update** on the policy exchange is one JSON object:
//!
//! ```json
//! {"schema": "rendition.policy-update/v1", "key_id": "ops-2026",
//!  "document": "version: 8\nroles: …",          // the document itself, or
//!  "location": "s3://policies/v8.yaml", "sha256": "…", // where it is, and its digest
//!  "replaces": 7,                                 // optional: the version it must replace
//!  "signature": "base64 Ed25519"}
//! ```
//!
//! The signature covers `rendition.control/v1 NUL policy NUL {replaces|-}
//! NUL` followed by `document NUL {the document's exact bytes}` or
//! `location NUL {location} NUL {sha256 hex}`: the bytes that are applied,
//! or the digest they must have, so swapping the object behind a location
//! fails. A **revoke** carries `key_id` and `signature` beside `share`;
//! its signature covers `rendition.control/v1 NUL revoke NUL {share}`.
//! The domain prefix keeps one kind of signature from passing as another.

use serde::{Deserialize, Serialize};

use super::{ControlError, ControlKeys, SigningKey};

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
    pub replaces: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub signature: String,
}

/// What a verified update brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyBody {
    /// The document, exactly as signed.
    Inline(String),
    /// Where the document is, and the SHA-256 it must have.
    At { location: String, sha256: [u8; 32] },
}

/// A policy update whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedUpdate {
    pub key_id: String,
    /// When set, the update applies only while this version is in force
    /// (and may then go lower: the operator's reset of a runaway version).
    pub replaces: Option<u64>,
    pub body: PolicyBody,
}

fn policy_bytes(replaces: Option<u64>, body: &PolicyBody) -> Vec<u8> {
    let replaces = replaces.map_or("-".to_string(), |v| v.to_string());
    let mut bytes = [DOMAIN, b"policy\0", replaces.as_bytes(), b"\0"].concat();
    match body {
        PolicyBody::Inline(document) => bytes.extend([b"document\0".as_slice(), document.as_bytes()].concat()),
        PolicyBody::At { location, sha256 } => bytes.extend(
            [
                b"location\0",
                location.as_bytes(),
                b"\0",
                hex::encode(sha256).as_bytes(),
            ]
            .concat(),
        ),
    }
    bytes
}

/// The bytes a revoke of `share` is signed over.
pub fn revoke_bytes(share: &str) -> Vec<u8> {
    [REVOKE_DOMAIN, share.as_bytes()].concat()
}

impl SignedPolicyUpdate {
    pub fn sign(key: &SigningKey, replaces: Option<u64>, body: &PolicyBody) -> SignedPolicyUpdate {
        let (document, location, sha256) = match body {
            PolicyBody::Inline(doc) => (Some(doc.clone()), None, None),
            PolicyBody::At { location, sha256 } => (None, Some(location.clone()), Some(hex::encode(sha256))),
        };
        SignedPolicyUpdate {
            schema: POLICY_UPDATE_SCHEMA.into(),
            key_id: key.id.clone(),
            replaces,
            document,
            location,
            sha256,
            signature: key.sign(&policy_bytes(replaces, body)),
        }
    }

    /// What the message carries, checked for shape (not yet for signature).
    fn body(&self) -> Result<PolicyBody, ControlError> {
        let malformed = |m: &str| ControlError::Malformed(m.to_string());
        match (&self.document, &self.location, &self.sha256) {
            (Some(doc), None, None) => Ok(PolicyBody::Inline(doc.clone())),
            (None, Some(location), Some(digest)) => {
                let mut sha256 = [0u8; 32];
                hex::decode_to_slice(digest, &mut sha256).map_err(|_| malformed("sha256 must be 64 hex digits"))?;
                Ok(PolicyBody::At {
                    location: location.clone(),
                    sha256,
                })
            }
            (None, Some(_), None) => Err(malformed("a location needs the document's sha256")),
            _ => Err(malformed("expected either document, or location with sha256")),
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
        self.verify(&update.key_id, &policy_bytes(update.replaces, &body), &update.signature)?;
        Ok(VerifiedUpdate {
            key_id: update.key_id,
            replaces: update.replaces,
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
        let signed = SignedPolicyUpdate::sign(&key, None, &doc);
        let bytes = serde_json::to_vec(&signed).unwrap();
        let verified = keys.verify_update(&bytes).unwrap();
        assert_eq!((verified.body, verified.replaces), (doc.clone(), None));

        let tampered = SignedPolicyUpdate {
            document: Some("version: 8\nroles: { guest: { staff: true } }\n".into()),
            ..signed.clone()
        };
        let replaces_added = SignedPolicyUpdate {
            replaces: Some(99),
            ..signed.clone()
        };
        let wrong_key = SignedPolicyUpdate::sign(&SigningKey::generate("ops").unwrap(), None, &doc);
        let unknown = SignedPolicyUpdate {
            key_id: "other".into(),
            ..signed.clone()
        };
        for (altered, expected) in [
            (tampered, "bad_signature"),
            (replaces_added, "bad_signature"),
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
        };
        let signed = SignedPolicyUpdate::sign(&key, Some(7), &at);
        let verified = keys.verify_update(&serde_json::to_vec(&signed).unwrap()).unwrap();
        assert_eq!((verified.body, verified.replaces), (at, Some(7)));
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
        let policy = key.sign(&policy_bytes(None, &PolicyBody::Inline("s-7".into())));
        assert!(keys.verify_revoke("s-7", Some("ops"), Some(&policy)).is_err());
    }
}
