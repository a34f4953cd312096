//! The legacy formats a DAM still receives (SGI, PCX and DCX, XPM, XBM, Sun
//! raster, FITS, PFM), and the BMP, TGA, PNM, DDS and GIF variants the
//! `image` crate does not read (OS/2 bitmaps, DX10 textures, a GIF frame
//! without a palette, …), through ImageMagick 6 (Debian's
//! `imagemagick`), as libvips reads them. ImageMagick runs as a sandboxed
//! child ([`super::child`]), never linked: it has a long record of
//! memory-safety bugs in exactly these old coders. Each run names its
//! coder (`sgi:-`), so ImageMagick never guesses a format from the bytes
//! and never reaches its script-like or delegate coders (MVG, MSL, PS,
//! URL); its scratch files go to a private directory that is removed
//! afterwards, each no larger than the picture needs.

use super::format::{CHILD_BASE, Decoding, Format, Layout, Probing, Sniffing};
use super::input::Input;
use super::source::{self, Decoded, Header, SourceFormat};
use super::{EngineLimits, RenderError, child};

/// What `identify` may print.
const IDENTIFY_BYTES: usize = 64 << 10;

/// Room for a scratch copy's slack and a PAM header.
const SLACK_BYTES: u64 = 1 << 20;

/// The legacy formats, told by their magic numbers.
pub(super) fn sniff(head: &[u8]) -> Option<SourceFormat> {
    let at = |i: usize| head.get(i).copied();
    if head.starts_with(&[0x01, 0xDA]) && matches!(at(2), Some(0 | 1)) && matches!(at(3), Some(1 | 2)) {
        return Some(SourceFormat::Sgi);
    }
    // Manufacturer 10, a known version, RLE or none, a usual depth.
    if at(0) == Some(0x0A)
        && matches!(at(1), Some(0 | 2 | 3 | 4 | 5))
        && matches!(at(2), Some(0 | 1))
        && matches!(at(3), Some(1 | 2 | 4 | 8))
    {
        return Some(SourceFormat::Pcx);
    }
    if head.starts_with(&[0x59, 0xA6, 0x6A, 0x95]) {
        return Some(SourceFormat::SunRaster);
    }
    if head.starts_with(b"SIMPLE  =") {
        return Some(SourceFormat::Fits);
    }
    if head.starts_with(&[0xB1, 0x68, 0xDE, 0x3A]) {
        return Some(SourceFormat::Dcx);
    }
    if (head.starts_with(b"PF") || head.starts_with(b"Pf")) && head.get(2).is_some_and(u8::is_ascii_whitespace) {
        return Some(SourceFormat::Pfm);
    }
    let text = head.trim_ascii_start();
    if text.starts_with(b"/* XPM */") || text.starts_with(b"! XPM2") {
        return Some(SourceFormat::Xpm);
    }
    // `#define NAME_width N`, then `#define NAME_height N` (which a long
    // name pushes past the head).
    let has = |word: &[u8]| text.windows(word.len()).any(|w| w == word);
    if text.starts_with(b"#define ") && has(b"_width ") && (has(b"_height ") || has(b"\n#define ")) {
        return Some(SourceFormat::Xbm);
    }
    None
}

/// A format only ImageMagick reads for us, by its coder.
const fn legacy(kind: SourceFormat, coder: &'static str) -> Format {
    Format::new(kind, sniff_legacy, header_of, decode_entry)
        .magick(coder)
        .child_peak(child_peak)
}

pub(super) const SGI: Format = legacy(SourceFormat::Sgi, "sgi");
pub(super) const PCX: Format = legacy(SourceFormat::Pcx, "pcx");
pub(super) const XPM: Format = legacy(SourceFormat::Xpm, "xpm");
pub(super) const SUN_RASTER: Format = legacy(SourceFormat::SunRaster, "sun");
pub(super) const FITS: Format = legacy(SourceFormat::Fits, "fits");
pub(super) const XBM: Format = legacy(SourceFormat::Xbm, "xbm");
pub(super) const PFM: Format = legacy(SourceFormat::Pfm, "pfm");
pub(super) const DCX: Format = legacy(SourceFormat::Dcx, "dcx");

