//! Encoding: JPEG with libjpeg-turbo, WebP with libwebp, PNG with `image`,
//! AVIF with libaom (through libheif).
//! Outputs carry no metadata but the credits (artist, copyright) on JPEG.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageEncoder, RgbImage};

use super::source::Credits;
use super::{OutputFormat, RenderError, heif, jpeg_meta};

pub fn encode(
    image: &DynamicImage,
    format: OutputFormat,
    quality: u8,
    credits: &Credits,
) -> Result<Vec<u8>, RenderError> {
    let (w, h) = (image.width(), image.height());
    let failed = |e: &dyn std::fmt::Display| RenderError::CorruptInput(format!("encode: {e}"));
    match format {
        OutputFormat::Jpeg | OutputFormat::Auto => {
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
            Ok(with_credits(jpeg, credits))
        }
        OutputFormat::Webp => {
            let encoder = match image {
                DynamicImage::ImageRgba8(i) => webp::Encoder::from_rgba(i.as_raw(), w, h),
                _ => webp::Encoder::from_rgb(image.as_bytes(), w, h),
            };
            Ok(encoder.encode(f32::from(quality)).to_vec())
        }
        OutputFormat::Avif => match image {
            DynamicImage::ImageRgb8(i) => heif::encode_avif(i.as_raw(), w, h, false, quality),
            DynamicImage::ImageRgba8(i) => heif::encode_avif(i.as_raw(), w, h, true, quality),
            other if other.color().has_alpha() => heif::encode_avif(other.to_rgba8().as_raw(), w, h, true, quality),
            other => heif::encode_avif(other.to_rgb8().as_raw(), w, h, false, quality),
        },
        OutputFormat::Tiff => print_tiff(image).map_err(|e| failed(&e)),
        OutputFormat::Png => {
            let mut out = Vec::new();
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
                .write_image(image.as_bytes(), w, h, image.color().into())
                .map_err(|e| failed(&e))?;
            Ok(out)
        }
    }
}

/// A TIFF for print: Deflate with the horizontal predictor, 8-bit RGB (RGBA
/// where there is alpha), the sRGB profile its pixels are in, 300 pixels
/// per inch.
fn print_tiff(image: &DynamicImage) -> Result<Vec<u8>, String> {
    use tiff::encoder::compression::DeflateLevel;
    use tiff::encoder::{Compression, Rational, TiffEncoder, colortype};
    use tiff::tags::{Predictor, ResolutionUnit, Tag};
    let icc = lcms2::Profile::new_srgb().icc().map_err(|e| e.to_string())?;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut tiff = TiffEncoder::new(&mut out)
        .map_err(|e| e.to_string())?
        .with_compression(Compression::Deflate(DeflateLevel::Balanced))
        .with_predictor(Predictor::Horizontal);
    let (w, h) = (image.width(), image.height());
    let ppi = Rational { n: 300, d: 1 };
    macro_rules! write {
        ($color:ty, $pixels:expr) => {{
            let mut page = tiff.new_image::<$color>(w, h).map_err(|e| e.to_string())?;
            page.resolution(ResolutionUnit::Inch, ppi);
            page.encoder()
                .write_tag(Tag::IccProfile, &icc[..])
                .map_err(|e| e.to_string())?;
            page.write_data($pixels).map_err(|e| e.to_string())
        }};
    }
    if image.color().has_alpha() {
        write!(colortype::RGBA8, image.to_rgba8().as_raw())?;
    } else {
        write!(colortype::RGB8, flatten(image).as_raw())?;
    }
    Ok(out.into_inner())
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

/// Puts the credits back as a minimal EXIF segment right after SOI.
fn with_credits(jpeg: Vec<u8>, credits: &Credits) -> Vec<u8> {
    let tags: Vec<(u16, &str)> = [(0x013B, &credits.artist), (0x8298, &credits.copyright)]
        .into_iter()
        .filter_map(|(tag, v)| v.as_deref().map(|v| (tag, v)))
        .collect();
    if tags.is_empty() || jpeg.len() < 2 {
        return jpeg;
    }
    let mut out = Vec::with_capacity(jpeg.len() + 128);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&jpeg_meta::exif_segment(&tags));
    out.extend_from_slice(&jpeg[2..]);
    out
}
