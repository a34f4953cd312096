//! What the resolver answers (docs/contract.md#result, `decision`), plus what the engine
//! needs to obey it: the delivery kind and the exact targets to produce.

use serde::{Deserialize, Serialize};

use super::limit::{Cap, Limit};
use super::preset::Fit;
use crate::rendition::MetadataProfile;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub allowed: bool,
    /// The effective limit for the asset's file type; `None` when denied.
    pub limit: Option<Cap>,
    pub watermark: bool,
    /// The image carries a forensic mark naming its recipient
    /// (docs/forensic.md).
    #[serde(default)]
    pub forensic: bool,
    /// The request was larger than the limit and was brought down to it.
    pub clamped: bool,
    /// The role that applied (none for anonymous, password and share principals).
    pub role: Option<String>,
    /// One sentence naming the rule and the node.
    pub reason: String,
    /// The rule that decided (stable, for support tooling and tests).
    pub rule: Rule,
    /// The collection node that decided, when one did.
    pub node: Option<String>,
    /// Untouched original, re-encoded rendition, or proxy; `None` when denied.
    pub delivery: Option<Delivery>,
    /// What to produce, each within `limit`; empty when denied.
    pub targets: Vec<Target>,
    /// The metadata the delivery carries (docs/metadata.md): `all` for an
    /// original as stored; `none` when denied.
    #[serde(default = "no_metadata")]
    pub metadata: MetadataProfile,
}

fn no_metadata() -> MetadataProfile {
    MetadataProfile::None
}

/// The rule a decision rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Staff,
    UnknownCollection,
    UnknownUser,
    Visibility,
    Access,
    Share,
    Password,
    Restricted,
    Purpose,
    Watermark,
    Limit,
    OnExceed,
    /// A preset unknown to the policy, or a role or share held to presets.
    Preset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// The stored original, byte for byte.
    Original,
    /// A new rendition within the limit.
    Rendition,
    /// A proxy: within the proxy size and watermarked.
    Proxy,
}

/// One thing to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Copy the original unchanged.
    Original,
    /// Re-encode at the source's own size (e.g. to burn in a watermark).
    Full,
    /// An image (or poster) with this long edge at most.
    MaxEdge(u32),
    /// A video this high at most.
    MaxHeight(u32),
    /// An audio proxy (AAC) of at most `max_kbps` kb/s, cut to
    /// `max_seconds` when a limit sets a length.
    Audio {
        max_kbps: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_seconds: Option<u32>,
    },
    /// An image filling a frame of this shape as `fit` says (a preset's),
    /// never larger than the frame.
    Frame { width: u32, height: u32, fit: Fit },
}

impl Target {
    /// The target as a size limit, for checking it against a decision.
    pub fn as_limit(&self) -> Limit {
        match self {
            Target::Original | Target::Full => Limit::Original,
            Target::MaxEdge(n) | Target::MaxHeight(n) => Limit::Px(*n),
            Target::Audio { max_kbps, .. } => Limit::Px(*max_kbps),
            Target::Frame { width, height, .. } => Limit::Px(*width.max(height)),
        }
    }
}

impl Decision {
    pub fn deny(rule: Rule, node: Option<&str>, reason: impl Into<String>) -> Decision {
        Decision {
            allowed: false,
            limit: None,
            watermark: false,
            forensic: false,
            clamped: false,
            role: None,
            reason: format!("denied: {}", reason.into()),
            rule,
            node: node.map(str::to_string),
            delivery: None,
            targets: Vec::new(),
            metadata: MetadataProfile::None,
        }
    }
}
