//! JPEG 2000 (JP2 files and bare J2K codestreams) through OpenJPEG, by
//! `openjpeg-sys` (its maintained bindings and the OpenJPEG 2.5 sources it
//! builds). Shrunk on load: OpenJPEG decodes only the wavelet resolutions
//! an output needs (each level halves both edges), which is where JPEG
//! 2000's memory goes (4 bytes per sample at the decoded resolution).
//!
//! OpenJPEG reads through callbacks over our [`Reader`]: the file is never
//! read whole. It applies the JP2 palette and channel definitions itself;
//! sYCC, subsampled components, any precision and signed samples are
//! turned into 8-bit RGB(A) here.

use std::ffi::{CStr, c_char, c_void};
use std::io::{Read, Seek, SeekFrom};

use image::metadata::Orientation;
use image::{DynamicImage, GrayAlphaImage, GrayImage, RgbImage, RgbaImage};
use openjpeg_sys as opj;

use super::format::{Decoding, Format, Layout, Probing};
use super::input::{Input, Reader, read_up_to};
use super::source::SourceFormat;
use super::source::{Decoded, Metadata};
use super::{RenderError, caps, color};

const JP2_SIGNATURE: &[u8] = b"\0\0\0\x0cjP  \r\n\x87\n";
const J2K_SIGNATURE: &[u8] = &[0xFF, 0x4F, 0xFF, 0x51];

/// A JP2 file or a raw codestream, by its first bytes.
pub(super) fn sniff(head: &[u8]) -> bool {
    head.starts_with(JP2_SIGNATURE) || head.starts_with(J2K_SIGNATURE)
}

/// How far into a file its codestream's SIZ marker (and a JP2 palette) is
/// looked for: past a header box with an ICC profile at its cap.
const LAYOUT_BYTES: usize = caps::MAX_ICC_BYTES as usize + (1 << 20);
/// More tiles than this and OpenJPEG's per-tile records alone (a few KiB
/// each, made while reading the header) would be too large.
const MAX_TILES: u64 = 16 * 1024;

/// The boxes of a JP2 file (or of a superbox's body): type, body (the
/// last one cut at the end of `data`) and the length its header claims.
fn boxes(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8], u64)> {
    std::iter::from_fn(move || {
        let len = u64::from(u32::from_be_bytes(data.get(..4)?.try_into().ok()?));
        let kind: [u8; 4] = data.get(4..8)?.try_into().ok()?;
        let (start, len) = match len {
            0 => (8, data.len() as u64),
            1 => (16, u64::from_be_bytes(data.get(8..16)?.try_into().ok()?)),
            n => (8, n),
        };
        let end = usize::try_from(len).unwrap_or(usize::MAX).min(data.len());
        let body = data.get(start..end)?;
        data = &data[end..];
        Some((kind, body, len.saturating_sub(start as u64)))
    })
}

/// OpenJPEG reads a JP2's header box whole, ICC profile included: both
/// within their caps (checked before the codestream is looked for, which
/// a large box pushes out of `head`, the file's start).
fn check_header_box(head: &[u8], file_len: u64) -> Result<(), RenderError> {
    for (kind, body, len) in boxes(head).take_while(|(kind, ..)| kind != b"jp2c") {
        if &kind != b"jp2h" {
            continue;
        }
        // (A box longer than the file is damage, which OpenJPEG refuses.)
        caps::at_most("a JP2 header box", len.min(file_len), caps::MAX_HEADER_BYTES)?;
        for (_, _, len) in boxes(body).filter(|(kind, ..)| kind == b"colr") {
            // Method, precedence and approximation, then the profile.
            caps::at_most(
                "a JP2 ICC profile",
                len.min(file_len).saturating_sub(3),
                caps::MAX_ICC_BYTES,
            )?;
        }
    }
    Ok(())
}

/// OpenJPEG reads a codestream's main header whole (PPM packet headers
/// included): within its cap. `stream` is the codestream in `head`.
fn check_main_header(input: Input<'_>, head: &[u8], stream: &[u8]) -> Result<(), RenderError> {
    let mut r = input.open()?;
    let start = (stream.as_ptr() as usize).wrapping_sub(head.as_ptr() as usize) as u64;
    r.seek(SeekFrom::Start(start + 2)).map_err(RenderError::corrupt)?;
    let mut total = 0u64;
    let mut marker = [0u8; 4];
    // Marker segments up to the first tile (SOT); a broken one is
    // OpenJPEG's to refuse.
    loop {
        if read_up_to(r.as_mut(), &mut marker).map_err(RenderError::corrupt)? < 4
            || marker[0] != 0xFF
            || marker[1] == 0x90
        {
            break;
        }
        let len = u16::from_be_bytes([marker[2], marker[3]]);
        if len < 2 {
            break;
        }
        total += u64::from(len) + 2;
        caps::at_most("a JPEG 2000 main header", total, caps::MAX_HEADER_BYTES)?;
        r.seek(SeekFrom::Current(i64::from(len) - 2))
            .map_err(RenderError::corrupt)?;
    }
    Ok(())
}

