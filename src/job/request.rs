//! What is asked for (docs/contract.md#job, `request`).

use serde::{Deserialize, Serialize};

/// The rendition asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rendition {
    /// The original, or the largest rendition the limit allows.
    Original,
    /// A proxy: bounded and always watermarked.
    Proxy,
    /// A still from a video.
    Poster,
    /// A sheet of stills from a video and its WebVTT index, for scrubbing
    /// (docs/contract.md#storyboards); decided as a poster is.
    Storyboard,
    /// An image whose long edge is at most N px.
    MaxEdge(u32),
    /// A video at most N px high.
    MaxHeight(u32),
    /// Several image sizes from one decode.
    Set(Vec<u32>),
    /// A named preset of the policy (docs/contract.md#presets).
    Preset(String),
}

impl Rendition {
    /// A poster or a storyboard: stills of a video, under the image rules.
    pub fn is_still(&self) -> bool {
        matches!(self, Rendition::Poster | Rendition::Storyboard)
    }

    /// How the request reads in a reason.
    pub fn describe(&self) -> String {
        match self {
            Rendition::Original => "the original".into(),
            Rendition::Proxy => "a proxy".into(),
            Rendition::Poster => "a poster".into(),
            Rendition::Storyboard => "a storyboard".into(),
            Rendition::MaxEdge(n) => format!("{n} px"),
            Rendition::MaxHeight(n) => format!("{n} px high"),
            Rendition::Set(sizes) => format!("the set {sizes:?}"),
            Rendition::Preset(name) => format!("preset {name}"),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Jpeg,
    Webp,
    Png,
    Avif,
    /// For print: Deflate, sRGB profile embedded, 300 ppi.
    Tiff,
    Mp4,
    /// JPEG for opaque images, PNG with alpha, MP4 for video.
    #[default]
    Auto,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExceed {
    /// Deliver the largest allowed rendition instead.
    #[default]
    Clamp,
    /// Deny a request larger than the limit.
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub rendition: Rendition,
    #[serde(default)]
    pub format: Format,
    #[serde(default = "default_quality")]
    pub quality: u8,
    #[serde(default)]
    pub on_exceed: OnExceed,
    /// The page of a PDF or a multipage TIFF, from 1.
    #[serde(default = "first_page", skip_serializing_if = "is_first_page")]
    pub page: u32,
}

fn default_quality() -> u8 {
    85
}

fn first_page() -> u32 {
    1
}

fn is_first_page(page: &u32) -> bool {
    *page == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renditions_read_the_contract_forms() {
        let r = |j: &str| serde_json::from_str::<Rendition>(j).unwrap();
        assert_eq!(r(r#""original""#), Rendition::Original);
        assert_eq!(r(r#""poster""#), Rendition::Poster);
        assert_eq!(r(r#""storyboard""#), Rendition::Storyboard);
        assert_eq!(r(r#"{"max_edge":1024}"#), Rendition::MaxEdge(1024));
        assert_eq!(r(r#"{"max_height":540}"#), Rendition::MaxHeight(540));
        assert_eq!(r(r#"{"set":[2048,320]}"#), Rendition::Set(vec![2048, 320]));
        assert_eq!(r(r#"{"preset":"web"}"#), Rendition::Preset("web".into()));
        assert!(serde_json::from_str::<Rendition>(r#"{"max_width":10}"#).is_err());
    }

    #[test]
    fn request_defaults() {
        let r: Request = serde_json::from_str(r#"{"rendition":"proxy"}"#).unwrap();
        assert_eq!(
            (r.format, r.quality, r.on_exceed, r.page),
            (Format::Auto, 85, OnExceed::Clamp, 1)
        );
    }
}
