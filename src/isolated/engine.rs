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
use crate::rendition::{self, EngineLimits, Input, Logo, RenderError, Rendered, Spec, probe};

/// The descriptor the worker hands the socket on as.
pub const SOCKET_FD: i32 = 3;

/// Runs the engine on descriptor 3 until the worker hangs up, rendering
/// on `threads` threads. Confined before any thread starts: Landlock holds
/// for the thread that asks and those it starts later.
pub fn run(threads: usize) -> std::io::Result<()> {
    // SAFETY: the worker started this process with its socket as fd 3,
    // owned by nothing else here.
    let socket = UnixStream::from(unsafe { OwnedFd::from_raw_fd(SOCKET_FD) });
    let confinement = confine::confine()?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("engine-{i}"))
        .build_global()
        .map_err(std::io::Error::other)?;
    serve(&socket, &confinement)
}

fn serve(socket: &UnixStream, confinement: &Confinement) -> std::io::Result<()> {
    loop {
        wait_trimming(socket);
        let Some((request, fds)) = wire::receive::<Request>(socket)? else {
            return Ok(());
        };
        let mut fds = fds.into_iter();
        let source = fds.next().map(File::from);
        let (answer, outputs) = match request {
            Request::Probe { page, limits } => (probe_source(source.as_ref(), page, &limits), None),
            Request::Render {
                header,
                spec,
                limits,
                memory,
                logo,
            } => {
                let logo = logo.zip(fds.next());
                let rendered = confinement.within(memory, || render(source.as_ref(), &header, spec, logo, &limits));
                match rendered.and_then(outputs_file) {
                    Ok((described, file)) => (Answer::Rendered(described), Some(file)),
                    Err(e) => (Answer::refused(&e), None),
                }
            }
            #[cfg(feature = "engine-test-requests")]
            Request::Attempt(attempt) => (Answer::Attempted(super::attempts::run(attempt, confinement)), None),
        };
        drop(source);
        let fds: Vec<_> = outputs.iter().map(|f| f.as_fd()).collect();
        wire::send(socket, &answer, &fds)?;
        drop(outputs);
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
    if let (Some(((w, h), fd)), Some(watermark)) = (logo, spec.watermark.as_mut()) {
        let pixels = wire::read_all(fd).map_err(RenderError::corrupt)?;
        let image = RgbaImage::from_raw(w, h, pixels)
            .ok_or_else(|| RenderError::CorruptInput("the logo's pixels do not fill its size".into()))?;
        watermark.logo = Some(Logo::new(image));
    }
    caught(|| rendition::render_probed(Input::Open(file), header, &spec, limits))
}

/// A panic in engine code fails the request, not the engine.
fn caught<T>(f: impl FnOnce() -> Result<T, RenderError>) -> Result<T, RenderError> {
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
