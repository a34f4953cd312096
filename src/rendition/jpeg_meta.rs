//! The few JPEG markers the engine reads itself (libjpeg-turbo decodes the
//! pixels): EXIF, XMP, IPTC-IIM (in Photoshop's APP13), ICC profile chunks,
//! and Adobe's APP14 (inverted CMYK).
//! Bounds-checked throughout: a truncated or hostile header yields nothing.

#[derive(Debug, Default)]
pub struct JpegMeta {
    /// The EXIF TIFF structure (after `Exif\0\0`).
    pub exif: Option<Vec<u8>>,
    /// The XMP packet (after its namespace line).
    pub xmp: Option<Vec<u8>>,
    /// IPTC-IIM datasets (Photoshop resource 0x0404 of APP13).
    pub iim: Option<Vec<u8>>,
    pub icc: Option<Vec<u8>>,
    /// An Adobe APP14 marker: Photoshop's CMYK JPEGs store inverted values.
    pub adobe: bool,
}

const XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

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
            0xE1 if data.starts_with(XMP) => meta.xmp = Some(data[XMP.len()..].to_vec()),
            0xED if data.starts_with(b"Photoshop 3.0\0") => {
                meta.iim = super::metadata::irb_resource(&data[14..], 0x0404).map(<[u8]>::to_vec);
            }
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

/// Where IFD0's SHORT value for `tag` is, and whether the structure is
/// little-endian: for setting it in place.
pub(super) fn ifd0_short_at(tiff: &[u8], tag: u16) -> Option<(usize, bool)> {
    let t = Tiff::new(tiff)?;
    let entry = t.ifd0_entry(tag)?;
    (t.u16_at(entry + 2)? == 3 && tiff.len() >= entry + 10).then_some((entry + 8, t.little))
}

/// A SHORT value of IFD0.
pub(super) fn ifd0_short(tiff: &[u8], tag: u16) -> Option<u16> {
    let t = Tiff::new(tiff)?;
    let entry = t.ifd0_entry(tag)?;
    (t.u16_at(entry + 2)? == 3).then(|| t.u16_at(entry + 8)).flatten()
}

/// EXIF Orientation (1–8), if present.
pub fn orientation(tiff: &[u8]) -> Option<u8> {
    ifd0_short(tiff, 0x0112).and_then(|v| u8::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xmp_and_iptc_are_found_beside_exif() {
        let mut jpeg = vec![0xFF, 0xD8];
        let mut segment = |marker: u8, body: &[u8]| {
            jpeg.extend_from_slice(&[0xFF, marker]);
            jpeg.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
            jpeg.extend_from_slice(body);
        };
        segment(0xE1, b"Exif\0\0II*\0\x08\0\0\0\0\0");
        segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>");
        segment(0xED, b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x05\x1c\x02\x50\0\0\0");
        let meta = read(&jpeg);
        assert_eq!(meta.xmp.as_deref(), Some(&b"<x:xmpmeta/>"[..]));
        assert_eq!(meta.iim.as_deref(), Some(&[0x1c, 2, 0x50, 0, 0][..]));
        assert_eq!(orientation(meta.exif.as_deref().unwrap()), None);
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
        assert!(ifd0_short(b"II*\0\xff\xff\xff\xff", 0x0112).is_none());
    }
}
