//! Decoders run as child processes (poppler for PDF, ImageMagick for the
//! legacy formats), sandboxed: a hostile file that crashes or hangs one
//! costs a child, never the worker. Each child reads the original on its
//! stdin and prints pixels on its stdout; it has no environment but `PATH`
//! (and a private scratch directory where it needs one), bounded address
//! space, CPU time, file size, open files and processes, no core file, no
//! descriptor of the worker's, its own process group (killed whole at the
//! deadline), and, when the worker runs as root, the `nobody` user: it can
//! neither read the worker's memory or environment nor signal it
//! (docs/security.md, "Children cannot reach the worker").

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::RenderError;
use super::input::Input;

/// A child's address space: room for the tool and a 100 MP bitmap.
const CHILD_ADDRESS_SPACE: u64 = 2 << 30;

/// A child's processes and threads (`RLIMIT_NPROC`, counted per user): the
/// tools run single-threaded; a coder that forks is refused.
const CHILD_PROCESSES: u64 = 8;

/// Who children run as when the worker runs as root (root's children
/// could read any process's memory): `nobody`/`nogroup`.
const SANDBOX_ID: u32 = 65534;

/// What of a child's stderr is kept for the error message.
const STDERR_BYTES: u64 = 4 << 10;

/// One run of a tool over an original.
pub(super) struct Run<'a> {
    /// An absolute path: nothing on `PATH` stands in for it.
    pub(super) program: &'static str,
    pub(super) args: Vec<String>,
    /// Given as the child's stdin.
    pub(super) input: Input<'a>,
    /// The tool seeks in its input (opening `/dev/stdin`): stdin is then a
    /// file, an anonymous one in memory for an original held in memory.
    pub(super) seekable: bool,
    pub(super) deadline: Duration,
    /// The most the child may print; more is refused as too large.
    pub(super) max_out: usize,
    /// The largest file the child may write, in a scratch directory of its
    /// own that is removed afterwards (0: no scratch, no file written).
    pub(super) scratch_bytes: u64,
    /// What the reader is for, in messages ("PDF pages", "SGI").
    pub(super) what: &'static str,
    /// The Debian package that has `program`.
    pub(super) package: &'static str,
}

/// What a child that succeeded printed.
#[derive(Debug)]
pub(super) struct Done {
    pub(super) out: Vec<u8>,
    /// Its stderr: some tools warn there of damage and still succeed.
    pub(super) said: String,
}

/// A child that exited unsuccessfully by itself.
#[derive(Debug)]
pub(super) struct Failed {
    pub(super) code: Option<i32>,
    pub(super) signal: Option<i32>,
    /// The last line of its stderr.
    pub(super) said: String,
}

impl Failed {
    /// The usual reading: the file is damaged or hostile.
    pub(super) fn corrupt(&self, run: &Run<'_>) -> RenderError {
        match self.signal {
            Some(signal) => RenderError::CorruptInput(format!(
                "{}: {} died of signal {signal} ({})",
                run.what, run.program, self.said
            )),
            None => RenderError::CorruptInput(format!(
                "{}: {} exited {:?}: {}",
                run.what, run.program, self.code, self.said
            )),
        }
    }
}

