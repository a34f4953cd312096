//! PDF pages through poppler (`pdfinfo`, `pdftoppm` from Debian's
//! poppler-utils), run as sandboxed child processes ([`super::child`])
//! rather than linked: poppler is GPL, and a hostile file that crashes or
//! hangs it costs a child, never the worker. The children may write no
//! file at all. Poppler fetches nothing from the network
//! and reads no file a PDF names (no external streams), so a page can show
//! only what its document holds.
//!
//! A page's own size is its crop box at 300 dpi (less for a page so large
//! that this would pass the source pixel limit); it is drawn once, straight
//! at the size the largest output needs.

use super::format::{CHILD_BASE, Decoding, Drawn, Format, Layout, Probing, Sniffing, drawn_size};
use super::input::Input;
use super::source::{self, Decoded};
use super::source::{Header, SourceFormat};
use super::{EngineLimits, RenderError, child};

/// Print resolution: what a page's "own size" is in pixels.
const NOMINAL_DPI: f64 = 300.0;

/// The PDF specification's largest page edge, in points (200 inches).
const MAX_PAGE_PT: f64 = 14_400.0;

/// What `pdfinfo` may print (its metadata lines included).
const INFO_BYTES: usize = 1 << 20;

/// `%PDF-` in the first KiB, where readers accept it.
pub(super) fn sniff(start: &[u8]) -> bool {
    start.windows(5).any(|w| w == b"%PDF-")
}

/// Page `page` (from 1) of the document: its size in pixels at the
/// nominal resolution, after its `/Rotate`.
pub(super) fn header(input: Input<'_>, page: u32, limits: &EngineLimits) -> Result<(u32, u32), RenderError> {
    let p = page.to_string();
    let out = match run("/usr/bin/pdfinfo", &["-f", &p, "-l", &p], input, limits, INFO_BYTES) {
        // A page past the last is a wrong range to pdfinfo: the count tells.
        Err(RenderError::CorruptInput(why)) if page > 1 => {
            let pages = info_pages(&String::from_utf8_lossy(&run(
                "/usr/bin/pdfinfo",
                &[],
                input,
                limits,
                INFO_BYTES,
            )?))?;
            return Err(if page > pages {
                RenderError::NoSuchPage { page, pages }
            } else {
                RenderError::CorruptInput(why)
            });
        }
        other => other?,
    };
    let info = String::from_utf8_lossy(&out);
    let pages = info_pages(&info)?;
    if pages > limits.max_pages {
        return Err(RenderError::TooLarge {
            what: "page count",
            value: u64::from(pages),
            max: u64::from(limits.max_pages),
        });
    }
    if page == 0 || page > pages {
        return Err(RenderError::NoSuchPage { page, pages });
    }
    let (w_pt, h_pt, rotate) = info_page(&info, page)?;
    if !(w_pt > 0.0 && h_pt > 0.0) {
        return Err(RenderError::CorruptInput(format!(
            "PDF page {page} is {w_pt} × {h_pt} pt"
        )));
    }
    let long_pt = w_pt.max(h_pt);
    if long_pt > MAX_PAGE_PT {
        return Err(RenderError::TooLarge {
            what: "page edge (pt)",
            value: long_pt.ceil() as u64,
            max: MAX_PAGE_PT as u64,
        });
    }
    let (w_pt, h_pt) = if rotate % 180 == 90 { (h_pt, w_pt) } else { (w_pt, h_pt) };
    // 300 dpi, or the resolution at which the page fills the pixel limit.
    let fit = (limits.max_source_pixels as f64 / (w_pt * h_pt)).sqrt() * 72.0;
    let scale = NOMINAL_DPI.min(fit) / 72.0;
    let px = |pt: f64| ((pt * scale).floor() as u32).max(1);
    Ok((px(w_pt), px(h_pt)))
}

/// The last `Pages:` line (metadata printed before it cannot fake it).
fn info_pages(info: &str) -> Result<u32, RenderError> {
    info.lines()
        .rev()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| RenderError::CorruptInput("PDF: no page count".into()))
}

/// `Page    N size:  W x H pts …` and `Page    N rot:   R`.
fn info_page(info: &str, page: u32) -> Result<(f64, f64, u32), RenderError> {
    let field = |name: &str| {
        let prefix = format!("Page {page:>4} {name}:");
        info.lines()
            .rev()
            .find_map(|l| l.strip_prefix(prefix.as_str()).map(str::trim))
    };
    let size = field("size").ok_or_else(|| RenderError::CorruptInput(format!("PDF: page {page} has no size")))?;
    let mut numbers = size.split_whitespace().filter_map(|t| t.parse::<f64>().ok());
    let (Some(w), Some(h)) = (numbers.next(), numbers.next()) else {
        return Err(RenderError::CorruptInput(format!("PDF: page size {size:?}")));
    };
    let rotate = field("rot").and_then(|r| r.parse::<i64>().ok()).unwrap_or(0);
    Ok((w, h, rotate.rem_euclid(360) as u32))
}

