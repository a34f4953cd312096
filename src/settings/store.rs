//! Where the stores are: the filesystem store's directories and link
//! secret, or the S3 buckets; where publish jobs may copy to. Sources must
//! never be able to name what the store keeps for itself (docs/security.md,
//! "Sources are only originals").

use std::path::{Path, PathBuf};

use super::{RawSettings, SettingsError, StoreSetting, invalid};
use crate::destinations::PublishDestinations;
use crate::storage::fs::PUBLISHED_DIR;
use crate::storage::link::LinkSigner;
use crate::storage::s3::{DEFAULT_MULTIPART_THRESHOLD, S3Config, StaticKeys};

/// The filesystem store's originals, unless `render --originals` says:
/// a directory of its own inside the store's, beside (never above) the
/// renditions, results, audit trail and link secret.
pub const ORIGINALS_DIR: &str = "originals";

/// The shortest link secret accepted: 256 bits, as HMAC-SHA256 wants.
pub const MIN_LINK_SECRET_BYTES: usize = 32;

/// What the store keeps at the top of its directory (layout.rs).
const STORE_OWN: [&str; 5] = ["renditions", "results", "audit", "revocations", PUBLISHED_DIR];

/// The configured link secret, refused when shorter than
/// [`MIN_LINK_SECRET_BYTES`]; `None` when none is configured.
fn checked_secret(configured: Option<&str>) -> Result<Option<String>, SettingsError> {
    match configured.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(secret) if secret.len() < MIN_LINK_SECRET_BYTES => bail!(
            "RENDITION_LINK_SECRET",
            "is {} bytes: at least {MIN_LINK_SECRET_BYTES} are needed (e.g. `openssl rand -hex 32`)",
            secret.len()
        ),
        Some(secret) => Ok(Some(secret.to_string())),
    }
}

/// The originals directory must not hold the store (sources could name
/// the link secret, results, audit records and every rendition) nor be
/// one of the store's own directories.
fn check_originals_apart(store: &Path, originals: &Path) -> Result<(), SettingsError> {
    let (store, originals) = (absolute(store), absolute(originals));
    if store.starts_with(&originals) {
        bail!(
            "--originals",
            "{} holds the store's directory {}: sources could name its link secret, results and renditions",
            originals.display(),
            store.display()
        );
    }
    if let Ok(inside) = originals.strip_prefix(&store)
        && let Some(first) = inside.components().next()
        && STORE_OWN.iter().any(|own| first.as_os_str() == *own)
    {
        bail!(
            "--originals",
            "{} is one of the store's own directories",
            originals.display()
        );
    }
    Ok(())
}

/// `path` made absolute and resolved as far as it exists (symbolic links
/// included), so two names of one directory compare equal.
fn absolute(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    while existing.canonicalize().is_err() {
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
            return path.clone();
        };
        rest.push(name.to_owned());
        existing = parent;
    }
    let mut resolved = existing.canonicalize().unwrap_or_else(|_| existing.to_path_buf());
    resolved.extend(rest.iter().rev());
    resolved
}

/// The publish allow-list; the stores' own buckets are never in it.
pub(super) fn publish_destinations(
    setting: Option<&str>,
    store: &StoreSetting,
) -> Result<PublishDestinations, SettingsError> {
    let never: Vec<&str> = match store {
        // Published copies live under their own root there.
        StoreSetting::Fs { .. } => Vec::new(),
        StoreSetting::S3 {
            originals, renditions, ..
        } => vec![originals, renditions],
    };
    PublishDestinations::parse(setting.unwrap_or(""), &never).map_err(|e| {
        invalid(
            crate::destinations::SETTING,
            format!("has {:?}, which {}", e.entry, e.why),
        )
    })
}

pub(super) fn store_setting(raw: &RawSettings) -> Result<StoreSetting, SettingsError> {
    let store = raw.store.as_deref().unwrap_or("fs:./rendition-data");
    if store != "s3" {
        let dir = store_dir(store)?;
        let originals = raw.originals_dir.clone().unwrap_or_else(|| dir.join(ORIGINALS_DIR));
        check_originals_apart(&dir, &originals)?;
        return Ok(StoreSetting::Fs {
            originals,
            dir,
            link_secret: checked_secret(raw.link_secret.as_deref())?,
            link_base: raw.link_base.clone().unwrap_or_else(|| "http://127.0.0.1:8080".into()),
        });
    }
    // Keys in the settings win; without them, aws-config's chain
    // (`AWS_*` variables, profiles, web identity, ECS, instance metadata).
    let keys = match (raw.s3_access_key.clone(), raw.s3_secret_key.clone()) {
        (Some(access_key), Some(secret_key)) => Some(StaticKeys {
            access_key,
            secret_key,
            session_token: None,
        }),
        (None, None) => None,
        _ => bail!(
            "RENDITION_S3_ACCESS_KEY",
            "and RENDITION_S3_SECRET_KEY go together: set both, or neither to use the AWS credential chain"
        ),
    };
    let endpoint = raw.s3_endpoint.clone();
    let config = S3Config {
        path_style: raw.s3_path_style.unwrap_or(endpoint.is_some()),
        endpoint,
        region: raw.s3_region.clone(),
        keys,
        multipart_threshold: raw.s3_multipart_threshold.unwrap_or(DEFAULT_MULTIPART_THRESHOLD),
    };
    let originals = raw.originals_bucket.clone().unwrap_or_else(|| "originals".into());
    let renditions = raw.renditions_bucket.clone().unwrap_or_else(|| "renditions".into());
    if originals == renditions {
        bail!(
            "RENDITION_ORIGINALS_BUCKET",
            "must not be the renditions bucket: sources could then name the audit trail, remembered results and \
             other assets' renditions"
        );
    }
    Ok(StoreSetting::S3 {
        config,
        originals,
        renditions,
    })
}

