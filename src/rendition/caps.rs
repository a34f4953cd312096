//! Caps on the metadata a file carries (ICC profiles, EXIF, XMP, text),
//! checked by the header probe before the memory budget is asked: the
//! decoders read metadata into memory before any pixel, and a 2 MB PNG's
//! iCCP chunk can inflate to a gigabyte, so the probe walks each format's
//! chunk, marker or tag layout itself, holding nothing but a small buffer,
//! and refuses an over-cap file `too_large` (see [`RenderError::OverCap`]).
//! PNG (and the PNGs inside an ICO), JPEG, WebP, GIF and TIFF are walked
//! here; PSD, JPEG 2000 (`jp2`) and HEIF (`heif_meta`) in their own
//! modules, with the same caps.

use std::io::SeekFrom;

use super::RenderError;
use super::input::{Input, Reader, read_up_to};

/// The caps walked here, one function per format walked here, as its
/// format entry names it (JPEG's is walked with its header, whose end it
/// finds).
pub(super) fn png_file(input: Input<'_>, _page: u32) -> Result<(), RenderError> {
    png(&mut *input.open()?, 0)
}

pub(super) fn ico_file(input: Input<'_>, _page: u32) -> Result<(), RenderError> {
    ico(&mut *input.open()?)
}

pub(super) fn gif_file(input: Input<'_>, _page: u32) -> Result<(), RenderError> {
    gif(&mut *input.open()?)
}

pub(super) fn webp_file(input: Input<'_>, _page: u32) -> Result<(), RenderError> {
    webp(&mut *input.open()?)
}

pub(super) fn tiff_file(input: Input<'_>, page: u32) -> Result<(), RenderError> {
    tiff(&mut *input.open()?, page)
}

/// The largest ICC profile read. Real ones are 0.5–600 KiB; CMYK press
/// profiles with large tables reach 2–3 MiB.
pub(super) const MAX_ICC_BYTES: u64 = 4 << 20;

/// The largest other metadata block (EXIF, XMP, a text chunk, a TIFF tag,
/// a Photoshop resource), inflated: real ones are a few KiB to a few
/// hundred (XMP with an edit history).
pub(super) const MAX_METADATA_BYTES: u64 = 4 << 20;

/// Everything a header holds before the pixels, together (a JPEG's
/// markers, a TIFF directory's values, a HEIF's meta box, a PNG's
/// chunks other than image data); also what a decoder may allocate to read
/// a header.
pub(super) const MAX_HEADER_BYTES: u64 = 16 << 20;

/// The refusal for a block past its cap.
pub(super) fn over(what: &str, max: u64) -> RenderError {
    RenderError::OverCap {
        what: what.to_string(),
        max,
    }
}

/// Refuses `bytes` of `what` past `max`.
pub(super) fn at_most(what: &str, bytes: u64, max: u64) -> Result<(), RenderError> {
    if bytes > max { Err(over(what, max)) } else { Ok(()) }
}

fn read_err(e: std::io::Error) -> RenderError {
    RenderError::codec(format!("reading the header: {e}"), e)
}

fn skip(r: &mut dyn Reader, n: u64) -> Result<(), RenderError> {
    let n = i64::try_from(n).map_err(|_| RenderError::CorruptInput("a length past the file's end".into()))?;
    r.seek(SeekFrom::Current(n)).map_err(read_err)?;
    Ok(())
}

/// Fills `buf`, or says the file ended first (the decoder reports a
/// truncated file; nothing past the end can cost anything).
fn fill(r: &mut dyn Reader, buf: &mut [u8]) -> Result<bool, RenderError> {
    Ok(read_up_to(r, buf).map_err(read_err)? == buf.len())
}

/// PNG (at `start` in the file): every chunk's length (ancillary chunks at
/// most [`MAX_METADATA_BYTES`], all but image data at most
/// [`MAX_HEADER_BYTES`]), and what iCCP, zTXt and compressed iTXt chunks
/// inflate to.
pub(super) fn png(r: &mut dyn Reader, start: u64) -> Result<(), RenderError> {
    let file_len = r.seek(SeekFrom::End(0)).map_err(read_err)?;
    let mut at = r.seek(SeekFrom::Start(start + 8)).map_err(read_err)?;
    let mut total = 0u64;
    loop {
        let mut head = [0u8; 8];
        if !fill(r, &mut head)? {
            return Ok(());
        }
        let len = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        // A chunk longer than the file is damage, the decoder's to refuse.
        if at + 12 + len > file_len {
            return Ok(());
        }
        at += 12 + len;
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        let name = String::from_utf8_lossy(&kind).into_owned();
        match &kind {
            b"IEND" => return Ok(()),
            b"IDAT" | b"fdAT" => {}
            _ => {
                // Ancillary chunks (a lower-case first letter) are metadata.
                if kind[0].is_ascii_lowercase() {
                    at_most(&format!("PNG {name} chunk"), len, MAX_METADATA_BYTES)?;
                }
                total += len;
                at_most("PNG chunks besides the image data", total, MAX_HEADER_BYTES)?;
            }
        }
        let read = match &kind {
            b"iCCP" => png_inflated(r, len, 0, "PNG iCCP profile", MAX_ICC_BYTES)?,
            b"zTXt" => png_inflated(r, len, 0, "PNG zTXt text", MAX_METADATA_BYTES)?,
            b"iTXt" => png_inflated(r, len, 1, "PNG iTXt text", MAX_METADATA_BYTES)?,
            _ => 0,
        };
        skip(r, len - read + 4)?;
    }
}