/// Page `page` drawn with its long edge at `largest` (its own size at
/// most): white paper, sRGB, upright.
pub(super) fn decode(
    input: Input<'_>,
    page: u32,
    own: (u32, u32),
    largest: Option<u32>,
    limits: &EngineLimits,
) -> Result<Decoded, RenderError> {
    let own_edge = own.0.max(own.1);
    let edge = largest.map_or(own_edge, |n| n.min(own_edge)).max(1);
    let (p, e) = (page.to_string(), edge.to_string());
    let args = ["-f", &p, "-l", &p, "-cropbox", "-scale-to", &e];
    // The PPM header, and the drawn page (its short side rounds either way).
    let max = 64 + (edge as usize + 1) * (edge as usize + 1) * 3;
    let ppm = run("/usr/bin/pdftoppm", &args, input, limits, max)?;
    let image = source::from_child_pnm(&ppm, "PDF")?;
    Ok(Decoded::drawn(image::DynamicImage::ImageRgb8(image.into_rgb8())))
}

/// Runs a poppler tool over `input` (given as `-`, its stdin), sandboxed
/// and under the deadline, writing no file; its stdout, at most `max_out`
/// bytes.
fn run(
    program: &'static str,
    args: &[&str],
    input: Input<'_>,
    limits: &EngineLimits,
    max_out: usize,
) -> Result<Vec<u8>, RenderError> {
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.push("-".into());
    let run = child::Run {
        program,
        args,
        input,
        seekable: false,
        deadline: limits.document_deadline,
        max_out,
        scratch_bytes: 0,
        what: "PDF pages",
        package: "poppler-utils",
    };
    match run.output()? {
        Ok(done) => Ok(done.out),
        // Poppler says so and exits 1 (3 for a refused permission).
        Err(failed) if failed.code == Some(3) || failed.said.contains("Incorrect password") => Err(
            RenderError::UnsupportedFormat(format!("PDF is password-protected ({})", failed.said)),
        ),
        Err(failed) => Err(failed.corrupt(&run)),
    }
}

/// Where a PDF's `%PDF-` may be.
const SNIFF_BYTES: usize = 1024;

/// A page, drawn at the output's size by poppler in a sandboxed child.
pub(super) const FORMAT: Format = Format::new(SourceFormat::Pdf, sniff_entry, header_entry, decode_entry)
    .paged()
    .drawn(Drawn::AtOutputSize)
    .child_peak(child_peak);

fn sniff_entry(_: &Format, s: &Sniffing<'_>) -> Result<bool, RenderError> {
    Ok(sniff(&s.prefix(SNIFF_BYTES)?))
}

fn header_entry(_: &Format, p: &Probing<'_>) -> Result<Option<Layout>, RenderError> {
    let (w, h) = header(p.input, p.page, p.limits)?;
    // Drawn as 8-bit RGB by the child, and read back.
    Ok(Some(Layout::new(w, h, 3, true)))
}

fn decode_entry(_: &Format, d: &Decoding<'_>) -> Result<Decoded, RenderError> {
    decode(d.input, d.header.page, d.size(), d.largest, d.limits)
}

/// Poppler's RGBA page bitmap.
fn child_peak(header: &Header, largest: Option<u32>, _in_memory: u64) -> u64 {
    let (dw, dh) = drawn_size(header, largest);
    u64::from(dw) * u64::from(dh) * 4 + CHILD_BASE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_cannot_fake_the_page_count_or_size() {
        let info = "Title:          x\nPages:          999\nPage    1 size:  1 x 1 pts\n\
                    Pages:          3\nEncrypted:      no\nPage    2 size:  842 x 595 pts (A4)\nPage    2 rot:   -90\n";
        assert_eq!(info_pages(info).unwrap(), 3);
        assert_eq!(info_page(info, 2).unwrap(), (842.0, 595.0, 270));
        assert!(info_page(info, 3).is_err());
    }

    #[test]
    fn the_header_is_looked_for_in_the_first_kib() {
        assert!(sniff(b"%PDF-1.7\n"));
        assert!(sniff(b"\r\n\r\n%PDF-1.4"));
        assert!(!sniff(b"%!PS-Adobe-3.0"));
    }
}
