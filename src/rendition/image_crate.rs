//! The formats the `image` crate reads (WebP, GIF, BMP, ICO, PNM, DDS,
//! TGA), with ImageMagick for the variants `image` lacks (OS/2 bitmaps,
//! DX10 textures, a GIF frame without a palette), and the `image` header
//! and whole-image decode that JPEG, PNG and TIFF fall back to.

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use super::format::{Decoding, Format, Layout, Probing, Sniffing};
use super::input::{Input, Reader};
use super::source::{Decoded, Header, Metadata, SourceFormat, eight_bit, full_decode_bytes};
use super::{RenderError, caps, magick};

pub(super) const WEBP: Format = bitmap(SourceFormat::Webp, ImageFormat::WebP).caps(caps::webp_file);
pub(super) const GIF: Format = bitmap(SourceFormat::Gif, ImageFormat::Gif)
    .caps(caps::gif_file)
    .magick("gif");
pub(super) const BMP: Format = bitmap(SourceFormat::Bmp, ImageFormat::Bmp).magick("bmp");
pub(super) const ICO: Format = bitmap(SourceFormat::Ico, ImageFormat::Ico).caps(caps::ico_file);
pub(super) const PNM: Format = bitmap(SourceFormat::Pnm, ImageFormat::Pnm).magick("pnm");
pub(super) const DDS: Format = bitmap(SourceFormat::Dds, ImageFormat::Dds).magick("dds");
/// Truevision TGA has no magic number: it is told by a plausible header,
/// after every format that has one.
pub(super) const TGA: Format = Format {
    sniff: sniff_tga,
    ..bitmap(SourceFormat::Tga, ImageFormat::Tga).magick("tga")
};

/// A format `image` reads, told by `image`'s own sniffing.
const fn bitmap(kind: SourceFormat, image: ImageFormat) -> Format {
    Format::new(kind, sniff, header_or_magick, decode_or_magick).image(image)
}

/// `image`'s guess from the magic number is this format.
pub(super) fn sniff(format: &Format, s: &Sniffing<'_>) -> Result<bool, RenderError> {
    Ok(format.image.is_some() && image::guess_format(s.head).ok() == format.image)
}

fn sniff_tga(_: &Format, s: &Sniffing<'_>) -> Result<bool, RenderError> {
    Ok(s.unknown_to_image() && magick::sniff(s.head).is_none() && looks_like_tga(s.head))
}

/// A TGA header that makes sense: a known image type, a colour map only
/// where the type has one, a size, and a usual pixel depth.
fn looks_like_tga(head: &[u8]) -> bool {
    let Some(h) = head.get(..18) else { return false };
    let u16le = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let (map_type, image_type, map_depth, depth, descriptor) = (h[1], h[2], h[7], h[16], h[17]);
    let mapped = matches!(image_type, 1 | 9);
    matches!(image_type, 1 | 2 | 3 | 9 | 10 | 11)
        && if mapped { map_type == 1 } else { map_type <= 1 }
        && (!mapped || matches!(map_depth, 15 | 16 | 24 | 32) && u16le(5) > 0)
        && u16le(12) > 0
        && u16le(14) > 0
        && matches!(depth, 8 | 15 | 16 | 24 | 32)
        && descriptor & 0xC0 == 0
}

/// `image`'s header; ImageMagick's answer counts only where `image`
/// cannot read the file and ImageMagick can.
fn header_or_magick(format: &Format, p: &Probing<'_>) -> Result<Option<Layout>, RenderError> {
    match header(format, p.input) {
        Err(e) if format.magick.is_some() && e.is_unreadable() => magick::header_of(format, p).map_err(|_| e),
        other => other.map(Some),
    }
}

/// `image`'s decode; ImageMagick's where `image` cannot read it.
fn decode_or_magick(format: &Format, d: &Decoding<'_>) -> Result<Decoded, RenderError> {
    match decode(format, d.input, d.header) {
        Err(e) if format.magick.is_some() && e.is_unreadable() => magick::decode_entry(format, d).map_err(|_| e),
        other => other,
    }
}

/// An `image` reader over `input` for this format.
fn reader<'a>(format: &Format, input: Input<'a>) -> Result<ImageReader<Box<dyn Reader + 'a>>, RenderError> {
    let image = format
        .image
        .ok_or_else(|| RenderError::UnsupportedFormat(format!("{:?} is not read by `image`", format.kind)))?;
    Ok(ImageReader::with_format(input.open()?, image))
}

/// Size and pixel layout from an `image` decoder's header.
pub(super) fn header(format: &Format, input: Input<'_>) -> Result<Layout, RenderError> {
    let mut reader = reader(format, input)?;
    // A header's metadata is held in memory before any budget is asked.
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(caps::MAX_HEADER_BYTES);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(RenderError::from_image)?;
    let (w, h) = decoder.dimensions();
    let color = decoder.color_type();
    let rgb8 = matches!(color, image::ColorType::Rgb8 | image::ColorType::Rgba8);
    Ok(Layout::new(w, h, color.bytes_per_pixel(), rgb8))
}

/// The whole image through `image`, within the header's size.
pub(super) fn decode(format: &Format, input: Input<'_>, header: &Header) -> Result<Decoded, RenderError> {
    let mut reader = reader(format, input)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(header.width);
    limits.max_image_height = Some(header.height);
    limits.max_alloc = Some(full_decode_bytes(header));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(RenderError::from_image)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let metadata = Metadata {
        exif: decoder.exif_metadata().ok().flatten(),
        xmp: decoder.xmp_metadata().ok().flatten(),
        iim: decoder.iptc_metadata().ok().flatten(),
    }
    .capped(caps::MAX_METADATA_BYTES as usize);
    let decoded = DynamicImage::from_decoder(decoder).map_err(RenderError::from_image)?;
    Ok(Decoded {
        image: eight_bit(decoded),
        icc,
        metadata,
        orientation,
    })
}
