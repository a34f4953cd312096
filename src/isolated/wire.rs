//! What crosses the socket between the worker and an engine process: one
//! length-prefixed JSON message each way, with file descriptors beside it
//! (`SCM_RIGHTS`): the source, the logo's pixels, the outputs. Bytes of a
//! source or an output never go through the socket itself.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::rendition::probe::Header;
use crate::rendition::{EngineLimits, OutputFormat, Size, Spec};
use crate::video::{Progress, ProxySpec, VideoLimits};

/// The video source's name in a video engine's scratch directory, where
/// the worker places it (FFmpeg opens files by name, and Landlock lets an
/// engine open nothing outside that directory).
pub const VIDEO_SOURCE: &str = "source";

/// The proxy's name beside it, where the worker takes it from.
pub const PROXY_OUTPUT: &str = "proxy.mp4";

/// The most descriptors one message carries.
const MAX_FDS: usize = 4;

/// The largest answer an engine may send the worker: answers are a few
/// hundred bytes.
const MAX_BODY: u32 = 1 << 20;

/// The largest request the worker sends an engine: a CMYK spec carries its
/// print profile (at most 8 MiB, settings/print.rs) as hex. The worker is
/// the trusted side; what it reads stays at [`MAX_BODY`].
const MAX_REQUEST: u32 = 32 << 20;

/// From the worker to an engine process.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// The header of `page` of the source sent with it.
    Probe { page: u32, limits: EngineLimits },
    /// Every size of `spec` from the source sent with it (probed before:
    /// `header`), under a data limit of `memory` bytes more than the engine
    /// holds idle. A logo's RGBA pixels (`logo`: width, height) come beside
    /// it, after the source.
    Render {
        header: Header,
        spec: Spec,
        limits: EngineLimits,
        memory: u64,
        logo: Option<(u32, u32)>,
    },
    /// A poster: a frame of the video at [`VIDEO_SOURCE`], then every
    /// size of `spec`, under `memory` bytes; a logo as for `Render`.
    Poster {
        spec: Spec,
        limits: EngineLimits,
        video: VideoLimits,
        memory: u64,
        logo: Option<(u32, u32)>,
    },
    /// A storyboard: a sheet of frames of the video at [`VIDEO_SOURCE`],
    /// then every size of `spec`, under `memory` bytes; a logo as for
    /// `Render`. Answered `Storyboard`.
    Storyboard {
        spec: Spec,
        sheet: crate::video::Sheet,
        limits: EngineLimits,
        video: VideoLimits,
        memory: u64,
        logo: Option<(u32, u32)>,
    },
    /// A proxy of the video at [`VIDEO_SOURCE`], written to
    /// [`PROXY_OUTPUT`] beside it, under `memory` bytes; `Progress`
    /// answers come before the last one.
    Proxy {
        spec: ProxySpec,
        video: VideoLimits,
        memory: u64,
        logo: Option<(u32, u32)>,
    },
    /// Test builds only: something a compromised decoder might try.
    #[cfg(feature = "engine-test-requests")]
    Attempt(super::attempts::Attempt),
}

/// From an engine process to the worker.
#[derive(Debug, Serialize, Deserialize)]
pub enum Answer {
    Probed(Header),
    /// The outputs, their bytes one after another in the file sent beside.
    Rendered(Vec<Output>),
    /// A storyboard's sheet, as `Rendered`, and the duration its tiles
    /// share.
    Storyboard {
        outputs: Vec<Output>,
        duration_s: f64,
    },
    /// A proxy's progress so far (any number, before its last answer).
    Progress(Progress),
    /// The proxy is written: its frame size and frames.
    Transcoded {
        width: u32,
        height: u32,
        frames: u64,
    },
    Refused {
        code: ErrorCode,
        message: String,
    },
    /// Test builds only: what the attempt did (`Ok`: it was allowed).
    #[cfg(feature = "engine-test-requests")]
    Attempted(Result<String, String>),
}

/// One output as the engine describes it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Output {
    pub size: Size,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    pub format: OutputFormat,
    pub watermarked: bool,
}

