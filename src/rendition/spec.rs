//! What the engine is asked to make: sizes, format, quality, watermark.
//! Plain values: the engine knows nothing of policies or jobs.

use std::sync::Arc;

use image::RgbaImage;
use sha2::{Digest, Sha256};

/// Bumped when the engine's output for the same spec changes, so cached
/// renditions made by an older engine are not reused.
pub const ENGINE_VERSION: u32 = 1;

/// One output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OutputFormat {
    Jpeg,
    Webp,
    Png,
    /// AV1 in HEIF (libaom through libheif), alpha kept.
    Avif,
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
            OutputFormat::Avif => "avif",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg | OutputFormat::Auto => "image/jpeg",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Png => "image/png",
            OutputFormat::Avif => "image/avif",
        }
    }
}

/// Where the mark sits on the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum Position {
    /// Repeated diagonally over the whole picture.
    #[default]
    Tiled,
    Center,
    BottomRight,
}

/// A decoded logo, with the digest that names it in content addresses
/// (computed once, not per rendition).
#[derive(Debug, Clone, PartialEq)]
pub struct Logo {
    pub pixels: Arc<RgbaImage>,
    digest: String,
}

impl Logo {
    pub fn new(pixels: RgbaImage) -> Logo {
        let digest = hex::encode(&Sha256::digest(pixels.as_raw())[..8]);
        Logo {
            pixels: Arc::new(pixels),
            digest,
        }
    }
}

/// The watermark to burn in: final text, opacity, place and logo.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WatermarkSpec {
    pub text: String,
    pub opacity: f32,
    pub position: Position,
    /// Drawn before the text. Sent to an engine process beside the
    /// message, as raw pixels.
    #[serde(skip)]
    pub logo: Option<Logo>,
}

impl WatermarkSpec {
    /// What makes two marks look different, for content addresses.
    pub fn identity(&self) -> String {
        let logo = self.logo.as_ref().map(|l| l.digest.as_str());
        format!("{}|{}|{:?}|{logo:?}", self.text, self.opacity, self.position)
    }
}

/// What to make of one image source.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    pub sizes: Vec<Size>,
    pub format: OutputFormat,
    pub quality: u8,
    pub watermark: Option<WatermarkSpec>,
    /// The page of a PDF or a multipage TIFF, from 1.
    pub page: u32,
}

impl Spec {
    /// The content address of one output: the same source, size and look
    /// give the same key, so a repeated request is a cache hit.
    pub fn digest(&self, source_identity: &str, size: Size, format: OutputFormat) -> String {
        let mut h = Sha256::new();
        let wm = self.watermark.as_ref().map(WatermarkSpec::identity);
        let mut line = format!(
            "v{ENGINE_VERSION}|{source_identity}|{size:?}|{format:?}|q{}|wm:{wm:?}",
            self.quality
        );
        // Page 1 keeps the addresses renditions had before pages were asked.
        if self.page != 1 {
            line.push_str(&format!("|p{}", self.page));
        }
        h.update(line.as_bytes());
        hex::encode(&h.finalize()[..16])
    }
}
