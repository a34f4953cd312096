//! The job message (docs/contract.md#job): one asset for one principal.
//!
//! [`Job::parse`] is the only way in: it rejects unknown fields and checks
//! what serde cannot (media/rendition pairs, safe source keys), so every
//! malformed job becomes one `invalid_job` error naming the field.

mod principal;
mod request;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{Coded, ErrorCode};
pub use crate::priority::Priority;

pub use principal::Principal;
pub use request::{Format, OnExceed, Rendition, Request};

/// The `schema` value of a version 1 job.
pub const JOB_SCHEMA: &str = "rendition.job/v1";
/// The link lifetime when a job names none.
pub const DEFAULT_LINK_TTL_S: u64 = 900;
/// The most sizes a download set may ask for.
pub const MAX_SET_SIZES: usize = 8;
/// The largest size in pixels a request may name.
pub const MAX_REQUEST_PX: u32 = 65_535;
/// The highest page a job may name.
pub const MAX_PAGE: u32 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub schema: String,
    /// The idempotency key.
    pub job_id: String,
    pub purpose: Purpose,
    pub principal: Principal,
    pub asset: Asset,
    pub request: Request,
    #[serde(default = "default_link_ttl")]
    pub link_ttl_s: u64,
    /// Where a `publish` job copies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// Which lane the job runs in; [`Job::priority`] gives the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
}

fn default_link_ttl() -> u64 {
    DEFAULT_LINK_TTL_S
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Download,
    Share,
    Preview,
    Publish,
}

impl Job {
    /// The job's own `priority`, else by purpose: someone waits for a
    /// download, a preview or a share; nobody for a publish run.
    pub fn priority(&self) -> Priority {
        self.priority.unwrap_or(match self.purpose {
            Purpose::Publish => Priority::Bulk,
            Purpose::Download | Purpose::Share | Purpose::Preview => Priority::Interactive,
        })
    }

    /// The routing key (docs/contract.md#broker-topology): the media, or
    /// `publish`; prefixed with the priority when that is not the key's
    /// usual lane (`bulk.image`).
    pub fn routing_key(&self) -> String {
        let base = match (self.purpose, self.asset.media) {
            (Purpose::Publish, _) => "publish",
            (_, Media::Image) => "image",
            (_, Media::Video) => "video",
            (_, Media::Audio) => "audio",
            (_, Media::Other) => "other",
        };
        crate::routing::lane_key(base, self.priority())
    }
}

impl Purpose {
    pub fn as_str(&self) -> &'static str {
        match self {
            Purpose::Download => "download",
            Purpose::Share => "share",
            Purpose::Preview => "preview",
            Purpose::Publish => "publish",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    pub id: String,
    /// The collection or gallery the asset lives in.
    pub collection: String,
    pub media: Media,
    /// A key in the originals store; never a URL.
    pub source: String,
    #[serde(default)]
    pub restricted: bool,
    /// Made by the system (matters for "publish generated assets").
    #[serde(default)]
    pub generated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Where a crop to a preset's frame is centred: the DAM's focal point,
    /// as fractions of the upright image's width and height.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focal_point: Option<FocalPoint>,
}

/// A point of an image, `x` from the left and `y` from the top, each
/// from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalPoint {
    pub x: f64,
    pub y: f64,
}

/// Checked to lie between 0 and 1 ([`Job::check`]), never NaN.
impl Eq for FocalPoint {}

