//! Where publish jobs may copy to: an operator's allow-list
//! (`RENDITION_PUBLISH_DESTINATIONS`), never the stores' own buckets.
//! Pure: the executor asks [`PublishDestinations::check`] before a publish
//! job is planned (docs/security.md, "Publish destinations").
//!
//! An entry is `bucket` (anywhere in it) or `bucket/prefix` (that prefix and
//! below); entries are separated by commas or white space. With no entry,
//! no job may publish.

use crate::job::{Destination, JobError};
use crate::storage::{check_bucket, check_key};

/// The setting that names the allowed destinations, for messages.
pub const SETTING: &str = "RENDITION_PUBLISH_DESTINATIONS";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishDestinations {
    /// `(bucket, prefix)`, the prefix without slashes at either end
    /// (empty: the whole bucket).
    allowed: Vec<(String, String)>,
    /// Buckets that are never destinations: the originals and renditions
    /// buckets (the audit trail, remembered results, revocation markers and
    /// every share's renditions live in the latter).
    never: Vec<String>,
}

/// An allow-list entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{SETTING}: {entry:?} {why}")]
pub struct DestinationsError {
    pub entry: String,
    pub why: String,
}

impl PublishDestinations {
    /// Parses the setting; `never` are the stores' own buckets.
    pub fn parse(setting: &str, never: &[&str]) -> Result<PublishDestinations, DestinationsError> {
        let never: Vec<String> = never.iter().map(|b| b.to_string()).collect();
        let mut allowed = Vec::new();
        for entry in setting
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            let bad = |why: &str| DestinationsError {
                entry: entry.to_string(),
                why: why.to_string(),
            };
            let (bucket, prefix) = entry.split_once('/').unwrap_or((entry, ""));
            check_bucket(bucket).map_err(|_| bad("does not start with a valid bucket name"))?;
            if never.iter().any(|n| n == bucket) {
                return Err(bad(
                    "names a bucket of the stores themselves, which is never a destination",
                ));
            }
            let prefix = normal_prefix(prefix).map_err(|why| bad(&why))?;
            allowed.push((bucket.to_string(), prefix));
        }
        Ok(PublishDestinations { allowed, never })
    }

    /// The destination with its prefix normalised (no slash at either
    /// end), when the allow-list has it; else `invalid_job` naming the
    /// setting.
    pub fn check(&self, destination: &Destination) -> Result<Destination, JobError> {
        let prefix = normal_prefix(&destination.prefix).map_err(|why| JobError::at("destination.prefix", why))?;
        let bucket = &destination.bucket;
        let refused = |why: String| JobError::at("destination", why);
        if self.never.iter().any(|n| n == bucket) {
            return Err(refused(format!(
                "bucket {bucket:?} belongs to the stores and is never a destination, whatever {SETTING} lists"
            )));
        }
        let inside =
            |allowed: &str| allowed.is_empty() || prefix == allowed || prefix.starts_with(&format!("{allowed}/"));
        if !self.allowed.iter().any(|(b, p)| b == bucket && inside(p)) {
            return Err(refused(format!(
                "{bucket}/{prefix} is not among the destinations {SETTING} allows"
            )));
        }
        Ok(Destination {
            bucket: bucket.clone(),
            prefix,
        })
    }
}

/// A prefix without slashes at either end; `.`/`..`/empty parts, control
/// characters and backslashes refused.
fn normal_prefix(prefix: &str) -> Result<String, String> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if trimmed.chars().any(|c| c.is_control()) || check_key(trimmed).is_err() {
        return Err(format!(
            "prefix {prefix:?} must be a relative path without `.`, `..`, empty parts, backslashes or control characters"
        ));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(bucket: &str, prefix: &str) -> Destination {
        Destination {
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn only_listed_places_are_destinations() {
        let list =
            PublishDestinations::parse("press-kit, web-assets/campaigns/2026", &["originals", "renditions"]).unwrap();
        assert_eq!(list.check(&to("press-kit", "/a/b/")).unwrap(), to("press-kit", "a/b"));
        assert_eq!(
            list.check(&to("web-assets", "campaigns/2026/spring")).unwrap().prefix,
            "campaigns/2026/spring"
        );
        for (bucket, prefix) in [
            ("renditions", ""),
            ("renditions", "audit"),
            ("renditions", "results"),
            ("renditions", "revocations/shares"),
            ("renditions", "renditions/shares/s-1"),
            ("originals", "originals"),
            ("audit", ""),
            ("web-assets", ""),
            ("web-assets", "campaigns/2026x"),
            ("web-assets", "campaigns/2026/../../audit"),
            ("press-kit", "a/./b"),
            ("press-kit", "a\u{0}b"),
            ("press-kit", "a\\b"),
        ] {
            let e = list.check(&to(bucket, prefix)).unwrap_err();
            assert!(e.field.starts_with("destination"), "{bucket}/{prefix}: {e}");
        }
        let none = PublishDestinations::default();
        let e = none.check(&to("press-kit", "")).unwrap_err();
        assert!(e.message.contains(SETTING), "{e}");
    }

    #[test]
    fn the_stores_own_buckets_cannot_be_listed() {
        for entry in ["renditions", "originals/x", "Bad_Bucket", "ok-bucket/../x"] {
            assert!(
                PublishDestinations::parse(entry, &["originals", "renditions"]).is_err(),
                "{entry}"
            );
        }
    }
}
