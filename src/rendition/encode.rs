//! Encoding: JPEG with libjpeg-turbo, WebP with libwebp, PNG with `image`,
//! AVIF with libaom (through libheif), TIFF with `tiff`; CMYK and the
//! resolution for print in rendition/print.rs.
//! Outputs carry the metadata their profile kept (rendition/metadata).

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageEncoder, RgbImage};

use super::metadata::{self, Embedded};
use super::spec::{Colour, Spec};
use super::{OutputFormat, RenderError, heif, print};

pub fn encode(
    image: &DynamicImage,
    format: OutputFormat,
    spec: &Spec,
    embedded: &Embedded,
) -> Result<Vec<u8>, RenderError> {
    let (w, h) = (image.width(), image.height());
    let quality = spec.quality;
    let failed = |e: &dyn std::fmt::Display| RenderError::CorruptInput(format!("encode: {e}"));
    let bytes = match (format, &spec.colour) {
        (OutputFormat::Jpeg | OutputFormat::Auto, Colour::Cmyk(printer)) => {
            let mut cmyk = print::separate(&flatten(image), &printer.icc)?;
            metadata::into_jpeg(print::cmyk_jpeg(&mut cmyk, (w, h), quality, &printer.icc)?, embedded)
        }
        (OutputFormat::Jpeg | OutputFormat::Auto, Colour::Srgb) => {
            let rgb = flatten(image);
            let mut tj = turbojpeg::Compressor::new().map_err(|e| failed(&e))?;
            tj.set_quality(i32::from(quality)).map_err(|e| failed(&e))?;
            tj.set_subsamp(turbojpeg::Subsamp::Sub2x2).map_err(|e| failed(&e))?;
            let pixels = turbojpeg::Image {
                pixels: rgb.as_raw().as_slice(),
                width: w as usize,
                pitch: w as usize * 3,
                height: h as usize,
                format: turbojpeg::PixelFormat::RGB,
            };
            let jpeg = tj.compress_to_vec(pixels).map_err(|e| failed(&e))?;
            metadata::into_jpeg(jpeg, embedded)
        }
        (OutputFormat::Webp, _) => {
            let encoder = match image {
                DynamicImage::ImageRgba8(i) => webp::Encoder::from_rgba(i.as_raw(), w, h),
                _ => webp::Encoder::from_rgb(image.as_bytes(), w, h),
            };
            let webp = encoder.encode(f32::from(quality)).to_vec();
            metadata::into_webp(webp, embedded, w, h, image.color().has_alpha())
        }
        (OutputFormat::Avif, _) => {
            let alpha = image.color().has_alpha();
            let pixels = match image {
                DynamicImage::ImageRgb8(i) => std::borrow::Cow::Borrowed(i.as_raw()),
                DynamicImage::ImageRgba8(i) => std::borrow::Cow::Borrowed(i.as_raw()),
                other if alpha => std::borrow::Cow::Owned(other.to_rgba8().into_raw()),
                other => std::borrow::Cow::Owned(other.to_rgb8().into_raw()),
            };
            heif::encode_avif(&pixels, (w, h), alpha, quality, embedded)?
        }
        (OutputFormat::Tiff, colour) => print_tiff(image, colour, spec.dpi, embedded)?,
        (OutputFormat::Png, _) => {
            let mut out = Vec::new();
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
                .write_image(image.as_bytes(), w, h, image.color().into())
                .map_err(|e| failed(&e))?;
            metadata::into_png(out, embedded)
        }
    };
    Ok(match (format, spec.dpi) {
        (OutputFormat::Jpeg | OutputFormat::Auto, Some(dpi)) => print::jpeg_density(bytes, dpi),
        (OutputFormat::Png, Some(dpi)) => print::png_density(bytes, dpi),
        _ => bytes,
    })
}

/// A TIFF for print: sRGB (its profile embedded) or CMYK (the printer's),
/// at `dpi` or 300 pixels per inch.
fn print_tiff(
    image: &DynamicImage,
    colour: &Colour,
    dpi: Option<u16>,
    embedded: &Embedded,
) -> Result<Vec<u8>, RenderError> {
    let failed = |e: String| RenderError::CorruptInput(format!("encode: {e}"));
    let srgb = lcms2::Profile::new_srgb().icc().map_err(|e| failed(e.to_string()))?;
    let (size, ppi) = ((image.width(), image.height()), dpi.unwrap_or(300));
    let page = |pixels, icc| print::TiffPage { pixels, size, icc, ppi };
    match colour {
        Colour::Cmyk(printer) => {
            let cmyk = print::separate(&flatten(image), &printer.icc)?;
            print::tiff(&page(print::Pixels::Cmyk(&cmyk), &printer.icc), embedded).map_err(failed)
        }
        Colour::Srgb if image.color().has_alpha() => {
            let rgba = image.to_rgba8();
            print::tiff(&page(print::Pixels::Rgba(rgba.as_raw()), &srgb), embedded).map_err(failed)
        }
        Colour::Srgb => {
            let rgb = flatten(image);
            print::tiff(&page(print::Pixels::Rgb(rgb.as_raw()), &srgb), embedded).map_err(failed)
        }
    }
}

/// JPEG has no alpha: composite over white (one pass, no RGBA copy).
fn flatten(image: &DynamicImage) -> std::borrow::Cow<'_, RgbImage> {
    match image {
        DynamicImage::ImageRgb8(i) => std::borrow::Cow::Borrowed(i),
        DynamicImage::ImageRgba8(rgba) => {
            let mut rgb = RgbImage::new(rgba.width(), rgba.height());
            for (src, dst) in rgba.pixels().zip(rgb.pixels_mut()) {
                let a = u32::from(src[3]);
                for c in 0..3 {
                    dst[c] = ((u32::from(src[c]) * a + 255 * (255 - a)) / 255) as u8;
                }
            }
            std::borrow::Cow::Owned(rgb)
        }
        other => std::borrow::Cow::Owned(other.to_rgb8()),
    }
}
