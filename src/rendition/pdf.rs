//! PDF pages through poppler (`pdfinfo`, `pdftoppm` from Debian's
//! poppler-utils), run as child processes rather than linked: poppler is
//! GPL, and a hostile file that crashes or hangs it costs a child, never
//! the worker. Each child gets the PDF on its stdin and gives pixels on its
//! stdout; it has no environment but `PATH`, may write no file
//! (`RLIMIT_FSIZE` 0), has bounded address space, CPU time and open files,
//! and is killed at the deadline. Poppler fetches nothing from the network
//! and reads no file a PDF names (no external streams), so a page can show
//! only what its document holds.
//!
//! A page's own size is its crop box at 300 dpi (less for a page so large
//! that this would pass the source pixel limit); it is drawn once, straight
//! at the size the largest output needs.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::Instant;

use image::metadata::Orientation;

use super::decode::{Credits, Decoded};
use super::input::Input;
use super::{EngineLimits, RenderError};

/// Print resolution: what a page's "own size" is in pixels.
const NOMINAL_DPI: f64 = 300.0;

/// The PDF specification's largest page edge, in points (200 inches).
const MAX_PAGE_PT: f64 = 14_400.0;

/// A child's address space: room for poppler and a 100 MP page bitmap.
const CHILD_ADDRESS_SPACE: u64 = 2 << 30;

/// What a child's stderr is read for the error message.
const STDERR_BYTES: u64 = 4 << 10;

/// What `pdfinfo` may print (its metadata lines included).
const INFO_BYTES: usize = 1 << 20;

/// `%PDF-` in the first KiB, where readers accept it.
pub(super) fn sniff(start: &[u8]) -> bool {
    start.windows(5).any(|w| w == b"%PDF-")
}

/// A page: its drawn size at the nominal resolution and the document's
/// page count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PageInfo {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) pages: u32,
}

/// Page `page` (from 1) of the document: its size, after its `/Rotate`.
pub(super) fn header(input: Input<'_>, page: u32, limits: &EngineLimits) -> Result<PageInfo, RenderError> {
    let p = page.to_string();
    let out = match run("pdfinfo", &["-f", &p, "-l", &p], input, limits, INFO_BYTES) {
        // A page past the last is a wrong range to pdfinfo: the count tells.
        Err(RenderError::CorruptInput(why)) if page > 1 => {
            let pages = info_pages(&String::from_utf8_lossy(&run(
                "pdfinfo",
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
    Ok(PageInfo {
        width: px(w_pt),
        height: px(h_pt),
        pages,
    })
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
    let ppm = run("pdftoppm", &args, input, limits, max)?;
    let image = image::load_from_memory_with_format(&ppm, image::ImageFormat::Pnm)
        .map_err(|e| RenderError::CorruptInput(format!("PDF: pdftoppm's output: {e}")))?;
    Ok(Decoded {
        image: image::DynamicImage::ImageRgb8(image.into_rgb8()),
        icc: None,
        credits: Credits::default(),
        orientation: Orientation::NoTransforms,
    })
}

/// Runs a poppler tool over `input` (given as `-`, its stdin), sandboxed
/// and under the deadline; its stdout, at most `max_out` bytes.
fn run(
    program: &str,
    args: &[&str],
    input: Input<'_>,
    limits: &EngineLimits,
    max_out: usize,
) -> Result<Vec<u8>, RenderError> {
    let deadline = limits.document_deadline;
    let cpu_s = deadline.as_secs().max(1) + 1;
    let mut command = Command::new(program);
    command
        .args(args)
        .arg("-")
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .current_dir("/")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match input {
        Input::File(path) => command.stdin(std::fs::File::open(path).map_err(RenderError::corrupt)?),
        Input::Bytes(_) => command.stdin(Stdio::piped()),
    };
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (setrlimit, signal), touching no memory the parent's threads share.
    unsafe {
        command.pre_exec(move || confine(cpu_s));
    }
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RenderError::UnsupportedFormat(format!(
            "PDF pages need poppler-utils (`{program}`), which is not installed"
        )),
        _ => RenderError::codec(format!("starting {program}: {e}"), e),
    })?;
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let started = Instant::now();
    let (status, out, err) = std::thread::scope(|s| {
        if let (Some(mut pipe), Input::Bytes(bytes)) = (stdin, input) {
            // A child that stops reading early closes the pipe: not an error here.
            s.spawn(move || pipe.write_all(bytes));
        }
        let out = s.spawn(move || read_capped(stdout, max_out as u64 + 1));
        let err = s.spawn(move || read_capped(stderr, STDERR_BYTES));
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if started.elapsed() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(RenderError::Deadline(format!(
                        "{program} took more than {:?}",
                        deadline
                    )));
                }
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(2)),
                Err(e) => break Err(RenderError::codec(format!("waiting for {program}: {e}"), e)),
            }
        };
        (status, out.join().unwrap_or_default(), err.join().unwrap_or_default())
    });
    let status = status?;
    if out.len() > max_out {
        return Err(RenderError::DecoderLimit(format!(
            "{program} printed more than {max_out} bytes"
        )));
    }
    if status.success() {
        return Ok(out);
    }
    let said = String::from_utf8_lossy(&err);
    let said = said.lines().last().unwrap_or("").trim();
    Err(match (status.code(), status.signal()) {
        (Some(3), _) => RenderError::UnsupportedFormat(format!("PDF is password-protected ({said})")),
        // RLIMIT_CPU: SIGXCPU, then SIGKILL.
        (_, Some(libc::SIGXCPU | libc::SIGKILL)) => RenderError::Deadline(format!("{program} ran out of CPU time")),
        (_, Some(signal)) => RenderError::CorruptInput(format!("PDF: {program} died of signal {signal} ({said})")),
        (code, _) => RenderError::CorruptInput(format!("PDF: {program} exited {code:?}: {said}")),
    })
}

fn read_capped(pipe: Option<impl Read>, cap: u64) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe.take(cap).read_to_end(&mut out);
    }
    out
}

/// The child's limits, set after fork: address space, CPU seconds, no file
/// written (a write fails with EFBIG instead of killing: fontconfig may
/// try its cache), no core file, few open files.
fn confine(cpu_s: u64) -> std::io::Result<()> {
    let set = |resource, value: u64| {
        let limit = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: a plain system call on a stack value.
        if unsafe { libc::setrlimit(resource, &limit) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    set(libc::RLIMIT_AS, CHILD_ADDRESS_SPACE)?;
    set(libc::RLIMIT_CPU, cpu_s)?;
    set(libc::RLIMIT_FSIZE, 0)?;
    set(libc::RLIMIT_CORE, 0)?;
    set(libc::RLIMIT_NOFILE, 256)?;
    // SAFETY: setting a signal's disposition to ignore.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    Ok(())
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
