//! The object-key layout: every key the pipeline reads or writes is made
//! here, and nowhere else.
//!
//! ```text
//! renditions bucket
//! ├── renditions/{asset}/{digest}.{jpg|png|webp|mp4}     content-addressed renditions
//! ├── renditions/{asset}/original-{source}.{ext}         originals handed out whole
//! ├── renditions/shares/{share}/{asset}/…                the same, made for a share
//! ├── renditions/shares/{share}/results/{job}-{body}.json a share job's remembered result
//! ├── results/{job}-{body}.json                          every other remembered result
//! ├── revocations/shares/{share}                         "this share was revoked"
//! └── audit/date={YYYY-MM-DD}/{job}-{answer}.jsonl       one audit record per answer
//! publish destination bucket
//! └── {destination.prefix}/{stem}[-{w}x{h}].{ext}        published copies
//! ```
//!
//! `{digest}` names what was made (source identity, size, format, quality,
//! watermark, engine version); `{source}` and `{job}` are SHA-256 prefixes
//! of the source identity and the job id, `{body}` of the job's whole
//! body ([`Job::digest`]). Revoking a share is one listing
//! of its prefix.

use sha2::{Digest, Sha256};

use crate::job::{Job, Principal};

/// Where everything made for `share` is stored.
pub fn share_prefix(share: &str) -> String {
    format!("renditions/shares/{share}/")
}

/// Where the audit trail lives (outside every share's prefix: revoking a
/// share must not erase who received what).
pub const AUDIT_PREFIX: &str = "audit/";

/// One day's partition of the audit trail (Hive style, for query engines).
pub fn audit_day_prefix(day: chrono::NaiveDate) -> String {
    format!("{AUDIT_PREFIX}date={}/", day.format("%Y-%m-%d"))
}

/// An answer's audit record: named by the job (`name`) and a digest of
/// the answer, so a repeat of the same answer writes the same object.
pub fn audit_key(day: chrono::NaiveDate, name: &str, answer_digest: &str) -> String {
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    format!("{}{}-{answer_digest}.jsonl", audit_day_prefix(day), &digest[..32])
}

/// The marker a revoke message leaves behind.
pub fn revocation_marker(share: &str) -> String {
    format!("revocations/shares/{share}")
}

/// The folder a job's renditions go in (no trailing slash).
pub fn rendition_prefix(job: &Job) -> String {
    match &job.principal {
        Principal::Share { share, .. } => format!("{}{}", share_prefix(share), job.asset.id),
        _ => format!("renditions/{}", job.asset.id),
    }
}

/// Where a job's result is remembered (under the share's prefix for share
/// jobs, so revoking the share forgets them too): named by its id and by
/// its whole body, so a job that reuses another's id never finds the
/// other's answer.
pub fn memo_key(job: &Job) -> String {
    let id = hex::encode(Sha256::digest(job.job_id.as_bytes()));
    let name = format!("results/{}-{}.json", &id[..32], &job.digest()[..32]);
    match &job.principal {
        Principal::Share { share, .. } => format!("{}{name}", share_prefix(share)),
        _ => name,
    }
}

/// One rendition: `{prefix}/{digest}.{ext}`.
pub fn rendition_key(prefix: &str, digest: &str, ext: &str) -> String {
    format!("{prefix}/{digest}.{ext}")
}

/// The original handed out whole, named by the source's identity.
pub fn original_key(prefix: &str, source_digest: &str, ext: &str) -> String {
    format!("{prefix}/original-{}.{ext}", &source_digest[..32])
}

/// What names a source's content: its key and the store's identity for it
/// (ETag, or size and mtime), so a changed original gets new renditions.
pub fn source_digest(source_key: &str, identity: &str) -> String {
    hex::encode(Sha256::digest(format!("{source_key}|{identity}").as_bytes()))
}

/// A published copy's key in the destination bucket.
pub fn published_key(prefix: &str, name: &str) -> String {
    match prefix.trim_matches('/') {
        "" => name.to_string(),
        prefix => format!("{prefix}/{name}"),
    }
}

/// The extension of a key or file name (`bin` when it has none).
pub fn extension(name: &str) -> &str {
    name.rsplit_once('.').map_or("bin", |(_, e)| e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(principal: &str) -> Job {
        let text = format!(
            r#"{{"schema":"rendition.job/v1","job_id":"j-1","purpose":"download","principal":{principal},
            "asset":{{"id":"a-1","collection":"c","media":"image","source":"o/a.jpg"}},
            "request":{{"rendition":"original"}}}}"#
        );
        Job::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn share_work_lives_under_the_share_prefix() {
        let share = job(r#"{"share":"s-7","email":"e@x"}"#);
        let user = job(r#"{"user":"u-1"}"#);
        assert_eq!(rendition_prefix(&share), "renditions/shares/s-7/a-1");
        assert_eq!(rendition_prefix(&user), "renditions/a-1");
        assert!(memo_key(&share).starts_with(&share_prefix("s-7")));
        assert!(memo_key(&user).starts_with("results/"));
        assert_eq!(memo_key(&user).len(), "results/-.json".len() + 64);
    }

    #[test]
    fn keys_are_stable() {
        let digest = source_digest("o/a.jpg", "etag-1");
        assert_ne!(digest, source_digest("o/a.jpg", "etag-2"));
        assert_eq!(
            original_key("renditions/a-1", &digest, "jpg").len(),
            "renditions/a-1/original-.jpg".len() + 32
        );
        assert_eq!(published_key("/press/", "hero.jpg"), "press/hero.jpg");
        assert_eq!(published_key("", "hero.jpg"), "hero.jpg");
        assert_eq!(extension("a/b.tif"), "tif");
        assert_eq!(extension("noext"), "bin");
    }
}
