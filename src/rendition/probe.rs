//! Reads only the header: what the source is and how big, so that a
//! 60 000 × 60 000 PNG is refused before a byte of pixels is allocated.

use image::{ImageDecoder, ImageFormat};

use super::input::Input;
use super::{EngineLimits, RenderError, caps, heif, jp2, libtiff, magick, pdf, psd, raw, rows, svg};

pub use super::source::{Header, SourceFormat};

impl SourceFormat {
    /// Read by ImageMagick alone (SGI, PCX, …): it has a coder and
    /// `image` does not read it.
    pub(crate) fn is_legacy(self) -> bool {
        magick::coder(self).is_some() && self.image_format().is_none()
    }
}

/// What libtiff may allocate at once to read a header (its directory).
const LIBTIFF_HEADER_ALLOC: u64 = caps::MAX_HEADER_BYTES;

/// How much of a text file is looked at for an SVG's root element.
const SVG_SNIFF_BYTES: usize = 4096;

/// Where a PDF's `%PDF-` may be.
const PDF_SNIFF_BYTES: usize = 1024;

/// How much of a JPEG's first scan is read with its header: libjpeg
/// reads the header up to the scan's start.
const JPEG_SCAN_BYTES: u64 = 64 << 10;

pub fn probe(source: &[u8], limits: &EngineLimits) -> Result<Header, RenderError> {
    probe_input(Input::Bytes(source), limits, 1)
}

