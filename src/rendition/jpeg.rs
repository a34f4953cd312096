//! JPEG through libjpeg-turbo, shrunk on load (DCT scaling by 1/2, 1/4 or
//! 1/8) whenever the largest output still fits, as libvips does; CMYK and
//! YCCK through their profile to sRGB. Junk libjpeg-turbo stops at goes to
//! `image`'s more lenient decoder.

use image::metadata::Orientation;
use image::{DynamicImage, ImageFormat, RgbImage};
use turbojpeg::{Colorspace, Decompressor, PixelFormat, ScalingFactor};

use super::format::{Decoding, Drawn, Format, Layout, Probing};
use super::input::Input;
use super::source::{Decoded, Header, Metadata, SourceFormat};
use super::{RenderError, caps, color, image_crate, jpeg_meta};

pub(super) const FORMAT: Format = Format::new(SourceFormat::Jpeg, image_crate::sniff, header, decode)
    .image(ImageFormat::Jpeg)
    .in_memory()
    .drawn(Drawn::DctScaled);

/// How much of a JPEG's first scan is read with its header: libjpeg
/// reads the header up to the scan's start.
const JPEG_SCAN_BYTES: u64 = 64 << 10;

fn header(format: &Format, p: &Probing<'_>) -> Result<Option<Layout>, RenderError> {
    match turbo_header(p.input) {
        // Read by `image` instead (see `decode`).
        Err(e) if e.is_skipped_bytes_warning() => image_crate::header(format, p.input).map(Some),
        other => other.map(Some),
    }
}

fn decode(format: &Format, d: &Decoding<'_>) -> Result<Decoded, RenderError> {
    match decode_turbo(&d.input.bytes()?, d.header, d.largest) {
        // Junk libjpeg-turbo stops at; `image`'s decoder steps over it.
        Err(e) if e.is_skipped_bytes_warning() => image_crate::decode(format, d.input, d.header),
        other => other,
    }
}

/// A JPEG's size and pixel layout, from its first bytes (the markers
/// before the first scan: EXIF, ICC, tables, rarely more than a few
/// hundred KiB, and never more than the cap), so a file is not read whole.
fn turbo_header(input: Input<'_>) -> Result<Layout, RenderError> {
    let header_end = caps::jpeg(&mut *input.open()?)?;
    let prefix = input.prefix(usize::try_from(header_end + JPEG_SCAN_BYTES).unwrap_or(usize::MAX))?;
    let h = turbojpeg::read_header(&prefix).map_err(RenderError::corrupt)?;
    let cmyk = matches!(h.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    Ok(Layout::new(
        u32::try_from(h.width).unwrap_or(u32::MAX),
        u32::try_from(h.height).unwrap_or(u32::MAX),
        if cmyk { 4 } else { 3 },
        !cmyk,
    ))
}

/// The smallest DCT scale whose long edge still covers `largest`.
pub fn shrink_on_load(long_edge: u32, largest: Option<u32>) -> ScalingFactor {
    let Some(target) = largest else {
        return ScalingFactor::ONE;
    };
    [
        ScalingFactor::ONE_EIGHTH,
        ScalingFactor::ONE_QUARTER,
        ScalingFactor::ONE_HALF,
    ]
    .into_iter()
    .find(|f| f.scale(long_edge as usize) >= target as usize)
    .unwrap_or(ScalingFactor::ONE)
}

fn decode_turbo(source: &[u8], header: &Header, largest: Option<u32>) -> Result<Decoded, RenderError> {
    let meta = jpeg_meta::read(source);
    let mut tj = Decompressor::new().map_err(RenderError::corrupt)?;
    let h = tj.read_header(source).map_err(RenderError::corrupt)?;
    let factor = shrink_on_load(header.long_edge(), largest);
    tj.set_scaling_factor(factor).map_err(RenderError::corrupt)?;
    let scaled = h.scaled(factor);
    let cmyk = matches!(h.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let format = if cmyk { PixelFormat::CMYK } else { PixelFormat::RGB };
    let pitch = scaled.width * format.size();
    let mut pixels = vec![0u8; pitch * scaled.height];
    let out = turbojpeg::Image {
        pixels: pixels.as_mut_slice(),
        width: scaled.width,
        pitch,
        height: scaled.height,
        format,
    };
    // libjpeg-turbo reports a truncated file as an error (a warning made fatal).
    tj.decompress(source, out).map_err(RenderError::corrupt)?;
    let (rgb, icc) = if cmyk {
        // The profile was used on the way to sRGB.
        (color::cmyk_to_srgb(&pixels, meta.icc.as_deref(), meta.adobe)?, None)
    } else {
        (pixels, meta.icc)
    };
    let image = RgbImage::from_raw(scaled.width as u32, scaled.height as u32, rgb)
        .ok_or_else(|| RenderError::CorruptInput("decoded size mismatch".into()))?;
    let orientation = meta
        .exif
        .as_deref()
        .and_then(jpeg_meta::orientation)
        .and_then(Orientation::from_exif);
    Ok(Decoded {
        image: DynamicImage::ImageRgb8(image),
        icc,
        metadata: Metadata {
            exif: meta.exif,
            xmp: meta.xmp,
            iim: meta.iim,
        },
        orientation: orientation.unwrap_or(Orientation::NoTransforms),
    })
}