impl FocalPoint {
    /// The point in ten-thousandths (what the engine is told).
    pub fn basis_points(&self) -> [u16; 2] {
        [self.x, self.y].map(|v| (v.clamp(0.0, 1.0) * 1e4).round() as u16)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Media {
    Image,
    Video,
    Audio,
    Other,
}

impl Media {
    pub const ALL: [Media; 4] = [Media::Image, Media::Video, Media::Audio, Media::Other];

    /// The plural used in reasons ("caps images at …").
    pub fn plural(&self) -> &'static str {
        match self {
            Media::Image => "images",
            Media::Video => "videos",
            Media::Audio => "audio files",
            Media::Other => "other files",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
}

/// A job that cannot be run as written. Never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job: {field}: {message}")]
pub struct JobError {
    /// Where in the job the problem is, e.g. `request.rendition`.
    pub field: String,
    pub message: String,
}

impl JobError {
    pub fn at(field: &str, message: impl Into<String>) -> JobError {
        JobError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Coded for JobError {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidJob
    }
}

impl Job {
    /// What this job asks, as a digest of its whole body: principal, asset,
    /// request, purpose, destination, link lifetime and priority. The same
    /// `job_id` with another body is another job (docs/contract.md, "Job
    /// ids"): its remembered result is keyed by both.
    pub fn digest(&self) -> String {
        let body = serde_json::to_vec(self).expect("a job serializes");
        hex::encode(sha2::Sha256::digest(body))
    }

    /// Parses and checks a JSON job.
    pub fn parse(bytes: &[u8]) -> Result<Job, JobError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let job: Job = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { "job".to_string() } else { field };
            JobError {
                field,
                message: e.into_inner().to_string(),
            }
        })?;
        job.check()?;
        Ok(job)
    }

    /// The checks serde cannot express.
    pub fn check(&self) -> Result<(), JobError> {
        if self.schema != JOB_SCHEMA {
            return Err(JobError::at(
                "schema",
                format!("expected `{JOB_SCHEMA}`, got `{}`", self.schema),
            ));
        }
        check_id("job_id", &self.job_id)?;
        check_id("asset.id", &self.asset.id)?;
        check_id("asset.collection", &self.asset.collection)?;
        // A share's id names a prefix of the store (layout::share_prefix).
        match &self.principal {
            Principal::Share { share, .. } => check_id("principal.share", share)?,
            Principal::Password { collection } => check_id("principal.collection", collection)?,
            Principal::User(_) | Principal::Anonymous => {}
        }
        check_source(&self.asset.source)?;
        if let Some(point) = self.asset.focal_point
            && ![point.x, point.y].iter().all(|v| (0.0..=1.0).contains(v))
        {
            return Err(JobError::at("asset.focal_point", "x and y must be between 0 and 1"));
        }
        if self.link_ttl_s == 0 {
            return Err(JobError::at("link_ttl_s", "must be at least 1 second"));
        }
        if !(1..=100).contains(&self.request.quality) {
            return Err(JobError::at("request.quality", "must be between 1 and 100"));
        }
        check_page(self.asset.media, &self.request)?;
        match (self.purpose, &self.destination) {
            (Purpose::Publish, None) => return Err(JobError::at("destination", "a publish job needs a destination")),
            (Purpose::Publish, Some(d)) if d.bucket.trim().is_empty() => {
                return Err(JobError::at("destination.bucket", "must not be empty"));
            }
            (Purpose::Publish, Some(_)) | (_, None) => {}
            (_, Some(_)) => return Err(JobError::at("destination", "only publish jobs take a destination")),
        }
        check_rendition(self.asset.media, &self.request)
    }
}

/// An id that may name a store prefix (shares, collections, assets):
/// ASCII letters, digits and `-_.:@`, at most 200 characters.
pub fn check_id(field: &str, id: &str) -> Result<(), JobError> {
    let ok = !id.is_empty() && id.len() <= 200 && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(JobError::at(
            field,
            "must be 1–200 characters of letters, digits and - _ . : @",
        ))
    }
}

/// A source is a key in the originals store: relative, no `..`, no
/// scheme, no part that starts with a dot (the filesystem store's own
/// files, `.link-secret` and sidecars, are dot-files) and no control
/// character (a NUL would otherwise reach the store as an I/O error and be
/// retried). See docs/security.md, "Sources are only originals".
fn check_source(source: &str) -> Result<(), JobError> {
    let problem = if source.is_empty() {
        Some("must not be empty")
    } else if source.contains("://") {
        Some("must be a key in the originals store, not a URL")
    } else if source.starts_with('/') || source.split('/').any(|part| part == ".." || part.is_empty()) {
        Some("must be a relative key without `..` or empty parts")
    } else if source.split('/').any(|part| part.starts_with('.')) {
        Some("must not name a dot-file or a dot-directory")
    } else if source.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    problem.map_or(Ok(()), |p| Err(JobError::at("asset.source", p)))
}

/// Pages are of images (a multipage TIFF) and documents (a PDF's poster).
fn check_page(media: Media, request: &Request) -> Result<(), JobError> {
    let field = "request.page";
    if !(1..=MAX_PAGE).contains(&request.page) {
        return Err(JobError::at(field, format!("must be between 1 and {MAX_PAGE}")));
    }
    let paged = media == Media::Image || (media == Media::Other && request.rendition == Rendition::Poster);
    if request.page != 1 && !paged {
        return Err(JobError::at(field, "pages are of images and of other media's posters"));
    }
    Ok(())
}

