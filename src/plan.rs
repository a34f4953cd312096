//! The planner: everything a job will do, decided before any of it is done.
//!
//! `plan(policy, job, facts) -> Plan` is pure: no I/O, no clock. The facts
//! are what I/O had to find out first (a share's revocation marker, the
//! policy's logo) and the time. The plan holds the decision (every denial
//! included), what to make as plain engine specs with the watermark built
//! once, where it goes, how long its links live and where it is published.
//! The executor ([`crate::pipeline`]) only carries it out.

use chrono::{DateTime, Duration, Utc};

use crate::error::{Coded, ErrorCode};
use crate::forensic::ForensicKey;
use crate::job::{Destination, Format, Job, Media, Principal, Purpose, Rendition};
use crate::layout;
use crate::policy::document::{Watermark, WatermarkPosition};
use crate::policy::preset::PresetColour;
use crate::policy::{Decision, Delivery, Policy, Query, Rule, Target, resolve};
use crate::priority::Priority;
use crate::rendition::{
    Colour, Frame, Logo, MetadataProfile, MetadataSpec, OutputFormat, Position, PrintProfile, Size, Spec, WatermarkSpec,
};
use crate::video::ProxySpec;

/// The longest a link may live, whatever a job asks (7 days, SigV4's limit).
pub const MAX_LINK_TTL_S: u64 = 7 * 24 * 3600;

/// What the planner is told.
#[derive(Debug, Clone)]
pub struct Facts {
    pub now: DateTime<Utc>,
    /// The operator's cap on link lifetimes.
    pub max_link_ttl_s: u64,
    /// A revoke message for the job's share has reached the store.
    pub share_revoked: bool,
    pub logo: LogoFact,
    /// The operator's print profiles by name (settings `print_profiles`).
    pub print_profiles: PrintProfiles,
    /// The key forensic marks are made with (settings `forensic_keys`).
    pub forensic_key: Option<ForensicKey>,
}

/// Print profiles by the names presets use, shared by every job.
pub type PrintProfiles = std::sync::Arc<std::collections::BTreeMap<String, PrintProfile>>;

/// The policy's watermark logo, as the originals store had it.
#[derive(Debug, Clone, PartialEq)]
pub enum LogoFact {
    /// The policy names no logo.
    None,
    /// The policy names a logo this worker has not read yet: a plan that
    /// draws it says so ([`PlanError::LogoUnread`]) and is made again once
    /// it is read.
    Unread,
    Found(Logo),
    /// The policy names this key and nothing is there.
    Missing(String),
}

/// Everything one job will do.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub job_id: String,
    pub policy_version: u64,
    pub decision: Decision,
    pub make: Make,
    /// The original's key in the originals store.
    pub source: String,
    /// The folder the renditions go in ([`layout::rendition_prefix`]).
    pub prefix: String,
    /// The asset's file name without its extension (downloads are saved as
    /// `{stem}.{ext}`).
    pub stem: String,
    pub expires_at: DateTime<Utc>,
    /// Where a `publish` job copies what it was allowed.
    pub publish: Option<Destination>,
    /// The job is a share's: the revocation marker is checked again after
    /// rendering, so a revoke that landed meanwhile still wins.
    pub share: Option<String>,
    /// Which lane its engine work waits in.
    pub priority: Priority,
}

/// What to make.
#[derive(Debug, Clone, PartialEq)]
pub enum Make {
    /// Denied: nothing is read or written.
    Nothing,
    /// The stored original, byte for byte.
    Original,
    /// Image renditions of an image source, or of a document's page (a
    /// PDF's poster): the engine tells which by the bytes.
    Images(Spec),
    /// A frame of a video, then the image rules.
    Poster(Spec),
    /// A sheet of a video's frames (then the image rules) and its WebVTT
    /// index.
    Storyboard(Spec),
    /// A video proxy.
    Proxy(ProxySpec),
    /// Allowed, but cannot be made: the job fails with this error.
    Fail(PlanError),
}

/// Why an allowed plan cannot be carried out. Never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("source watermark logo {0} does not exist")]
    MissingLogo(String),
    #[error("preset {preset} separates with print profile {profile}, which this worker's settings do not have")]
    NoPrintProfile { preset: String, profile: String },
    #[error("the policy asks for a forensic mark and this worker has no forensic key (RENDITION_FORENSIC_KEYS)")]
    NoForensicKey,
    #[error("{0} are delivered whole or not at all")]
    WholeOnly(&'static str),
    /// Not an answer: the executor reads the logo and plans again.
    #[error("the watermark logo has not been read")]
    LogoUnread,
}

impl Coded for PlanError {
    fn code(&self) -> ErrorCode {
        match self {
            PlanError::MissingLogo(_) => ErrorCode::MissingSource,
            PlanError::NoPrintProfile { .. } | PlanError::NoForensicKey => ErrorCode::InvalidPolicy,
            PlanError::WholeOnly(_) => ErrorCode::UnsupportedFormat,
            PlanError::LogoUnread => ErrorCode::EngineError,
        }
    }
}

