//! Outputs for print (docs/metadata.md#print): CMYK through a printer's
//! ICC profile (Little CMS) as JPEG (libjpeg-turbo) or TIFF, the profile
//! embedded; the resolution recorded (JPEG's JFIF density, PNG's pHYs,
//! TIFF's resolution tags).

use image::RgbImage;
use lcms2::{Intent, PixelFormat, Profile, Transform};

use super::RenderError;
use super::metadata::Embedded;

fn failed(e: &dyn std::fmt::Display) -> RenderError {
    RenderError::CorruptInput(format!("print: {e}"))
}

/// Whether `icc` is a CMYK output profile Little CMS can separate to: what
/// settings check of an operator's profile before any job uses it.
pub fn is_cmyk_output_profile(icc: &[u8]) -> bool {
    Profile::new_icc(icc).is_ok_and(|p| p.color_space() == lcms2::ColorSpaceSignature::CmykData)
}

/// sRGB pixels separated to CMYK (0 = no ink), perceptual intent.
pub(super) fn separate(rgb: &RgbImage, icc: &[u8]) -> Result<Vec<u8>, RenderError> {
    let printer = Profile::new_icc(icc).map_err(|e| failed(&e))?;
    let srgb = Profile::new_srgb();
    let t = Transform::<[u8; 3], [u8; 4]>::new(
        &srgb,
        PixelFormat::RGB_8,
        &printer,
        PixelFormat::CMYK_8,
        Intent::Perceptual,
    )
    .map_err(|e| failed(&e))?;
    let mut cmyk = vec![[0u8; 4]; (rgb.width() * rgb.height()) as usize];
    t.transform_pixels(bytemuck::cast_slice(rgb.as_raw()), &mut cmyk);
    Ok(bytemuck::cast_vec(cmyk))
}

/// A CMYK JPEG: YCCK with Adobe's marker, its values inverted as Adobe's
/// CMYK JPEGs store them (what Photoshop, ImageMagick and this engine's
/// decoder expect), the printer's profile in APP2.
pub(super) fn cmyk_jpeg(cmyk: &mut [u8], (w, h): (u32, u32), quality: u8, icc: &[u8]) -> Result<Vec<u8>, RenderError> {
    for v in cmyk.iter_mut() {
        *v = 255 - *v;
    }
    let mut tj = turbojpeg::Compressor::new().map_err(|e| failed(&e))?;
    tj.set_quality(i32::from(quality)).map_err(|e| failed(&e))?;
    tj.set_subsamp(turbojpeg::Subsamp::Sub2x2).map_err(|e| failed(&e))?;
    let pixels = turbojpeg::Image {
        pixels: &*cmyk,
        width: w as usize,
        pitch: w as usize * 4,
        height: h as usize,
        format: turbojpeg::PixelFormat::CMYK,
    };
    let jpeg = tj.compress_to_vec(pixels).map_err(|e| failed(&e))?;
    Ok(with_icc(jpeg, icc))
}

