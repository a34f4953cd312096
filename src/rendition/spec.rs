//! What the engine is asked to make: sizes, format, quality, watermark.
//! Plain values: the engine knows nothing of policies or jobs.

use std::sync::Arc;

use image::RgbaImage;
use sha2::{Digest, Sha256};

pub use super::metadata::{MetadataSpec, Profile as MetadataProfile};

/// Bumped when the engine's output for the same spec changes, so cached
/// renditions made by an older engine are not reused.
pub const ENGINE_VERSION: u32 = 2;

/// One output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Size {
    /// The source's own size (after orientation).
    Full,
    /// The long edge at most this many pixels; never upscaled.
    LongEdge(u32),
    /// A `width`×`height` frame, filled as `fit` says (a preset's). Never
    /// upscaled: a source too small for it gives the largest frame of the
    /// same shape it can fill.
    Frame(Frame),
}

/// A frame of a fixed shape (docs/contract.md#presets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub fit: Fit,
    /// Where a `cover` crop is centred, in ten-thousandths of the upright
    /// picture's width and height (the asset's focal point); `None`: the
    /// picture's centre.
    pub focus: Option<[u16; 2]>,
}

/// How a picture fills a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Inside the frame, whole, aspect kept: the output is at most the frame.
    #[default]
    Inside,
    /// Fills the frame, cropped around the focus: the output is the frame.
    Cover,
    /// Inside the frame, whole, on a canvas of the frame's size (white, or
    /// transparent where the output keeps alpha).
    Pad,
}

impl Size {
    /// The long edge the output has at most (`None`: the source's).
    pub fn long_edge(&self) -> Option<u32> {
        match self {
            Size::Full => None,
            Size::LongEdge(n) => Some(*n),
            Size::Frame(f) => Some(f.width.max(f.height)),
        }
    }

    /// The long edge the whole upright picture (`width`×`height`) is
    /// scaled to on the way to this size (`None`: kept whole): a cover
    /// frame crops after scaling, so it needs more than its own edge.
    pub fn scaled_edge(&self, width: u32, height: u32) -> Option<u32> {
        match self {
            Size::Frame(f) => {
                let scale = f.scale(width, height);
                Some(((f64::from(width.max(height)) * scale).ceil() as u32).max(1))
            }
            other => other.long_edge(),
        }
    }
}

impl Frame {
    /// How much the whole picture is scaled for this frame, at most 1.
    pub fn scale(&self, width: u32, height: u32) -> f64 {
        let (sx, sy) = (
            f64::from(self.width) / f64::from(width.max(1)),
            f64::from(self.height) / f64::from(height.max(1)),
        );
        match self.fit {
            Fit::Cover => sx.max(sy).min(1.0),
            Fit::Inside | Fit::Pad => sx.min(sy).min(1.0),
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
    /// For print: Deflate, 8-bit RGB(A), sRGB profile embedded, 300 ppi.
    Tiff,
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
            OutputFormat::Tiff => "tif",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg | OutputFormat::Auto => "image/jpeg",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Png => "image/png",
            OutputFormat::Avif => "image/avif",
            OutputFormat::Tiff => "image/tiff",
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

/// How an output's colours are written.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum Colour {
    /// sRGB (the engine's working space), its profile embedded in TIFF.
    #[default]
    Srgb,
    /// Separated to CMYK through a printer's ICC profile (JPEG and TIFF),
    /// the profile embedded.
    Cmyk(PrintProfile),
}

/// An operator's output profile for print (docs/metadata.md#print): a
/// name the policy's presets use and the ICC bytes, crossing to an engine
/// as hex.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PrintProfile {
    pub name: String,
    #[serde(with = "hex::serde")]
    pub icc: Vec<u8>,
}

impl PrintProfile {
    /// What names its bytes in content addresses.
    pub fn identity(&self) -> String {
        format!("{}:{}", self.name, hex::encode(&Sha256::digest(&self.icc)[..8]))
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
    /// The metadata the outputs carry (docs/metadata.md).
    pub metadata: MetadataSpec,
    /// sRGB, or CMYK for print.
    #[serde(default)]
    pub colour: Colour,
    /// Pixels per inch recorded in the file (JPEG, PNG, TIFF); `None`:
    /// none (TIFF: 300).
    #[serde(default)]
    pub dpi: Option<u16>,
    /// The invisible mark naming the delivery (docs/forensic.md).
    #[serde(default)]
    pub forensic: Option<super::forensic::ForensicSpec>,
}

impl Spec {
    /// The content address of one output: the same source, size and look
    /// give the same key, so a repeated request is a cache hit.
    pub fn digest(&self, source_identity: &str, size: Size, format: OutputFormat) -> String {
        let mut h = Sha256::new();
        let wm = self.watermark.as_ref().map(WatermarkSpec::identity);
        let md = &self.metadata;
        let mut line = format!(
            "v{ENGINE_VERSION}|{source_identity}|{size:?}|{format:?}|q{}|wm:{wm:?}|md:{}|terms:{:?}",
            self.quality,
            md.profile.name(),
            md.usage_terms
        );
        if let Colour::Cmyk(profile) = &self.colour {
            line.push_str(&format!("|cmyk:{}", profile.identity()));
        }
        if let Some(mark) = &self.forensic {
            line.push_str(&format!("|fm:{}", mark.identity()));
        }
        if let Some(dpi) = self.dpi {
            line.push_str(&format!("|dpi{dpi}"));
        }
        // Page 1 keeps the addresses renditions had before pages were asked.
        if self.page != 1 {
            line.push_str(&format!("|p{}", self.page));
        }
        h.update(line.as_bytes());
        hex::encode(&h.finalize()[..16])
    }
}
