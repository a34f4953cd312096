//! The few JPEG markers the engine reads itself (libjpeg-turbo decodes the
//! pixels): EXIF, ICC profile chunks, and Adobe's APP14 (inverted CMYK).
//! Bounds-checked throughout: a truncated or hostile header yields nothing.

#[derive(Debug, Default)]
pub struct JpegMeta {
    /// The EXIF TIFF structure (after `Exif\0\0`).
    pub exif: Option<Vec<u8>>,
    pub icc: Option<Vec<u8>>,
    /// An Adobe APP14 marker: Photoshop's CMYK JPEGs store inverted values.
    pub adobe: bool,
}

pub fn read(src: &[u8]) -> JpegMeta {
    let mut meta = JpegMeta::default();
    let mut icc_chunks: Vec<(u8, &[u8])> = Vec::new();
    let mut i = 2;
    while i + 4 <= src.len() && src[i] == 0xFF {
        let marker = src[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            break; // pixels (or the end) follow: no more metadata
        }
        let len = usize::from(u16::from_be_bytes([src[i + 2], src[i + 3]]));
        let Some(data) = src.get(i + 4..i + 2 + len) else { break };
        match marker {
            0xE1 if data.starts_with(b"Exif\0\0") => meta.exif = Some(data[6..].to_vec()),
            0xE2 if data.starts_with(b"ICC_PROFILE\0") && data.len() > 14 => icc_chunks.push((data[12], &data[14..])),
            0xEE if data.starts_with(b"Adobe") => meta.adobe = true,
            _ => {}
        }
        i += 2 + len;
    }
    if !icc_chunks.is_empty() {
        icc_chunks.sort_by_key(|(seq, _)| *seq);
        meta.icc = Some(icc_chunks.iter().flat_map(|(_, d)| d.iter().copied()).collect());
    }
    meta
}

/// A value of IFD0 in an EXIF TIFF structure.
enum Value {
    Short(u16),
    Ascii(String),
}

/// A TIFF structure's byte order, read off its first two bytes.
struct Tiff<'a> {
    bytes: &'a [u8],
    little: bool,
}

impl<'a> Tiff<'a> {
    fn new(bytes: &'a [u8]) -> Option<Tiff<'a>> {
        let little = match bytes.get(0..2)? {
            b"II" => true,
            b"MM" => false,
            _ => return None,
        };
        Some(Tiff { bytes, little })
    }

    fn u16_at(&self, o: usize) -> Option<u16> {
        let b = self.bytes.get(o..o + 2)?;
        Some(if self.little {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    }

    fn u32_at(&self, o: usize) -> Option<u32> {
        let b = self.bytes.get(o..o + 4)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    /// Where IFD0's entry for `tag` is.
    fn ifd0_entry(&self, tag: u16) -> Option<usize> {
        let ifd = self.u32_at(4)? as usize;
        let count = usize::from(self.u16_at(ifd)?);
        (0..count.min(512))
            .map(|n| ifd + 2 + n * 12)
            .map_while(|entry| Some((entry, self.u16_at(entry)?)))
            .find_map(|(entry, t)| (t == tag).then_some(entry))
    }
}

/// Whether IFD0 of a TIFF structure (an EXIF block, a TIFF file's start)
/// has `tag`.
pub(super) fn ifd0_has(tiff: &[u8], tag: u16) -> bool {
    Tiff::new(tiff).and_then(|t| t.ifd0_entry(tag)).is_some()
}

/// A SHORT value of IFD0.
pub(super) fn ifd0_short(tiff: &[u8], tag: u16) -> Option<u16> {
    match ifd0_value(tiff, tag)? {
        Value::Short(v) => Some(v),
        Value::Ascii(_) => None,
    }
}

fn ifd0_value(tiff: &[u8], tag: u16) -> Option<Value> {
    let t = Tiff::new(tiff)?;
    let entry = t.ifd0_entry(tag)?;
    let (kind, len) = (t.u16_at(entry + 2)?, t.u32_at(entry + 4)? as usize);
    match kind {
        3 => t.u16_at(entry + 8).map(Value::Short),
        2 => {
            let at = if len <= 4 {
                entry + 8
            } else {
                t.u32_at(entry + 8)? as usize
            };
            let bytes = tiff.get(at..at.checked_add(len)?)?;
            let text = String::from_utf8_lossy(bytes).trim_end_matches('\0').trim().to_string();
            (!text.is_empty()).then_some(Value::Ascii(text))
        }
        _ => None,
    }
}

/// EXIF Orientation (1–8), if present.
pub fn orientation(tiff: &[u8]) -> Option<u8> {
    ifd0_short(tiff, 0x0112).and_then(|v| u8::try_from(v).ok())
}

/// An ASCII tag of IFD0 (Artist 0x013B, Copyright 0x8298).
pub fn ascii(tiff: &[u8], tag: u16) -> Option<String> {
    match ifd0_value(tiff, tag)? {
        Value::Ascii(s) => Some(s),
        Value::Short(_) => None,
    }
}

/// A minimal EXIF APP1 segment carrying only the given ASCII tags, for the
/// credits kept on outputs (everything else is stripped).
pub fn exif_segment(tags: &[(u16, &str)]) -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    let n = tags.len() as u16;
    let mut values_at = 8 + 2 + 12 * tags.len() + 4;
    let mut values = Vec::new();
    tiff.extend_from_slice(&n.to_le_bytes());
    for (tag, text) in tags {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&2u16.to_le_bytes());
        tiff.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        if bytes.len() <= 4 {
            bytes.resize(4, 0);
            tiff.extend_from_slice(&bytes);
        } else {
            tiff.extend_from_slice(&(values_at as u32).to_le_bytes());
            values_at += bytes.len();
            values.extend_from_slice(&bytes);
        }
    }
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(&values);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
    seg.extend_from_slice(b"Exif\0\0");
    seg.extend_from_slice(&tiff);
    seg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_credits_read_back() {
        let seg = exif_segment(&[(0x013B, "Ada"), (0x8298, "© Brand 2026")]);
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend_from_slice(&seg);
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        let meta = read(&jpeg);
        let tiff = meta.exif.unwrap();
        assert_eq!(ascii(&tiff, 0x013B).as_deref(), Some("Ada"));
        assert_eq!(ascii(&tiff, 0x8298).as_deref(), Some("© Brand 2026"));
        assert_eq!(orientation(&tiff), None);
    }

    #[test]
    fn hostile_headers_yield_nothing() {
        for bytes in [
            &[0xFF, 0xD8][..],
            &[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 1, 2],
            &[0xFF, 0xD8, 0xFF, 0xE1, 0, 8, b'E', b'x'],
        ] {
            let meta = read(bytes);
            assert!(meta.exif.is_none() && meta.icc.is_none());
        }
        assert!(ifd0_value(b"II*\0\xff\xff\xff\xff", 0x0112).is_none());
    }
}
