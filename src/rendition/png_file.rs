//! PNG: box-shrunk row by row as it is read ([`super::rows`]) unless it is
//! interlaced, then decoded whole by `image`.

use image::ImageFormat;

use super::format::{Decoding, Format, Layout, Probing};
use super::source::{Decoded, SourceFormat, full_decode_bytes};
use super::{RenderError, caps, image_crate, rows, shrink};

pub(super) const FORMAT: Format = Format::new(SourceFormat::Png, image_crate::sniff, header, decode)
    .image(ImageFormat::Png)
    .caps(caps::png_file)
    .band_rows(band_rows);

fn header(format: &Format, p: &Probing<'_>) -> Result<Option<Layout>, RenderError> {
    image_crate::header(format, p.input).map(Some)
}

/// One row at a time, where it is not interlaced.
fn band_rows(p: &Probing<'_>) -> Result<Option<u32>, RenderError> {
    Ok(rows::png_streams(p.input.open()?)?.then_some(1))
}

fn decode(format: &Format, d: &Decoding<'_>) -> Result<Decoded, RenderError> {
    let factor = shrink::factor(d.header.long_edge(), d.largest);
    match rows::read_png(d.input.open()?, factor, full_decode_bytes(d.header))? {
        Some(decoded) => Ok(decoded),
        None => image_crate::decode(format, d.input, d.header),
    }
}
