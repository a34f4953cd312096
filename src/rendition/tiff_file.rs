//! TIFF and BigTIFF, any page: shrunk strip by strip where the `tiff`
//! crate streams it ([`super::rows`]); else libtiff (planar, YCbCr, Lab,
//! CMYK with its profile, later pages, BigTIFF); else, for what libtiff's
//! RGBA interface refuses (floating point), `image`.

use image::ImageFormat;

use super::format::{Decoding, Format, Layout, Probing, Sniffing};
use super::source::{Decoded, SourceFormat, full_decode_bytes};
use super::{RenderError, caps, caps::MAX_HEADER_BYTES, image_crate, libtiff, rows, shrink};

pub(super) const FORMAT: Format = Format::new(SourceFormat::Tiff, sniff, header, decode)
    .image(ImageFormat::Tiff)
    .paged()
    .caps(caps::tiff_file)
    .band_rows(band_rows);

/// TIFF's magic, or BigTIFF's, which `image` does not recognise.
pub(super) fn sniff(format: &Format, s: &Sniffing<'_>) -> Result<bool, RenderError> {
    let big = s.head.starts_with(b"II\x2B\0") || s.head.starts_with(b"MM\0\x2B");
    Ok(big || image_crate::sniff(format, s)?)
}

/// What the `tiff` crate cannot read, libtiff may; pages after the first
/// are libtiff's.
fn header(format: &Format, p: &Probing<'_>) -> Result<Option<Layout>, RenderError> {
    match image_crate::header(format, p.input) {
        Ok(layout) if p.page == 1 => Ok(Some(layout)),
        _ => {
            // What libtiff may allocate at once to read a directory.
            let (w, h) = libtiff::header(p.input, p.page, MAX_HEADER_BYTES)?;
            Ok(Some(Layout::new(w, h, 4, true)))
        }
    }
}

/// A strip's or a row of tiles' height, where the first page streams.
fn band_rows(p: &Probing<'_>) -> Result<Option<u32>, RenderError> {
    if p.page != 1 {
        return Ok(None);
    }
    Ok(rows::tiff_band_rows(p.input.open()?).unwrap_or(None))
}

/// rows → libtiff → `image`. A TIFF the estimate took as streamed is not
/// decoded whole.
fn decode(format: &Format, d: &Decoding<'_>) -> Result<Decoded, RenderError> {
    let streamed = match d.header.page {
        1 => {
            let factor = shrink::factor(d.header.long_edge(), d.largest);
            rows::read_tiff(d.input.open()?, factor, full_decode_bytes(d.header))
        }
        _ => Ok(None),
    };
    match streamed {
        Ok(Some(decoded)) => return Ok(decoded),
        Err(e) if d.header.band_rows.is_some() => return Err(e),
        _ => {}
    }
    match libtiff::decode(d.input, d.header.page, d.size(), full_decode_bytes(d.header)) {
        Ok(decoded) => Ok(decoded),
        Err(_) => match streamed {
            Err(e) => Err(e),
            Ok(_) => image_crate::decode(format, d.input, d.header),
        },
    }
}