/// ICO: each PNG inside it, as a PNG (`image` reads them with no
/// allocation limit at all).
fn ico(r: &mut dyn Reader) -> Result<(), RenderError> {
    let mut head = [0u8; 6];
    if !fill(r, &mut head)? {
        return Ok(());
    }
    let count = u64::from(u16::from_le_bytes([head[4], head[5]]));
    for i in 0..count {
        let mut entry = [0u8; 16];
        r.seek(SeekFrom::Start(6 + 16 * i)).map_err(read_err)?;
        if !fill(r, &mut entry)? {
            return Ok(());
        }
        let at = u64::from(u32::from_le_bytes([entry[12], entry[13], entry[14], entry[15]]));
        let mut magic = [0u8; 8];
        r.seek(SeekFrom::Start(at)).map_err(read_err)?;
        if fill(r, &mut magic)? && &magic == b"\x89PNG\r\n\x1a\n" {
            png(r, at)?;
        }
    }
    Ok(())
}

/// GIF: the extensions before the first image (the decoder keeps the
/// ICC and XMP application extensions whole): the ICC profile at most
/// [`MAX_ICC_BYTES`], XMP at most [`MAX_METADATA_BYTES`], all of them at
/// most [`MAX_HEADER_BYTES`].
fn gif(r: &mut dyn Reader) -> Result<(), RenderError> {
    let mut head = [0u8; 13];
    if !fill(r, &mut head)? {
        return Ok(());
    }
    if head[10] & 0x80 != 0 {
        skip(r, 3 << ((head[10] & 7) + 1))?;
    }
    let mut total = 0u64;
    let mut byte = [0u8; 2];
    // Extensions (0x21, a label, sub-blocks); anything else ends the header.
    while fill(r, &mut byte)? && byte[0] == 0x21 {
        let (mut app, mut bytes) = ([0u8; 11], 0u64);
        let mut len = [0u8; 1];
        while fill(r, &mut len)? && len[0] > 0 {
            let n = u64::from(len[0]);
            if byte[1] == 0xFF && bytes == 0 && n == 11 {
                if !fill(r, &mut app)? {
                    return Ok(());
                }
            } else {
                skip(r, n)?;
            }
            bytes += n;
            total += n + 1;
            at_most("a GIF's extensions", total, MAX_HEADER_BYTES)?;
        }
        match &app {
            b"ICCRGBG1012" => at_most("a GIF's ICC profile", bytes - 11, MAX_ICC_BYTES)?,
            b"XMP DataXMP" => at_most("a GIF's XMP", bytes - 11, MAX_METADATA_BYTES)?,
            _ => {}
        }
    }
    Ok(())
}

/// What a chunk whose data is a keyword, a NUL, `fields` bytes before a
/// compression method, then (iTXt) two NUL-ended strings and the text,
/// inflates to; the bytes of the chunk it read. A chunk that does not
/// parse or inflate is the decoder's to ignore or refuse.
fn png_inflated(r: &mut dyn Reader, len: u64, fields: usize, what: &str, max: u64) -> Result<u64, RenderError> {
    let mut data = vec![0u8; len.min(MAX_METADATA_BYTES) as usize];
    if !fill(r, &mut data)? {
        return Ok(len);
    }
    let Some(nul) = data.iter().position(|&b| b == 0) else {
        return Ok(len);
    };
    // iTXt: compression flag, method, language and translated keyword.
    let start = if fields == 1 {
        if data.get(nul + 1) != Some(&1) {
            return Ok(len); // not compressed
        }
        let mut at = nul + 3;
        for _ in 0..2 {
            match data.get(at..).and_then(|d| d.iter().position(|&b| b == 0)) {
                Some(end) => at += end + 1,
                None => return Ok(len),
            }
        }
        at
    } else {
        nul + 2
    };
    if let Some(stream) = data.get(start..)
        && let Inflated::Over = inflated_len(stream, max)
    {
        return Err(over(what, max));
    }
    Ok(len)
}