/// `fs:DIR` or a plain directory.
fn store_dir(store: &str) -> Result<PathBuf, SettingsError> {
    Ok(PathBuf::from(store.strip_prefix("fs:").unwrap_or(store)))
}

/// The link secret of a filesystem store: the configured one, else the one
/// kept in the store (`DIR/.link-secret`), else a new one saved there, so
/// that `render`, `serve` and fs workers over the same store agree.
pub fn link_signer(dir: &Path, base_url: &str, configured: Option<&str>) -> Result<LinkSigner, SettingsError> {
    if let Some(secret) = checked_secret(configured)? {
        return Ok(LinkSigner::new(secret.as_str(), base_url));
    }
    let path = dir.join(".link-secret");
    if let Ok(secret) = std::fs::read_to_string(&path) {
        let secret = checked_secret(Some(secret.trim())).map_err(|e| SettingsError::File {
            path: path.clone(),
            source: e.to_string().into(),
        })?;
        return Ok(LinkSigner::new(secret.as_deref().unwrap_or_default(), base_url));
    }
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let saved = std::fs::create_dir_all(dir).and_then(|()| write_private(&path, &secret));
    saved.map_err(|e| SettingsError::File {
        path: path.clone(),
        source: e.into(),
    })?;
    tracing::warn!(path = %path.display(), "RENDITION_LINK_SECRET is not set; generated one and kept it here");
    eprintln!(
        "warning: RENDITION_LINK_SECRET is not set; generated one and kept it in {}",
        path.display()
    );
    Ok(LinkSigner::new(secret, base_url))
}

pub(super) fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(secret.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use super::*;

    fn fs(dir: &Path, originals: Option<&Path>, secret: Option<&str>) -> Result<Settings, SettingsError> {
        Settings::validate(RawSettings {
            store: Some(format!("fs:{}", dir.display())),
            originals_dir: originals.map(Path::to_path_buf),
            link_secret: secret.map(String::from),
            ..RawSettings::default()
        })
    }

    #[test]
    fn a_short_link_secret_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        for short in ["Zq9", "correct horse battery staple"] {
            let e = fs(dir.path(), None, Some(short)).expect_err(short).to_string();
            assert!(e.contains("RENDITION_LINK_SECRET") && e.contains("32"), "{e}");
            assert!(!e.contains(short), "the secret is not echoed: {e}");
        }
        assert!(fs(dir.path(), None, Some(&"k".repeat(32))).is_ok());
        std::fs::write(dir.path().join(".link-secret"), "short").unwrap();
        assert!(
            link_signer(dir.path(), "http://x", None).is_err(),
            "a short kept secret too"
        );
    }

    #[test]
    fn the_originals_never_hold_the_stores_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        // By default the originals are a directory of their own.
        let Settings {
            store: StoreSetting::Fs { originals, .. },
            ..
        } = fs(&store, None, None).unwrap()
        else {
            panic!("an fs store")
        };
        assert_eq!(originals, store.join(ORIGINALS_DIR));
        for (originals, ok) in [
            (store.clone(), false),
            (dir.path().to_path_buf(), false),
            (store.join("audit"), false),
            (store.join("renditions"), false),
            (store.join("./published/x"), false),
            (store.join("masters"), true),
            (dir.path().join("elsewhere"), true),
        ] {
            assert_eq!(
                fs(&store, Some(&originals), None).is_ok(),
                ok,
                "{}",
                originals.display()
            );
        }
        let same = Settings::validate(RawSettings {
            store: Some("s3".into()),
            originals_bucket: Some("media".into()),
            renditions_bucket: Some("media".into()),
            ..RawSettings::default()
        });
        assert!(same.is_err(), "one bucket for both");
    }

    #[test]
    fn publish_destinations_never_name_the_stores_buckets() {
        let s3 = |list: &str| {
            Settings::validate(RawSettings {
                store: Some("s3".into()),
                publish_destinations: Some(list.into()),
                ..RawSettings::default()
            })
        };
        assert!(s3("press-kit, web/campaigns").is_ok());
        for bad in ["renditions", "originals/x", "press-kit/../renditions"] {
            let e = s3(bad).expect_err(bad).to_string();
            assert!(e.contains("RENDITION_PUBLISH_DESTINATIONS"), "{e}");
        }
    }
}
