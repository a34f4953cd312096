//! Encoding: JPEG with libjpeg-turbo, WebP with libwebp, PNG with `image`,
//! AVIF with libaom (through libheif).
//! Outputs carry the metadata their profile kept (rendition/metadata).

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageEncoder, RgbImage};

use super::metadata::{self, Embedded};
use super::{OutputFormat, RenderError, heif};

pub fn encode(
    image: &DynamicImage,
    format: OutputFormat,
    quality: u8,
    embedded: &Embedded,
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
            Ok(metadata::into_jpeg(jpeg, embedded))
        }
        OutputFormat::Webp => {
            let encoder = match image {
                DynamicImage::ImageRgba8(i) => webp::Encoder::from_rgba(i.as_raw(), w, h),
                _ => webp::Encoder::from_rgb(image.as_bytes(), w, h),
            };
            let webp = encoder.encode(f32::from(quality)).to_vec();
            Ok(metadata::into_webp(webp, embedded, w, h, image.color().has_alpha()))
        }
        OutputFormat::Avif => match image {
            DynamicImage::ImageRgb8(i) => heif::encode_avif(i.as_raw(), (w, h), false, quality, embedded),
            DynamicImage::ImageRgba8(i) => heif::encode_avif(i.as_raw(), (w, h), true, quality, embedded),
            other if other.color().has_alpha() => {
                heif::encode_avif(other.to_rgba8().as_raw(), (w, h), true, quality, embedded)
            }
            other => heif::encode_avif(other.to_rgb8().as_raw(), (w, h), false, quality, embedded),
        },
        OutputFormat::Tiff => print_tiff(image, embedded).map_err(|e| failed(&e)),
        OutputFormat::Png => {
            let mut out = Vec::new();
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
                .write_image(image.as_bytes(), w, h, image.color().into())
                .map_err(|e| failed(&e))?;
            Ok(metadata::into_png(out, embedded))
        }
    }
}

/// A TIFF for print: Deflate with the horizontal predictor, 8-bit RGB (RGBA
/// where there is alpha), the sRGB profile its pixels are in, 300 pixels
/// per inch; the metadata as tags (IFD0 text, XMP, IPTC-IIM).
fn print_tiff(image: &DynamicImage, embedded: &Embedded) -> Result<Vec<u8>, String> {
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
            tiff_tags(page.encoder(), embedded).map_err(|e| e.to_string())?;
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

/// TIFF's text tags are ASCII: `©` is spelt `(C)`, other letters beyond
/// ASCII become `?` (the XMP packet beside them keeps the text as written).
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '©' => "(C)".to_string(),
            c if c.is_ascii() && c != '\0' => c.to_string(),
            _ => "?".to_string(),
        })
        .collect()
}

/// The profile's fields as a TIFF's own tags: Artist, Copyright and
/// ImageDescription in IFD0, the XMP packet (700) and IPTC-IIM (33723).
fn tiff_tags<W: std::io::Write + std::io::Seek, K: tiff::encoder::TiffKind>(
    ifd: &mut tiff::encoder::DirectoryEncoder<'_, W, K>,
    embedded: &Embedded,
) -> tiff::TiffResult<()> {
    use tiff::tags::Tag;
    let fields = &embedded.fields;
    for (tag, value) in [
        (Tag::Artist, fields.artist()),
        (Tag::Copyright, fields.copyright.clone()),
        (Tag::ImageDescription, fields.description.clone()),
    ] {
        if let Some(text) = value {
            ifd.write_tag(tag, ascii(&text).as_str())?;
        }
    }
    if let Some(xmp) = &embedded.xmp {
        ifd.write_tag(Tag::Unknown(700), &xmp[..])?;
    }
    if let Some(iim) = &embedded.iim {
        ifd.write_tag(Tag::Unknown(33723), &iim[..])?;
    }
    Ok(())
}
