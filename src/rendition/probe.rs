//! Reads only the header: what the source is and how big, so that a
//! 60 000 × 60 000 PNG is refused before a byte of pixels is allocated.
//! Which format and how its header is read are the format table's
//! ([`super::formats`]); the caps common to every format are here.

use super::format::Probing;
use super::input::Input;
use super::{EngineLimits, RenderError, formats};

pub use super::source::{Header, SourceFormat};

pub fn probe(source: &[u8], limits: &EngineLimits) -> Result<Header, RenderError> {
    probe_input(Input::Bytes(source), limits, 1)
}

/// The header of page `page` (from 1; a PDF's or a TIFF's, every other
/// format has one) of an original in memory or in a file (only its first
/// bytes and its header are read).
pub fn probe_input(input: Input<'_>, limits: &EngineLimits, page: u32) -> Result<Header, RenderError> {
    let bytes = input.len()?;
    if bytes > limits.max_source_bytes {
        return Err(RenderError::TooLarge {
            what: "source bytes",
            value: bytes,
            max: limits.max_source_bytes,
        });
    }
    let probing = Probing { input, page, limits };
    let (format, layout) = formats::identify(&probing)?;
    let (width, height) = (layout.width, layout.height);
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
    Ok(Header {
        format: format.kind,
        page,
        width,
        height,
        band_rows: (format.band_rows)(&probing)?,
        pixel_bytes: layout.pixel_bytes,
        rgb8: layout.rgb8,
    })
}
