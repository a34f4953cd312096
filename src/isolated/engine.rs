//! The engine process's side: `rendition-engine` confines itself
//! ([`super::confine`]), then answers one request at a time on the socket
//! it was given as descriptor 3 until the worker closes it. It holds no
//! credential, no queue and no store: a source arrives as a descriptor,
//! outputs leave as one.

use std::fs::File;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::RgbaImage;

use super::confine::{self, Confinement};
use super::wire::{self, Answer, Output, Request};
use crate::error::panic_message;
use crate::rendition::{self, EngineLimits, Input, Logo, RenderError, Rendered, Spec, WatermarkSpec, probe};

/// The descriptor the worker hands the socket on as.
pub const SOCKET_FD: i32 = 3;

/// What an engine program answers beyond probes and renders: the image
/// engine nothing ([`images_only`]), the video engine posters and proxies
/// (`super::video_engine::answer`, linked into that program alone).
pub type Extra = fn(Request, &mut std::vec::IntoIter<OwnedFd>, &UnixStream, &Confinement) -> Reply;

/// An answer, and the file sent beside it.
pub type Reply = (Answer, Option<File>);

/// An engine program's `main`: arguments (render threads, then `strict`
/// or `lenient` confinement) from the worker that started it.
/// `no_children`: the program starts no other (see
/// [`confine::confine`]).
pub fn main(extra: Extra, no_children: bool) -> std::process::ExitCode {
    // No other process of its user (another engine) may read its memory.
    if let Err(e) = crate::rendition::harden_worker() {
        eprintln!("engine: could not make the process non-dumpable: {e}");
        return std::process::ExitCode::from(2);
    }
    let mut args = std::env::args().skip(1);
    let threads = args.next().and_then(|t| t.parse().ok()).unwrap_or(1);
    let strict = args.next().as_deref() != Some(LENIENT);
    match run(threads, (strict, no_children), extra) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engine: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// The argument that lets an engine run where the kernel enforces no
/// Landlock (a video engine beside in-process image renders).
pub const LENIENT: &str = "lenient";

/// Runs the engine on descriptor 3 until the worker hangs up, rendering
/// on `threads` threads. Confined before any thread starts: Landlock holds
/// for the thread that asks and those it starts later.
fn run(threads: usize, (strict, no_children): (bool, bool), extra: Extra) -> std::io::Result<()> {
    // SAFETY: the worker started this process with its socket as fd 3,
    // owned by nothing else here.
    let socket = UnixStream::from(unsafe { OwnedFd::from_raw_fd(SOCKET_FD) });
    let confinement = confine::confine(strict, no_children)?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("engine-{i}"))
        .build_global()
        .map_err(std::io::Error::other)?;
    serve(&socket, &confinement, extra)
}

fn serve(socket: &UnixStream, confinement: &Confinement, extra: Extra) -> std::io::Result<()> {
    loop {
        wait_trimming(socket);
        let Some((request, fds)) = wire::receive::<Request>(socket)? else {
            return Ok(());
        };
        let mut fds = fds.into_iter();
        let (answer, outputs) = match request {
            Request::Probe { page, limits } => {
                let source = fds.next().map(File::from);
                (probe_source(source.as_ref(), page, &limits), None)
            }
            Request::Render {
                header,
                spec,
                limits,
                memory,
                logo,
            } => {
                let source = fds.next().map(File::from);
                let logo = logo.zip(fds.next());
                let rendered = confinement.within(memory, || render(source.as_ref(), &header, spec, logo, &limits));
                rendered_reply(rendered)
            }
            #[cfg(feature = "engine-test-requests")]
            Request::Attempt(attempt) => (Answer::Attempted(super::attempts::run(attempt, confinement)), None),
            other => extra(other, &mut fds, socket, confinement),
        };
        drop(fds);
        let fds: Vec<_> = outputs.iter().map(|f| f.as_fd()).collect();
        wire::send(socket, &answer, &fds)?;
        drop(outputs);
    }
}

