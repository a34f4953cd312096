//! Reads only the header: what the source is and how big, so that a
//! 60 000 × 60 000 PNG is refused before a byte of pixels is allocated.

use std::io::Cursor;

use image::{ImageFormat, ImageReader};

use super::{EngineLimits, RenderError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Webp,
    Tiff,
    Gif,
    Bmp,
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
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub format: SourceFormat,
    pub width: u32,
    pub height: u32,
}

impl Header {
    pub fn long_edge(&self) -> u32 {
        self.width.max(self.height)
    }
}

pub fn probe(source: &[u8], limits: &EngineLimits) -> Result<Header, RenderError> {
    let bytes = source.len() as u64;
    if bytes > limits.max_source_bytes {
        return Err(RenderError::TooLarge {
            what: "source bytes",
            value: bytes,
            max: limits.max_source_bytes,
        });
    }
    let format = match image::guess_format(source) {
        Ok(ImageFormat::Jpeg) => SourceFormat::Jpeg,
        Ok(ImageFormat::Png) => SourceFormat::Png,
        Ok(ImageFormat::WebP) => SourceFormat::Webp,
        Ok(ImageFormat::Tiff) => SourceFormat::Tiff,
        Ok(ImageFormat::Gif) => SourceFormat::Gif,
        Ok(ImageFormat::Bmp) => SourceFormat::Bmp,
        Ok(other) => {
            return Err(RenderError::UnsupportedFormat(format!(
                "{other:?} sources are not read"
            )));
        }
        Err(_) => return Err(RenderError::UnsupportedFormat("not an image this engine reads".into())),
    };
    let (width, height) = match format {
        SourceFormat::Jpeg => {
            let h = turbojpeg::read_header(source).map_err(RenderError::corrupt)?;
            (
                u32::try_from(h.width).unwrap_or(u32::MAX),
                u32::try_from(h.height).unwrap_or(u32::MAX),
            )
        }
        _ => ImageReader::with_format(Cursor::new(source), format.image_format())
            .into_dimensions()
            .map_err(RenderError::corrupt)?,
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
    Ok(Header { format, width, height })
}