/// What a zlib stream inflates to, counted without keeping it.
enum Inflated {
    Within,
    Over,
    Corrupt,
}

/// Inflates `stream` (zlib-wrapped, as PNG's iCCP, zTXt and iTXt are)
/// into a small scratch buffer with flate2, counting, and stops once past
/// `max`: the png crate cannot say that it stopped (it drops an oversized
/// profile silently).
fn inflated_len(stream: &[u8], max: u64) -> Inflated {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut out = vec![0u8; 64 << 10];
    let mut z = Decompress::new(true);
    loop {
        let consumed = usize::try_from(z.total_in()).unwrap_or(usize::MAX);
        let rest = stream.get(consumed..).unwrap_or_default();
        let before = (z.total_in(), z.total_out());
        let status = z.decompress(rest, &mut out, FlushDecompress::None);
        if z.total_out() > max {
            return Inflated::Over;
        }
        match status {
            Ok(Status::StreamEnd) => return Inflated::Within,
            // Progress made: go on while there is more to read or write.
            Ok(_) if (z.total_in(), z.total_out()) != before => {}
            _ => return Inflated::Corrupt,
        }
    }
}

/// JPEG: the markers before the first scan, at most [`MAX_HEADER_BYTES`]
/// together, and the ICC profile's APP2 chunks at most [`MAX_ICC_BYTES`];
/// the offset where the first scan starts (or where the file ends).
pub(super) fn jpeg(r: &mut dyn Reader) -> Result<u64, RenderError> {
    r.seek(SeekFrom::Start(2)).map_err(read_err)?;
    let (mut at, mut icc) = (2u64, 0u64);
    let mut one = [0u8; 1];
    loop {
        at_most("a JPEG's markers before its first scan", at, MAX_HEADER_BYTES)?;
        if !fill(r, &mut one)? {
            return Ok(at);
        }
        at += 1;
        // Junk between markers is skipped by libjpeg, and counted here.
        if one[0] != 0xFF {
            continue;
        }
        let mut marker = 0xFF;
        while marker == 0xFF {
            if !fill(r, &mut one)? {
                return Ok(at);
            }
            at += 1;
            marker = one[0];
        }
        match marker {
            // The first scan, the end: the header is over.
            0xDA | 0xD9 => return Ok(at),
            // Markers without a length.
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let mut len = [0u8; 2];
        if !fill(r, &mut len)? {
            return Ok(at);
        }
        let body = u64::from(u16::from_be_bytes(len)).saturating_sub(2);
        let mut read = 0;
        if marker == 0xE2 && body >= 14 {
            let mut tag = [0u8; 14];
            if !fill(r, &mut tag)? {
                return Ok(at);
            }
            read = 14;
            if tag.starts_with(b"ICC_PROFILE\0") {
                icc += body - 14;
                at_most("a JPEG's ICC profile", icc, MAX_ICC_BYTES)?;
            }
        }
        skip(r, body - read)?;
        at += 2 + body;
    }
}

/// WebP: the ICC profile at most [`MAX_ICC_BYTES`], EXIF and XMP at most
/// [`MAX_METADATA_BYTES`] (the decoder reads each whole, at the size its
/// chunk header claims).
pub(super) fn webp(r: &mut dyn Reader) -> Result<(), RenderError> {
    let file_len = r.seek(SeekFrom::End(0)).map_err(read_err)?;
    let mut at = r.seek(SeekFrom::Start(12)).map_err(read_err)?;
    let mut head = [0u8; 8];
    while fill(r, &mut head)? {
        let len = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
        // Past the end: damage, which the decoder refuses.
        if at + 8 + len > file_len {
            return Ok(());
        }
        at += 8 + len + len % 2;
        match &head[..4] {
            b"ICCP" => at_most("a WebP's ICC profile", len, MAX_ICC_BYTES)?,
            b"EXIF" => at_most("a WebP's EXIF", len, MAX_METADATA_BYTES)?,
            b"XMP " => at_most("a WebP's XMP", len, MAX_METADATA_BYTES)?,
            _ => {}
        }
        skip(r, len + len % 2)?;
    }
    Ok(())
}

/// TIFF tags read in full with the directory that are not metadata: the
/// strips' and tiles' offsets and byte counts, one per strip or tile.
const TIFF_LAYOUT_TAGS: [u16; 4] = [273, 279, 324, 325];
const TIFF_ICC: u16 = 34675;

/// TIFF (and BigTIFF): directory `page`'s values, at most
/// [`MAX_HEADER_BYTES`] together, its ICC profile at most
/// [`MAX_ICC_BYTES`] and every other tag but the strip and tile tables at
/// most [`MAX_METADATA_BYTES`]; the decoders read a directory's values
/// with it.
pub(super) fn tiff(r: &mut dyn Reader, page: u32) -> Result<(), RenderError> {
    let file_len = r.seek(SeekFrom::End(0)).map_err(read_err)?;
    r.seek(SeekFrom::Start(0)).map_err(read_err)?;
    let mut head = [0u8; 16];
    if !fill(r, &mut head)? {
        return Ok(());
    }
    let t = TiffLayout {
        little: &head[..2] == b"II",
        big: head[2..4] == [43, 0] || head[2..4] == [0, 43],
        file_len,
    };
    let mut ifd = if t.big { t.u64(&head[8..16]) } else { t.u32(&head[4..8]) };
    // (A directory chain may loop: the walk is bounded.)
    for _ in 1..page.min(1 << 16) {
        ifd = match t.next_ifd(r, ifd)? {
            Some(next) => next,
            None => return Ok(()),
        };
    }
    t.check_ifd(r, ifd)
}

/// A TIFF's byte order, offset width and length. What lies past its end
/// is damage, which the decoders refuse: only what is there is counted.
struct TiffLayout {
    little: bool,
    big: bool,
    file_len: u64,
}

impl TiffLayout {
    fn u16(&self, b: &[u8]) -> u64 {
        let b = [b[0], b[1]];
        u64::from(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32(&self, b: &[u8]) -> u64 {
        let b = [b[0], b[1], b[2], b[3]];
        u64::from(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn u64(&self, b: &[u8]) -> u64 {
        let b: [u8; 8] = b[..8].try_into().unwrap_or_default();
        if self.little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        }
    }

    /// Where the offsets are (4 or 8 bytes wide) in an entry.
    fn offset(&self, entry: &[u8]) -> u64 {
        if self.big {
            self.u64(&entry[12..20])
        } else {
            self.u32(&entry[8..12])
        }
    }

    /// (entry count, entry size) of the directory at `ifd`, if it lies in
    /// the file.
    fn entries(&self, r: &mut dyn Reader, ifd: u64) -> Result<Option<(u64, u64)>, RenderError> {
        if ifd >= self.file_len {
            return Ok(None);
        }
        r.seek(SeekFrom::Start(ifd)).map_err(read_err)?;
        let mut count = [0u8; 8];
        let width = if self.big { 8 } else { 2 };
        if !fill(r, &mut count[..width])? {
            return Ok(None);
        }
        let n = if self.big { self.u64(&count) } else { self.u16(&count) };
        let size = if self.big { 20 } else { 12 };
        let end = n.saturating_mul(size).saturating_add(ifd + width as u64);
        Ok((end <= self.file_len).then_some((n, size)))
    }

    /// The offset of the directory after the one at `ifd`.
    fn next_ifd(&self, r: &mut dyn Reader, ifd: u64) -> Result<Option<u64>, RenderError> {
        let Some((n, size)) = self.entries(r, ifd)? else {
            return Ok(None);
        };
        skip(r, n * size)?;
        let mut next = [0u8; 8];
        if !fill(r, &mut next[..if self.big { 8 } else { 4 }])? {
            return Ok(None);
        }
        let next = if self.big { self.u64(&next) } else { self.u32(&next) };
        Ok((next != 0).then_some(next))
    }

    fn check_ifd(&self, r: &mut dyn Reader, ifd: u64) -> Result<(), RenderError> {
        let Some((n, size)) = self.entries(r, ifd)? else {
            return Ok(());
        };
        let mut entry = [0u8; 20];
        let mut total = 0u64;
        for _ in 0..n {
            if !fill(r, &mut entry[..size as usize])? {
                return Ok(());
            }
            let tag = self.u16(&entry[0..2]) as u16;
            let count = if self.big {
                self.u64(&entry[4..12])
            } else {
                self.u32(&entry[4..8])
            };
            let bytes = count.saturating_mul(tiff_type_size(self.u16(&entry[2..4])));
            let inline = if self.big { 8 } else { 4 };
            if bytes > inline && self.offset(&entry).saturating_add(bytes) > self.file_len {
                continue;
            }
            if tag == TIFF_ICC {
                at_most("a TIFF's ICC profile", bytes, MAX_ICC_BYTES)?;
            } else if !TIFF_LAYOUT_TAGS.contains(&tag) {
                at_most(&format!("TIFF tag {tag}"), bytes, MAX_METADATA_BYTES)?;
            }
            total = total.saturating_add(bytes);
            at_most("a TIFF directory's values", total, MAX_HEADER_BYTES)?;
        }
        Ok(())
    }
}

/// Bytes per value of a TIFF field type (unknown types: 1, as libtiff
/// skips them).
fn tiff_type_size(kind: u64) -> u64 {
    match kind {
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 | 16..=18 => 8,
        _ => 1,
    }
}
