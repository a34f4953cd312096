//! Camera RAW files (DNG, CR2, NEF, ARW, PEF, ORF, RW2, RAF, …) through
//! dcraw (Debian's `dcraw` 9.28), run as a sandboxed child
//! ([`super::child`]) that writes no file: demosaiced with the camera's
//! white balance into sRGB, upright, at half size (2 × 2 photosites to a
//! pixel, no demosaicing) when the largest output fits it. dcraw seeks, so
//! its stdin is the original as a file. Its exit status is not trusted
//! alone: the size it prints must be the size it said, and a file too
//! small to hold its pixels (a metadata-only stub dcraw would "decode" to
//! black) is refused first.

use super::format::{CHILD_BASE, Decoding, Format, Layout, Probing, Sniffing};
use super::input::Input;
use super::source::{self, Decoded};
use super::source::{Header, SourceFormat};
use super::{EngineLimits, RenderError, child, jpeg_meta};

/// How much of a TIFF-like file is read for its first directory.
pub(super) const SNIFF_BYTES: usize = 64 << 10;

/// What `dcraw -i -v` may print.
const INFO_BYTES: usize = 64 << 10;

/// More pixels per byte of file than a real RAW file holds (lossy DNG
/// has about 5): a stub.
const STUB_PIXELS_PER_BYTE: u64 = 32;

/// RAW formats with a magic number of their own (not TIFF's).
pub(super) fn sniff_own_magic(head: &[u8]) -> Result<bool, RenderError> {
    let cr3 = head.get(4..12) == Some(b"ftypcrx ".as_slice());
    if cr3 {
        return Err(RenderError::UnsupportedFormat(
            "Canon CR3 RAW files are not read yet (dcraw 9.28 predates them)".into(),
        ));
    }
    Ok(head.starts_with(b"IIRO")       // Olympus ORF
        || head.starts_with(b"IIRS")
        || head.starts_with(b"MMOR")
        || head.starts_with(b"IIU\0")  // Panasonic RW2
        || head.starts_with(b"FUJIFILMCCD-RAW")
        || head.get(6..14) == Some(b"HEAPCCDR".as_slice()) // Canon CRW
        || head.starts_with(b"\0MRM")  // Minolta MRW
        || head.starts_with(b"FOVb")) // Sigma X3F
}

/// A TIFF that is a camera RAW file: a DNG (its DNGVersion tag), a CR2
/// (Canon's marker after the header), or a camera maker's TIFF whose raw
/// data sits in sub-directories (NEF, ARW, PEF, SRW, …).
pub(super) fn is_raw_tiff(prefix: &[u8]) -> bool {
    const DNG_VERSION: u16 = 50706;
    const MAKE: u16 = 0x010F;
    const SUB_IFDS: u16 = 0x014A;
    const PHOTOMETRIC: u16 = 0x0106;
    // Photometric interpretations only sensors have: CFA, LinearRaw.
    const SENSOR: [u16; 2] = [32803, 34892];
    let big = prefix.get(2..4) == Some(b"\x2B\0".as_slice()) || prefix.get(2..4) == Some(b"\0\x2B".as_slice());
    if big {
        return false;
    }
    // Canon's marker right after the header, IFD0 after it.
    let cr2 = |order: &[u8; 4], ifd0: &[u8; 4]| prefix.get(..4) == Some(order) && prefix.get(4..8) == Some(ifd0);
    if prefix.get(8..12) == Some(b"CR\x02\0".as_slice()) && cr2(b"II*\0", &[16, 0, 0, 0]) {
        return true;
    }
    let has = |tag: u16| jpeg_meta::ifd0_has(prefix, tag);
    let sensor = jpeg_meta::ifd0_short(prefix, PHOTOMETRIC).is_some_and(|p| SENSOR.contains(&p));
    has(DNG_VERSION) || (has(MAKE) && (has(SUB_IFDS) || sensor))
}

