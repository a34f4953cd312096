//! Download limits: what a collection, a role or a share lets through for each
//! file type (docs/contract.md#policy-document), and the cap a decision reports (docs/contract.md#result).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::job::Media;

/// A limit for images (max long edge), video (max height) or audio (the
/// bit rate of an audio proxy, kb/s).
///
/// Ordered from most to least restrictive, so `min` is "most restrictive".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Limit {
    /// Nothing of this type may be downloaded.
    None,
    /// At most this many pixels (long edge for images, height for video);
    /// for audio, a proxy of at most this many kb/s.
    Px(u32),
    /// No size cap: the original may be delivered.
    Original,
}

impl Limit {
    /// Turns an audio/other boolean into a limit: allowed whole or not at all.
    pub fn from_allowed(allowed: bool) -> Limit {
        if allowed { Limit::Original } else { Limit::None }
    }
}

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::None => s.serialize_str("none"),
            Limit::Original => s.serialize_str("original"),
            Limit::Px(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Px(u64),
            Word(String),
        }
        match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected `none`, `original` or a size in pixels"))?
        {
            Raw::Px(0) => Err(serde::de::Error::custom(
                "a size limit must be at least 1 px (use `none` to forbid downloads)",
            )),
            Raw::Px(n) => u32::try_from(n)
                .map(Limit::Px)
                .map_err(|_| serde::de::Error::custom("size limit too large")),
            Raw::Word(w) if w == "none" => Ok(Limit::None),
            Raw::Word(w) if w == "original" => Ok(Limit::Original),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "unknown limit `{w}`: expected `none`, `original` or a size in pixels"
            ))),
        }
    }
}

/// An audio proxy's bit rate when the limit sets none (kb/s).
pub const AUDIO_PROXY_KBPS: u32 = 128;

/// The per-file-type download limits ("DL types") of a collection or role.
/// A type left out means `none` / not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadLimits {
    #[serde(default = "no_limit")]
    pub image: Limit,
    #[serde(default = "no_limit")]
    pub video: Limit,
    /// `true` (whole), `false` (none) or a number: an AAC proxy of at most
    /// that many kb/s (docs/contract.md#audio-proxies).
    #[serde(default = "no_limit", with = "audio_limit")]
    pub audio: Limit,
    /// The longest audio delivered, in seconds (a preview): a proxy cut to
    /// it, at the default bit rate at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_seconds: Option<u32>,
    #[serde(default)]
    pub other: bool,
}

/// An audio limit as policies write it: a boolean, or a bit rate.
mod audio_limit {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Limit;

    pub fn serialize<S: Serializer>(limit: &Limit, s: S) -> Result<S::Ok, S::Error> {
        match limit {
            Limit::None => s.serialize_bool(false),
            Limit::Original => s.serialize_bool(true),
            Limit::Px(kbps) => s.serialize_u32(*kbps),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Limit, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Allowed(bool),
            Kbps(u64),
        }
        match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected true, false or an audio proxy's kb/s"))?
        {
            Raw::Allowed(allowed) => Ok(Limit::from_allowed(allowed)),
            Raw::Kbps(n @ 8..=512) => Ok(Limit::Px(n as u32)),
            Raw::Kbps(n) => Err(serde::de::Error::custom(format!(
                "an audio proxy of {n} kb/s: between 8 and 512, or true/false"
            ))),
        }
    }
}

fn no_limit() -> Limit {
    Limit::None
}

impl DownloadLimits {
    /// Nothing of any type.
    pub const NOTHING: DownloadLimits = DownloadLimits {
        image: Limit::None,
        video: Limit::None,
        audio: Limit::None,
        audio_seconds: None,
        other: false,
    };

    /// Everything, originals included.
    pub const EVERYTHING: DownloadLimits = DownloadLimits {
        image: Limit::Original,
        video: Limit::Original,
        audio: Limit::Original,
        audio_seconds: None,
        other: true,
    };

