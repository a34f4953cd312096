//! What a process accepts control messages with: the keys, and the one
//! place policy documents may be fetched from.

use std::path::PathBuf;

use super::{ControlError, ControlKeys};
use crate::storage::check_key;

/// Settings of the control plane (`RENDITION_CONTROL_KEYS`,
/// `RENDITION_POLICY_LOCATIONS`). The default accepts nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlPlane {
    pub keys: ControlKeys,
    /// Where a signed `location` may point; `None`: inline updates only.
    pub locations: Option<PolicyLocations>,
}

/// The bucket prefix or directory policy documents are published to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyLocations {
    /// `s3://bucket/prefix/`: read through the store's own client.
    Bucket { bucket: String, prefix: String },
    /// An absolute directory: files beneath it, no symbolic links.
    Dir(PathBuf),
}

/// A location resolved inside [`PolicyLocations`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Bucket { bucket: String, key: String },
    Dir { dir: PathBuf, key: String },
}

impl PolicyLocations {
    /// `s3://bucket[/prefix]` or an absolute directory.
    pub fn parse(setting: &str) -> Result<PolicyLocations, String> {
        let setting = setting.trim();
        if let Some(rest) = setting.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            crate::storage::check_bucket(bucket).map_err(|e| e.to_string())?;
            let prefix = prefix.trim_matches('/');
            if !prefix.is_empty() {
                check_key(prefix).map_err(|e| e.to_string())?;
            }
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            return Ok(PolicyLocations::Bucket {
                bucket: bucket.to_string(),
                prefix,
            });
        }
        let dir = PathBuf::from(setting);
        if !dir.is_absolute() || setting.split('/').any(|p| p == "..") {
            return Err(format!(
                "{setting:?} must be s3://bucket/prefix or an absolute directory"
            ));
        }
        Ok(PolicyLocations::Dir(dir))
    }

    /// Where `location` is, if it is inside these locations.
    pub fn place(&self, location: &str) -> Result<Place, ControlError> {
        let outside = || {
            ControlError::Location(format!(
                "{location} is outside RENDITION_POLICY_LOCATIONS ({})",
                self.describe()
            ))
        };
        let place = match self {
            PolicyLocations::Bucket { bucket, prefix } => {
                let key = location
                    .strip_prefix("s3://")
                    .and_then(|rest| rest.strip_prefix(bucket.as_str()))
                    .and_then(|rest| rest.strip_prefix('/'))
                    .filter(|key| key.starts_with(prefix.as_str()))
                    .ok_or_else(outside)?;
                Place::Bucket {
                    bucket: bucket.clone(),
                    key: key.to_string(),
                }
            }
            PolicyLocations::Dir(dir) => {
                let key = location
                    .strip_prefix(dir.to_str().ok_or_else(outside)?.trim_end_matches('/'))
                    .and_then(|rest| rest.strip_prefix('/'))
                    .ok_or_else(outside)?;
                Place::Dir {
                    dir: dir.clone(),
                    key: key.to_string(),
                }
            }
        };
        let (Place::Bucket { key, .. } | Place::Dir { key, .. }) = &place;
        check_key(key).map_err(|e| ControlError::Location(format!("{location}: {e}")))?;
        Ok(place)
    }

    pub fn describe(&self) -> String {
        match self {
            PolicyLocations::Bucket { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
            PolicyLocations::Dir(dir) => dir.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_locations_inside_the_configured_place_resolve() {
        let bucket = PolicyLocations::parse("s3://policies/prod/").unwrap();
        assert_eq!(
            bucket.place("s3://policies/prod/v8.yaml").unwrap(),
            Place::Bucket {
                bucket: "policies".into(),
                key: "prod/v8.yaml".into()
            }
        );
        let dir = PolicyLocations::parse("/etc/rendition/policies").unwrap();
        assert_eq!(
            dir.place("/etc/rendition/policies/v8.json").unwrap(),
            Place::Dir {
                dir: "/etc/rendition/policies".into(),
                key: "v8.json".into()
            }
        );
        for (locations, location) in [
            (&bucket, "s3://originals/prod/v8.yaml"),
            (&bucket, "s3://policies/staging/v8.yaml"),
            (&bucket, "s3://policies-evil/prod/v8.yaml"),
            (&bucket, "s3://policies/prod/../../renditions/x.json"),
            (&bucket, "/etc/rendition/policies/v8.json"),
            (&dir, "/etc/passwd"),
            (&dir, "/etc/rendition/policies-evil/v8.json"),
            (&dir, "/etc/rendition/policies/../../shadow.yaml"),
            (&dir, "s3://policies/prod/v8.yaml"),
            (&dir, "/etc/rendition/policies/"),
        ] {
            let refused = locations.place(location).unwrap_err();
            assert_eq!(
                crate::error::Coded::code(&refused),
                "policy_location_refused",
                "{location}"
            );
        }
        for bad in ["relative/dir", "/a/../b", "s3://Bad_Bucket/x", "s3://b/../x"] {
            assert!(PolicyLocations::parse(bad).is_err(), "{bad}");
        }
    }
}