/// Asked only where `image` knows none of its formats in the bytes.
fn sniff_legacy(format: &Format, s: &Sniffing<'_>) -> Result<bool, RenderError> {
    Ok(s.unknown_to_image() && sniff(s.head) == Some(format.kind))
}

/// Size from `identify`; its 8-bit RGBA output is copied.
pub(super) fn header_of(format: &Format, p: &Probing<'_>) -> Result<Option<Layout>, RenderError> {
    let (w, h) = header(p.input, coder_of(format)?, p.limits)?;
    Ok(Some(Layout::new(w, h, 4, false)))
}

/// The first frame, drawn by `convert`.
pub(super) fn decode_entry(format: &Format, d: &Decoding<'_>) -> Result<Decoded, RenderError> {
    decode(d.input, format.kind, coder_of(format)?, d.size(), d.limits)
}

fn coder_of(format: &Format) -> Result<&'static str, RenderError> {
    format
        .magick
        .ok_or_else(|| RenderError::UnsupportedFormat(format!("{:?}", format.kind)))
}

/// ImageMagick keeps this much of its pixel cache in memory (Debian's
/// policy), the rest in its scratch files.
const MAGICK_CACHE: u64 = 256 << 20;

/// The tool and its pixel cache in memory.
fn child_peak(header: &Header, _largest: Option<u32>, _in_memory: u64) -> u64 {
    let pixels = u64::from(header.width) * u64::from(header.height);
    (pixels * 8).min(MAGICK_CACHE) + CHILD_BASE
}

/// The first frame's size, read by `identify -ping` (the header only).
fn header(input: Input<'_>, coder: &'static str, limits: &EngineLimits) -> Result<(u32, u32), RenderError> {
    let run = tool(
        "/usr/bin/identify",
        vec!["-ping".into(), "-format".into(), "%w %h\\n".into(), first_frame(coder)],
        input,
        limits,
        IDENTIFY_BYTES,
        input.len()? + SLACK_BYTES,
    );
    let out = run.output()?.map_err(|failed| failed.corrupt(&run))?.out;
    let text = String::from_utf8_lossy(&out);
    let mut numbers = text.lines().next().unwrap_or("").split(' ').map(str::parse::<u32>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(w)), Some(Ok(h))) => Ok((w, h)),
        _ => Err(RenderError::CorruptInput(format!("{coder}: identify printed {text:?}"))),
    }
}

