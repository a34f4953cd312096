//! The caps on a HEIF's metadata, checked before libheif reads the file:
//! libheif parses the whole `meta` box and, while it opens the file,
//! reads every metadata item (EXIF, XMP) and derived-image description
//! into memory, extent by extent, as many times as items name the same
//! bytes (20 000 items may name one megabyte: 20 GB from a 1 MB file).
//! So the `meta` box is held to [`MAX_HEADER_BYTES`], each item that is
//! not coded image data to [`MAX_METADATA_BYTES`] and all of them to
//! [`MAX_HEADER_BYTES`], and each ICC profile (`colr`) to [`MAX_ICC_BYTES`].

use std::collections::HashMap;
use std::io::SeekFrom;

use super::RenderError;
use super::caps::{MAX_HEADER_BYTES, MAX_ICC_BYTES, MAX_METADATA_BYTES, at_most};
use super::input::Reader;

/// Item types whose data libheif reads only to decode pixels.
const CODED: [&[u8; 4]; 6] = [b"hvc1", b"av01", b"jpeg", b"j2k1", b"avc1", b"unci"];

/// Finds the top-level `meta` box and checks it (a file without one is
/// libheif's to refuse).
pub(super) fn check(r: &mut dyn Reader) -> Result<(), RenderError> {
    let len = r.seek(SeekFrom::End(0)).map_err(RenderError::corrupt)?;
    r.seek(SeekFrom::Start(0)).map_err(RenderError::corrupt)?;
    let mut at = 0u64;
    while at + 8 <= len {
        let mut head = [0u8; 16];
        r.seek(SeekFrom::Start(at)).map_err(RenderError::corrupt)?;
        r.read_exact(&mut head[..8]).map_err(RenderError::corrupt)?;
        let (mut size, mut header) = (u64::from(be32(&head[0..4])), 8);
        if size == 1 {
            r.read_exact(&mut head[8..16]).map_err(RenderError::corrupt)?;
            (size, header) = (be64(&head[8..16]), 16);
        } else if size == 0 {
            size = len - at;
        }
        if size < header {
            return Ok(());
        }
        if &head[4..8] == b"meta" {
            // What lies past the file's end is damage: libheif refuses it.
            let body_len = (size - header).min(len - at - header);
            at_most("a HEIF meta box", body_len, MAX_HEADER_BYTES)?;
            let mut body = vec![0u8; body_len as usize];
            r.read_exact(&mut body).map_err(RenderError::corrupt)?;
            return check_meta(&body, len);
        }
        at = at.saturating_add(size);
    }
    Ok(())
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap_or_default())
}

/// The boxes in `data`: type and body (cut at the end of `data`), and the
/// length the header claims for the body.
fn boxes(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8], u64)> {
    std::iter::from_fn(move || {
        let size = u64::from(be32(data.get(..4)?));
        let kind: [u8; 4] = data.get(4..8)?.try_into().ok()?;
        let (header, size) = match size {
            0 => (8, data.len() as u64),
            1 => (16, be64(data.get(8..16)?)),
            n => (8, n),
        };
        let end = usize::try_from(size).unwrap_or(usize::MAX).min(data.len());
        let body = data.get(header..end)?;
        data = &data[end.max(header)..];
        Some((kind, body, size.saturating_sub(header as u64)))
    })
}

/// A big-endian reader over a box's body; a short body reads as zeros
/// (and ends the walk: nothing past it can cost anything).
struct Fields<'a> {
    data: &'a [u8],
    at: usize,
}

impl Fields<'_> {
    fn take(&mut self, n: usize) -> u64 {
        let v = self
            .data
            .get(self.at..self.at + n)
            .map_or(0, |b| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)));
        self.at += n;
        v
    }

    fn done(&self) -> bool {
        self.at > self.data.len()
    }
}

