//! Photoshop PSD and PSB: the merged composite Photoshop stores after the
//! layers ("maximize compatibility"), never the layers themselves. Grey,
//! duotone (as grey), indexed, bitmap, RGB and CMYK at 1, 8 or 16 bits,
//! raw or PackBits; its ICC profile (resource 1039) and transparency (the
//! first extra channel, when the file says the composite has one).
//!
//! The composite is planar (every row of channel 0, then channel 1, …), so
//! each channel gets its own reader and the rows are put together and
//! box-shrunk as they are read: memory is the shrunk picture and one row.
//!
//! Written here rather than taken from `zune-psd`, which refuses files with
//! more than four channels (any PSD with a saved selection or spot colour),
//! reads CMYK's black as alpha and has no PSB or ICC.

use std::io::{Read, Seek, SeekFrom};

use super::format::{self, Decoding, Format, Probing};
use super::input::Input;
use super::shrink::Shrinker;
use super::source::{Decoded, Metadata, SourceFormat};
use super::{RenderError, caps, color, shrink};

/// Photoshop's colour modes (header field), the ones read here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bitmap,
    Grey,
    Indexed,
    Rgb,
    Cmyk,
}

/// What the header and the sections before the pixels say.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub(super) width: u32,
    pub(super) height: u32,
    /// Samples per pixel made (grey 1–2, RGB 3–4).
    pub(super) out_channels: usize,
    mode: Mode,
    depth: u16,
    /// Channels stored, and those read (colour plus alpha).
    stored: usize,
    used: usize,
    alpha: bool,
    psb: bool,
    palette: Vec<u8>,
    icc: Option<Vec<u8>>,
    /// IPTC-IIM (resource 1028), EXIF (1058) and XMP (1060).
    metadata: Metadata,
    /// Offset of the image data section (its compression field).
    data_at: u64,
}

fn corrupt(what: &str) -> RenderError {
    RenderError::CorruptInput(format!("PSD: {what}"))
}

fn read_n<R: Read + ?Sized>(r: &mut R, n: usize) -> Result<Vec<u8>, RenderError> {
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf).map_err(|_| corrupt("the file ends early"))?;
    Ok(buf)
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

fn read_be<R: Read + ?Sized>(r: &mut R, n: usize) -> Result<u64, RenderError> {
    Ok(be(&read_n(r, n)?))
}

/// Reads the header, the palette, the resources and the layer section's
/// first fields; leaves the pixels unread.
pub(super) fn layout(input: Input<'_>) -> Result<Layout, RenderError> {
    let mut r = input.open()?;
    let head = read_n(&mut *r, 26)?;
    if &head[..4] != b"8BPS" {
        return Err(corrupt("no 8BPS signature"));
    }
    let psb = match be(&head[4..6]) {
        1 => false,
        2 => true,
        v => return Err(corrupt(&format!("version {v}"))),
    };
    let stored = be(&head[12..14]) as usize;
    let (height, width) = (be(&head[14..18]) as u32, be(&head[18..22]) as u32);
    let depth = be(&head[22..24]) as u16;
    let mode = match be(&head[24..26]) {
        0 => Mode::Bitmap,
        // Duotone's composite is its grey plane; the inks are left out.
        1 | 8 => Mode::Grey,
        2 => Mode::Indexed,
        3 => Mode::Rgb,
        4 => Mode::Cmyk,
        m => {
            return Err(RenderError::UnsupportedFormat(format!(
                "PSD colour mode {m} (Lab or multichannel)"
            )));
        }
    };
    if !matches!(
        (mode, depth),
        (Mode::Bitmap, 1) | (Mode::Indexed, 8) | (Mode::Grey | Mode::Rgb | Mode::Cmyk, 8 | 16)
    ) {
        return Err(RenderError::UnsupportedFormat(format!("PSD {mode:?} at {depth} bits")));
    }
    let base = match mode {
        Mode::Rgb => 3,
        Mode::Cmyk => 4,
        _ => 1,
    };
    if stored < base || stored > 56 {
        return Err(corrupt(&format!("{stored} channels for {mode:?}")));
    }
    let mode_data = read_be(&mut *r, 4)?;
    let palette = if mode == Mode::Indexed {
        if mode_data < 768 {
            return Err(corrupt("indexed without a palette"));
        }
        let p = read_n(&mut *r, 768)?;
        skip(&mut *r, mode_data - 768)?;
        p
    } else {
        skip(&mut *r, mode_data)?;
        Vec::new()
    };
    let resources_len = read_be(&mut *r, 4)?;
    let (icc, metadata) = resources(&mut *r, resources_len)?;
    let layers_len = read_be(&mut *r, if psb { 8 } else { 4 })?;
    let layers_at = r.stream_position().map_err(|_| corrupt("seek"))?;
    // A negative layer count says the composite's first extra channel is
    // its transparency; a flat file with exactly one extra channel is read
    // the same way (as Pillow and stb_image do).
    let layer_count = if layers_len >= if psb { 10 } else { 6 } {
        let _info_len = read_be(&mut *r, if psb { 8 } else { 4 })?;
        read_be(&mut *r, 2)? as u16 as i16
    } else {
        0
    };
    let alpha =
        mode != Mode::Indexed && mode != Mode::Bitmap && stored > base && (layer_count < 0 || stored == base + 1);
    let used = base + usize::from(alpha);
    let out_channels = match mode {
        Mode::Rgb | Mode::Cmyk | Mode::Indexed => 3,
        _ => 1,
    } + usize::from(alpha);
    Ok(Layout {
        width,
        height,
        out_channels,
        mode,
        depth,
        stored,
        used,
        alpha,
        psb,
        palette,
        icc,
        metadata,
        data_at: layers_at + layers_len,
    })
}