fn check_rendition(media: Media, request: &Request) -> Result<(), JobError> {
    let field = "request.rendition";
    let size = |n: u32| {
        if (1..=MAX_REQUEST_PX).contains(&n) {
            Ok(())
        } else {
            Err(JobError::at(
                field,
                format!("sizes must be between 1 and {MAX_REQUEST_PX} px"),
            ))
        }
    };
    match (&request.rendition, media) {
        (Rendition::Original | Rendition::Proxy, _) => Ok(()),
        (Rendition::MaxEdge(n), Media::Image) => size(*n),
        (Rendition::MaxHeight(n), Media::Video) => size(*n),
        (Rendition::Poster, Media::Video | Media::Other) | (Rendition::Storyboard, Media::Video) => Ok(()),
        (Rendition::Set(sizes), Media::Image) => {
            if sizes.is_empty() || sizes.len() > MAX_SET_SIZES {
                return Err(JobError::at(field, format!("a set holds 1 to {MAX_SET_SIZES} sizes")));
            }
            sizes.iter().try_for_each(|n| size(*n))
        }
        (Rendition::Preset(name), Media::Image) => check_id("request.rendition.preset", name),
        (Rendition::MaxEdge(_) | Rendition::Set(_) | Rendition::Preset(_), _) => {
            Err(JobError::at(field, "max_edge, set and preset are for images"))
        }
        (Rendition::MaxHeight(_), _) => Err(JobError::at(field, "max_height is for video")),
        (Rendition::Poster, _) => Err(JobError::at(
            field,
            "poster is for video and other media (a document's page)",
        )),
        (Rendition::Storyboard, _) => Err(JobError::at(field, "storyboard is for video")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{
      "schema": "rendition.job/v1", "job_id": "j-1", "purpose": "download",
      "principal": {"user": "u-ben"},
      "asset": {"id": "a-1001", "collection": "g-launch", "media": "image",
                "source": "originals/a-1001.tif", "restricted": false, "filename": "launch-hero.tif"},
      "request": {"rendition": "original", "format": "jpeg", "quality": 85, "on_exceed": "clamp"},
      "link_ttl_s": 900
    }"#;

    fn with(pointer: &str, value: serde_json::Value) -> Vec<u8> {
        let mut job: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        *job.pointer_mut(pointer).unwrap() = value;
        serde_json::to_vec(&job).unwrap()
    }

    #[test]
    fn the_contract_example_parses() {
        let job = Job::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(job.principal, Principal::User("u-ben".into()));
        assert_eq!(job.asset.media, Media::Image);
    }

    #[test]
    fn unknown_fields_are_invalid_jobs_naming_the_field() {
        let err = Job::parse(&with("/asset/restricted", serde_json::json!({"x": 1}))).unwrap_err();
        assert_eq!(err.field, "asset.restricted");
        let mut job: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        job["request"]["sharpen"] = serde_json::json!(true);
        let err = Job::parse(&serde_json::to_vec(&job).unwrap()).unwrap_err();
        assert_eq!(err.code(), "invalid_job");
        assert!(err.field.starts_with("request"), "{err}");
        assert!(err.message.contains("sharpen"), "{err}");
    }

    #[test]
    fn presets_and_focal_points_are_checked() {
        let mut job: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        job["asset"]["focal_point"] = serde_json::json!({"x": 0.25, "y": 1.0});
        job["request"]["rendition"] = serde_json::json!({"preset": "social-square"});
        let parsed = Job::parse(&serde_json::to_vec(&job).unwrap()).unwrap();
        assert_eq!(parsed.asset.focal_point.unwrap().basis_points(), [2500, 10000]);
        job["asset"]["focal_point"] = serde_json::json!({"x": 1.5, "y": 0.5});
        let err = Job::parse(&serde_json::to_vec(&job).unwrap()).unwrap_err();
        assert_eq!(err.field, "asset.focal_point");
        job["asset"]["focal_point"] = serde_json::json!({"x": 0.5, "y": 0.5});
        job["asset"]["media"] = serde_json::json!("video");
        let err = Job::parse(&serde_json::to_vec(&job).unwrap()).unwrap_err();
        assert_eq!(err.field, "request.rendition", "a preset is for images: {err}");
        job["asset"]["media"] = serde_json::json!("image");
        job["request"]["rendition"] = serde_json::json!({"preset": "../web"});
        assert!(Job::parse(&serde_json::to_vec(&job).unwrap()).is_err());
    }

    #[test]
    fn checks_beyond_serde() {
        let cases = [
            ("/schema", serde_json::json!("rendition.job/v2"), "schema"),
            (
                "/asset/source",
                serde_json::json!("https://evil.example/x.jpg"),
                "asset.source",
            ),
            ("/asset/source", serde_json::json!("../etc/passwd"), "asset.source"),
            // What lives beside the originals on a filesystem store, and
            // what no original is named: dot-files and control characters.
            ("/asset/source", serde_json::json!(".link-secret"), "asset.source"),
            (
                "/asset/source",
                serde_json::json!("originals/.hidden/a.jpg"),
                "asset.source",
            ),
            ("/asset/source", serde_json::json!("a/./b.jpg"), "asset.source"),
            ("/asset/source", serde_json::json!("a.jpg\u{0}.png"), "asset.source"),
            ("/asset/source", serde_json::json!("a\nb.jpg"), "asset.source"),
            ("/asset/source", serde_json::json!("a\u{7f}b.jpg"), "asset.source"),
            (
                "/principal",
                serde_json::json!({"share": "s-7/results", "email": "e@x"}),
                "principal.share",
            ),
            (
                "/request/rendition",
                serde_json::json!({"max_height": 540}),
                "request.rendition",
            ),
            (
                "/request/rendition",
                serde_json::json!({"set": []}),
                "request.rendition",
            ),
            (
                "/request/rendition",
                serde_json::json!({"max_edge": 0}),
                "request.rendition",
            ),
            ("/request/quality", serde_json::json!(0), "request.quality"),
            ("/purpose", serde_json::json!("publish"), "destination"),
            ("/job_id", serde_json::json!("a/b"), "job_id"),
        ];
        for (pointer, value, field) in cases {
            let err = Job::parse(&with(pointer, value.clone())).unwrap_err();
            assert_eq!(err.field, field, "{pointer} = {value}: {err}");
        }
    }
}
