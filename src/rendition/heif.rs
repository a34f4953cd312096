//! HEIF (HEIC from phones) and AVIF through libheif (Debian's 1.15, with
//! libde265 for HEVC and dav1d/libaom for AV1), by `libheif-rs`: the
//! primary image of the file (of a burst, the one the camera chose), its
//! grid tiles joined, `irot`/`imir`/`clap` applied by libheif, so the EXIF
//! orientation is ignored as the HEIF specification requires. AVIF outputs
//! are encoded here too, with libaom.

use std::sync::OnceLock;

use image::{DynamicImage, RgbImage, RgbaImage};
use libheif_rs::{
    Channel, ColorProfile, ColorProfileNCLX, ColorSpace, CompressionFormat, EncoderParameterValue, EncoderQuality,
    FileTypeResult, HeifContext, HeifError, HeifErrorSubCode, Image, ImageHandle, ItemId, LibHeif, RgbChroma,
    color_profile_types,
};

use super::format::{Decoding, Format, Layout, Probing};
use super::input::Input;
use super::source::SourceFormat;
use super::source::{Decoded, Metadata};
use super::{RenderError, heif_meta};

/// One initialisation of libheif for the process (its plugins are loaded
/// once, not per job).
fn lib() -> &'static LibHeif {
    static LIB: OnceLock<LibHeif> = OnceLock::new();
    LIB.get_or_init(LibHeif::new)
}

/// libheif's security limits are the input's size; the rest is damage.
fn refused(e: HeifError) -> RenderError {
    if matches!(e.sub_code, HeifErrorSubCode::SecurityLimitExceeded) {
        return RenderError::DecoderLimit(e.message);
    }
    RenderError::corrupt(e)
}

/// Whether libheif takes the file for a HEIF: it answers "maybe" for the
/// generic `mif1` brand and "unsupported" for `msf1` image sequences,
/// whose primary image it still decodes, so only "no" is no.
pub(super) fn sniff(head: &[u8]) -> bool {
    head.get(4..8) == Some(b"ftyp") && libheif_rs::check_file_type(head) != FileTypeResult::No
}

/// The primary image's upright size and whether it has alpha; a file is
/// read by libheif as it needs (its header and metadata), not whole.
pub(super) fn header(input: Input<'_>) -> Result<(u32, u32, bool), RenderError> {
    heif_meta::check(&mut *input.open()?)?;
    let context = match input {
        Input::File(path) if path.to_str().is_some() => {
            HeifContext::read_from_file(path.to_str().unwrap_or_default()).map_err(refused)?
        }
        _ => return header_of(&input.bytes()?),
    };
    let handle = context.primary_image_handle().map_err(refused)?;
    Ok((handle.width(), handle.height(), handle.has_alpha_channel()))
}

fn header_of(source: &[u8]) -> Result<(u32, u32, bool), RenderError> {
    let context = HeifContext::read_from_bytes(source).map_err(refused)?;
    let handle = context.primary_image_handle().map_err(refused)?;
    Ok((handle.width(), handle.height(), handle.has_alpha_channel()))
}

/// The primary image in 8-bit RGB(A), transforms applied, with its colour
/// profile (an ICC one, or one made from the nclx primaries) to convert.
pub(super) fn decode(source: &[u8]) -> Result<Decoded, RenderError> {
    let mut context = HeifContext::read_from_bytes(source).map_err(refused)?;
    // Render threads are the worker's unit of CPU: libheif adds none.
    context.set_max_decoding_threads(1);
    let handle = context.primary_image_handle().map_err(refused)?;
    let alpha = handle.has_alpha_channel();
    let chroma = if alpha { RgbChroma::Rgba } else { RgbChroma::Rgb };
    // No decoding options: libheif-rs 0.20 frees them before use. 8-bit
    // interleaved RGB(A) is asked for, so 10/12-bit images come as 8-bit.
    let image = lib().decode(&handle, ColorSpace::Rgb(chroma), None).map_err(refused)?;
    let pixels = interleaved(&image, if alpha { 4 } else { 3 })?;
    let (w, h) = (image.width(), image.height());
    let picture = if alpha {
        RgbaImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgba8)
    } else {
        RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8)
    }
    .ok_or_else(|| RenderError::CorruptInput("decoded size mismatch".into()))?;
    Ok(Decoded {
        image: picture,
        icc: profile(&handle),
        metadata: Metadata {
            exif: exif(&handle),
            xmp: xmp(&handle),
            iim: None,
        },
        orientation: image::metadata::Orientation::NoTransforms,
    })
}

/// The interleaved plane's rows without their padding.
fn interleaved(image: &Image, channels: usize) -> Result<Vec<u8>, RenderError> {
    let planes = image.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| RenderError::CorruptInput("libheif gave no interleaved plane".into()))?;
    let row = plane.width as usize * channels;
    if plane.stride < row {
        return Err(RenderError::CorruptInput("libheif plane stride too short".into()));
    }
    let mut out = Vec::with_capacity(row * plane.height as usize);
    for y in 0..plane.height as usize {
        let start = y * plane.stride;
        let line = plane
            .data
            .get(start..start + row)
            .ok_or_else(|| RenderError::CorruptInput("libheif plane shorter than its size".into()))?;
        out.extend_from_slice(line);
    }
    Ok(out)
}

/// An embedded ICC profile, or one built from the nclx primaries when they
/// are not sRGB's (Display P3, BT.2020): the pixels are converted from it.
fn profile(handle: &ImageHandle) -> Option<Vec<u8>> {
    if let Some(raw) = handle.color_profile_raw() {
        let kind = raw.profile_type();
        if kind == color_profile_types::PROF || kind == color_profile_types::R_ICC {
            return Some(raw.data);
        }
    }
    handle.color_profile_nclx().and_then(|nclx| nclx_icc(&nclx))
}