/// The profile as APP2 `ICC_PROFILE` chunks right after SOI.
fn with_icc(jpeg: Vec<u8>, icc: &[u8]) -> Vec<u8> {
    const CHUNK: usize = 65_519;
    let count = icc.len().div_ceil(CHUNK);
    if jpeg.len() < 2 || count == 0 || count > 255 {
        return jpeg;
    }
    let mut out = Vec::with_capacity(jpeg.len() + icc.len() + 18 * count);
    out.extend_from_slice(&jpeg[..2]);
    for (n, chunk) in icc.chunks(CHUNK).enumerate() {
        out.extend_from_slice(&[0xFF, 0xE2]);
        out.extend_from_slice(&((chunk.len() + 16) as u16).to_be_bytes());
        out.extend_from_slice(b"ICC_PROFILE\0");
        out.extend_from_slice(&[n as u8 + 1, count as u8]);
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// JFIF's density set to `dpi` (libjpeg-turbo writes 1:1, no unit); a
/// JPEG without JFIF (CMYK) gets a JFIF segment saying so.
pub(super) fn jpeg_density(mut jpeg: Vec<u8>, dpi: u16) -> Vec<u8> {
    let [hi, lo] = dpi.to_be_bytes();
    if jpeg.get(2..4) == Some(&[0xFF, 0xE0]) && jpeg.get(6..11) == Some(b"JFIF\0") && jpeg.len() > 18 {
        jpeg[13..18].copy_from_slice(&[1, hi, lo, hi, lo]);
        return jpeg;
    }
    let mut out = Vec::with_capacity(jpeg.len() + 18);
    out.extend_from_slice(&jpeg[..2.min(jpeg.len())]);
    out.extend_from_slice(&[0xFF, 0xE0, 0, 16]);
    out.extend_from_slice(b"JFIF\0\x01\x02");
    out.extend_from_slice(&[1, hi, lo, hi, lo, 0, 0]);
    out.extend_from_slice(&jpeg[2.min(jpeg.len())..]);
    out
}

/// A `pHYs` chunk (pixels per metre) after IHDR.
pub(super) fn png_density(png: Vec<u8>, dpi: u16) -> Vec<u8> {
    const AFTER_IHDR: usize = 33;
    if png.len() < AFTER_IHDR {
        return png;
    }
    let per_metre = (f64::from(dpi) / 0.0254).round() as u32;
    let mut data = per_metre.to_be_bytes().to_vec();
    data.extend_from_slice(&per_metre.to_be_bytes());
    data.push(1);
    let mut crc = crc32fast::Hasher::new();
    crc.update(b"pHYs");
    crc.update(&data);
    let mut out = png[..AFTER_IHDR].to_vec();
    out.extend_from_slice(&9u32.to_be_bytes());
    out.extend_from_slice(b"pHYs");
    out.extend_from_slice(&data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out.extend_from_slice(&png[AFTER_IHDR..]);
    out
}

/// What a print TIFF holds: its pixels (RGB, RGBA or CMYK), the profile
/// they are in, its resolution.
pub(super) struct TiffPage<'a> {
    pub pixels: Pixels<'a>,
    pub size: (u32, u32),
    pub icc: &'a [u8],
    pub ppi: u16,
}

pub(super) enum Pixels<'a> {
    Rgb(&'a [u8]),
    Rgba(&'a [u8]),
    Cmyk(&'a [u8]),
}

/// A TIFF for print: Deflate with the horizontal predictor, 8 bits per
/// sample, the profile, the resolution and the metadata as tags.
pub(super) fn tiff(page: &TiffPage<'_>, embedded: &Embedded) -> Result<Vec<u8>, String> {
    use tiff::encoder::compression::DeflateLevel;
    use tiff::encoder::{Compression, Rational, TiffEncoder, colortype};
    use tiff::tags::{Predictor, ResolutionUnit, Tag};
    let mut out = std::io::Cursor::new(Vec::new());
    let mut tiff = TiffEncoder::new(&mut out)
        .map_err(|e| e.to_string())?
        .with_compression(Compression::Deflate(DeflateLevel::Balanced))
        .with_predictor(Predictor::Horizontal);
    let (w, h) = page.size;
    let ppi = Rational {
        n: u32::from(page.ppi),
        d: 1,
    };
    macro_rules! write {
        ($color:ty, $pixels:expr) => {{
            let mut image = tiff.new_image::<$color>(w, h).map_err(|e| e.to_string())?;
            image.resolution(ResolutionUnit::Inch, ppi);
            image
                .encoder()
                .write_tag(Tag::IccProfile, page.icc)
                .map_err(|e| e.to_string())?;
            tiff_tags(image.encoder(), embedded).map_err(|e| e.to_string())?;
            image.write_data($pixels).map_err(|e| e.to_string())
        }};
    }
    match page.pixels {
        Pixels::Rgb(p) => write!(colortype::RGB8, p)?,
        Pixels::Rgba(p) => write!(colortype::RGBA8, p)?,
        Pixels::Cmyk(p) => write!(colortype::CMYK8, p)?,
    }
    Ok(out.into_inner())
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