/// The codestream and, in a JP2 file, its palette's column count.
fn codestream(head: &[u8]) -> Result<(&[u8], Option<u8>), RenderError> {
    if !head.starts_with(JP2_SIGNATURE) {
        return Ok((head, None));
    }
    let mut palette = None;
    for (kind, body, _) in boxes(head) {
        match &kind {
            // pclr: entries (2 bytes), then columns (1 byte).
            b"jp2h" => {
                palette = boxes(body)
                    .find(|(k, ..)| k == b"pclr")
                    .and_then(|(_, b, _)| b.get(2).copied())
            }
            b"jp2c" => return Ok((body, palette)),
            _ => {}
        }
    }
    Err(RenderError::CorruptInput(
        "JPEG 2000: no codestream in the first 5 MiB".into(),
    ))
}

/// What OpenJPEG would allocate for the header, told from the SIZ marker
/// before it is asked: at most 4 components (after a palette) and
/// `MAX_TILES` tiles.
fn check_layout(head: &[u8]) -> Result<(), RenderError> {
    let (stream, palette) = codestream(head)?;
    let siz = stream
        .strip_prefix(J2K_SIGNATURE)
        .ok_or_else(|| RenderError::CorruptInput("JPEG 2000: the codestream does not start with SIZ".into()))?;
    // Lsiz and Rsiz, then eight sizes and offsets, then Csiz.
    let be32 = |n: usize| {
        siz.get(4 + 4 * n..8 + 4 * n)
            .map(|b| u64::from(u32::from_be_bytes(b.try_into().unwrap())))
    };
    let fields: Option<Vec<u64>> = (0..8).map(be32).collect();
    let comps = siz.get(36..38).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (Some([w, h, x0, y0, tw, th, tx0, ty0]), Some(comps)) =
        (fields.and_then(|f| <[u64; 8]>::try_from(f).ok()), comps)
    else {
        return Err(RenderError::CorruptInput("JPEG 2000: a short SIZ marker".into()));
    };
    if tw == 0 || th == 0 || w <= x0 || h <= y0 || tx0 > x0 || ty0 > y0 {
        return Err(RenderError::CorruptInput(
            "JPEG 2000: an impossible image or tile size".into(),
        ));
    }
    let tiles = (w - tx0).div_ceil(tw) * (h - ty0).div_ceil(th);
    // A palette's columns become the components.
    let channels = palette.map_or(comps, u16::from);
    if tiles > MAX_TILES || channels > 4 || comps > 4 {
        return Err(RenderError::DecoderLimit(format!(
            "JPEG 2000: {tiles} tiles, {comps} components, {channels} channels"
        )));
    }
    Ok(())
}

/// What OpenJPEG reads from, and its first error.
struct Source<'a> {
    reader: Box<dyn Reader + 'a>,
    error: Option<String>,
}

unsafe extern "C" fn read(buf: *mut c_void, size: usize, data: *mut c_void) -> usize {
    // SAFETY: `data` is the `Source` the open `Jp2` owns; `buf` holds `size`
    // bytes (OpenJPEG's contract).
    let source = unsafe { &mut *data.cast::<Source<'_>>() };
    let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), size) };
    // OpenJPEG takes (size_t)-1 for the end of the stream.
    match read_up_to(source.reader.as_mut(), out) {
        Ok(0) | Err(_) => usize::MAX,
        Ok(n) => n,
    }
}

