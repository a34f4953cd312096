//! Decoders that shrink as they read: PNG row by row, TIFF strip by strip
//! or one row of tiles at a time, each row box-shrunk on arrival
//! ([`Shrinker`]). Peak memory is the shrunk picture plus one strip or
//! tile row, not the full-size image. Layouts they do not cover
//! (interlaced PNG, planar, palette, CMYK, YCbCr or float TIFF) answer
//! `None`, and the caller decodes the whole image instead.

use image::metadata::Orientation;
use image::{DynamicImage, GrayAlphaImage, GrayImage, RgbImage, RgbaImage};
use tiff::decoder::{ChunkType, Decoder as TiffDecoder, DecodingResult, Limits as TiffLimits};
use tiff::tags::Tag;

use super::RenderError;
use super::input::Reader;
use super::shrink::Shrinker;
use super::source::{Decoded, Metadata};

/// 8-bit pixels of `channels` samples (1–4), shrunk, as an image.
pub(super) fn image_of(
    width: u32,
    height: u32,
    channels: usize,
    samples: Vec<u8>,
) -> Result<DynamicImage, RenderError> {
    let wrong = || RenderError::CorruptInput("decoded size mismatch".into());
    Ok(match channels {
        1 => DynamicImage::ImageLuma8(GrayImage::from_raw(width, height, samples).ok_or_else(wrong)?),
        2 => DynamicImage::ImageLumaA8(GrayAlphaImage::from_raw(width, height, samples).ok_or_else(wrong)?),
        3 => DynamicImage::ImageRgb8(RgbImage::from_raw(width, height, samples).ok_or_else(wrong)?),
        _ => DynamicImage::ImageRgba8(RgbaImage::from_raw(width, height, samples).ok_or_else(wrong)?),
    })
}

fn shrunk(shrinker: Shrinker, channels: usize) -> Result<DynamicImage, RenderError> {
    if !shrinker.is_complete() {
        return Err(RenderError::CorruptInput("the image data ends early".into()));
    }
    let (w, h) = shrinker.out_size();
    image_of(w, h, channels, shrinker.finish())
}

/// A non-interlaced PNG, shrunk by `factor` row by row.
pub fn read_png(reader: Box<dyn Reader + '_>, factor: u32, max_alloc: u64) -> Result<Option<Decoded>, RenderError> {
    let limits = png::Limits {
        bytes: usize::try_from(max_alloc).unwrap_or(usize::MAX),
    };
    let mut decoder = png::Decoder::new_with_limits(reader, limits);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(RenderError::corrupt)?;
    let info = reader.info();
    if info.interlaced {
        return Ok(None);
    }
    let (width, height) = (info.width, info.height);
    let icc = info.icc_profile.as_ref().map(|p| p.to_vec());
    let exif = info.exif_metadata.as_ref().map(|p| p.to_vec());
    let xmp = info
        .utf8_text
        .iter()
        .find(|chunk| chunk.keyword == "XML:com.adobe.xmp")
        .and_then(|chunk| chunk.get_text().ok())
        .map(String::into_bytes);
    let channels = reader.output_color_type().0.samples();
    let mut shrinker = Shrinker::new(width, height, channels, factor);
    while let Some(row) = reader.next_row().map_err(RenderError::corrupt)? {
        shrinker.push(row.data());
    }
    let orientation = exif
        .as_deref()
        .and_then(super::jpeg_meta::orientation)
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::NoTransforms);
    Ok(Some(Decoded {
        image: shrunk(shrinker, channels)?,
        icc,
        metadata: Metadata {
            xmp,
            ..Metadata::from_exif(exif.as_deref())
        },
        orientation,
    }))
}

