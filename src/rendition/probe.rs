//! Reads only the header: what the source is and how big, so that a
//! 60 000 × 60 000 PNG is refused before a byte of pixels is allocated.

use image::{ImageDecoder, ImageFormat, ImageReader};

use super::input::Input;
use super::{EngineLimits, RenderError, rows};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Webp,
    Tiff,
    Gif,
    Bmp,
    Ico,
    Pnm,
}

impl SourceFormat {
    pub(crate) fn image_format(self) -> ImageFormat {
        match self {
            SourceFormat::Jpeg => ImageFormat::Jpeg,
            SourceFormat::Png => ImageFormat::Png,
            SourceFormat::Webp => ImageFormat::WebP,
            SourceFormat::Tiff => ImageFormat::Tiff,
            SourceFormat::Gif => ImageFormat::Gif,
            SourceFormat::Bmp => ImageFormat::Bmp,
            SourceFormat::Ico => ImageFormat::Ico,
            SourceFormat::Pnm => ImageFormat::Pnm,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub format: SourceFormat,
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

/// How much of a JPEG file is read for its header.
const JPEG_HEADER_BYTES: usize = 4 << 20;

pub fn probe(source: &[u8], limits: &EngineLimits) -> Result<Header, RenderError> {
    probe_input(Input::Bytes(source), limits)
}

/// The header of an original in memory or in a file (only its first
/// bytes and its header are read).
pub fn probe_input(input: Input<'_>, limits: &EngineLimits) -> Result<Header, RenderError> {
    let bytes = input.len()?;
    if bytes > limits.max_source_bytes {
        return Err(RenderError::TooLarge {
            what: "source bytes",
            value: bytes,
            max: limits.max_source_bytes,
        });
    }
    let format = match image::guess_format(&input.head()?) {
        Ok(ImageFormat::Jpeg) => SourceFormat::Jpeg,
        Ok(ImageFormat::Png) => SourceFormat::Png,
        Ok(ImageFormat::WebP) => SourceFormat::Webp,
        Ok(ImageFormat::Tiff) => SourceFormat::Tiff,
        Ok(ImageFormat::Gif) => SourceFormat::Gif,
        Ok(ImageFormat::Bmp) => SourceFormat::Bmp,
        Ok(ImageFormat::Ico) => SourceFormat::Ico,
        Ok(ImageFormat::Pnm) => SourceFormat::Pnm,
        Ok(other) => {
            return Err(RenderError::UnsupportedFormat(format!(
                "{other:?} sources are not read"
            )));
        }
        Err(_) => return Err(RenderError::UnsupportedFormat("not an image this engine reads".into())),
    };
    let (width, height, pixel_bytes, rgb8) = match format {
        SourceFormat::Jpeg => {
            // The markers before the first scan (EXIF, ICC, tables) are
            // rarely more than a few hundred KiB: a file is not read whole.
            let prefix = input.prefix(JPEG_HEADER_BYTES)?;
            let h = match turbojpeg::read_header(&prefix) {
                Ok(h) => h,
                Err(_) if !input.in_memory() && bytes > JPEG_HEADER_BYTES as u64 => {
                    turbojpeg::read_header(&input.bytes()?).map_err(RenderError::corrupt)?
                }
                Err(e) => return Err(RenderError::corrupt(e)),
            };
            let cmyk = matches!(h.colorspace, turbojpeg::Colorspace::CMYK | turbojpeg::Colorspace::YCCK);
            (
                u32::try_from(h.width).unwrap_or(u32::MAX),
                u32::try_from(h.height).unwrap_or(u32::MAX),
                if cmyk { 4 } else { 3 },
                !cmyk,
            )
        }
        _ => {
            let decoder = ImageReader::with_format(input.open()?, format.image_format())
                .into_decoder()
                .map_err(RenderError::corrupt)?;
            let (w, h) = decoder.dimensions();
            let color = decoder.color_type();
            let rgb8 = matches!(color, image::ColorType::Rgb8 | image::ColorType::Rgba8);
            (w, h, color.bytes_per_pixel(), rgb8)
        }
    };
    if width == 0 || height == 0 {
        return Err(RenderError::CorruptInput(format!("{width}×{height} pixels")));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_source_pixels {
        return Err(RenderError::TooLarge {
            what: "source pixels",
            value: pixels,
            max: limits.max_source_pixels,
        });
    }
    let band_rows = match format {
        SourceFormat::Png => rows::png_streams(input.open()?)?.then_some(1),
        SourceFormat::Tiff => rows::tiff_band_rows(input.open()?)?,
        _ => None,
    };
    Ok(Header {
        format,
        width,
        height,
        band_rows,
        pixel_bytes,
        rgb8,
    })
}
