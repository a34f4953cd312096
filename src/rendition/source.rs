//! What every format shares, in one leaf module: which format a source is
//! ([`SourceFormat`]), what its header says ([`Header`]), what a decoder
//! gives back ([`Decoded`], with its [`Metadata`]) and what the engine draws from
//! ([`Picture`]). `probe` and `decode` dispatch to the formats' own files,
//! and those files need only this module: no format file imports `probe` or
//! `decode`, so the engine's modules form no circle.

use image::DynamicImage;
use image::metadata::Orientation;

pub use super::metadata::Metadata;
use super::{RenderError, color};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Webp,
    Tiff,
    Gif,
    Bmp,
    Ico,
    Pnm,
    /// Truevision TGA: no magic number, told by a plausible header.
    Tga,
    /// DirectDraw Surface (DXT1/3/5 textures).
    Dds,
    /// HEIC/HEIF and AVIF, through libheif.
    Heif,
    /// Photoshop PSD and PSB: the merged composite.
    Psd,
    /// JPEG 2000: JP2 files and bare J2K codestreams, through OpenJPEG.
    Jp2,
    /// SVG, drawn by resvg at the output's size.
    Svg,
    /// A PDF page, drawn by poppler at the output's size.
    Pdf,
    /// SGI (IRIS) images, through ImageMagick, as are the seven below.
    Sgi,
    /// ZSoft PCX.
    Pcx,
    /// X PixMap.
    Xpm,
    /// Sun raster.
    SunRaster,
    /// FITS (astronomy): the first image.
    Fits,
    /// X BitMap (text, 1 bit).
    Xbm,
    /// Portable FloatMap (PNM's floating-point cousin).
    Pfm,
    /// DCX, multipage PCX: the first page.
    Dcx,
    /// Camera RAW (DNG, CR2, NEF, ARW, ORF, RW2, RAF, …), through dcraw.
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Header {
    pub format: SourceFormat,
    /// The page (from 1) this header is of: a PDF's or a TIFF's.
    pub page: u32,
    pub width: u32,
    pub height: u32,
    /// Rows decoded at a time when the decoder shrinks as it reads (PNG:
    /// 1, TIFF: a strip or a tile's height); `None`: the whole image is
    /// decoded at once.
    pub band_rows: Option<u32>,
    /// Bytes per pixel as the decoder makes them (16-bit RGBA: 8; CMYK: 4).
    pub pixel_bytes: u8,
    /// The decoder makes 8-bit RGB or RGBA: no converted copy is needed.
    pub rgb8: bool,
}

impl Header {
    pub fn long_edge(&self) -> u32 {
        self.width.max(self.height)
    }
}

/// Decoded, upright, sRGB, 8 bits per channel (RGB, or RGBA with alpha).
pub struct Picture {
    pub image: DynamicImage,
    /// The source's EXIF, XMP and IPTC, for the outputs' metadata profile.
    pub metadata: Metadata,
    /// The upright size of the original before any shrink on load: output
    /// sizes are fitted to it, so a shrunk decode gives the same sizes.
    pub full_size: (u32, u32),
}

impl Picture {
    /// Pixels at their full size (a video frame, a logo).
    pub fn new(image: DynamicImage) -> Picture {
        let full_size = (image.width(), image.height());
        Picture {
            image,
            metadata: Metadata::default(),
            full_size,
        }
    }
    pub fn width(&self) -> u32 {
        self.image.width()
    }
    pub fn height(&self) -> u32 {
        self.image.height()
    }
    pub fn has_alpha(&self) -> bool {
        self.image.color().has_alpha()
    }
}

/// What a decoder read, before colour and orientation are applied.
pub(super) struct Decoded {
    /// 8-bit grey, grey+alpha, RGB or RGBA.
    pub(super) image: DynamicImage,
    pub(super) icc: Option<Vec<u8>>,
    pub(super) metadata: Metadata,
    pub(super) orientation: Orientation,
}

impl Decoded {
    /// Pixels a child process drew in sRGB, upright, with no metadata.
    pub(super) fn drawn(image: DynamicImage) -> Decoded {
        Decoded {
            image,
            icc: None,
            metadata: Metadata::default(),
            orientation: Orientation::NoTransforms,
        }
    }

    /// To sRGB RGB(A), then upright.
    pub(super) fn finish(self, header: &Header) -> Picture {
        let mut image = if self.image.color().has_alpha() {
            DynamicImage::ImageRgba8(self.image.into_rgba8())
        } else {
            DynamicImage::ImageRgb8(self.image.into_rgb8())
        };
        if let Some(icc) = &self.icc {
            let channels = usize::from(image.color().channel_count());
            let pixels: &mut [u8] = match &mut image {
                DynamicImage::ImageRgba8(i) => i,
                DynamicImage::ImageRgb8(i) => i,
                _ => unreachable!("converted above"),
            };
            color::rgb_to_srgb(pixels, channels, icc);
        }
        image.apply_orientation(self.orientation);
        let turned = matches!(
            self.orientation,
            Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
        );
        let full_size = if turned {
            (header.height, header.width)
        } else {
            (header.width, header.height)
        };
        Picture {
            image,
            metadata: self.metadata,
            full_size,
        }
    }
}

/// The bytes a whole-image decode may allocate: 16-bit RGBA, plus the
/// 8-bit copy made of it.
pub(super) fn full_decode_bytes(header: &Header) -> u64 {
    u64::from(header.width) * u64::from(header.height) * 12 + (64 << 20)
}

/// 16-bit and float pictures to 8 bits; grey stays grey until shrunk.
pub(super) fn eight_bit(image: DynamicImage) -> DynamicImage {
    match image {
        i @ (DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_)) => i,
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.into_rgba8()),
        other => DynamicImage::ImageRgb8(other.into_rgb8()),
    }
}

/// The PNM (PPM or PAM) a child process printed.
pub(super) fn from_child_pnm(pnm: &[u8], what: &str) -> Result<DynamicImage, RenderError> {
    image::load_from_memory_with_format(pnm, image::ImageFormat::Pnm)
        .map_err(|e| RenderError::CorruptInput(format!("{what}: the child's output: {e}")))
}