/// The header of page `page` (from 1; a PDF's or a TIFF's, every other
/// format has one) of an original in memory or in a file (only its first
/// bytes and its header are read).
pub fn probe_input(input: Input<'_>, limits: &EngineLimits, page: u32) -> Result<Header, RenderError> {
    let bytes = input.len()?;
    if bytes > limits.max_source_bytes {
        return Err(RenderError::TooLarge {
            what: "source bytes",
            value: bytes,
            max: limits.max_source_bytes,
        });
    }
    let (format, raw_size) = format_of(input, limits)?;
    if page != 1 && !matches!(format, SourceFormat::Pdf | SourceFormat::Tiff) {
        return Err(RenderError::NoSuchPage { page, pages: 1 });
    }
    caps::check(format, input, page)?;
    let (width, height, pixel_bytes, rgb8) = match format {
        SourceFormat::Jpeg => match jpeg_header(input) {
            // Read by `image` instead (see `decode`).
            Err(e) if e.is_skipped_bytes_warning() => image_header(format, input)?,
            other => other?,
        },
        SourceFormat::Heif => {
            let (w, h, alpha) = heif::header(input)?;
            // libheif's RGB(A) image and the copy made of it.
            (w, h, if alpha { 4 } else { 3 }, false)
        }
        SourceFormat::Psd => {
            let psd = psd::layout(input)?;
            (psd.width, psd.height, psd.out_channels as u8, true)
        }
        SourceFormat::Svg => {
            let (w, h) = svg::header(&svg::source(input)?, limits)?;
            // Drawn as 8-bit RGBA.
            (w, h, 4, true)
        }
        SourceFormat::Jp2 => {
            let (w, h, components) = jp2::header(input)?;
            // OpenJPEG's 32-bit samples and the 8-bit copy made of them.
            (w, h, 4 * components.max(1), false)
        }
        SourceFormat::Pdf => {
            let (w, h) = pdf::header(input, page, limits)?;
            // Drawn as 8-bit RGB by the child, and read back.
            (w, h, 3, true)
        }
        // What the `tiff` crate cannot read, libtiff may (see `decode`);
        // pages after the first are libtiff's.
        SourceFormat::Tiff => match image_header(format, input) {
            Ok(header) if page == 1 => header,
            _ => {
                let (w, h) = libtiff::header(input, page, LIBTIFF_HEADER_ALLOC)?;
                (w, h, 4, true)
            }
        },
        _ if format.is_legacy() => magick_header(format, input, limits)?,
        SourceFormat::Raw => {
            let (w, h) = raw_size.ok_or_else(|| RenderError::CorruptInput("RAW: no size".into()))?;
            // Drawn as 8-bit RGB by the child, read back and copied.
            (w, h, 3, false)
        }
        // The variants `image` lacks (OS/2 bitmaps, DX10 textures) are
        // ImageMagick's; its answer counts only when it reads them.
        _ => match image_header(format, input) {
            Err(e) if magick::coder(format).is_some() && e.is_unreadable() => {
                magick_header(format, input, limits).map_err(|_| e)?
            }
            other => other?,
        },
    };
    if width == 0 || height == 0 {
        return Err(RenderError::CorruptInput(format!("{width}×{height} pixels")));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_source_pixels {
        return Err(RenderError::TooLarge {
            what: "source pixels",
            value: pixels,
            max: limits.max_source_pixels,
        });
    }
    let band_rows = match format {
        SourceFormat::Png => rows::png_streams(input.open()?)?.then_some(1),
        SourceFormat::Tiff if page == 1 => rows::tiff_band_rows(input.open()?).unwrap_or(None),
        SourceFormat::Psd => Some(1),
        _ => None,
    };
    Ok(Header {
        format,
        page,
        width,
        height,
        band_rows,
        pixel_bytes,
        rgb8,
    })
}

/// The format, told by content, and a RAW file's size (dcraw's answer
/// tells a camera's TIFF from a plain one).
fn format_of(input: Input<'_>, limits: &EngineLimits) -> Result<(SourceFormat, Option<(u32, u32)>), RenderError> {
    let head = input.head()?;
    let format = match detect(&head) {
        // Text, told apart by a longer look.
        Err(_) if svg::sniff(&input.prefix(SVG_SNIFF_BYTES)?) => SourceFormat::Svg,
        Err(_) if pdf::sniff(&input.prefix(PDF_SNIFF_BYTES)?) => SourceFormat::Pdf,
        // A camera's TIFF-shaped RAW file.
        Ok(SourceFormat::Tiff) if raw::is_raw_tiff(&input.prefix(raw::SNIFF_BYTES)?) => SourceFormat::Raw,
        other => other?,
    };
    if format != SourceFormat::Raw {
        return Ok((format, None));
    }
    let tiff_shaped = head.starts_with(b"II*\0") || head.starts_with(b"MM\0*");
    match raw::header(input, limits) {
        Ok(size) => Ok((format, Some(size))),
        // Not a camera's after all: the TIFF it also is.
        Err(e) if tiff_shaped && raw::refused_as_not_raw(&e) => Ok((SourceFormat::Tiff, None)),
        Err(e) => Err(e),
    }
}

/// Size from ImageMagick's `identify`; its 8-bit RGBA output is copied.
fn magick_header(
    format: SourceFormat,
    input: Input<'_>,
    limits: &EngineLimits,
) -> Result<(u32, u32, u8, bool), RenderError> {
    let coder = magick::coder(format).ok_or_else(|| RenderError::UnsupportedFormat(format!("{format:?}")))?;
    let (w, h) = magick::header(input, coder, limits)?;
    Ok((w, h, 4, false))
}

/// The format, told by the first bytes alone (never by a file's name).
fn detect(head: &[u8]) -> Result<SourceFormat, RenderError> {
    if heif::sniff(head) {
        return Ok(SourceFormat::Heif);
    }
    if head.starts_with(b"8BPS") {
        return Ok(SourceFormat::Psd);
    }
    if jp2::sniff(head) {
        return Ok(SourceFormat::Jp2);
    }
    if raw::sniff_own_magic(head)? {
        return Ok(SourceFormat::Raw);
    }
    // BigTIFF, which `image` does not recognise (libtiff reads it).
    if head.starts_with(b"II\x2B\0") || head.starts_with(b"MM\0\x2B") {
        return Ok(SourceFormat::Tiff);
    }
    Ok(match image::guess_format(head) {
        Ok(ImageFormat::Jpeg) => SourceFormat::Jpeg,
        Ok(ImageFormat::Png) => SourceFormat::Png,
        Ok(ImageFormat::WebP) => SourceFormat::Webp,
        Ok(ImageFormat::Tiff) => SourceFormat::Tiff,
        Ok(ImageFormat::Gif) => SourceFormat::Gif,
        Ok(ImageFormat::Bmp) => SourceFormat::Bmp,
        Ok(ImageFormat::Ico) => SourceFormat::Ico,
        Ok(ImageFormat::Pnm) => SourceFormat::Pnm,
        Ok(ImageFormat::Dds) => SourceFormat::Dds,
        Ok(other) => {
            return Err(RenderError::UnsupportedFormat(format!(
                "{other:?} sources are not read"
            )));
        }
        Err(_) => match magick::sniff(head) {
            Some(legacy) => legacy,
            None if looks_like_tga(head) => SourceFormat::Tga,
            None => return Err(RenderError::UnsupportedFormat("not an image this engine reads".into())),
        },
    })
}

/// A TGA header that makes sense: a known image type, a colour map only
/// where the type has one, a size, and a usual pixel depth. Tried last,
/// after every format with a magic number.
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

/// Size and pixel layout from an `image` decoder's header.
fn image_header(format: SourceFormat, input: Input<'_>) -> Result<(u32, u32, u8, bool), RenderError> {
    let mut reader = format.image_reader(input)?;
    // A header's metadata is held in memory before any budget is asked.
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(caps::MAX_HEADER_BYTES);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(RenderError::from_image)?;
    let (w, h) = decoder.dimensions();
    let color = decoder.color_type();
    let rgb8 = matches!(color, image::ColorType::Rgb8 | image::ColorType::Rgba8);
    Ok((w, h, color.bytes_per_pixel(), rgb8))
}

/// A JPEG's size and pixel layout, from its first bytes (the markers
/// before the first scan: EXIF, ICC, tables, rarely more than a few
/// hundred KiB, and never more than the cap), so a file is not read whole.
fn jpeg_header(input: Input<'_>) -> Result<(u32, u32, u8, bool), RenderError> {
    let header_end = caps::jpeg(&mut *input.open()?)?;
    let prefix = input.prefix(usize::try_from(header_end + JPEG_SCAN_BYTES).unwrap_or(usize::MAX))?;
    let h = turbojpeg::read_header(&prefix).map_err(RenderError::corrupt)?;
    let cmyk = matches!(h.colorspace, turbojpeg::Colorspace::CMYK | turbojpeg::Colorspace::YCCK);
    Ok((
        u32::try_from(h.width).unwrap_or(u32::MAX),
        u32::try_from(h.height).unwrap_or(u32::MAX),
        if cmyk { 4 } else { 3 },
        !cmyk,
    ))
}
