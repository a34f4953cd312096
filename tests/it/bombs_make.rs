//! Hostile files made at test time (tests/it/bombs.rs): metadata that
//! inflates or stretches far past its file's size, in a small valid image
//! of each format, so that no bomb needs to be committed.

use image::{DynamicImage, ImageFormat, RgbImage};

/// A small picture, encoded as `format`.
pub fn small(format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img).write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// Bits written least significant first, as DEFLATE packs them.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, len: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += len;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code: its most significant bit goes first.
    fn code(&mut self, code: u32, len: u32) {
        for i in (0..len).rev() {
            self.put((code >> i) & 1, 1);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A zlib stream of `n` zero bytes (n ≥ 1): one fixed-Huffman block, a
/// literal and then 258-byte copies of it (13 bits each, 1:160).
pub fn zlib_zeros(n: u64) -> Vec<u8> {
    let mut bits = Bits::default();
    bits.put(1, 1); // the last block
    bits.put(1, 2); // fixed Huffman codes
    bits.code(0x30, 8); // literal 0
    let mut left = n - 1;
    while left >= 258 {
        bits.code(0xC5, 8); // length 258 (symbol 285)
        bits.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits.code(0x30, 8);
    }
    bits.code(0, 7); // end of block
    let mut out = vec![0x78, 0x01];
    out.extend(bits.finish());
    // Adler-32 of zeros: a stays 1, b is n.
    let adler = ((n % 65521) << 16 | 1) as u32;
    out.extend(adler.to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// A PNG chunk: length, type, data, CRC.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend(kind);
    out.extend(data);
    let mut crc_in = kind.to_vec();
    crc_in.extend(data);
    out.extend(crc32(&crc_in).to_be_bytes());
    out
}

/// The small PNG with an extra chunk right after IHDR.
pub fn png_with(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    with_chunk(small(ImageFormat::Png), kind, data)
}

/// The small picture as an RGBA PNG (what an ICO holds).
pub fn rgba_png() -> Vec<u8> {
    let rgba = image::load_from_memory(&small(ImageFormat::Png)).unwrap().to_rgba8();
    let mut out = std::io::Cursor::new(Vec::new());
    rgba.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

/// `png` with an extra chunk right after IHDR.
pub fn with_chunk(png: Vec<u8>, kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let ihdr_end = 8 + 25;
    let mut out = png[..ihdr_end].to_vec();
    out.extend(chunk(kind, data));
    out.extend(&png[ihdr_end..]);
    out
}

/// A PNG whose iCCP profile inflates to `inflated` bytes.
pub fn png_iccp_bomb(inflated: u64) -> Vec<u8> {
    png_with(b"iCCP", &iccp(inflated))
}

/// An iCCP chunk's data whose profile inflates to `inflated` bytes.
pub fn iccp(inflated: u64) -> Vec<u8> {
    let mut iccp = b"bomb\0\0".to_vec();
    iccp.extend(zlib_zeros(inflated));
    iccp
}

/// The small JPEG with an ICC profile of `len` bytes in APP2 chunks.
pub fn jpeg_with_icc(len: usize) -> Vec<u8> {
    const PER: usize = 65519;
    let jpeg = small(ImageFormat::Jpeg);
    let mut out = jpeg[..2].to_vec();
    let count = len.div_ceil(PER);
    for (i, part) in vec![0x5Au8; len].chunks(PER).enumerate() {
        out.extend([0xFF, 0xE2]);
        out.extend(((2 + 14 + part.len()) as u16).to_be_bytes());
        out.extend(b"ICC_PROFILE\0");
        out.extend([i as u8 + 1, count as u8]);
        out.extend(part);
    }
    out.extend(&jpeg[2..]);
    out
}

/// The small JPEG with `count` APP1 segments of 64 KiB (XMP-like junk)
/// before its frame header.
pub fn jpeg_with_app1s(count: usize) -> Vec<u8> {
    let jpeg = small(ImageFormat::Jpeg);
    let mut out = jpeg[..2].to_vec();
    for _ in 0..count {
        out.extend([0xFF, 0xE1, 0xFF, 0xFF]);
        out.extend(b"http://ns.adobe.com/xmp/extension/\0");
        out.extend(vec![b'x'; 0xFFFF - 2 - 35]);
    }
    out.extend(&jpeg[2..]);
    out
}

/// A RIFF chunk, padded to an even length.
fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_vec();
    out.extend((data.len() as u32).to_le_bytes());
    out.extend(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// An extended (VP8X) WebP of the small picture with a `kind` metadata
/// chunk (ICCP, EXIF or XMP ) of `len` bytes.
pub fn webp_with(kind: &[u8; 4], len: usize) -> Vec<u8> {
    let simple = small(ImageFormat::WebP);
    assert_eq!(&simple[12..16], b"VP8L", "a lossless WebP");
    let flag = match kind {
        b"ICCP" => 0x20,
        b"EXIF" => 0x08,
        _ => 0x04,
    };
    let mut vp8x = vec![flag, 0, 0, 0];
    vp8x.extend(&63u32.to_le_bytes()[..3]);
    vp8x.extend(&63u32.to_le_bytes()[..3]);
    let mut body = b"WEBP".to_vec();
    body.extend(riff_chunk(b"VP8X", &vp8x));
    let meta = riff_chunk(kind, &vec![0x5A; len]);
    // ICCP goes before the image, EXIF and XMP after it.
    if kind == b"ICCP" {
        body.extend(&meta);
    }
    body.extend(&simple[12..]);
    if kind != b"ICCP" {
        body.extend(&meta);
    }
    let mut out = b"RIFF".to_vec();
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

/// An uncompressed 16×16 RGB TIFF (strips) with one extra tag of type
/// UNDEFINED holding `len` bytes (`tag` 34675: the ICC profile).
pub fn tiff_with_tag(tag: u16, len: usize) -> Vec<u8> {
    let (w, h) = (16u32, 16u32);
    let pixels = vec![0x80u8; (w * h * 3) as usize];
    let ifd_at = 8 + pixels.len() as u32;
    let mut entries: Vec<(u16, u16, u32, Vec<u8>)> = vec![
        (256, 4, 1, w.to_le_bytes().to_vec()),
        (257, 4, 1, h.to_le_bytes().to_vec()),
        (258, 3, 3, [8u16, 8, 8].iter().flat_map(|v| v.to_le_bytes()).collect()),
        (259, 3, 1, 1u16.to_le_bytes().to_vec()),
        (262, 3, 1, 2u16.to_le_bytes().to_vec()),
        (273, 4, 1, 8u32.to_le_bytes().to_vec()),
        (277, 3, 1, 3u16.to_le_bytes().to_vec()),
        (278, 4, 1, h.to_le_bytes().to_vec()),
        (279, 4, 1, (pixels.len() as u32).to_le_bytes().to_vec()),
        (tag, 7, len as u32, vec![0x5A; len]),
    ];
    entries.sort_by_key(|e| e.0);
    let mut data_at = ifd_at + 2 + 12 * entries.len() as u32 + 4;
    let mut ifd = (entries.len() as u16).to_le_bytes().to_vec();
    let mut data: Vec<u8> = Vec::new();
    for (tag, kind, count, value) in &entries {
        ifd.extend(tag.to_le_bytes());
        ifd.extend(kind.to_le_bytes());
        ifd.extend(count.to_le_bytes());
        if value.len() <= 4 {
            let mut v = value.clone();
            v.resize(4, 0);
            ifd.extend(v);
        } else {
            ifd.extend(data_at.to_le_bytes());
            data.extend(value);
            data_at += value.len() as u32;
        }
    }
    ifd.extend(0u32.to_le_bytes());
    let mut out = b"II*\0".to_vec();
    out.extend(ifd_at.to_le_bytes());
    out.extend(pixels);
    out.extend(ifd);
    out.extend(data);
    out
}

/// A raw 8-bit RGB 4×4 PSD with an image resource `id` of `len` bytes
/// (1039: the ICC profile).
pub fn psd_with_resource(id: u16, len: usize) -> Vec<u8> {
    let mut b = b"8BPS".to_vec();
    b.extend(1u16.to_be_bytes());
    b.extend([0; 6]);
    b.extend(3u16.to_be_bytes());
    b.extend(4u32.to_be_bytes());
    b.extend(4u32.to_be_bytes());
    b.extend(8u16.to_be_bytes());
    b.extend(3u16.to_be_bytes());
    b.extend(0u32.to_be_bytes()); // colour mode data
    let mut resource = b"8BIM".to_vec();
    resource.extend(id.to_be_bytes());
    resource.extend([0, 0]); // an empty name, padded
    resource.extend((len as u32).to_be_bytes());
    resource.extend(vec![0x5A; len]);
    if len % 2 == 1 {
        resource.push(0);
    }
    b.extend((resource.len() as u32).to_be_bytes());
    b.extend(resource);
    b.extend(0u32.to_be_bytes()); // layers
    b.extend(0u16.to_be_bytes()); // raw
    b.extend(vec![0x80; 3 * 16]);
    b
}

/// A JP2 file with a colour box holding an ICC profile of `len` bytes
/// first among its header box's colour boxes.
pub fn jp2_with_icc(jp2: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= jp2.len() {
        let size = u32::from_be_bytes(jp2[at..at + 4].try_into().unwrap()) as usize;
        let size = if size == 0 { jp2.len() - at } else { size };
        let kind = &jp2[at + 4..at + 8];
        if kind == b"jp2h" {
            let mut colr = vec![2, 0, 0];
            colr.extend(vec![0x5A; len]);
            // After the image header box, which must come first.
            let ihdr_end = at + 8 + u32::from_be_bytes(jp2[at + 8..at + 12].try_into().unwrap()) as usize;
            let mut body = jp2[at + 8..ihdr_end].to_vec();
            body.extend(((8 + colr.len()) as u32).to_be_bytes());
            body.extend(b"colr");
            body.extend(colr);
            body.extend(&jp2[ihdr_end..at + size]);
            out.extend(((8 + body.len()) as u32).to_be_bytes());
            out.extend(b"jp2h");
            out.extend(body);
        } else {
            out.extend(&jp2[at..at + size]);
        }
        at += size;
    }
    out
}

/// An ICO holding `png` as its one image.
pub fn ico_with(png: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 1, 0, 1, 0, 64, 64, 0, 0, 1, 0, 32, 0];
    out.extend((png.len() as u32).to_le_bytes());
    out.extend(22u32.to_le_bytes());
    out.extend(png);
    out
}

/// The small GIF with an application extension `app` (11 bytes:
/// "ICCRGBG1012", "XMP DataXMP") of `len` bytes before its image.
pub fn gif_with_app(app: &[u8; 11], len: usize) -> Vec<u8> {
    let gif = small(ImageFormat::Gif);
    // After the header and the global colour table, if any.
    let table = if gif[10] & 0x80 != 0 {
        3 << ((gif[10] & 7) + 1)
    } else {
        0
    };
    let at = 13 + table;
    let mut out = gif[..at].to_vec();
    out.extend([0x21, 0xFF, 11]);
    out.extend(app);
    for part in vec![0x5Au8; len].chunks(255) {
        out.push(part.len() as u8);
        out.extend(part);
    }
    out.push(0);
    out.extend(&gif[at..]);
    out
}
