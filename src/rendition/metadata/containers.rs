//! Putting the blocks into an encoded output: JPEG segments, PNG chunks,
//! WebP chunks. (AVIF's are written by libheif, TIFF's as tags: see
//! rendition/heif.rs and rendition/encode.rs.) A block too large for its
//! container (a JPEG segment holds 65 533 bytes) is left out, not split.

use super::{Embedded, iim};

const XMP_JPEG: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

/// Segments after SOI: APP1 EXIF, APP1 XMP, APP13 IPTC-IIM.
pub fn into_jpeg(jpeg: Vec<u8>, e: &Embedded) -> Vec<u8> {
    if jpeg.len() < 2 || (e.exif.is_none() && e.xmp.is_none() && e.iim.is_none()) {
        return jpeg;
    }
    let mut segments = Vec::new();
    let mut segment = |marker: u8, prefix: &[u8], body: &[u8]| {
        let len = 2 + prefix.len() + body.len();
        if len <= 0xFFFF {
            segments.extend_from_slice(&[0xFF, marker]);
            segments.extend_from_slice(&(len as u16).to_be_bytes());
            segments.extend_from_slice(prefix);
            segments.extend_from_slice(body);
        }
    };
    if let Some(exif) = &e.exif {
        segment(0xE1, b"Exif\0\0", exif);
    }
    if let Some(xmp) = &e.xmp {
        segment(0xE1, XMP_JPEG, xmp);
    }
    if let Some(data) = &e.iim {
        segment(0xED, b"", &iim::irb(data));
    }
    // After SOI and the JFIF APP0 that libjpeg-turbo writes first.
    let at = match jpeg.get(2..4) {
        Some([0xFF, 0xE0]) => 4 + usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]])),
        _ => 2,
    };
    let mut out = Vec::with_capacity(jpeg.len() + segments.len());
    out.extend_from_slice(&jpeg[..at]);
    out.extend_from_slice(&segments);
    out.extend_from_slice(&jpeg[at..]);
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// `eXIf` and an `iTXt` keyed `XML:com.adobe.xmp` after IHDR. PNG has no
/// place for IPTC-IIM (its XMP carries the same fields).
pub fn into_png(png: Vec<u8>, e: &Embedded) -> Vec<u8> {
    // Signature (8) and IHDR (4 + 4 + 13 + 4).
    const AFTER_IHDR: usize = 33;
    if png.len() < AFTER_IHDR || (e.exif.is_none() && e.xmp.is_none()) {
        return png;
    }
    let mut out = png[..AFTER_IHDR].to_vec();
    if let Some(exif) = &e.exif {
        png_chunk(&mut out, b"eXIf", exif);
    }
    if let Some(xmp) = &e.xmp {
        // Keyword, no compression, no language, no translated keyword.
        let mut data = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
        data.extend_from_slice(xmp);
        png_chunk(&mut out, b"iTXt", &data);
    }
    out.extend_from_slice(&png[AFTER_IHDR..]);
    out
}

fn riff_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(kind);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

/// `EXIF` and `XMP ` chunks, which need the extended (`VP8X`) layout: a
/// simple file (`VP8 `/`VP8L`) gets a `VP8X` header of its size first.
pub fn into_webp(webp: Vec<u8>, e: &Embedded, width: u32, height: u32, alpha: bool) -> Vec<u8> {
    if webp.len() < 20 || &webp[..4] != b"RIFF" || &webp[8..12] != b"WEBP" || (e.exif.is_none() && e.xmp.is_none()) {
        return webp;
    }
    let mut body = b"WEBP".to_vec();
    let chunks = &webp[12..];
    if &chunks[..4] == b"VP8X" {
        body.extend_from_slice(chunks);
    } else {
        let mut vp8x = [0u8; 10];
        vp8x[0] = if alpha && &chunks[..4] == b"VP8L" { 0x10 } else { 0 };
        vp8x[4..7].copy_from_slice(&(width - 1).to_le_bytes()[..3]);
        vp8x[7..10].copy_from_slice(&(height - 1).to_le_bytes()[..3]);
        riff_chunk(&mut body, b"VP8X", &vp8x);
        body.extend_from_slice(chunks);
    }
    // The flags: EXIF 0x08, XMP 0x04 (the VP8X payload's first byte).
    if let Some(exif) = &e.exif {
        body[12] |= 0x08;
        riff_chunk(&mut body, b"EXIF", exif);
    }
    if let Some(xmp) = &e.xmp {
        body[12] |= 0x04;
        riff_chunk(&mut body, b"XMP ", xmp);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}