impl Answer {
    pub fn refused(e: &(impl crate::error::Coded + std::fmt::Display)) -> Answer {
        Answer::Refused {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// Sends `message` with `fds` beside it.
pub fn send<T: Serialize>(socket: &UnixStream, message: &T, fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
    let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    let len = u32::try_from(body.len()).map_err(std::io::Error::other)?.to_le_bytes();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other("too many descriptors for one message"));
    }
    // The descriptors go with the first bytes; the rest follows as a stream.
    let sent = rustix::net::sendmsg(
        socket,
        &[IoSlice::new(&len), IoSlice::new(&body)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    let rest: Vec<u8> = len.iter().chain(&body).skip(sent).copied().collect();
    (&*socket).write_all(&rest)
}

/// Receives one message and the descriptors beside it; `None` at the end
/// of the stream (the other side is gone).
pub fn receive<T: for<'de> Deserialize<'de>>(socket: &UnixStream) -> std::io::Result<Option<(T, Vec<OwnedFd>)>> {
    receive_until(socket, None, MAX_REQUEST)
}

/// [`receive`], all of it by `by`: an answer trickled a byte at a time
/// still ends at the deadline (`TimedOut`).
pub fn receive_by<T: for<'de> Deserialize<'de>>(
    socket: &UnixStream,
    by: Instant,
) -> std::io::Result<Option<(T, Vec<OwnedFd>)>> {
    receive_until(socket, Some(by), MAX_BODY)
}

fn receive_until<T: for<'de> Deserialize<'de>>(
    socket: &UnixStream,
    by: Option<Instant>,
    max: u32,
) -> std::io::Result<Option<(T, Vec<OwnedFd>)>> {
    let timeout = || -> std::io::Result<()> {
        let Some(by) = by else { return Ok(()) };
        let left = by.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        socket.set_read_timeout(Some(left))
    };
    timeout()?;
    let mut len = [0u8; 4];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        socket,
        &mut [IoSliceMut::new(&mut len)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    if got.bytes == 0 {
        return Ok(None);
    }
    read_by(socket, &mut len[got.bytes..], &timeout)?;
    let len = u32::from_le_bytes(len);
    if len > max {
        return Err(std::io::Error::other(format!("a message of {len} bytes")));
    }
    let mut body = vec![0; len as usize];
    read_by(socket, &mut body, &timeout)?;
    let message = serde_json::from_slice(&body).map_err(std::io::Error::other)?;
    Ok(Some((message, fds)))
}

/// Fills `buf`, each read given what is left of the deadline.
fn read_by(socket: &UnixStream, mut buf: &mut [u8], timeout: &dyn Fn() -> std::io::Result<()>) -> std::io::Result<()> {
    while !buf.is_empty() {
        timeout()?;
        match (&*socket).read(buf) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// An anonymous file in memory holding `bytes` (outputs, a logo).
pub fn memory_file(name: &str, bytes: &[u8]) -> std::io::Result<std::fs::File> {
    let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    Ok(file)
}

/// [`memory_file`], sealed: whoever it is sent to can neither change nor
/// grow it (a source or a logo, as the worker sent it).
pub fn sealed_memory_file(name: &str, bytes: &[u8]) -> std::io::Result<std::fs::File> {
    let flags = rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING;
    let mut file = std::fs::File::from(rustix::fs::memfd_create(name, flags)?);
    file.write_all(bytes)?;
    use rustix::fs::SealFlags;
    rustix::fs::fcntl_add_seals(
        &file,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )?;
    Ok(file)
}

/// Reads all of a received file from its start.
pub fn read_all(fd: impl AsFd) -> std::io::Result<Vec<u8>> {
    read_up_to(fd, u64::MAX)
}

/// Reads at most `max` bytes of a received file from its start (a regular
/// or memory file: anything else, a pipe an engine might send, is refused
/// rather than waited on).
pub fn read_up_to(fd: impl AsFd, max: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::from(fd.as_fd().try_clone_to_owned()?);
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a file"));
    }
    let mut out = Vec::new();
    std::io::Seek::rewind(&mut &file)?;
    (&file).take(max).read_to_end(&mut out)?;
    Ok(out)
}