/// The image engine's [`Extra`]: no video here.
pub fn images_only(request: Request, _: &mut std::vec::IntoIter<OwnedFd>, _: &UnixStream, _: &Confinement) -> Reply {
    let refused = RenderError::Answered {
        code: crate::error::ErrorCode::EngineError,
        message: format!("this engine makes no video ({request:?})"),
    };
    (Answer::refused(&refused), None)
}

/// Renders as an answer: the outputs' descriptions and their file.
pub(super) fn rendered_reply(rendered: Result<Vec<Rendered>, RenderError>) -> Reply {
    match rendered.and_then(outputs_file) {
        Ok((described, file)) => (Answer::Rendered(described), Some(file)),
        Err(e) => (Answer::refused(&e), None),
    }
}

/// How long an engine waits for the next request before it gives back
/// the memory its jobs freed.
const IDLE_TRIM: i32 = 1000;

/// Waits for the next request; if none comes within [`IDLE_TRIM`] ms, the
/// heap the last jobs left goes back to the system (between jobs in a
/// burst it stays, which saves the next job its page faults).
fn wait_trimming(socket: &UnixStream) {
    let mut ready = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(socket),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll reads one pollfd it is given; malloc_trim only walks
    // the allocator's own state.
    unsafe {
        if libc::poll(&mut ready, 1, IDLE_TRIM) == 0 {
            libc::malloc_trim(0);
        }
    }
}

fn probe_source(source: Option<&File>, page: u32, limits: &EngineLimits) -> Answer {
    let Some(file) = source else {
        return Answer::refused(&RenderError::CorruptInput("no source was sent".into()));
    };
    #[cfg(feature = "engine-test-requests")]
    super::attempts::crash_on_marked(file);
    match caught(|| probe::probe_input(Input::Open(file), limits, page)) {
        Ok(header) => Answer::Probed(header),
        Err(e) => Answer::refused(&e),
    }
}

fn render(
    source: Option<&File>,
    header: &probe::Header,
    mut spec: Spec,
    logo: Option<((u32, u32), OwnedFd)>,
    limits: &EngineLimits,
) -> Result<Vec<Rendered>, RenderError> {
    let file = source.ok_or_else(|| RenderError::CorruptInput("no source was sent".into()))?;
    attach_logo(spec.watermark.as_mut(), logo)?;
    caught(|| rendition::render_probed(Input::Open(file), header, &spec, limits))
}

/// Puts the logo's pixels, sent beside the request, into the watermark.
pub(super) fn attach_logo(
    watermark: Option<&mut WatermarkSpec>,
    logo: Option<((u32, u32), OwnedFd)>,
) -> Result<(), RenderError> {
    if let (Some(((w, h), fd)), Some(watermark)) = (logo, watermark) {
        let pixels = wire::read_all(fd).map_err(RenderError::corrupt)?;
        let image = RgbaImage::from_raw(w, h, pixels)
            .ok_or_else(|| RenderError::CorruptInput("the logo's pixels do not fill its size".into()))?;
        watermark.logo = Some(Logo::new(image));
    }
    Ok(())
}

/// A panic in engine code fails the request, not the engine.
pub(super) fn caught<T>(f: impl FnOnce() -> Result<T, RenderError>) -> Result<T, RenderError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        Err(RenderError::Answered {
            code: crate::error::ErrorCode::EngineError,
            message: format!("the engine panicked: {}", panic_message(&*panic)),
        })
    })
}

/// The outputs' bytes one after another in an anonymous file.
fn outputs_file(rendered: Vec<Rendered>) -> Result<(Vec<Output>, File), RenderError> {
    let file = wire::memory_file("rendition-outputs", &[]).map_err(RenderError::corrupt)?;
    let mut described = Vec::with_capacity(rendered.len());
    for r in rendered {
        std::io::Write::write_all(&mut &file, &r.bytes).map_err(RenderError::corrupt)?;
        described.push(Output {
            size: r.size,
            bytes: r.bytes.len() as u64,
            width: r.width,
            height: r.height,
            format: r.format,
            watermarked: r.watermarked,
        });
    }
    Ok((described, file))
}
