//! The forensic keys (docs/forensic.md#keys): `RENDITION_FORENSIC_KEYS`, a
//! comma-separated list whose first key marks and every key traces; for a
//! filesystem store without it, one key kept in the store (`.forensic-key`,
//! as the link secret is), so `render`, `trace` and fs workers agree.

use std::path::Path;

use super::{SettingsError, StoreSetting, invalid};
use crate::forensic::{ForensicKey, ForensicKeys, MIN_KEY_BYTES};

const VAR: &str = "RENDITION_FORENSIC_KEYS";

pub fn forensic_keys(configured: Option<&str>, store: &StoreSetting) -> Result<ForensicKeys, SettingsError> {
    let listed: Vec<&str> = configured
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    if let Some(short) = listed.iter().find(|k| k.len() < MIN_KEY_BYTES) {
        return Err(invalid(
            VAR,
            format!(
                "holds a key of {} bytes: at least {MIN_KEY_BYTES} are needed (e.g. `openssl rand -hex 32`)",
                short.len()
            ),
        ));
    }
    if !listed.is_empty() {
        return Ok(ForensicKeys(
            listed.iter().map(|k| ForensicKey::new(k.as_bytes())).collect(),
        ));
    }
    match store {
        StoreSetting::Fs { dir, .. } => kept_in(dir).map(|key| ForensicKeys(vec![key])),
        // Jobs that need a mark fail `invalid_policy` naming the setting.
        StoreSetting::S3 { .. } => Ok(ForensicKeys::default()),
    }
}

/// The key kept in the store's directory, made there the first time.
fn kept_in(dir: &Path) -> Result<ForensicKey, SettingsError> {
    let path = dir.join(".forensic-key");
    let failed = |e: std::io::Error| SettingsError::File {
        path: path.clone(),
        source: e.into(),
    };
    match std::fs::read_to_string(&path) {
        Ok(key) if key.trim().len() >= MIN_KEY_BYTES => return Ok(ForensicKey::new(key.trim().as_bytes())),
        Ok(_) => return Err(failed(std::io::Error::other("holds a key shorter than 32 bytes"))),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e)),
        Err(_) => {}
    }
    let key = hex::encode(rand::random::<[u8; 32]>());
    std::fs::create_dir_all(dir)
        .and_then(|()| super::store::write_private(&path, &key))
        .map_err(failed)?;
    Ok(ForensicKey::new(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(dir: &Path) -> StoreSetting {
        StoreSetting::Fs {
            dir: dir.to_path_buf(),
            originals: dir.join("originals"),
            link_secret: None,
            link_base: "http://x".into(),
        }
    }

    #[test]
    fn short_keys_are_refused_and_a_list_keeps_its_order() {
        let dir = tempfile::tempdir().unwrap();
        assert!(forensic_keys(Some("short"), &fs(dir.path())).is_err());
        let (a, b) = ("a".repeat(32), "b".repeat(40));
        let keys = forensic_keys(Some(&format!("{a}, {b}")), &fs(dir.path())).unwrap();
        assert_eq!(keys.0.len(), 2);
        assert_eq!(keys.0[0].seed(), ForensicKey::new(a.as_bytes()).seed());
        assert!(!dir.path().join(".forensic-key").exists());
    }

    #[test]
    fn an_fs_store_keeps_one_key_for_every_program() {
        let dir = tempfile::tempdir().unwrap();
        let first = forensic_keys(None, &fs(dir.path())).unwrap();
        let again = forensic_keys(None, &fs(dir.path())).unwrap();
        assert_eq!(first.0[0].seed(), again.0[0].seed());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(".forensic-key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "readable by others");
    }
}
