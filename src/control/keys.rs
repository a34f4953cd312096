//! Control keys. Workers hold only public keys, listed in
//! `RENDITION_CONTROL_KEYS` as `ID:BASE64,ID:BASE64` (Ed25519, 32 bytes
//! each). The signer's private key lives in a file of one line,
//! `ID:BASE64` of the 32-byte seed, readable by its owner only.
//!
//! Rotation: list the new key beside the old one on every worker, sign with
//! the new one, then drop the old one from the list. Any listed key is
//! accepted; the message names the key it was signed with.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};

use super::ControlError;

/// The public keys control messages may be signed with, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlKeys {
    keys: BTreeMap<String, VerifyingKey>,
}

/// A signer's private key and the id workers know it by.
pub struct SigningKey {
    pub id: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Key ids are short names: letters, digits, `.`, `_`, `-`.
pub fn check_key_id(id: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    ok.then_some(())
        .ok_or_else(|| format!("key id {id:?} must be 1 to 64 letters, digits, '.', '_' or '-'"))
}

/// `ID:BASE64` into its parts, the base64 decoded to exactly 32 bytes.
fn id_and_bytes(entry: &str) -> Result<(String, [u8; 32]), String> {
    let (id, b64) = entry
        .trim()
        .split_once(':')
        .ok_or_else(|| format!("{entry:?} is not ID:BASE64"))?;
    check_key_id(id)?;
    let bytes = B64.decode(b64.trim()).map_err(|e| format!("key {id}: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("key {id}: {} bytes, an Ed25519 key has 32", b.len()))?;
    Ok((id.to_string(), bytes))
}

impl ControlKeys {
    /// Reads `ID:BASE64,ID:BASE64`; an empty list is allowed (and then every
    /// control message is refused).
    pub fn parse(list: &str) -> Result<ControlKeys, String> {
        let mut keys = BTreeMap::new();
        for entry in list.split(',').filter(|e| !e.trim().is_empty()) {
            let (id, bytes) = id_and_bytes(entry)?;
            let key = VerifyingKey::from_bytes(&bytes).map_err(|e| format!("key {id}: {e}"))?;
            if keys.insert(id.clone(), key).is_some() {
                return Err(format!("key id {id} is listed twice"));
            }
        }
        Ok(ControlKeys { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Checks `signature` (base64) over `message` with the key named `key_id`.
    pub fn verify(&self, key_id: &str, message: &[u8], signature: &str) -> Result<(), ControlError> {
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| ControlError::UnknownKey(key_id.to_string()))?;
        let bad = || ControlError::BadSignature(key_id.to_string());
        let bytes = B64.decode(signature.trim()).map_err(|_| bad())?;
        let signature = Signature::from_slice(&bytes).map_err(|_| bad())?;
        // Strict: no malleable or small-order signatures.
        key.verify_strict(message, &signature).map_err(|_| bad())?;
        // `verify` is implied by `verify_strict`; kept explicit for readers.
        debug_assert!(key.verify(message, &signature).is_ok());
        Ok(())
    }
}

impl SigningKey {
    /// A new key from the operating system's random source.
    pub fn generate(id: &str) -> Result<SigningKey, String> {
        check_key_id(id)?;
        let mut seed = [0u8; 32];
        rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut seed)
            .map_err(|e| format!("no randomness from the operating system: {e}"))?;
        Ok(SigningKey {
            id: id.to_string(),
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// Reads a key file (`ID:BASE64` of the seed).
    pub fn load(path: &Path) -> Result<SigningKey, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (id, seed) = id_and_bytes(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(SigningKey {
            id,
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// Writes the key file, readable and writable by its owner only; never
    /// over an existing file.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        writeln!(file, "{}:{}", self.id, B64.encode(self.key.to_bytes()))
    }

    /// The entry workers list in `RENDITION_CONTROL_KEYS`.
    pub fn public_entry(&self) -> String {
        format!("{}:{}", self.id, B64.encode(self.key.verifying_key().to_bytes()))
    }

    /// The base64 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        B64.encode(self.key.sign(message).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_listed_key_verifies_and_nothing_else_does() {
        let (old, new, stranger) = (
            SigningKey::generate("ops-2026").unwrap(),
            SigningKey::generate("ops-2027").unwrap(),
            SigningKey::generate("ops-2026").unwrap(),
        );
        let keys = ControlKeys::parse(&format!("{}, {}", old.public_entry(), new.public_entry())).unwrap();
        assert_eq!(keys.ids().collect::<Vec<_>>(), ["ops-2026", "ops-2027"]);
        let message = b"rendition.control/v1\0test";
        // Rotation: both keys are accepted while both are listed.
        keys.verify("ops-2026", message, &old.sign(message)).unwrap();
        keys.verify("ops-2027", message, &new.sign(message)).unwrap();
        // The same id with another key pair, another key's signature,
        // another message, an unlisted id, garbage: all refused.
        let refused = [
            keys.verify("ops-2026", message, &stranger.sign(message)),
            keys.verify("ops-2026", message, &new.sign(message)),
            keys.verify("ops-2026", b"another message", &old.sign(message)),
            keys.verify("ops-2028", message, &old.sign(message)),
            keys.verify("ops-2026", message, "not base64!"),
            keys.verify("ops-2026", message, &B64.encode([0u8; 64])),
        ];
        let codes: Vec<&str> = refused
            .iter()
            .map(|r| crate::error::Coded::code(r.as_ref().unwrap_err()).as_str())
            .collect();
        assert_eq!(
            codes,
            [
                "bad_signature",
                "bad_signature",
                "bad_signature",
                "unknown_control_key",
                "bad_signature",
                "bad_signature"
            ]
        );
        // Dropping the old key ends its signatures.
        let rotated = ControlKeys::parse(&new.public_entry()).unwrap();
        assert!(rotated.verify("ops-2026", message, &old.sign(message)).is_err());
    }

    #[test]
    fn key_lists_and_files_are_checked() {
        assert!(ControlKeys::parse("").unwrap().is_empty());
        for bad in [
            "nocolon",
            "a b:AAAA",
            "k:!!!",
            "k:AAAA",
            &format!("k:{}", B64.encode([1u8; 31])),
        ] {
            assert!(ControlKeys::parse(bad).is_err(), "{bad}");
        }
        let key = SigningKey::generate("k").unwrap();
        let twice = format!("{},{}", key.public_entry(), key.public_entry());
        assert!(ControlKeys::parse(&twice).unwrap_err().contains("twice"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        key.save(&path).unwrap();
        assert!(key.save(&path).is_err(), "an existing key file is never overwritten");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let again = SigningKey::load(&path).unwrap();
        assert_eq!(again.public_entry(), key.public_entry());
        assert_eq!(again.sign(b"m"), key.sign(b"m"), "Ed25519 signatures are deterministic");
    }
}
