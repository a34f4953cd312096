//! Test builds only (the `engine-test-requests` feature, never in a
//! release binary): what a compromised decoder might try inside an engine
//! process, and the crashes a hostile file might cause. The tests send
//! these to a real engine and expect the confinement to refuse each
//! attempt, and the worker to survive each crash.

use serde::{Deserialize, Serialize};

use super::confine::{Confinement, MAX_PROCESSES};

#[derive(Debug, Serialize, Deserialize)]
pub enum Attempt {
    /// Open a TCP connection (the broker's, the store's).
    Connect(String),
    /// Read a file outside the engine's view.
    Read(String),
    /// Write a file outside its scratch directory.
    Write(String),
    /// Start processes until refused.
    ForkBomb,
    /// Run a program.
    Run(String),
    /// Send a signal to another process (the worker).
    Signal(i32),
    /// Start a process in a new user namespace (`clone`).
    NewNamespace,
    Segfault,
    Abort,
    /// Allocate past the job's memory limit of this many bytes.
    ExhaustMemory(u64),
}

/// `Ok`: the attempt went through (a hole); `Err`: it was refused, and why.
pub fn run(attempt: Attempt, confinement: &Confinement) -> Result<String, String> {
    match attempt {
        Attempt::Connect(to) => std::net::TcpStream::connect(&to)
            .map(|_| format!("connected to {to}"))
            .map_err(|e| e.to_string()),
        Attempt::Read(path) => std::fs::read(&path)
            .map(|b| format!("read {} bytes of {path}", b.len()))
            .map_err(|e| e.to_string()),
        Attempt::Write(path) => std::fs::write(&path, b"written by an engine")
            .map(|()| format!("wrote {path}"))
            .map_err(|e| e.to_string()),
        Attempt::ForkBomb => fork_bomb(),
        Attempt::Run(program) => std::process::Command::new(&program)
            .status()
            .map(|status| format!("ran {program}: {status}"))
            .map_err(|e| e.to_string()),
        // SAFETY: kill with integer arguments.
        Attempt::Signal(pid) => match unsafe { libc::kill(pid, libc::SIGTERM) } {
            0 => Ok(format!("signalled {pid}")),
            _ => Err(std::io::Error::last_os_error().to_string()),
        },
        Attempt::NewNamespace => {
            let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong;
            // SAFETY: a raw clone without a new stack: the child, if any,
            // exits at once.
            match unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) } {
                -1 => Err(std::io::Error::last_os_error().to_string()),
                0 => unsafe { libc::_exit(0) },
                pid => {
                    unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), 0) };
                    Ok("a process in a new user namespace".into())
                }
            }
        }
        Attempt::Segfault => {
            segfault();
            Ok("still alive".into())
        }
        Attempt::Abort => std::process::abort(),
        Attempt::ExhaustMemory(memory) => confinement.within(memory, || {
            let mut held: Vec<Vec<u8>> = Vec::new();
            loop {
                held.push(vec![1u8; 64 << 20]);
                if held.len() > 4096 {
                    return Ok("allocated 256 GiB".into());
                }
            }
        }),
    }
}

/// Sources that start so crash the engine that probes them, as a hostile
/// file crashing a C decoder would.
pub const SEGFAULT_MARK: &[u8] = b"rendition-test:segfault";

/// Crashes the engine when the source carries [`SEGFAULT_MARK`].
pub fn crash_on_marked(source: &std::fs::File) {
    let mut head = [0u8; SEGFAULT_MARK.len()];
    if std::os::unix::fs::FileExt::read_exact_at(source, &mut head, 0).is_ok() && head == SEGFAULT_MARK {
        segfault();
    }
}

/// Sources that start so make a video engine link its proxy to the file
/// named after the mark and say it transcoded: a compromised engine's
/// try at having the worker upload a file of the worker's.
pub const LINKED_PROXY_MARK: &[u8] = b"rendition-test:linked-proxy:";

/// Sources that start so make a video engine send this many progress
/// messages, each claiming an impossible percentage, before it answers.
pub const PROGRESS_FLOOD_MARK: &[u8] = b"rendition-test:progress-flood";
pub const PROGRESS_FLOOD: u32 = 200_000;

/// Whether `source` carries [`PROGRESS_FLOOD_MARK`].
pub fn floods_progress(source: &std::path::Path) -> bool {
    std::fs::read(source).is_ok_and(|b| b.starts_with(PROGRESS_FLOOD_MARK))
}

/// The file a [`LINKED_PROXY_MARK`] source names, if it is one.
pub fn linked_proxy_target(source: &std::path::Path) -> Option<std::path::PathBuf> {
    let bytes = std::fs::read(source).ok()?;
    let name = bytes.strip_prefix(LINKED_PROXY_MARK)?;
    Some(std::path::PathBuf::from(
        String::from_utf8_lossy(name).trim().to_string(),
    ))
}

/// A real invalid write, as a decoder's bug makes (a raised signal would
/// be swallowed by Rust's stack-overflow handler).
fn segfault() {
    // SAFETY: not safe at all: the point is the crash.
    unsafe { std::ptr::null_mut::<u8>().write_volatile(1) };
}

/// Forks children that wait to be killed, until refused or past twice the
/// process limit; then kills them.
fn fork_bomb() -> Result<String, String> {
    let mut children = Vec::new();
    let refused = loop {
        if children.len() as u64 > 2 * MAX_PROCESSES {
            break None;
        }
        // SAFETY: the child only pauses until it is killed.
        match unsafe { libc::fork() } {
            0 => loop {
                unsafe { libc::pause() };
            },
            -1 => break Some(std::io::Error::last_os_error()),
            pid => children.push(pid),
        }
    };
    for &pid in &children {
        // SAFETY: our own children.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
    match refused {
        Some(e) => Err(format!("refused after {} processes: {e}", children.len())),
        None => Ok(format!("{} processes started", children.len())),
    }
}