impl Run<'_> {
    /// The child's stdout when it succeeds; `Err(Failed)` inside when it
    /// exits unsuccessfully, for the caller to read its exit code.
    pub(super) fn output(&self) -> Result<Result<Done, Failed>, RenderError> {
        let scratch = match self.scratch_bytes {
            0 => None,
            _ => Some(
                tempfile::Builder::new()
                    .prefix("rendition-child-")
                    .tempdir()
                    .map_err(|e| RenderError::codec(format!("a scratch directory for {}: {e}", self.program), e))?,
            ),
        };
        let mut command = Command::new(self.program);
        command
            .args(&self.args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .current_dir("/")
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(id) = sandbox_id() {
            command.uid(id).gid(id);
            if let Some(dir) = &scratch {
                std::os::unix::fs::chown(dir.path(), Some(id), Some(id))
                    .map_err(|e| RenderError::codec(format!("a scratch directory for {}: {e}", self.program), e))?;
            }
        }
        if let Some(dir) = &scratch {
            command
                .current_dir(dir.path())
                .env("TMPDIR", dir.path())
                .env("MAGICK_TEMPORARY_PATH", dir.path());
        }
        match self.input {
            Input::File(path) => command.stdin(std::fs::File::open(path).map_err(RenderError::corrupt)?),
            // A second descriptor of the same open file: its offset, which
            // the child reads from, is the one shared; it starts at 0.
            Input::Open(file) => {
                let mut own = file.try_clone().map_err(RenderError::corrupt)?;
                std::io::Seek::rewind(&mut own).map_err(RenderError::corrupt)?;
                command.stdin(own)
            }
            Input::Bytes(bytes) if self.seekable => command.stdin(memory_file(bytes)?),
            Input::Bytes(_) => command.stdin(Stdio::piped()),
        };
        let limits = Confinement {
            cpu_s: self.deadline.as_secs().max(1) + 1,
            file_bytes: self.scratch_bytes,
        };
        // SAFETY: between fork and exec only async-signal-safe calls are
        // made (setrlimit, signal), touching no memory the parent's threads
        // share.
        unsafe {
            command.pre_exec(move || limits.apply());
        }
        let child = command.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RenderError::UnsupportedFormat(format!(
                "{} need {} (`{}`), which is not installed",
                self.what, self.package, self.program
            )),
            _ => RenderError::codec(format!("starting {}: {e}", self.program), e),
        })?;
        self.wait(child)
    }

    /// Feeds the child, reads its output and waits for it, to the deadline.
    fn wait(&self, mut child: std::process::Child) -> Result<Result<Done, Failed>, RenderError> {
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let started = Instant::now();
        let (status, out, err) = std::thread::scope(|s| {
            if let (Some(mut pipe), Input::Bytes(bytes)) = (stdin, self.input) {
                // (None when stdin is a file.)
                // A child that stops reading early closes the pipe: not an error here.
                s.spawn(move || pipe.write_all(bytes));
            }
            let out = s.spawn(move || read_capped(stdout, self.max_out as u64 + 1));
            let err = s.spawn(move || read_capped(stderr, STDERR_BYTES));
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(status),
                    Ok(None) if started.elapsed() >= self.deadline => {
                        kill_group(&child);
                        let _ = child.wait();
                        break Err(RenderError::Deadline(format!(
                            "{} took more than {:?}",
                            self.program, self.deadline
                        )));
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                    Err(e) => break Err(RenderError::codec(format!("waiting for {}: {e}", self.program), e)),
                }
            };
            // Whatever the child left behind in its group goes with it
            // (and its pipes close, so the readers below finish).
            kill_group(&child);
            (status, out.join().unwrap_or_default(), err.join().unwrap_or_default())
        });
        let status = status?;
        if out.len() > self.max_out {
            return Err(RenderError::DecoderLimit(format!(
                "{} printed more than {} bytes",
                self.program, self.max_out
            )));
        }
        let said = String::from_utf8_lossy(&err).into_owned();
        if status.success() {
            return Ok(Ok(Done { out, said }));
        }
        // RLIMIT_CPU. (A SIGKILL is not ours once the deadline has not
        // passed: the kernel's OOM killer, most likely.)
        if status.signal() == Some(libc::SIGXCPU) {
            return Err(RenderError::Deadline(format!("{} ran out of CPU time", self.program)));
        }
        Ok(Err(Failed {
            code: status.code(),
            signal: status.signal(),
            said: said.lines().last().unwrap_or("").trim().to_string(),
        }))
    }
}

/// The user children run as: `nobody` when the worker is root, else the
/// worker's own (whom [`harden_worker`] keeps out of the worker's memory).
pub(crate) fn sandbox_id() -> Option<u32> {
    // SAFETY: a plain system call.
    (unsafe { libc::geteuid() } == 0).then_some(SANDBOX_ID)
}

/// Kills the child's whole process group (it leads its own).
pub(crate) fn kill_group(child: &std::process::Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: a signal to a group this process made; at worst it is gone.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}

/// Makes this process non-dumpable: no core file, and no process of the
/// same user (a compromised child, a decoder's exploit run elsewhere) may
/// read its memory or `/proc/<pid>/environ` or ptrace it. Every command
/// calls it first; the S3 keys, AMQP password and link secret live here.
pub fn harden_worker() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments.
    match unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// `bytes` in an anonymous file in memory, at its start.
fn memory_file(bytes: &[u8]) -> Result<std::fs::File, RenderError> {
    use std::io::Seek;
    use std::os::fd::FromRawFd;
    // SAFETY: a plain system call with a NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"rendition-original".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(RenderError::codec(format!("memfd_create: {e}"), e));
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(bytes)
        .and_then(|()| file.rewind())
        .map_err(|e| RenderError::codec(format!("an in-memory copy of the original: {e}"), e))?;
    Ok(file)
}