/// The picture's size as dcraw will draw it (cropped to the sensor's
/// active area, upright).
pub(super) fn header(input: Input<'_>, limits: &EngineLimits) -> Result<(u32, u32), RenderError> {
    let run = dcraw(vec!["-i".into(), "-v".into()], input, limits, INFO_BYTES);
    let out = run.output()?.map_err(|failed| failed.corrupt(&run))?.out;
    let info = String::from_utf8_lossy(&out);
    let (w, h) = info
        .lines()
        .find_map(|l| l.strip_prefix("Output size:"))
        .and_then(|size| {
            let mut n = size.split('x').map(|t| t.trim().parse::<u32>());
            Some((n.next()?.ok()?, n.next()?.ok()?))
        })
        .ok_or_else(|| RenderError::CorruptInput("RAW: dcraw printed no output size".into()))?;
    let bytes = input.len()?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels > bytes * STUB_PIXELS_PER_BYTE {
        return Err(RenderError::CorruptInput(format!(
            "RAW: {bytes} bytes cannot hold {w}×{h} pixels (metadata only?)"
        )));
    }
    Ok((w, h))
}

/// dcraw's answer for a file it does not take for a camera's (a plain
/// TIFF that looked like one): not damage.
pub(super) fn refused_as_not_raw(e: &RenderError) -> bool {
    matches!(e, RenderError::CorruptInput(m) if m.contains("Cannot decode file"))
}

/// Whether the largest output fits in half the picture's size.
pub(super) fn half_size(size: (u32, u32), largest: Option<u32>) -> bool {
    largest.is_some_and(|l| u64::from(l) * 2 <= u64::from(size.0.max(size.1)))
}

/// Demosaiced, sRGB, upright; at half size when `largest` fits in it.
pub(super) fn decode(
    input: Input<'_>,
    size: (u32, u32),
    largest: Option<u32>,
    limits: &EngineLimits,
) -> Result<Decoded, RenderError> {
    let half = half_size(size, largest);
    // `-w`: the camera's white balance; `-q 0`: bilinear demosaicing.
    let mut args: Vec<String> = ["-c", "-w", "-q", "0"].map(String::from).into();
    if half {
        args.push("-h".into());
    }
    let max_out = size.0 as usize * size.1 as usize * 3 + 64;
    let run = dcraw(args, input, limits, max_out);
    let done = run.output()?.map_err(|failed| failed.corrupt(&run))?;
    // dcraw reports a truncated or damaged file and still exits 0 (the
    // rows it could not read come out black).
    if let Some(damage) = done
        .said
        .lines()
        .find(|l| l.contains("Unexpected end of file") || l.contains("Corrupt data"))
    {
        return Err(RenderError::CorruptInput(format!("RAW: {}", damage.trim())));
    }
    let image = source::from_child_pnm(&done.out, "RAW")?;
    // dcraw halves only sensors with a colour filter (not LinearRaw DNGs,
    // Foveon, monochrome): a half-size run may give the full size.
    let fits = |drawn: u32, own: u32| drawn == own || half && drawn.abs_diff(own / 2) <= 1;
    if !fits(image.width(), size.0) || !fits(image.height(), size.1) {
        return Err(RenderError::CorruptInput(format!(
            "RAW: dcraw drew {}×{}, its header said {}×{}",
            image.width(),
            image.height(),
            size.0,
            size.1
        )));
    }
    Ok(Decoded::drawn(image::DynamicImage::ImageRgb8(image.into_rgb8())))
}

fn dcraw<'a>(mut args: Vec<String>, input: Input<'a>, limits: &EngineLimits, max_out: usize) -> child::Run<'a> {
    // No bad-pixel file looked for in the working directory and up.
    args.extend(["-P".into(), "/dev/null".into(), "/dev/stdin".into()]);
    child::Run {
        program: "/usr/bin/dcraw",
        args,
        input,
        seekable: true,
        deadline: limits.document_deadline,
        max_out,
        scratch_bytes: 0,
        what: "RAW files",
        package: "dcraw",
    }
}

/// Camera RAW files, told by their own magic or as a camera's TIFF; drawn
/// by dcraw in a sandboxed child.
pub(super) const FORMAT: Format =
    Format::new(SourceFormat::Raw, sniff_entry, header_entry, decode_entry).child_peak(child_peak);

