//! What the engine makes for a decision: sizes, format, quality, watermark.

use std::sync::Arc;

use image::RgbaImage;
use sha2::{Digest, Sha256};

use crate::job::{Format, Request};
use crate::policy::document::{Watermark, WatermarkPosition};
use crate::policy::{Decision, Delivery, Target};

/// Bumped when the engine's output for the same spec changes, so cached
/// renditions made by an older engine are not reused.
pub const ENGINE_VERSION: u32 = 1;

/// One output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    /// The source's own size (after orientation).
    Full,
    /// The long edge at most this many pixels; never upscaled.
    LongEdge(u32),
}

impl Size {
    pub fn long_edge(&self) -> Option<u32> {
        match self {
            Size::Full => None,
            Size::LongEdge(n) => Some(*n),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Jpeg,
    Webp,
    Png,
    /// PNG when the picture has alpha, else JPEG.
    Auto,
}

impl OutputFormat {
    pub fn resolve(self, has_alpha: bool) -> OutputFormat {
        match self {
            OutputFormat::Auto if has_alpha => OutputFormat::Png,
            OutputFormat::Auto => OutputFormat::Jpeg,
            other => other,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg | OutputFormat::Auto => "jpg",
            OutputFormat::Webp => "webp",
            OutputFormat::Png => "png",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg | OutputFormat::Auto => "image/jpeg",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Png => "image/png",
        }
    }
}

/// The watermark to burn in, with `{recipient}` already filled.
#[derive(Debug, Clone, PartialEq)]
pub struct WatermarkSpec {
    pub text: String,
    pub opacity: f32,
    pub position: WatermarkPosition,
    /// The policy's logo, decoded, drawn before the text.
    pub logo: Option<Arc<RgbaImage>>,
}

impl WatermarkSpec {
    /// What makes two marks look different, for content addresses.
    pub fn identity(&self) -> String {
        let logo = self
            .logo
            .as_ref()
            .map(|l| hex::encode(&Sha256::digest(l.as_raw())[..8]));
        format!("{}|{}|{:?}|{logo:?}", self.text, self.opacity, self.position)
    }

    /// The policy's watermark for this recipient; the default text when the
    /// policy's is empty, so a required watermark is never skipped.
    pub fn from_policy(w: &Watermark, recipient: &str) -> WatermarkSpec {
        let text = if w.text.trim().is_empty() {
            "© {recipient}"
        } else {
            w.text.as_str()
        };
        WatermarkSpec {
            text: text.replace("{recipient}", recipient),
            opacity: if w.opacity > 0.0 { w.opacity } else { 0.35 },
            position: w.position,
            logo: None,
        }
    }
}

/// What to make of one image source.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub sizes: Vec<Size>,
    pub format: OutputFormat,
    pub quality: u8,
    pub watermark: Option<WatermarkSpec>,
}

impl Spec {
    /// The image spec for an allowed decision, or `None` when the decision
    /// delivers the untouched original (nothing to render).
    pub fn for_image(decision: &Decision, request: &Request, watermark: &Watermark, recipient: &str) -> Option<Spec> {
        if !decision.allowed || decision.delivery == Some(Delivery::Original) {
            return None;
        }
        let sizes = decision
            .targets
            .iter()
            .filter_map(|t| match t {
                Target::Full => Some(Size::Full),
                Target::MaxEdge(n) | Target::MaxHeight(n) => Some(Size::LongEdge(*n)),
                Target::Original => None,
            })
            .collect();
        let format = match request.format {
            Format::Jpeg => OutputFormat::Jpeg,
            Format::Webp => OutputFormat::Webp,
            Format::Png => OutputFormat::Png,
            Format::Auto | Format::Mp4 => OutputFormat::Auto,
        };
        let watermark = decision
            .watermark
            .then(|| WatermarkSpec::from_policy(watermark, recipient));
        Some(Spec {
            sizes,
            format,
            quality: request.quality,
            watermark,
        })
    }

    /// The content address of one output: the same source, size and look
    /// give the same key, so a repeated request is a cache hit.
    pub fn digest(&self, source_identity: &str, size: Size, format: OutputFormat) -> String {
        let mut h = Sha256::new();
        let wm = self.watermark.as_ref().map(WatermarkSpec::identity);
        let line = format!(
            "v{ENGINE_VERSION}|{source_identity}|{size:?}|{format:?}|q{}|wm:{wm:?}",
            self.quality
        );
        h.update(line.as_bytes());
        hex::encode(&h.finalize()[..16])
    }
}