/// An RGB profile with the nclx primaries and white point and the sRGB
/// tone curve (what phones pair P3 with); sRGB/BT.709 primaries give none.
fn nclx_icc(nclx: &ColorProfileNCLX) -> Option<Vec<u8>> {
    use libheif_rs::ColorPrimaries as P;
    if matches!(nclx.color_primaries(), P::ITU_R_BT_709_5 | P::Unspecified) {
        return None;
    }
    let xy = |x: f32, y: f32| lcms2::CIExyY {
        x: f64::from(x),
        y: f64::from(y),
        Y: 1.0,
    };
    let white = xy(nclx.color_primary_white_x(), nclx.color_primary_white_y());
    let primaries = lcms2::CIExyYTRIPLE {
        Red: xy(nclx.color_primary_red_x(), nclx.color_primary_red_y()),
        Green: xy(nclx.color_primary_green_x(), nclx.color_primary_green_y()),
        Blue: xy(nclx.color_primary_blue_x(), nclx.color_primary_blue_y()),
    };
    // The sRGB curve: a 2.4 power with a linear toe (ICC parametric type 4).
    let curve = lcms2::ToneCurve::new_parametric(4, &[2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045]).ok()?;
    let profile = lcms2::Profile::new_rgb(&white, &primaries, &[&curve, &curve, &curve]).ok()?;
    profile.icc().ok()
}

/// The EXIF block's TIFF bytes (a HEIF EXIF item starts with the offset of
/// its TIFF header).
fn exif(handle: &ImageHandle) -> Option<Vec<u8>> {
    let mut ids: [ItemId; 1] = [0];
    if handle.metadata_block_ids(&mut ids, b"Exif") == 0 {
        return None;
    }
    let block = handle.metadata(ids[0]).ok()?;
    let offset = u32::from_be_bytes(block.get(..4)?.try_into().ok()?) as usize;
    block.get(4usize.checked_add(offset)?..).map(<[u8]>::to_vec)
}

/// The XMP packet: a `mime` item of type `application/rdf+xml` (the
/// item's size was held to the caps of rendition/heif_meta.rs).
fn xmp(handle: &ImageHandle) -> Option<Vec<u8>> {
    let mut ids: [ItemId; 4] = [0; 4];
    let n = handle.metadata_block_ids(&mut ids, b"mime");
    ids[..n.min(4)]
        .iter()
        .find(|&&id| handle.metadata_content_type(id) == Some("application/rdf+xml"))
        .and_then(|&id| handle.metadata(id).ok())
}

/// libaom's speed for AVIF outputs: 0 (slowest) to 9; 8 keeps a 2048 px
/// rendition within a few times a JPEG's encode time.
const AVIF_SPEED: i32 = 8;

/// 8-bit RGB or RGBA pixels as an AVIF file (4:2:0, libaom).
pub(super) fn encode_avif(
    pixels: &[u8],
    (width, height): (u32, u32),
    alpha: bool,
    quality: u8,
    embedded: &super::metadata::Embedded,
) -> Result<Vec<u8>, RenderError> {
    let failed = |e: HeifError| RenderError::codec(format!("AVIF encode: {e}"), e);
    let channels = if alpha { 4 } else { 3 };
    let chroma = if alpha { RgbChroma::Rgba } else { RgbChroma::Rgb };
    let mut image = Image::new(width, height, ColorSpace::Rgb(chroma)).map_err(failed)?;
    image
        .create_plane(Channel::Interleaved, width, height, 8)
        .map_err(failed)?;
    let row = width as usize * channels;
    {
        let planes = image.planes_mut();
        let plane = planes
            .interleaved
            .ok_or_else(|| RenderError::CorruptInput("AVIF encode: no plane".into()))?;
        for (y, line) in pixels.chunks_exact(row).enumerate() {
            plane.data[y * plane.stride..y * plane.stride + row].copy_from_slice(line);
        }
    }
    let mut context = HeifContext::new().map_err(failed)?;
    let mut encoder = lib().encoder_for_format(CompressionFormat::Av1).map_err(failed)?;
    encoder
        .set_quality(EncoderQuality::Lossy(quality.min(100)))
        .map_err(failed)?;
    encoder
        .set_parameter_value("speed", EncoderParameterValue::Int(AVIF_SPEED))
        .map_err(failed)?;
    // One thread, as every other encode: the render pool is the parallelism.
    encoder
        .set_parameter_value("threads", EncoderParameterValue::Int(1))
        .map_err(failed)?;
    let handle = context.encode_image(&image, &mut encoder, None).map_err(failed)?;
    if let Some(exif) = &embedded.exif {
        // libheif finds the TIFF header and writes the item's offset itself.
        context.add_exif_metadata(&handle, exif).map_err(failed)?;
    }
    if let Some(xmp) = &embedded.xmp {
        context.add_xmp_metadata(&handle, xmp).map_err(failed)?;
    }
    context.write_to_bytes().map_err(failed)
}

/// HEIC/HEIF and AVIF, decoded from the whole file in memory.
pub(super) const FORMAT: Format =
    Format::new(SourceFormat::Heif, |_, s| Ok(sniff(s.head)), header_entry, decode_entry).in_memory();

fn header_entry(_: &Format, p: &Probing<'_>) -> Result<Option<Layout>, RenderError> {
    let (w, h, alpha) = header(p.input)?;
    // libheif's RGB(A) image and the copy made of it.
    Ok(Some(Layout::new(w, h, if alpha { 4 } else { 3 }, false)))
}

fn decode_entry(_: &Format, d: &Decoding<'_>) -> Result<Decoded, RenderError> {
    decode(&d.input.bytes()?)
}