fn skip<R: Read + Seek + ?Sized>(r: &mut R, n: u64) -> Result<(), RenderError> {
    let n = i64::try_from(n).map_err(|_| corrupt("section too long"))?;
    r.seek(SeekFrom::Current(n)).map_err(|_| corrupt("seek"))?;
    Ok(())
}

/// The ICC profile among the image resources (ID 1039), if any, and the
/// metadata (IPTC-IIM 1028, EXIF 1058, XMP 1060).
fn resources<R: Read + Seek + ?Sized>(r: &mut R, len: u64) -> Result<(Option<Vec<u8>>, Metadata), RenderError> {
    let end = r.stream_position().map_err(|_| corrupt("seek"))? + len;
    let mut icc = None;
    let mut metadata = Metadata::default();
    while r.stream_position().map_err(|_| corrupt("seek"))? + 12 <= end {
        let _signature = read_n(r, 4)?;
        let id = read_be(r, 2)?;
        // A Pascal name padded to an even length, then the data, padded.
        let name = read_be(r, 1)?;
        skip(r, name + (name + 1) % 2)?;
        let size = read_be(r, 4)?;
        if id == 1039 && size <= len {
            caps::at_most("a PSD's ICC profile", size, caps::MAX_ICC_BYTES)?;
            icc = Some(read_n(r, size as usize)?);
            skip(r, size % 2)?;
        } else if matches!(id, 1028 | 1058 | 1060) && size <= caps::MAX_METADATA_BYTES.min(len) {
            let block = Some(read_n(r, size as usize)?);
            skip(r, size % 2)?;
            match id {
                1028 => metadata.iim = block,
                1058 => metadata.exif = block,
                _ => metadata.xmp = block,
            }
        } else {
            skip(r, size + size % 2)?;
        }
    }
    r.seek(SeekFrom::Start(end)).map_err(|_| corrupt("seek"))?;
    Ok((icc, metadata))
}

/// The composite, shrunk by `factor` as its rows are read.
pub(super) fn read(input: Input<'_>, layout: &Layout, factor: u32) -> Result<Decoded, RenderError> {
    let mut r = input.open()?;
    r.seek(SeekFrom::Start(layout.data_at)).map_err(|_| corrupt("seek"))?;
    let rle = match read_be(&mut *r, 2)? {
        0 => false,
        1 => true,
        c => return Err(RenderError::UnsupportedFormat(format!("PSD composite compression {c}"))),
    };
    let (w, h) = (layout.width as usize, layout.height as usize);
    let row_bytes = (w * usize::from(layout.depth)).div_ceil(8);
    let pixels_at = layout.data_at + 2;
    // Where each channel's rows start, and (RLE) each row's length.
    let mut starts = Vec::with_capacity(layout.used);
    let mut lengths: Vec<Vec<usize>> = Vec::new();
    if rle {
        let count_bytes = if layout.psb { 4 } else { 2 };
        let table = layout.stored * h * count_bytes;
        if table as u64 > input.len()? {
            return Err(corrupt("the row table is larger than the file"));
        }
        let counts = read_n(&mut *r, table)?;
        let mut at = pixels_at + (counts.len() as u64);
        for c in 0..layout.used {
            let rows: Vec<usize> = counts[c * h * count_bytes..(c + 1) * h * count_bytes]
                .chunks_exact(count_bytes)
                .map(|b| be(b) as usize)
                .collect();
            starts.push(at);
            at += rows.iter().map(|&n| n as u64).sum::<u64>();
            lengths.push(rows);
        }
    } else {
        for c in 0..layout.used {
            starts.push(pixels_at + (c * h * row_bytes) as u64);
        }
    }
    let mut readers = Vec::with_capacity(layout.used);
    for &start in &starts {
        let mut reader = input.open()?;
        reader.seek(SeekFrom::Start(start)).map_err(|_| corrupt("seek"))?;
        readers.push(reader);
    }
    let cmyk = match layout.mode {
        Mode::Cmyk => Some(color::CmykToSrgb::new(layout.icc.as_deref(), true)?),
        _ => None,
    };
    let mut shrinker = Shrinker::new(layout.width, layout.height, layout.out_channels, factor);
    let mut packed = Vec::new();
    let mut planes = vec![vec![0u8; w]; layout.used];
    let mut row = vec![0u8; w * layout.out_channels];
    let mut raw = vec![0u8; row_bytes];
    let mut row_lengths: Vec<_> = lengths.into_iter().map(Vec::into_iter).collect();
    for _ in 0..h {
        for (c, reader) in readers.iter_mut().enumerate() {
            if rle {
                packed.resize(row_lengths[c].next().unwrap_or(0), 0);
                reader
                    .read_exact(&mut packed)
                    .map_err(|_| corrupt("the pixels end early"))?;
                unpack_bits(&packed, &mut raw)?;
            } else {
                reader
                    .read_exact(&mut raw)
                    .map_err(|_| corrupt("the pixels end early"))?;
            }
            to_eight_bit(&raw, layout.depth, &mut planes[c]);
        }
        interleave(layout, &planes, cmyk.as_ref(), &mut row);
        shrinker.push(&row);
    }
    let (ow, oh) = shrinker.out_size();
    let image = super::rows::image_of(ow, oh, layout.out_channels, shrinker.finish())?;
    Ok(Decoded {
        image,
        // CMYK was converted with its profile already.
        icc: if cmyk.is_some() { None } else { layout.icc.clone() },
        metadata: layout.metadata.clone(),
        orientation: image::metadata::Orientation::NoTransforms,
    })
}