/// ImageMagick reads a truncated SGI without a word (the missing rows
/// come out black): its length is checked against its header first (raw
/// rows, or the RLE rows its offset tables point to).
fn check_complete(format: SourceFormat, input: Input<'_>) -> Result<(), RenderError> {
    if format != SourceFormat::Sgi {
        return Ok(());
    }
    let head = input.head()?;
    let be16 = |i: usize| {
        head.get(i..i + 2)
            .map_or(0, |b| u64::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let (rle, bytes_per_sample) = (head.get(2) == Some(&1), head.get(3).copied().map_or(1, u64::from));
    // At most 4 channels (RGBA): ImageMagick refuses more.
    let (width, rows) = (be16(6), be16(8) * be16(10).clamp(1, 4));
    let needed = if rle {
        // Each row's offset, then each row's length, as 32-bit words.
        let tables = input.prefix(512 + 8 * rows as usize)?;
        let be32 = |i: usize| {
            tables
                .get(i..i + 4)
                .map_or(u64::MAX, |b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
        };
        let base = 512 + 4 * rows as usize;
        (0..rows as usize)
            .map(|r| be32(512 + 4 * r).saturating_add(be32(base + 4 * r)))
            .max()
            .unwrap_or(512)
    } else {
        512 + width * rows * bytes_per_sample
    };
    let len = input.len()?;
    if len < needed {
        return Err(RenderError::CorruptInput(format!(
            "SGI: {len} bytes, its header needs {needed}"
        )));
    }
    Ok(())
}

/// The first frame, 8-bit grey or RGB with its alpha, of the size the
/// header said.
fn decode(
    input: Input<'_>,
    format: SourceFormat,
    coder: &'static str,
    size: (u32, u32),
    limits: &EngineLimits,
) -> Result<Decoded, RenderError> {
    check_complete(format, input)?;
    let (w, h) = (u64::from(size.0), u64::from(size.1));
    let pam = w * h * 4 + SLACK_BYTES;
    // ImageMagick's 16-bit RGBA pixel cache spills to a file past 256 MiB
    // (Debian's policy), and its output is staged in one.
    let scratch = (w * h * 8).max(input.len()?).max(pam) + SLACK_BYTES;
    let args = vec![
        "-limit".into(),
        "thread".into(),
        "1".into(),
        first_frame(coder),
        "-colorspace".into(),
        "sRGB".into(),
        "-depth".into(),
        "8".into(),
        "pam:-".into(),
    ];
    let run = tool("/usr/bin/convert", args, input, limits, pam as usize, scratch);
    let out = run.output()?.map_err(|failed| failed.corrupt(&run))?.out;
    let image = source::from_child_pnm(&out, coder)?;
    if (image.width(), image.height()) != size {
        return Err(RenderError::CorruptInput(format!(
            "{coder}: {}×{} pixels decoded, the header said {}×{}",
            image.width(),
            image.height(),
            size.0,
            size.1
        )));
    }
    Ok(Decoded::drawn(source::eight_bit(image)))
}

/// `coder:-[0]`: stdin, read with that coder only, its first frame.
fn first_frame(coder: &str) -> String {
    format!("{coder}:-[0]")
}

fn tool<'a>(
    program: &'static str,
    args: Vec<String>,
    input: Input<'a>,
    limits: &EngineLimits,
    max_out: usize,
    scratch_bytes: u64,
) -> child::Run<'a> {
    child::Run {
        program,
        args,
        input,
        seekable: false,
        deadline: limits.document_deadline,
        max_out,
        scratch_bytes,
        what: "legacy formats",
        package: "imagemagick",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_tell_the_legacy_formats() {
        assert_eq!(sniff(&[0x01, 0xDA, 1, 1, 0, 3]), Some(SourceFormat::Sgi));
        assert_eq!(sniff(&[0x0A, 5, 1, 8, 0, 0]), Some(SourceFormat::Pcx));
        assert_eq!(sniff(&[0x59, 0xA6, 0x6A, 0x95, 0]), Some(SourceFormat::SunRaster));
        assert_eq!(sniff(b"SIMPLE  =                    T"), Some(SourceFormat::Fits));
        assert_eq!(sniff(b"/* XPM */\nstatic char"), Some(SourceFormat::Xpm));
        assert_eq!(sniff(b"\n/* XPM */"), Some(SourceFormat::Xpm));
        assert_eq!(
            sniff(b"#define hopper_width 128\n#define hopper_height 128\n"),
            Some(SourceFormat::Xbm)
        );
        assert_eq!(sniff(b"#define SCREEN_width 128\nint x;\n"), None);
        assert_eq!(
            sniff(b"#define hopper_underscore_width 128\n#define hopper_underscore_he"),
            Some(SourceFormat::Xbm)
        );
        assert_eq!(sniff(b"#define VERSION 3\n"), None);
        assert_eq!(sniff(b"Pf\n128 128\n-1.0\n"), Some(SourceFormat::Pfm));
        assert_eq!(sniff(&[0xB1, 0x68, 0xDE, 0x3A, 4, 16]), Some(SourceFormat::Dcx));
        // A PCX with an unknown version, an SGI with a wrong storage byte.
        assert_eq!(sniff(&[0x0A, 7, 1, 8]), None);
        assert_eq!(sniff(&[0x01, 0xDA, 9, 1]), None);
        assert_eq!(sniff(b"<svg"), None);
    }
}