fn read_capped(pipe: Option<impl Read>, cap: u64) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe.take(cap).read_to_end(&mut out);
    }
    out
}

/// The child's limits, set after fork.
#[derive(Clone, Copy)]
struct Confinement {
    cpu_s: u64,
    /// The largest file it may write (a bigger write fails with EFBIG
    /// rather than killing it: fontconfig may try its cache).
    file_bytes: u64,
}

impl Confinement {
    fn apply(self) -> std::io::Result<()> {
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
        set(libc::RLIMIT_CPU, self.cpu_s)?;
        set(libc::RLIMIT_FSIZE, self.file_bytes)?;
        set(libc::RLIMIT_CORE, 0)?;
        set(libc::RLIMIT_NOFILE, 256)?;
        // After the switch of user (std does it before this runs), so the
        // switch is not refused for the new user's count.
        set(libc::RLIMIT_NPROC, CHILD_PROCESSES)?;
        // SAFETY: plain system calls with integer arguments. Every
        // descriptor past stdio closes at exec (a C library's descriptor
        // opened without O_CLOEXEC included); the child cannot gain
        // privileges through a set-user-id program; it dies with the worker.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(program: &'static str, args: &[&str], deadline: Duration) -> Result<Result<Done, Failed>, RenderError> {
        Run {
            program,
            args: args.iter().map(|a| a.to_string()).collect(),
            input: Input::Bytes(b""),
            seekable: false,
            deadline,
            max_out: 1 << 20,
            scratch_bytes: 0,
            what: "a test",
            package: "coreutils",
        }
        .output()
    }

    /// A compromised decoder reads nothing of the worker: not its
    /// environment (S3 keys, AMQP password, link secret), not its memory.
    #[test]
    fn a_child_cannot_read_the_workers_environment_or_memory() {
        harden_worker().unwrap();
        let pid = std::process::id();
        for file in ["environ", "mem", "maps"] {
            let path = format!("/proc/{pid}/{file}");
            match run("/bin/cat", &[&path], Duration::from_secs(10)).unwrap() {
                Ok(done) => panic!("the child read {path}: {} bytes", done.out.len()),
                Err(failed) => assert!(failed.said.contains("ermission denied"), "{path}: {failed:?}"),
            }
        }
    }

    /// At the deadline the child's whole group goes, not only the child:
    /// a coder's helper process never outlives its job.
    #[test]
    fn the_deadline_kills_the_childs_whole_process_group() {
        // Unique to this run: `sleep` takes a fraction.
        let marker = format!("61.{}", std::process::id());
        let started = Instant::now();
        let outcome = run(
            "/bin/sh",
            &["-c", &format!("sleep {marker} & sleep {marker}; wait")],
            Duration::from_secs(1),
        );
        assert!(matches!(outcome, Err(RenderError::Deadline(_))), "{outcome:?}");
        assert!(started.elapsed() < Duration::from_secs(30), "the deadline held");
        std::thread::sleep(Duration::from_millis(200));
        let left: Vec<_> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .filter(|cmdline| String::from_utf8_lossy(cmdline).contains(&marker))
            .collect();
        assert!(left.is_empty(), "{} processes outlived the deadline", left.len());
    }

    /// No descriptor of the worker's (an open store file, a socket) is
    /// open in a child.
    #[test]
    fn a_child_inherits_no_descriptor() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, b"secret").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // As a C library might: a descriptor without O_CLOEXEC.
        // SAFETY: duplicating a descriptor this test owns.
        let leaked = unsafe { libc::dup(file.as_raw_fd()) };
        assert!(leaked > 2);
        let listing = run("/bin/ls", &["/proc/self/fd"], Duration::from_secs(10))
            .unwrap()
            .unwrap();
        // SAFETY: closing the duplicate made above.
        unsafe { libc::close(leaked) };
        let fds: Vec<String> = String::from_utf8_lossy(&listing.out)
            .split_whitespace()
            .map(String::from)
            .collect();
        assert!(
            !fds.contains(&leaked.to_string()),
            "fd {leaked} leaked into the child: {fds:?}"
        );
        assert!(fds.iter().all(|fd| fd.parse::<i32>().unwrap() <= 3), "{fds:?}");
    }
}