/// Decides everything about `job`.
pub fn plan(policy: &Policy, job: &Job, facts: &Facts) -> Plan {
    let decision = decide(policy, job, facts);
    let ttl = job.link_ttl_s.min(facts.max_link_ttl_s).min(MAX_LINK_TTL_S);
    let expires_at = facts.now + Duration::seconds(ttl as i64);
    let make = if decision.allowed {
        what_to_make(policy, job, &decision, facts, expires_at)
    } else {
        Make::Nothing
    };
    let name = job.asset.filename.as_deref().unwrap_or(&job.asset.source);
    let base = name.rsplit('/').next().unwrap_or(name);
    let share = match &job.principal {
        Principal::Share { share, .. } => Some(share.clone()),
        _ => None,
    };
    Plan {
        job_id: job.job_id.clone(),
        policy_version: policy.version(),
        make,
        source: job.asset.source.clone(),
        prefix: layout::rendition_prefix(job),
        stem: base.rsplit_once('.').map_or(base, |(s, _)| s).to_string(),
        expires_at,
        publish: (job.purpose == Purpose::Publish && decision.allowed)
            .then(|| job.destination.clone())
            .flatten(),
        share,
        decision,
        priority: job.priority(),
    }
}

/// The resolver's decision, unless the share was revoked by a message the
/// policy has not caught up with yet.
fn decide(policy: &Policy, job: &Job, facts: &Facts) -> Decision {
    match &job.principal {
        Principal::Share { share, .. } if facts.share_revoked => {
            Decision::deny(Rule::Share, None, format!("share {share} was revoked"))
        }
        _ => resolve(policy, &Query::of(job, facts.now)),
    }
}

fn what_to_make(policy: &Policy, job: &Job, decision: &Decision, facts: &Facts, expires: DateTime<Utc>) -> Make {
    if decision.delivery == Some(Delivery::Original) {
        return Make::Original;
    }
    let watermark = if decision.watermark {
        match watermark(&policy.document().watermark, job.principal.recipient(), &facts.logo) {
            Ok(mark) => Some(mark),
            Err(e) => return Make::Fail(e),
        }
    } else {
        None
    };
    // A mark the resolver asked for is made or the job fails: never skipped.
    let forensic = match (decision.forensic, &facts.forensic_key) {
        (false, _) => None,
        (true, Some(key)) => Some(key.mark(&job.principal, &job.asset.id)),
        (true, None) => return Make::Fail(PlanError::NoForensicKey),
    };
    let spec = |watermark| {
        print_colour(policy, job, facts).map(|c| Spec {
            forensic: forensic.clone(),
            ..image_spec(policy, decision, job, watermark, expires, c)
        })
    };
    match (job.asset.media, &job.request.rendition) {
        (Media::Image, _) | (Media::Other, Rendition::Poster) => spec(watermark).map_or_else(Make::Fail, Make::Images),
        (Media::Video, Rendition::Poster) => spec(watermark).map_or_else(Make::Fail, Make::Poster),
        (Media::Video, Rendition::Storyboard) => spec(watermark).map_or_else(Make::Fail, Make::Storyboard),
        (Media::Video, _) => Make::Proxy(ProxySpec {
            max_height: match decision.targets.first() {
                Some(Target::MaxHeight(n)) => Some(*n),
                _ => None,
            },
            watermark,
            audio_kbps: None,
            audio_seconds: None,
        }),
        (Media::Audio, _) => match decision.targets.first() {
            Some(Target::Audio { max_kbps, max_seconds }) => Make::Proxy(ProxySpec {
                max_height: None,
                watermark: None,
                audio_kbps: Some(*max_kbps),
                audio_seconds: *max_seconds,
            }),
            _ => Make::Fail(PlanError::WholeOnly(Media::Audio.plural())),
        },
        (media, _) => Make::Fail(PlanError::WholeOnly(media.plural())),
    }
}

/// A preset's colour: CMYK through the operator's profile it names.
fn print_colour(policy: &Policy, job: &Job, facts: &Facts) -> Result<Colour, PlanError> {
    let Rendition::Preset(name) = &job.request.rendition else {
        return Ok(Colour::Srgb);
    };
    let Some(preset) = policy.document().presets.get(name) else {
        return Ok(Colour::Srgb);
    };
    match (preset.colour, &preset.print_profile) {
        (PresetColour::Cmyk, Some(profile)) => match facts.print_profiles.get(profile) {
            Some(p) => Ok(Colour::Cmyk(p.clone())),
            None => Err(PlanError::NoPrintProfile {
                preset: name.clone(),
                profile: profile.clone(),
            }),
        },
        _ => Ok(Colour::Srgb),
    }
}