unsafe extern "C" fn skip(n: i64, data: *mut c_void) -> i64 {
    // SAFETY: as in `read`.
    let source = unsafe { &mut *data.cast::<Source<'_>>() };
    match source.reader.seek(SeekFrom::Current(n)) {
        Ok(_) => n,
        Err(_) => -1,
    }
}

unsafe extern "C" fn seek(to: i64, data: *mut c_void) -> i32 {
    // SAFETY: as in `read`.
    let source = unsafe { &mut *data.cast::<Source<'_>>() };
    let Ok(to) = u64::try_from(to) else { return 0 };
    i32::from(source.reader.seek(SeekFrom::Start(to)).is_ok())
}

unsafe extern "C" fn on_error(msg: *const c_char, data: *mut c_void) {
    // SAFETY: `data` is the `Source`; `msg` is OpenJPEG's formatted message.
    let source = unsafe { &mut *data.cast::<Source<'_>>() };
    if source.error.is_none() && !msg.is_null() {
        let text = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
        source.error = Some(text.trim().to_string());
    }
}

unsafe extern "C" fn quiet(_: *const c_char, _: *mut c_void) {}

/// A codec, its stream and the image header it read; freed on drop.
struct Jp2<'a> {
    codec: *mut opj::opj_codec_t,
    stream: *mut opj::opj_stream_t,
    image: *mut opj::opj_image_t,
    source: Box<Source<'a>>,
}

impl Drop for Jp2<'_> {
    fn drop(&mut self) {
        // SAFETY: each was made by `open`, and is freed once.
        unsafe {
            if !self.image.is_null() {
                opj::opj_image_destroy(self.image);
            }
            opj::opj_stream_destroy(self.stream);
            opj::opj_destroy_codec(self.codec);
        }
    }
}

impl<'a> Jp2<'a> {
    /// Opens `input` and reads its header.
    fn open(input: Input<'a>) -> Result<Jp2<'a>, RenderError> {
        let head = input.prefix(LAYOUT_BYTES)?;
        check_header_box(&head, input.len()?)?;
        check_layout(&head)?;
        check_main_header(input, &head, codestream(&head)?.0)?;
        let format = if head.starts_with(JP2_SIGNATURE) {
            opj::CODEC_FORMAT::OPJ_CODEC_JP2
        } else {
            opj::CODEC_FORMAT::OPJ_CODEC_J2K
        };
        let len = input.len()?;
        let mut source = Box::new(Source {
            reader: input.open()?,
            error: None,
        });
        let data = std::ptr::from_mut(&mut *source).cast::<c_void>();
        // SAFETY: OpenJPEG's documented set-up sequence; `source` outlives
        // the stream and codec (all three are owned by the returned `Jp2`).
        let mut jp2 = unsafe {
            let stream = opj::opj_stream_create(1 << 16, 1);
            opj::opj_stream_set_read_function(stream, Some(read));
            opj::opj_stream_set_skip_function(stream, Some(skip));
            opj::opj_stream_set_seek_function(stream, Some(seek));
            opj::opj_stream_set_user_data(stream, data, None);
            opj::opj_stream_set_user_data_length(stream, len);
            let codec = opj::opj_create_decompress(format);
            opj::opj_set_error_handler(codec, Some(on_error), data);
            opj::opj_set_warning_handler(codec, Some(quiet), data);
            opj::opj_set_info_handler(codec, Some(quiet), data);
            Jp2 {
                codec,
                stream,
                image: std::ptr::null_mut(),
                source,
            }
        };
        // SAFETY: parameters are plain data, set to OpenJPEG's defaults.
        let ok = unsafe {
            let mut params: opj::opj_dparameters_t = std::mem::zeroed();
            opj::opj_set_default_decoder_parameters(&mut params);
            // Strict: a truncated file fails rather than decoding blurred.
            opj::opj_setup_decoder(jp2.codec, &mut params) == 1
                && opj::opj_decoder_set_strict_mode(jp2.codec, 1) == 1
                && opj::opj_read_header(jp2.stream, jp2.codec, &mut jp2.image) == 1
        };
        if !ok || jp2.image.is_null() {
            return Err(jp2.failed("header"));
        }
        Ok(jp2)
    }

    fn failed(&self, doing: &str) -> RenderError {
        let why = self.source.error.as_deref().unwrap_or("unreadable");
        RenderError::CorruptInput(format!("JPEG 2000 {doing}: {why}"))
    }

    fn image(&self) -> &opj::opj_image_t {
        // SAFETY: set by a successful `opj_read_header`.
        unsafe { &*self.image }
    }

    fn components(&self) -> &[opj::opj_image_comp_t] {
        let image = self.image();
        if image.comps.is_null() {
            return &[];
        }
        // SAFETY: `numcomps` components, owned by the image.
        unsafe { std::slice::from_raw_parts(image.comps, image.numcomps as usize) }
    }

    fn size(&self) -> Result<(u32, u32), RenderError> {
        let image = self.image();
        match (image.x1.checked_sub(image.x0), image.y1.checked_sub(image.y0)) {
            (Some(w), Some(h)) if !self.components().is_empty() => Ok((w, h)),
            _ => Err(self.failed("size")),
        }
    }
}

/// The full size and the number of components.
pub(super) fn header(input: Input<'_>) -> Result<(u32, u32, u8), RenderError> {
    let jp2 = Jp2::open(input)?;
    let (w, h) = jp2.size()?;
    Ok((w, h, jp2.components().len().min(4) as u8))
}

/// Decodes the smallest resolution whose long edge still covers `largest`.
pub(super) fn decode(input: Input<'_>, long_edge: u32, largest: Option<u32>) -> Result<Decoded, RenderError> {
    let jp2 = Jp2::open(input)?;
    let mut reduce = reduction(long_edge, largest);
    // The codestream may have fewer levels than wanted: fewer, then.
    // SAFETY: an open codec, before decoding.
    while reduce > 0 && unsafe { opj::opj_set_decoded_resolution_factor(jp2.codec, reduce) } != 1 {
        reduce -= 1;
    }
    // A refused factor stays set inside OpenJPEG: put back full size.
    // SAFETY: as above.
    if reduce == 0 && unsafe { opj::opj_set_decoded_resolution_factor(jp2.codec, 0) } != 1 {
        return Err(jp2.failed("resolution"));
    }
    // SAFETY: the header was read into `jp2.image`, which receives the pixels.
    let ok = unsafe {
        opj::opj_decode(jp2.codec, jp2.stream, jp2.image) == 1 && opj::opj_end_decompress(jp2.codec, jp2.stream) == 1
    };
    if !ok {
        return Err(jp2.failed("pixels"));
    }
    let image = pixels(&jp2)?;
    let raw = jp2.image();
    let icc = (raw.icc_profile_len > 0 && !raw.icc_profile_buf.is_null()).then(|| {
        // SAFETY: `icc_profile_len` bytes owned by the image.
        unsafe { std::slice::from_raw_parts(raw.icc_profile_buf, raw.icc_profile_len as usize) }.to_vec()
    });
    let cmyk = raw.color_space == opj::COLOR_SPACE::OPJ_CLRSPC_CMYK;
    Ok(Decoded {
        image,
        icc: icc.filter(|_| !cmyk),
        metadata: metadata(input).unwrap_or_default(),
        orientation: Orientation::NoTransforms,
    })
}

/// The `uuid` boxes that carry XMP (Adobe's id) and EXIF (the id reading
/// `JpgTiffExif->JP2`) among a JP2's top-level boxes, read by seeking from
/// header to header: the codestream between them is not read.
fn metadata(input: Input<'_>) -> Option<Metadata> {
    const XMP: [u8; 16] = *b"\xbe\x7a\xcf\xcb\x97\xa9\x42\xe8\x9c\x71\x99\x94\x91\xe3\xaf\xac";
    const EXIF: &[u8; 16] = b"JpgTiffExif->JP2";
    let mut r = input.open().ok()?;
    let (mut at, end) = (0u64, input.len().ok()?);
    let mut found = Metadata::default();
    while at + 8 <= end {
        let mut head = [0u8; 8];
        r.seek(SeekFrom::Start(at)).ok()?;
        r.read_exact(&mut head).ok()?;
        let len = u64::from(u32::from_be_bytes(head[..4].try_into().ok()?));
        if len < 8 {
            break; // to the end (0) or a 64-bit length (1): no metadata after
        }
        if &head[4..8] == b"uuid" && (24..=caps::MAX_METADATA_BYTES).contains(&len) {
            let mut body = vec![0u8; (len - 8) as usize];
            r.read_exact(&mut body).ok()?;
            let (id, data) = body.split_at(16);
            if id == XMP {
                found.xmp = Some(data.to_vec());
            } else if id == EXIF {
                // Some writers keep the JPEG segment's `Exif\0\0` prefix.
                found.exif = Some(data.strip_prefix(b"Exif\0\0").unwrap_or(data).to_vec());
            }
        }
        at += len;
    }
    Some(found)
}

/// Levels of wavelet resolution to leave out for `largest`.
fn reduction(long_edge: u32, largest: Option<u32>) -> u32 {
    let Some(target) = largest.filter(|&t| t > 0) else {
        return 0;
    };
    (0..8)
        .take_while(|&k| long_edge.div_ceil(1 << (k + 1)) >= target)
        .count() as u32
}

/// One component's samples as 8-bit, read at the first component's grid.
struct Plane<'i> {
    data: &'i [i32],
    w: usize,
    h: usize,
    offset: i64,
    max: i64,
}

impl Plane<'_> {
    fn at(&self, x: usize, y: usize, w: usize, h: usize) -> u8 {
        // Subsampled components (sYCC 4:2:0) are stretched to the grid.
        let (px, py) = ((x * self.w / w).min(self.w - 1), (y * self.h / h).min(self.h - 1));
        let v = i64::from(self.data[py * self.w + px]) + self.offset;
        ((v.clamp(0, self.max) * 255 + self.max / 2) / self.max) as u8
    }
}