/// A chunky 8- or 16-bit grey/RGB TIFF (with or without alpha), first
/// page, shrunk by `factor` a strip or a row of tiles at a time.
pub fn read_tiff(reader: Box<dyn Reader + '_>, factor: u32, max_alloc: u64) -> Result<Option<Decoded>, RenderError> {
    let mut limits = TiffLimits::default();
    limits.decoding_buffer_size = usize::try_from(max_alloc).unwrap_or(usize::MAX);
    let mut tiff = TiffDecoder::new(reader)
        .map_err(RenderError::from_tiff)?
        .with_limits(limits);
    let Some(channels) = streamable(&mut tiff)? else {
        return Ok(None);
    };
    let (width, height) = tiff.dimensions().map_err(RenderError::from_tiff)?;
    let text = |tiff: &mut TiffDecoder<_>, tag| tiff.get_tag_ascii_string(tag).ok().map(|s| s.trim().to_string());
    let text_tags = [
        Tag::Artist,
        Tag::Copyright,
        Tag::ImageDescription,
        Tag::Make,
        Tag::Model,
    ]
    .into_iter()
    .filter_map(|tag| Some((tag.to_u16(), text(&mut tiff, tag)?)))
    .collect();
    let bytes = |tiff: &mut TiffDecoder<_>, tag: u16| tiff.get_tag_u8_vec(Tag::Unknown(tag)).ok();
    let metadata = Metadata {
        exif: super::metadata::exif_of_text_tags(text_tags),
        xmp: bytes(&mut tiff, 700),
        iim: bytes(&mut tiff, 33723),
    }
    .capped(super::caps::MAX_METADATA_BYTES as usize);
    let icc = tiff.get_tag_u8_vec(Tag::IccProfile).ok();
    let orientation = tiff
        .find_tag_unsigned::<u8>(Tag::Orientation)
        .ok()
        .flatten()
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::NoTransforms);
    let mut shrinker = Shrinker::new(width, height, channels, factor);
    let row_bytes = width as usize * channels;
    let (chunk_w, chunk_h) = tiff.chunk_dimensions();
    let across = match tiff.get_chunk_type() {
        ChunkType::Strip => 1,
        ChunkType::Tile => width.div_ceil(chunk_w.max(1)),
    };
    if across == 1 {
        // Strips are whole rows: pushed as they come.
        for index in 0..height.div_ceil(chunk_h.max(1)) {
            let (_, h) = chunk_size(&tiff, index)?;
            let samples = eight_bit(tiff.read_chunk(index).map_err(RenderError::from_tiff)?)?;
            for row in samples.chunks(row_bytes).take(h as usize) {
                shrinker.push(row);
            }
        }
    } else {
        // Tiles: one row of them is put together, then pushed.
        // A band never holds more rows than the image has (tall tiles on a
        // short image), as the memory estimate assumes.
        let band_h = chunk_h.min(height);
        if (row_bytes as u64).saturating_mul(u64::from(band_h)) > max_alloc {
            return Err(RenderError::CorruptInput(format!(
                "TIFF tiles {chunk_w}×{chunk_h} are too large"
            )));
        }
        let mut band = vec![0u8; row_bytes * band_h as usize];
        for band_index in 0..height.div_ceil(chunk_h.max(1)) {
            let mut rows = 0;
            for col in 0..across {
                let index = band_index * across + col;
                let (w, h) = chunk_size(&tiff, index)?;
                let samples = eight_bit(tiff.read_chunk(index).map_err(RenderError::from_tiff)?)?;
                let (x0, run) = ((col * chunk_w) as usize * channels, w as usize * channels);
                for (y, src) in samples.chunks(run).take(h.min(band_h) as usize).enumerate() {
                    let at = y * row_bytes + x0;
                    band[at..at + src.len()].copy_from_slice(src);
                }
                rows = h;
            }
            for row in band.chunks(row_bytes).take(rows.min(band_h) as usize) {
                shrinker.push(row);
            }
        }
    }
    Ok(Some(Decoded {
        image: shrunk(shrinker, channels)?,
        icc,
        metadata,
        orientation,
    }))
}

/// Whether [`read_png`] reads this PNG row by row (it is not interlaced).
pub fn png_streams(reader: Box<dyn Reader + '_>) -> Result<bool, RenderError> {
    let limits = png::Limits {
        bytes: super::caps::MAX_HEADER_BYTES as usize,
    };
    let mut decoder = png::Decoder::new_with_limits(reader, limits);
    Ok(!decoder.read_header_info().map_err(RenderError::corrupt)?.interlaced)
}

/// The rows [`read_tiff`] decodes at a time for this TIFF (a strip, or a row of
/// tiles), or `None` when it is decoded whole.
pub fn tiff_band_rows(reader: Box<dyn Reader + '_>) -> Result<Option<u32>, RenderError> {
    let mut tiff = TiffDecoder::new(reader).map_err(RenderError::from_tiff)?;
    Ok(streamable(&mut tiff)?.map(|_| tiff.chunk_dimensions().1))
}

/// The samples per pixel of a TIFF this reader streams, or `None`.
fn streamable<R: Reader>(tiff: &mut TiffDecoder<R>) -> Result<Option<usize>, RenderError> {
    let unsigned = |tiff: &mut TiffDecoder<R>, tag| tiff.find_tag_unsigned::<u16>(tag).ok().flatten();
    let planar = unsigned(tiff, Tag::PlanarConfiguration).unwrap_or(1);
    let sample_format = unsigned(tiff, Tag::SampleFormat).unwrap_or(1);
    // None, LZW, Deflate (both codes), PackBits: others (JPEG, LZMA, fax)
    // go to libtiff, whose whole-image decode the estimate must count.
    let compression = unsigned(tiff, Tag::Compression).unwrap_or(1);
    if planar != 1 || sample_format != 1 || ![1, 5, 8, 32946, 32773].contains(&compression) {
        return Ok(None);
    }
    use tiff::ColorType as C;
    Ok(match tiff.colortype().map_err(RenderError::from_tiff)? {
        C::Gray(8 | 16) => Some(1),
        C::GrayA(8 | 16) => Some(2),
        C::RGB(8 | 16) => Some(3),
        C::RGBA(8 | 16) => Some(4),
        _ => None,
    })
}

/// A chunk's size without the padding, checked to lie inside the image.
fn chunk_size<R: Reader>(tiff: &TiffDecoder<R>, index: u32) -> Result<(u32, u32), RenderError> {
    let (chunk_w, chunk_h) = tiff.chunk_dimensions();
    let (w, h) = tiff.chunk_data_dimensions(index);
    if w > chunk_w || h > chunk_h {
        return Err(RenderError::CorruptInput(format!(
            "TIFF chunk {index} is larger than its layout"
        )));
    }
    Ok((w, h))
}

/// 16-bit samples to 8 (rounded), 8-bit as they are.
fn eight_bit(samples: DecodingResult) -> Result<Vec<u8>, RenderError> {
    match samples {
        DecodingResult::U8(v) => Ok(v),
        DecodingResult::U16(v) => Ok(v.iter().map(|&s| ((u32::from(s) + 128) / 257) as u8).collect()),
        _ => Err(RenderError::UnsupportedFormat(
            "TIFF samples that are not 8 or 16-bit integers".into(),
        )),
    }
}