fn image_spec(
    policy: &Policy,
    decision: &Decision,
    job: &Job,
    watermark: Option<WatermarkSpec>,
    expires: DateTime<Utc>,
    colour: Colour,
) -> Spec {
    let focus = job.asset.focal_point.map(|p| p.basis_points());
    let sizes = decision
        .targets
        .iter()
        .filter_map(|t| match *t {
            Target::Full => Some(Size::Full),
            Target::MaxEdge(n) | Target::MaxHeight(n) => Some(Size::LongEdge(n)),
            Target::Frame { width, height, fit } => Some(Size::Frame(Frame {
                width,
                height,
                fit,
                focus,
            })),
            Target::Original | Target::Audio { .. } => None,
        })
        .collect();
    // A preset's format and quality are the preset's, not the job's.
    let preset = match &job.request.rendition {
        Rendition::Preset(name) => policy.document().presets.get(name),
        _ => None,
    };
    let format = preset.map_or(job.request.format, |p| p.format);
    let quality = preset.and_then(|p| p.quality).unwrap_or(job.request.quality);
    let format = match format {
        Format::Jpeg => OutputFormat::Jpeg,
        Format::Webp => OutputFormat::Webp,
        Format::Png => OutputFormat::Png,
        Format::Avif => OutputFormat::Avif,
        Format::Tiff => OutputFormat::Tiff,
        Format::Auto | Format::Mp4 => OutputFormat::Auto,
    };
    Spec {
        sizes,
        format,
        quality,
        watermark,
        page: job.request.page,
        metadata: MetadataSpec {
            profile: decision.metadata,
            usage_terms: usage_terms(policy, job, decision, expires),
        },
        colour,
        dpi: preset.and_then(|p| p.dpi),
        forensic: None,
    }
}

/// The policy's usage terms for this recipient (docs/metadata.md), when it
/// writes some and the rendition carries rights at all. `{expiry}` is a
/// date, the share's or the link's, so renditions made the same day share
/// a content address.
fn usage_terms(policy: &Policy, job: &Job, decision: &Decision, link_expires: DateTime<Utc>) -> Option<String> {
    let template = policy.document().metadata.usage_terms.as_ref()?;
    if decision.metadata == MetadataProfile::None {
        return None;
    }
    let share_expiry = match &job.principal {
        Principal::Share { share, .. } => policy.share(share).and_then(|s| s.expires_at),
        _ => None,
    };
    let expiry = share_expiry.unwrap_or(link_expires).format("%Y-%m-%d").to_string();
    Some(
        template
            .replace("{recipient}", job.principal.recipient())
            .replace("{expiry}", &expiry),
    )
}

/// The policy's watermark for this recipient; the default text when the
/// policy's is empty, so a required watermark is never skipped.
pub fn watermark(w: &Watermark, recipient: &str, logo: &LogoFact) -> Result<WatermarkSpec, PlanError> {
    let text = if w.text.trim().is_empty() {
        "© {recipient}"
    } else {
        w.text.as_str()
    };
    let logo = match logo {
        LogoFact::None => None,
        LogoFact::Found(logo) => Some(logo.clone()),
        LogoFact::Missing(key) => return Err(PlanError::MissingLogo(key.clone())),
        LogoFact::Unread => return Err(PlanError::LogoUnread),
    };
    Ok(WatermarkSpec {
        text: text.replace("{recipient}", recipient),
        opacity: if w.opacity > 0.0 { w.opacity } else { 0.35 },
        position: match w.position {
            WatermarkPosition::Tiled => Position::Tiled,
            WatermarkPosition::Center => Position::Center,
            WatermarkPosition::BottomRight => Position::BottomRight,
        },
        logo,
    })
}

impl Plan {
    /// The plan would draw the policy's logo, which has not been read yet.
    pub fn needs_logo(&self) -> bool {
        matches!(self.make, Make::Fail(PlanError::LogoUnread))
    }

    /// Where one image rendition of this plan is stored, for a source whose
    /// content is named by `source_digest` ([`layout::source_digest`]).
    pub fn image_key(&self, spec: &Spec, source_digest: &str, size: Size, format: OutputFormat) -> String {
        let digest = spec.digest(source_digest, size, format);
        layout::rendition_key(&self.prefix, &digest, format.extension())
    }

    /// Where the original is stored when handed out whole.
    pub fn original_key(&self, source_digest: &str) -> String {
        layout::original_key(&self.prefix, source_digest, layout::extension(&self.source))
    }

    /// Where a video proxy is stored.
    pub fn proxy_key(&self, spec: &ProxySpec, source_digest: &str) -> String {
        layout::rendition_key(&self.prefix, &spec.digest(source_digest), spec.extension())
    }

    /// The file name a download of a rendition with `ext` is saved as.
    pub fn filename(&self, ext: &str) -> String {
        format!("{}.{ext}", self.stem)
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