    pub fn for_media(&self, media: Media) -> Limit {
        match media {
            Media::Image => self.image,
            Media::Video => self.video,
            // A preview (a length) is a proxy of the default rate at most:
            // so a tighter limit never gives more.
            Media::Audio => match self.audio_seconds {
                Some(_) => self.audio.min(Limit::Px(AUDIO_PROXY_KBPS)),
                None => self.audio,
            },
            Media::Other => Limit::from_allowed(self.other),
        }
    }

    /// The more generous of two limit sets, type by type.
    pub fn widest(&self, other: &DownloadLimits) -> DownloadLimits {
        DownloadLimits {
            image: self.image.max(other.image),
            video: self.video.max(other.video),
            audio: self.audio.max(other.audio),
            audio_seconds: self.audio_seconds.zip(other.audio_seconds).map(|(a, b)| a.max(b)),
            other: self.other || other.other,
        }
    }
}

/// The cap a decision reports (docs/contract.md#result, `decision.limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cap {
    /// Images: the maximum long edge.
    MaxEdge(u32),
    /// Video: the maximum height.
    MaxHeight(u32),
    /// Audio: a proxy of at most this many kb/s.
    MaxKbps(u32),
    /// No size cap (also allowed audio/other).
    Original,
}

impl Cap {
    /// The cap for a limit that is not `none`, in the unit of `media`.
    pub fn new(limit: Limit, media: Media) -> Option<Cap> {
        match limit {
            Limit::None => None,
            Limit::Original => Some(Cap::Original),
            Limit::Px(n) if media == Media::Video => Some(Cap::MaxHeight(n)),
            Limit::Px(n) if media == Media::Audio => Some(Cap::MaxKbps(n)),
            Limit::Px(n) => Some(Cap::MaxEdge(n)),
        }
    }

    /// The same cap as a [`Limit`], for comparisons.
    pub fn as_limit(&self) -> Limit {
        match self {
            Cap::MaxEdge(n) | Cap::MaxHeight(n) | Cap::MaxKbps(n) => Limit::Px(*n),
            Cap::Original => Limit::Original,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_order_from_most_to_least_restrictive() {
        assert!(Limit::None < Limit::Px(1));
        assert!(Limit::Px(320) < Limit::Px(2048));
        assert!(Limit::Px(u32::MAX) < Limit::Original);
    }

    #[test]
    fn limits_read_words_and_numbers() {
        let l: DownloadLimits = serde_yaml::from_str("{ image: 2048, video: original, audio: true }").unwrap();
        assert_eq!(l.image, Limit::Px(2048));
        assert_eq!(l.video, Limit::Original);
        assert!(l.audio == Limit::Original && !l.other);
        let proxy: DownloadLimits = serde_yaml::from_str("{ audio: 96 }").unwrap();
        assert_eq!(proxy.audio, Limit::Px(96));
        assert_eq!(
            serde_json::to_string(&proxy).unwrap(),
            r#"{"image":"none","video":"none","audio":96,"other":false}"#
        );
        assert!(serde_yaml::from_str::<DownloadLimits>("{ audio: 4 }").is_err());
        let preview: DownloadLimits = serde_yaml::from_str("{ audio: true, audio_seconds: 30 }").unwrap();
        assert_eq!(
            preview.for_media(Media::Audio),
            Limit::Px(AUDIO_PROXY_KBPS),
            "cut, so a proxy"
        );
        assert!(serde_yaml::from_str::<DownloadLimits>("{ audio: maybe }").is_err());
        assert!(serde_yaml::from_str::<DownloadLimits>("{ image: 0 }").is_err());
        assert!(serde_yaml::from_str::<DownloadLimits>("{ image: huge }").is_err());
        assert!(serde_yaml::from_str::<DownloadLimits>("{ imgae: 10 }").is_err());
    }

    #[test]
    fn caps_serialize_as_the_contract_says() {
        let json = |c: Cap| serde_json::to_string(&c).unwrap();
        assert_eq!(json(Cap::MaxEdge(2048)), r#"{"max_edge":2048}"#);
        assert_eq!(json(Cap::MaxHeight(540)), r#"{"max_height":540}"#);
        assert_eq!(json(Cap::Original), r#""original""#);
    }
}
