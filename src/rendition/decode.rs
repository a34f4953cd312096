//! Decoding to upright sRGB pixels. JPEG goes through libjpeg-turbo and is
//! shrunk on load (DCT scaling by 1/2, 1/4 or 1/8) whenever the largest
//! output still fits, as libvips does; PNG and TIFF are box-shrunk as their
//! rows are read ([`super::rows`]); the rest goes through `image` whole.

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, RgbImage};
use turbojpeg::{Colorspace, Decompressor, PixelFormat, ScalingFactor};

use super::input::Input;
use super::source::{Header, SourceFormat};
use super::{
    EngineLimits, RenderError, color, heif, jp2, jpeg_meta, libtiff, magick, pdf, psd, raw, rows, shrink, svg,
};

pub use super::source::{Credits, Picture};
use super::source::{Decoded, eight_bit, full_decode_bytes};

/// Decodes `input`; `largest` is the biggest long edge any output needs
/// (`None`: full size), which lets JPEG decode at a reduced scale and PNG
/// and TIFF shrink row by row as they are read.
pub fn decode(
    input: Input<'_>,
    header: &Header,
    largest: Option<u32>,
    limits: &EngineLimits,
) -> Result<Picture, RenderError> {
    let decoded = match header.format {
        SourceFormat::Jpeg => match decode_jpeg(&input.bytes()?, header, largest) {
            // Junk libjpeg-turbo stops at; `image`'s decoder steps over it.
            Err(e) if e.is_skipped_bytes_warning() => decode_other(input, header)?,
            other => other?,
        },
        SourceFormat::Heif => heif::decode(&input.bytes()?)?,
        SourceFormat::Jp2 => jp2::decode(input, header.long_edge(), largest)?,
        SourceFormat::Svg => svg::decode(&svg::source(input)?, (header.width, header.height), largest, limits)?,
        SourceFormat::Raw => raw::decode(input, (header.width, header.height), largest, limits)?,
        SourceFormat::Pdf => pdf::decode(input, header.page, (header.width, header.height), largest, limits)?,
        SourceFormat::Psd => {
            let layout = psd::layout(input)?;
            psd::read(input, &layout, shrink::factor(header.long_edge(), largest))?
        }
        // Shrunk as read where the `tiff` crate streams it; else libtiff
        // (planar, YCbCr, Lab, CMYK with its profile, …); else, for what
        // libtiff's RGBA interface refuses (floating point), `image`.
        // A TIFF the estimate took as streamed is not decoded whole.
        SourceFormat::Tiff => match decode_rows(input, header, largest) {
            Ok(Some(decoded)) => decoded,
            Err(e) if header.band_rows.is_some() => return Err(e),
            streamed => match libtiff::decode(
                input,
                header.page,
                (header.width, header.height),
                full_decode_bytes(header),
            ) {
                Ok(decoded) => decoded,
                Err(_) => match streamed {
                    Err(e) => return Err(e),
                    Ok(_) => decode_other(input, header)?,
                },
            },
        },
        SourceFormat::Png => match decode_rows(input, header, largest)? {
            Some(decoded) => decoded,
            None => decode_other(input, header)?,
        },
        f if f.is_legacy() => decode_magick(input, header, limits)?,
        // What `image` cannot read of a BMP, TGA, PNM, DDS or GIF, ImageMagick may.
        _ => match decode_other(input, header) {
            Err(e) if magick::coder(header.format).is_some() && e.is_unreadable() => {
                decode_magick(input, header, limits).map_err(|_| e)?
            }
            other => other?,
        },
    };
    Ok(decoded.finish(header))
}

fn decode_magick(input: Input<'_>, header: &Header, limits: &EngineLimits) -> Result<Decoded, RenderError> {
    magick::decode(input, header.format, (header.width, header.height), limits)
}

/// PNG and TIFF through the shrinking readers, where their layout allows
/// (a TIFF's first page only).
fn decode_rows(input: Input<'_>, header: &Header, largest: Option<u32>) -> Result<Option<Decoded>, RenderError> {
    if header.page != 1 {
        return Ok(None);
    }
    let factor = shrink::factor(header.long_edge(), largest);
    let max = full_decode_bytes(header);
    match header.format {
        SourceFormat::Png => rows::read_png(input.open()?, factor, max),
        _ => rows::read_tiff(input.open()?, factor, max),
    }
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

fn decode_jpeg(source: &[u8], header: &Header, largest: Option<u32>) -> Result<Decoded, RenderError> {
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
        credits: Credits::from_exif(meta.exif.as_deref()),
        orientation: orientation.unwrap_or(Orientation::NoTransforms),
    })
}

fn decode_other(input: Input<'_>, header: &Header) -> Result<Decoded, RenderError> {
    let mut reader = header.format.image_reader(input)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(header.width);
    limits.max_image_height = Some(header.height);
    limits.max_alloc = Some(full_decode_bytes(header));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(RenderError::from_image)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let exif = decoder.exif_metadata().ok().flatten();
    let decoded = DynamicImage::from_decoder(decoder).map_err(RenderError::from_image)?;
    Ok(Decoded {
        image: eight_bit(decoded),
        icc,
        credits: Credits::from_exif(exif.as_deref()),
        orientation,
    })
}