fn tiff_shaped(head: &[u8]) -> bool {
    head.starts_with(b"II*\0") || head.starts_with(b"MM\0*")
}

fn sniff_entry(_: &Format, s: &Sniffing<'_>) -> Result<bool, RenderError> {
    Ok(sniff_own_magic(s.head)? || tiff_shaped(s.head) && is_raw_tiff(&s.prefix(SNIFF_BYTES)?))
}

/// Drawn as 8-bit RGB by the child, read back and copied. A TIFF dcraw
/// does not take for a camera's is the TIFF it also is (`Ok(None)`).
fn header_entry(_: &Format, p: &Probing<'_>) -> Result<Option<Layout>, RenderError> {
    match header(p.input, p.limits) {
        Ok((w, h)) => Ok(Some(Layout::new(w, h, 3, false))),
        Err(e) if tiff_shaped(&p.input.head()?) && refused_as_not_raw(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn decode_entry(_: &Format, d: &Decoding<'_>) -> Result<Decoded, RenderError> {
    decode(d.input, d.size(), d.largest, d.limits)
}

/// The 16-bit photosites, dcraw's four 16-bit channels per pixel (a
/// quarter of them at half size), and the in-memory file it reads an
/// original held in memory from.
fn child_peak(header: &Header, largest: Option<u32>, in_memory: u64) -> u64 {
    let pixels = u64::from(header.width) * u64::from(header.height);
    let per_pixel = if half_size((header.width, header.height), largest) {
        4
    } else {
        10
    };
    pixels * per_pixel + in_memory + CHILD_BASE
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian TIFF header and a first directory of `tags`.
    fn tiff(tags: &[u16]) -> Vec<u8> {
        let mut t = b"II*\0\x08\0\0\0".to_vec();
        t.extend((tags.len() as u16).to_le_bytes());
        for &tag in tags {
            t.extend(tag.to_le_bytes());
            t.extend([2, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        }
        t
    }

    #[test]
    fn raw_tiffs_are_told_from_plain_tiffs() {
        assert!(is_raw_tiff(&tiff(&[0x0100, 50706])), "DNG");
        assert!(
            is_raw_tiff(&tiff(&[0x010F, 0x014A])),
            "a maker's TIFF with sub-directories"
        );
        assert!(!is_raw_tiff(&tiff(&[0x0100, 0x010F])), "a camera's plain TIFF");
        assert!(!is_raw_tiff(&tiff(&[0x014A])), "sub-directories, no maker");
        let mut cr2 = b"II*\0\x10\0\0\0CR\x02\0\0\0\0\0".to_vec();
        cr2.extend([0, 0]);
        assert!(is_raw_tiff(&cr2), "CR2");
        // "CR" as the first pixels of a plain TIFF, its IFD0 elsewhere.
        let mut plain = tiff(&[0x0100]);
        plain[4..8].copy_from_slice(&[0, 1, 0, 0]);
        plain[8..12].copy_from_slice(b"CR\x02\0");
        assert!(!is_raw_tiff(&plain), "pixels that spell CR");
        // A camera TIFF whose CFA is in IFD0 (PEF, older ARW).
        let mut pef = tiff(&[0x010F, 0x0106]);
        // Entry 2 (at 22): the type SHORT, the value CFA.
        pef[24..26].copy_from_slice(&3u16.to_le_bytes());
        pef[30..32].copy_from_slice(&32803u16.to_le_bytes());
        assert!(is_raw_tiff(&pef), "CFA in IFD0");
        assert!(!is_raw_tiff(b"II*\0\xff\xff\0\0"), "a directory past the prefix");
    }

    #[test]
    fn raw_magic_numbers_and_cr3() {
        assert!(sniff_own_magic(b"IIRO\x08\0\0\0").unwrap());
        assert!(sniff_own_magic(b"FUJIFILMCCD-RAW 0201").unwrap());
        assert!(!sniff_own_magic(b"II*\0\x08\0\0\0").unwrap());
        assert_eq!(
            crate::error::Coded::code(&sniff_own_magic(b"\0\0\0\x18ftypcrx \0\0\0\x01").unwrap_err()),
            "unsupported_format"
        );
    }
}