/// The `meta` box's body (a full box: version and flags, then children).
fn check_meta(meta: &[u8], file_len: u64) -> Result<(), RenderError> {
    let children = meta.get(4..).unwrap_or_default();
    let find = |name: &[u8; 4]| boxes(children).find(|(kind, ..)| kind == name).map(|(_, body, _)| body);
    let types = find(b"iinf").map(item_types).unwrap_or_default();
    if let Some(iloc) = find(b"iloc") {
        check_items(iloc, &types, file_len)?;
    }
    boxes(children)
        .filter(|(kind, ..)| kind == b"iprp")
        .try_for_each(|(_, iprp, _)| check_profiles(iprp))
}

/// Each item's type, from its `infe` entry (versions 2 and 3; older ones
/// name no type and are counted as metadata).
fn item_types(iinf: &[u8]) -> HashMap<u32, [u8; 4]> {
    let version = iinf.first().copied().unwrap_or(0);
    let entries = iinf.get(if version == 0 { 6 } else { 8 }..).unwrap_or_default();
    boxes(entries)
        .filter(|(kind, ..)| kind == b"infe")
        .filter_map(|(_, infe, _)| {
            let mut f = Fields { data: infe, at: 0 };
            let version = f.take(1);
            f.take(3);
            let id = match version {
                2 => f.take(2),
                3 => f.take(4),
                _ => return None,
            };
            f.take(2);
            let kind = infe.get(f.at..f.at + 4)?.try_into().ok()?;
            Some((id as u32, kind))
        })
        .collect()
}

/// The bytes of each item that is not coded image data, extent by extent,
/// from `iloc` (an extent of length 0 runs to the file's end), within
/// their caps.
fn check_items(iloc: &[u8], types: &HashMap<u32, [u8; 4]>, file_len: u64) -> Result<(), RenderError> {
    let mut f = Fields { data: iloc, at: 0 };
    let version = f.take(1);
    f.take(3);
    let sizes = f.take(2);
    let (offset_size, length_size, base_size) = ((sizes >> 12) & 15, (sizes >> 8) & 15, (sizes >> 4) & 15);
    let index_size = if version >= 1 { sizes & 15 } else { 0 };
    let count = if version < 2 { f.take(2) } else { f.take(4) };
    let mut total = 0u64;
    for _ in 0..count {
        let id = if version < 2 { f.take(2) } else { f.take(4) } as u32;
        if version >= 1 {
            f.take(2); // construction method
        }
        f.take(2 + base_size as usize);
        let extents = f.take(2);
        let width = (index_size + offset_size + length_size) as usize;
        // Extents of no bytes at all each run to the file's end.
        let mut bytes = if width == 0 {
            extents.saturating_mul(file_len)
        } else {
            0
        };
        for _ in 0..if width == 0 { 0 } else { extents } {
            f.take((index_size + offset_size) as usize);
            let len = f.take(length_size as usize);
            // (An extent past the file's end is refused by libheif.)
            bytes = bytes.saturating_add(if len == 0 { file_len } else { len.min(file_len) });
            if f.done() {
                return Ok(());
            }
        }
        if types.get(&id).is_none_or(|t| !CODED.contains(&t)) {
            at_most("a HEIF metadata item", bytes, MAX_METADATA_BYTES)?;
            total = total.saturating_add(bytes);
            at_most("a HEIF's metadata items", total, MAX_HEADER_BYTES)?;
        }
        if f.done() {
            break;
        }
    }
    Ok(())
}

/// Every `colr` property with an ICC profile (`prof`, `rICC`) in `ipco`.
fn check_profiles(iprp: &[u8]) -> Result<(), RenderError> {
    for (_, ipco, _) in boxes(iprp).filter(|(kind, ..)| kind == b"ipco") {
        for (_, colr, len) in boxes(ipco).filter(|(kind, ..)| kind == b"colr") {
            if matches!(colr.get(..4), Some(b"prof" | b"rICC")) {
                at_most("a HEIF's ICC profile", len.saturating_sub(4), MAX_ICC_BYTES)?;
            }
        }
    }
    Ok(())
}
