//! Work that cannot be stopped from inside (resvg has no deadline and no
//! allocation limit: a 10 KB SVG of filter chains draws for hours, one of
//! nested layers allocates gigabytes) done in a forked copy of this
//! process instead: its address space may grow only by a bound, its CPU
//! time is limited, it is killed at its deadline, and it hands its answer
//! back in an anonymous file in memory. The worker pays a fork (copy on
//! write: milliseconds) and never the bomb.
//!
//! Forking a threaded process leaves the child with one thread and every
//! lock as it was: glibc's malloc is reset for the child, and the work
//! done here (pure Rust: parse, draw, write) takes no other lock the
//! worker's threads hold, except by a rare chance, which then ends at the
//! deadline like any other hang.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use super::RenderError;

/// How a forked piece of work is bounded.
pub(super) struct Bounds {
    pub(super) deadline: Duration,
    /// What its address space may grow by over the worker's at the fork.
    pub(super) memory: u64,
}

/// What the child's first byte says of its answer.
const ANSWERED: u8 = 0;
const CORRUPT: u8 = 1;
const TOO_LARGE: u8 = 2;
/// A panic's exit status in the child.
const PANICKED: i32 = 101;

/// Runs `work` in a forked child within `bounds`; `work` writes its answer
/// to the file it is given, which is handed back positioned at the start
/// of that answer. `what` names the work in messages.
pub(super) fn run(
    what: &str,
    bounds: &Bounds,
    work: impl FnOnce(&mut File) -> Result<(), RenderError>,
) -> Result<File, RenderError> {
    let mut answer = memory_file()?;
    let limit = address_space()?.saturating_add(bounds.memory);
    let cpu = bounds.deadline.as_secs() + 1;
    // SAFETY: the child runs only `child`, which never returns; see the
    // module's comment for what it may touch.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        return Err(RenderError::codec(format!("{what}: fork: {e}"), e));
    }
    if pid == 0 {
        child(&mut answer, limit, cpu, work);
    }
    let status = Reaper(pid).wait(bounds.deadline, what)?;
    read_answer(answer, status, what)
}

/// The child: bounded, answers, and exits without running anything of
/// the parent's (no destructors, no atexit handlers, no flushed buffers).
fn child(answer: &mut File, limit: u64, cpu: u64, work: impl FnOnce(&mut File) -> Result<(), RenderError>) -> ! {
    // No `panic::set_hook` here: it takes the hook's lock for writing, and
    // a thread of the parent that was panicking at the fork (a test, an
    // engine panic on another job) left it held for ever in this copy.
    let bounded = [
        (libc::RLIMIT_AS, limit),
        (libc::RLIMIT_CPU, cpu),
        (libc::RLIMIT_CORE, 0),
    ]
    .into_iter()
    .all(|(resource, value)| {
        let rlimit = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: a plain system call on a stack value.
        unsafe { libc::setrlimit(resource, &rlimit) == 0 }
    });
    let code = if bounded && answer.write_all(&[ANSWERED]).is_ok() {
        // A panic is an exit status, whatever the build's panic strategy.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(answer))) {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => i32::from(write_error(answer, &e).is_err()),
            Err(_) => PANICKED,
        }
    } else {
        1
    };
    // SAFETY: ends this process at once, as above.
    unsafe { libc::_exit(code) }
}

/// An error as the child's answer: its kind and message.
fn write_error(answer: &mut File, e: &RenderError) -> std::io::Result<()> {
    let kind = match e {
        RenderError::DecoderLimit(_) | RenderError::TooLarge { .. } | RenderError::OverCap { .. } => TOO_LARGE,
        _ => CORRUPT,
    };
    answer.set_len(0)?;
    answer.seek(SeekFrom::Start(0))?;
    answer.write_all(&[kind])?;
    answer.write_all(e.to_string().as_bytes())
}

/// The child's answer, from how it ended and what it wrote.
fn read_answer(mut answer: File, status: i32, what: &str) -> Result<File, RenderError> {
    if libc::WIFSIGNALED(status) {
        return Err(match libc::WTERMSIG(status) {
            libc::SIGXCPU => RenderError::Deadline(format!("{what} ran out of CPU time")),
            // An allocation past the bound (or a stack overflow) aborts.
            libc::SIGABRT | libc::SIGSEGV => {
                RenderError::DecoderLimit(format!("{what} needed more memory than it may have"))
            }
            signal => RenderError::CorruptInput(format!("{what} died of signal {signal}")),
        });
    }
    match libc::WEXITSTATUS(status) {
        0 => {}
        PANICKED => return Err(RenderError::CorruptInput(format!("{what}: the drawing code panicked"))),
        code => return Err(RenderError::CorruptInput(format!("{what} exited {code}"))),
    }
    let io = |e: std::io::Error| RenderError::codec(format!("{what}: reading the answer: {e}"), e);
    answer.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut kind = [0u8; 1];
    answer.read_exact(&mut kind).map_err(io)?;
    if kind[0] == ANSWERED {
        return Ok(answer);
    }
    let mut message = String::new();
    answer.read_to_string(&mut message).map_err(io)?;
    let message = message
        .trim_start_matches("corrupt input: ")
        .trim_start_matches("too large: ")
        .to_string();
    Err(match kind[0] {
        TOO_LARGE => RenderError::DecoderLimit(message),
        _ => RenderError::CorruptInput(message),
    })
}

/// A forked child, killed and reaped if it is not waited for to its end.
struct Reaper(libc::pid_t);

impl Reaper {
    /// Waits for the child's exit status, killing it at `deadline`.
    fn wait(self, deadline: Duration, what: &str) -> Result<i32, RenderError> {
        let started = Instant::now();
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child, writing to a stack value.
            let done = unsafe { libc::waitpid(self.0, &mut status, libc::WNOHANG) };
            if done == self.0 {
                std::mem::forget(self);
                return Ok(status);
            }
            if done < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(RenderError::codec(format!("{what}: waiting: {e}"), e));
                }
            }
            if started.elapsed() >= deadline {
                drop(self);
                return Err(RenderError::Deadline(format!("{what} took more than {deadline:?}")));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        // SAFETY: our own child, killed and then reaped.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

/// This process's address space now, in bytes (`/proc/self/statm`).
fn address_space() -> Result<u64, RenderError> {
    let statm = std::fs::read_to_string("/proc/self/statm")
        .map_err(|e| RenderError::codec(format!("reading /proc/self/statm: {e}"), e))?;
    let pages: u64 = statm
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| RenderError::CorruptInput(format!("/proc/self/statm reads {statm:?}")))?;
    // SAFETY: a plain query.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    Ok(pages * page)
}

/// An anonymous file in memory, closed on exec.
fn memory_file() -> Result<File, RenderError> {
    // SAFETY: a plain system call with a NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"rendition-answer".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(RenderError::codec(format!("memfd_create: {e}"), e));
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}