/// PackBits, as TIFF and PSD use it.
fn unpack_bits(packed: &[u8], out: &mut [u8]) -> Result<(), RenderError> {
    let (mut i, mut o) = (0, 0);
    while i < packed.len() && o < out.len() {
        let n = packed[i] as i8;
        i += 1;
        if n >= 0 {
            let run = usize::from(n as u8) + 1;
            let src = packed
                .get(i..i + run)
                .ok_or_else(|| corrupt("a PackBits run ends early"))?;
            let take = run.min(out.len() - o);
            out[o..o + take].copy_from_slice(&src[..take]);
            i += run;
            o += take;
        } else if n != -128 {
            let run = (1 - isize::from(n)) as usize;
            let v = *packed.get(i).ok_or_else(|| corrupt("a PackBits run ends early"))?;
            let take = run.min(out.len() - o);
            out[o..o + take].fill(v);
            i += 1;
            o += take;
        }
    }
    if o < out.len() {
        return Err(corrupt("a row is shorter than the image"));
    }
    Ok(())
}

/// One channel's row to 8-bit samples: 16-bit rounded, bitmap 1 = black.
fn to_eight_bit(raw: &[u8], depth: u16, out: &mut [u8]) {
    match depth {
        16 => {
            for (o, s) in out.iter_mut().zip(raw.chunks_exact(2)) {
                *o = ((u32::from(u16::from_be_bytes([s[0], s[1]])) + 128) / 257) as u8;
            }
        }
        1 => {
            for (x, o) in out.iter_mut().enumerate() {
                *o = if raw[x / 8] & (0x80 >> (x % 8)) != 0 { 0 } else { 255 };
            }
        }
        _ => out.copy_from_slice(&raw[..out.len()]),
    }
}

/// The channels' rows as one row of grey(A) or RGB(A) pixels.
fn interleave(layout: &Layout, planes: &[Vec<u8>], cmyk: Option<&color::CmykToSrgb>, row: &mut [u8]) {
    let n = layout.out_channels;
    match layout.mode {
        Mode::Indexed => {
            let p = &layout.palette;
            for (x, px) in row.chunks_exact_mut(n).enumerate() {
                let i = usize::from(planes[0][x]);
                px.copy_from_slice(&[p[i], p[256 + i], p[512 + i]]);
            }
        }
        Mode::Cmyk => {
            let mut ink = vec![0u8; planes[0].len() * 4];
            for (x, px) in ink.chunks_exact_mut(4).enumerate() {
                for (c, s) in px.iter_mut().enumerate() {
                    *s = planes[c][x];
                }
            }
            let rgb = cmyk.expect("made for CMYK").convert(&ink);
            for (x, px) in row.chunks_exact_mut(n).enumerate() {
                px[..3].copy_from_slice(&rgb[x * 3..x * 3 + 3]);
                if layout.alpha {
                    px[3] = planes[4][x];
                }
            }
        }
        _ => {
            for (x, px) in row.chunks_exact_mut(n).enumerate() {
                for (c, s) in px.iter_mut().enumerate() {
                    *s = planes[c][x];
                }
            }
        }
    }
}

/// Photoshop's composite, one row at a time.
pub(super) const FORMAT: Format = Format::new(
    SourceFormat::Psd,
    |_, s| Ok(s.head.starts_with(b"8BPS")),
    header,
    decode,
)
.band_rows(|_| Ok(Some(1)));

fn header(_: &Format, p: &Probing<'_>) -> Result<Option<format::Layout>, RenderError> {
    let psd = layout(p.input)?;
    Ok(Some(format::Layout::new(
        psd.width,
        psd.height,
        psd.out_channels as u8,
        true,
    )))
}

fn decode(_: &Format, d: &Decoding<'_>) -> Result<Decoded, RenderError> {
    let layout = layout(d.input)?;
    read(d.input, &layout, shrink::factor(d.header.long_edge(), d.largest))
}