fn planes<'j>(jp2: &'j Jp2<'_>) -> Result<Vec<Plane<'j>>, RenderError> {
    jp2.components()
        .iter()
        .map(|c| {
            let (w, h) = (c.w as usize, c.h as usize);
            if c.data.is_null() || w == 0 || h == 0 || !(1..=31).contains(&c.prec) {
                return Err(jp2.failed("component"));
            }
            // SAFETY: OpenJPEG allocated w × h samples for each component.
            let data = unsafe { std::slice::from_raw_parts(c.data, w * h) };
            Ok(Plane {
                data,
                w,
                h,
                offset: if c.sgnd == 1 { 1i64 << (c.prec - 1) } else { 0 },
                max: (1i64 << c.prec) - 1,
            })
        })
        .collect()
}

/// The decoded components as 8-bit grey, RGB or CMYK (to sRGB), with
/// alpha, interleaved straight from OpenJPEG's planes.
fn pixels(jp2: &Jp2<'_>) -> Result<DynamicImage, RenderError> {
    let planes = planes(jp2)?;
    let n = planes.len().min(4);
    let (w, h) = (planes[0].w, planes[0].h);
    let space = jp2.image().color_space;
    let sycc = n >= 3 && space == opj::COLOR_SPACE::OPJ_CLRSPC_SYCC;
    let mut out = Vec::with_capacity(w * h * n);
    for y in 0..h {
        for x in 0..w {
            let mut px = [0u8; 4];
            for (c, plane) in planes.iter().take(n).enumerate() {
                px[c] = plane.at(x, y, w, h);
            }
            if sycc {
                sycc_to_rgb(&mut px);
            }
            out.extend_from_slice(&px[..n]);
        }
    }
    let (w, h) = (w as u32, h as u32);
    let image = match n {
        1 => GrayImage::from_raw(w, h, out).map(DynamicImage::ImageLuma8),
        2 => GrayAlphaImage::from_raw(w, h, out).map(DynamicImage::ImageLumaA8),
        3 => RgbImage::from_raw(w, h, out).map(DynamicImage::ImageRgb8),
        _ if space == opj::COLOR_SPACE::OPJ_CLRSPC_CMYK => {
            let rgb = color::CmykToSrgb::new(None, false)?.convert(&out);
            RgbImage::from_raw(w, h, rgb).map(DynamicImage::ImageRgb8)
        }
        _ => RgbaImage::from_raw(w, h, out).map(DynamicImage::ImageRgba8),
    };
    image.ok_or_else(|| jp2.failed("size"))
}

/// Full-range BT.601 YCbCr (JPEG 2000's sYCC) to RGB.
fn sycc_to_rgb(px: &mut [u8; 4]) {
    let (l, b, r) = (f32::from(px[0]), f32::from(px[1]) - 128.0, f32::from(px[2]) - 128.0);
    let v = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    px[0] = v(l + 1.402 * r);
    px[1] = v(l - 0.344_136 * b - 0.714_136 * r);
    px[2] = v(l + 1.772 * b);
}

/// JP2 files and bare codestreams, shrunk as OpenJPEG decodes them.
pub(super) const FORMAT: Format = Format::new(SourceFormat::Jp2, |_, s| Ok(sniff(s.head)), header_entry, decode_entry);

fn header_entry(_: &Format, p: &Probing<'_>) -> Result<Option<Layout>, RenderError> {
    let (w, h, components) = header(p.input)?;
    // OpenJPEG's 32-bit samples and the 8-bit copy made of them.
    Ok(Some(Layout::new(w, h, 4 * components.max(1), false)))
}

fn decode_entry(_: &Format, d: &Decoding<'_>) -> Result<Decoded, RenderError> {
    decode(d.input, d.header.long_edge(), d.largest)
}
