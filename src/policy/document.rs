//! The policy document exactly as upstream writes it (docs/contract.md#policy-document).
//!
//! These are plain serde types; [`super::Policy`] is the validated form the
//! resolver reads. Unknown fields are rejected: a misspelt `visibilty` must not
//! silently open a collection.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::limit::{DownloadLimits, Limit};
pub use super::marks::{ForensicPolicy, Marks};
pub use super::preset::Preset;
/// How much metadata a rendition carries: the engine's own words
/// (`none`, `rights`, `public`, `all`).
pub use crate::rendition::MetadataProfile;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Increases with every change; stamped on results.
    pub version: u64,
    /// Raised by one to start over from any version: how a runaway version
    /// is undone (docs/control-plane.md#versions). Absent means 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u64,
    #[serde(default, deserialize_with = "unique_keys")]
    pub roles: BTreeMap<String, Role>,
    #[serde(default, deserialize_with = "unique_keys")]
    pub users: BTreeMap<String, User>,
    /// Groups that exist even if no user is in them yet (an addition to the
    /// contract: groups are otherwise known from `users[*].groups`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default)]
    pub collections: Vec<Collection>,
    #[serde(default)]
    pub shares: Vec<Share>,
    #[serde(default)]
    pub proxy: ProxySize,
    #[serde(default)]
    pub watermark: Watermark,
    /// Named renditions a job may ask for (docs/contract.md#presets).
    #[serde(
        default,
        deserialize_with = "unique_keys",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub presets: BTreeMap<String, Preset>,
    /// What metadata renditions carry by default, and the usage terms
    /// written for each recipient (docs/metadata.md).
    #[serde(default, skip_serializing_if = "MetadataPolicy::is_default")]
    pub metadata: MetadataPolicy,
    /// Who gets forensic marks by default (docs/forensic.md#policy).
    #[serde(default, skip_serializing_if = "ForensicPolicy::is_default")]
    pub forensic: ForensicPolicy,
}

/// The policy-wide metadata settings (docs/metadata.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataPolicy {
    /// The profile of every principal no role, share or preset holds to
    /// one of its own; unset: `rights` for renditions, originals as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<MetadataProfile>,
    /// Written into each rendition's rights usage terms (XMP
    /// xmpRights:UsageTerms): `{recipient}` is the user id or the share's
    /// e-mail, `{expiry}` the share's expiry or the link's (a date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_terms: Option<String>,
}

impl MetadataPolicy {
    fn is_default(&self) -> bool {
        *self == MetadataPolicy::default()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A team or collection role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Library staff: may do anything, originals included.
    #[serde(default)]
    pub staff: bool,
    /// The role's ceiling; `None` means the role sets no ceiling of its own.
    #[serde(default)]
    pub download: Option<DownloadLimits>,
    #[serde(default)]
    pub share: ShareRight,
    #[serde(default)]
    pub publish: PublishRight,
    /// Holders see and download watermarked renditions only: `true` (the
    /// visible mark), `"forensic"` or `"both"` (docs/forensic.md).
    #[serde(default)]
    pub watermark: Marks,
    /// May download restricted assets (an addition: the seeds make this a
    /// team permission; a user's own `manage_restricted` overrides it).
    #[serde(default)]
    pub manage_restricted: bool,
    /// Holders download these presets and nothing else (strict mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presets: Option<Vec<String>>,
    /// The most metadata holders' downloads carry (docs/metadata.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataProfile>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareRight {
    #[default]
    None,
    Proxy,
    Original,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishRight {
    #[default]
    None,
    /// Only assets the system generated.
    Generated,
    /// Any asset, originals included.
    All,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The user's one team role across the library.
    pub role: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Overrides the role's `manage_restricted` when present.
    #[serde(default)]
    pub manage_restricted: Option<bool>,
}

/// A collection or gallery node of the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collection {
    pub id: String,
    #[serde(default)]
    pub kind: NodeKind,
    /// Defaults to `native` at the top level and `inherit` below it.
    #[serde(default)]
    pub inherit: Option<InheritMode>,
    /// Places a top-level entry under another node (an addition: lets large
    /// trees be written as a flat list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default)]
    pub visibility: Option<Visibility>,
    #[serde(default)]
    pub access: Option<Access>,
    #[serde(default)]
    pub password_sha256: Option<String>,
    #[serde(default)]
    pub download: Option<DownloadLimits>,
    #[serde(default)]
    pub invited: Vec<Invitation>,
    #[serde(default)]
    pub watermark: Option<bool>,
    #[serde(default)]
    pub children: Vec<Collection>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    #[default]
    Collection,
    Gallery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InheritMode {
    Inherit,
    Native,
    /// Galleries only: inherited settings plus native grants.
    InheritAndNative,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Everyone,
    WithPermission,
    OwnerOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    AnyVisitor,
    Password,
    People,
}

/// A user or a group invited to a node with a collection role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invitation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share {
    pub id: String,
    pub email: String,
    /// Collection/gallery ids: each node and everything below it.
    pub scope: Vec<String>,
    pub kind: ShareKind,
    #[serde(default)]
    pub verified: bool,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub revoked: bool,
    /// Asks for a watermark even on an original share (an addition):
    /// `true`, `"forensic"` or `"both"`, as a role's.
    #[serde(default)]
    pub watermark: Marks,
    /// The share's recipient downloads these presets and nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presets: Option<Vec<String>>,
    /// The most metadata the recipient's downloads carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataProfile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareKind {
    Proxy,
    Original,
}

/// What a proxy is: max long edge (image) and max height (video).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySize {
    #[serde(default = "default_proxy_image")]
    pub image: u32,
    #[serde(default = "default_proxy_video")]
    pub video: u32,
}

fn default_proxy_image() -> u32 {
    1024
}
fn default_proxy_video() -> u32 {
    540
}

impl Default for ProxySize {
    fn default() -> Self {
        ProxySize {
            image: default_proxy_image(),
            video: default_proxy_video(),
        }
    }
}

impl ProxySize {
    pub fn as_limits(&self) -> DownloadLimits {
        DownloadLimits {
            image: Limit::Px(self.image),
            video: Limit::Px(self.video),
            audio: Limit::None,
            audio_seconds: None,
            other: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watermark {
    /// `{recipient}` is replaced by the user id or the share's e-mail.
    #[serde(default = "default_watermark_text")]
    pub text: String,
    #[serde(default)]
    pub logo: Option<String>,
    #[serde(default = "default_opacity")]
    pub opacity: f32,
    #[serde(default)]
    pub position: WatermarkPosition,
}

fn default_watermark_text() -> String {
    "© {recipient}".to_string()
}
fn default_opacity() -> f32 {
    0.35
}

impl Default for Watermark {
    fn default() -> Self {
        Watermark {
            text: default_watermark_text(),
            logo: None,
            opacity: default_opacity(),
            position: WatermarkPosition::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatermarkPosition {
    #[default]
    Tiled,
    Center,
    BottomRight,
}

/// Deserializes a map, refusing a key that appears twice: JSON parsers keep
/// the last one silently, which would let a duplicate role shadow the first.
fn unique_keys<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct UniqueKeys<V>(PhantomData<V>);

    impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueKeys<V> {
        type Value = BTreeMap<String, V>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map with unique ids")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, V>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!("duplicate id `{key}`")));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    d.deserialize_map(UniqueKeys(PhantomData))
}
