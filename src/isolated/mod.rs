//! Engine processes: the worker (and `rendition render`) decode nothing
//! themselves. Each image job is probed and rendered by a long-lived child,
//! `rendition-engine`, and each poster and proxy made by another,
//! `rendition-video-engine` ([`video`], [`video_engine`]); they hold no
//! credential, queue or store, and are confined ([`confine`]); one job at
//! a time per engine. A source goes to an image engine as a descriptor,
//! its outputs come back as one ([`wire`]). An engine that dies fails only
//! its job, and the pool starts another (docs/security.md#engine-processes).
//!
//! ```text
//!  worker (credentials, broker, store)        engine (nobody, Landlock, seccomp)
//!  ── Probe{page}   + source fd ──────────►   probe the header
//!  ◄───────────────────────── Probed(Header)
//!  reserve the budget
//!  ── Render{spec, memory} + source fd (+ logo fd) ──►  decode, resize, watermark, encode
//!  ◄──────────────── Rendered(sizes) + outputs fd
//! ```

mod answers;
#[cfg(feature = "engine-test-requests")]
pub mod attempts;
mod confine;
pub mod engine;
pub mod video;
pub mod video_engine;
pub mod wire;

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use answers::{clamped, engine_code, output_room, plausible, split_outputs, within_spec};
use wire::{Answer, Request};

use crate::rendition::probe::Header;
use crate::rendition::{EngineLimits, RenderError, Rendered, Spec, kill_group, sandbox_id};

pub use confine::MAX_PROCESSES;

/// The outputs of a job with a small reservation may still take this much.
const MIN_OUTPUT_ROOM: u64 = 64 << 20;

/// How often an engine's progress is passed on.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What of an engine's refusal message is kept.
const MESSAGE_CHARS: usize = 512;

/// What of an engine's stderr is kept, for the message of its crash.
const STDERR_TAIL: usize = 4 << 10;

/// How an engine process is started and kept.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The `rendition-engine` program.
    pub program: PathBuf,
    /// Where each engine gets a private scratch directory.
    pub scratch: PathBuf,
    /// Render threads in each engine.
    pub threads: usize,
    /// An engine is replaced after this many jobs (a leak or a slow
    /// corruption does not outlive it).
    pub jobs_per_engine: u32,
    /// No engine runs where the kernel enforces no Landlock; `false` only
    /// for video engines beside in-process image renders.
    pub strict: bool,
}

/// The pool of engine processes; engines start when a job first needs one
/// and are kept while idle.
pub struct EnginePool {
    settings: EngineSettings,
    idle: Mutex<Vec<EngineProcess>>,
    /// Engines started, and those that died under a job.
    pub started: std::sync::atomic::AtomicU64,
    pub crashed: std::sync::atomic::AtomicU64,
}

struct EngineProcess {
    child: Child,
    /// Killed and reaped already (its scratch directory still held).
    stopped: bool,
    socket: UnixStream,
    jobs: u32,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    scratch: tempfile::TempDir,
}

impl EnginePool {
    pub fn new(settings: EngineSettings) -> EnginePool {
        EnginePool {
            settings,
            idle: Mutex::default(),
            started: Default::default(),
            crashed: Default::default(),
        }
    }

    /// An idle engine, or a new one.
    pub fn session(self: &Arc<Self>) -> Result<Session, RenderError> {
        let idle = self.idle.lock().expect("the pool's lock").pop();
        let engine = match idle {
            Some(engine) => engine,
            None => self.start()?,
        };
        Ok(Session {
            pool: self.clone(),
            engine: Some(engine),
            discard: false,
        })
    }

    fn start(&self) -> Result<EngineProcess, RenderError> {
        let program = &self.settings.program;
        let failed = |e: std::io::Error| RenderError::Answered {
            code: crate::error::ErrorCode::EngineError,
            message: format!(
                "an engine process ({}) did not start: {e} (build it with `cargo build --bin rendition-engine`, \
                 or set RENDITION_ENGINES=in-process)",
                program.display()
            ),
        };
        let scratch = tempfile::Builder::new()
            .prefix("rendition-engine-")
            .tempdir_in(&self.settings.scratch)
            .map_err(failed)?;
        let (ours, theirs) = UnixStream::pair().map_err(failed)?;
        let mut command = Command::new(&self.settings.program);
        let confinement = if self.settings.strict {
            "strict"
        } else {
            engine::LENIENT
        };
        command
            .arg(self.settings.threads.max(1).to_string())
            .arg(confinement)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("TMPDIR", scratch.path())
            .env("MAGICK_TEMPORARY_PATH", scratch.path())
            // glibc's per-thread arenas are address space the data limit counts.
            .env("MALLOC_ARENA_MAX", "2")
            .current_dir(scratch.path())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // `nobody` when the worker runs as root, as the tools' children do.
        if let Some(id) = sandbox_id() {
            std::os::unix::fs::chown(scratch.path(), Some(id), Some(id)).map_err(failed)?;
            command.uid(id).gid(id);
        }
        let fd = theirs.as_raw_fd();
        // SAFETY: plain system calls between fork and exec. dup2 clears
        // close-on-exec on the copy; every descriptor past it closes at exec
        // (one a C library opened without O_CLOEXEC included), so the socket
        // is the one descriptor the engine gets beyond its standard three.
        // The engine dies with the worker.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(fd, engine::SOCKET_FD) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                let after = (engine::SOCKET_FD + 1) as u32;
                if libc::syscall(libc::SYS_close_range, after, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(failed)?;
        drop(theirs);
        let stderr = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        if let Some(pipe) = child.stderr.take() {
            keep_tail(pipe, stderr.clone());
        }
        self.started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(EngineProcess {
            child,
            stopped: false,
            socket: ours,
            jobs: 0,
            stderr,
            scratch,
        })
    }
}

/// What of an engine's stderr is passed on to ours, over its life.
const STDERR_PASSED: usize = 64 << 10;

/// The last bytes an engine wrote on stderr, kept for the message of its
/// crash; the first [`STDERR_PASSED`] go to ours too, escaped and marked as
/// the engine's (an engine cannot forge our log lines or fill our disk).
fn keep_tail(mut pipe: impl Read + Send + 'static, tail: Arc<Mutex<VecDeque<u8>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut passed = 0;
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            if passed < STDERR_PASSED {
                passed += n;
                eprintln!("engine said: {:?}", String::from_utf8_lossy(&buf[..n]));
            }
            let mut tail = tail.lock().expect("the tail's lock");
            tail.extend(&buf[..n]);
            let over = tail.len().saturating_sub(STDERR_TAIL);
            tail.drain(..over);
        }
    });
}

/// One job's use of one engine: a probe, then a render.
pub struct Session {
    pool: Arc<EnginePool>,
    engine: Option<EngineProcess>,
    /// The engine broke the protocol: it is killed, not kept.
    discard: bool,
}

impl Session {
    /// The header of `page` of `source`, read by the engine.
    pub fn probe(&mut self, source: &File, page: u32, limits: &EngineLimits) -> Result<Header, RenderError> {
        let request = Request::Probe { page, limits: *limits };
        match self.ask(
            &request,
            &[source.as_fd()],
            "read the header",
            deadline(limits),
            &mut |_| {},
        )? {
            (Answer::Probed(header), _) if plausible(&header, limits) => Ok(header),
            (other, _) => {
                self.discard = true;
                Err(unexpected(other))
            }
        }
    }

    /// Every size of `spec` from `source` (probed: `header`), under
    /// `memory` bytes.
    pub fn render(
        &mut self,
        source: &File,
        header: &Header,
        spec: &Spec,
        limits: &EngineLimits,
        memory: u64,
    ) -> Result<Vec<Rendered>, RenderError> {
        let (logo, logo_file) = logo_file(spec.watermark.as_ref())?;
        let request = Request::Render {
            header: *header,
            spec: spec.clone(),
            limits: *limits,
            memory,
            logo,
        };
        let fds: Vec<_> = std::iter::once(source.as_fd())
            .chain(logo_file.iter().map(|f| f.as_fd()))
            .collect();
        let answered = self.ask(&request, &fds, "rendered", deadline(limits), &mut |_| {})?;
        self.outputs(answered, spec, header.long_edge(), memory)
    }

    /// The outputs an engine answered for `spec` (from a source whose long
    /// edge is `edge`), checked: read only what the engine said it made,
    /// and only as much as the job reserved (an engine cannot make the
    /// worker hold more), each size as asked.
    fn outputs(
        &mut self,
        (answer, mut files): (Answer, Vec<std::os::fd::OwnedFd>),
        spec: &Spec,
        edge: u32,
        memory: u64,
    ) -> Result<Vec<Rendered>, RenderError> {
        // Whatever goes wrong from here on, this engine does no other job.
        self.discard = true;
        let Answer::Rendered(outputs) = answer else {
            return Err(unexpected(answer));
        };
        let Some(file) = files.pop() else {
            return Err(RenderError::CorruptInput("the engine sent no outputs".into()));
        };
        let said: u64 = outputs.iter().map(|o| o.bytes).sum();
        if said > memory.max(MIN_OUTPUT_ROOM).min(output_room(edge, spec)) {
            return Err(RenderError::CorruptInput(format!(
                "the engine said it made {said} bytes, more than the job's {memory}"
            )));
        }
        let bytes = wire::read_up_to(file, said).map_err(RenderError::corrupt)?;
        let mut rendered = split_outputs(outputs, bytes)?;
        within_spec(&rendered, edge, spec)?;
        // Whether a mark was drawn is the spec's to say, not the engine's.
        for r in &mut rendered {
            r.watermarked = spec.watermark.is_some();
        }
        self.discard = false;
        Ok(rendered)
    }

    /// Test builds only: an attempt, answered by the engine.
    #[cfg(feature = "engine-test-requests")]
    pub fn attempt(&mut self, attempt: attempts::Attempt) -> Result<Result<String, String>, RenderError> {
        match self.ask(
            &Request::Attempt(attempt),
            &[],
            "attempted",
            deadline(&EngineLimits::default()),
            &mut |_| {},
        )? {
            (Answer::Attempted(done), _) => Ok(done),
            (other, _) => Err(unexpected(other)),
        }
    }

    /// The engine's process id (tests look at it).
    pub fn pid(&self) -> Option<u32> {
        self.engine.as_ref().map(|e| e.child.id())
    }

    /// Sends a request and waits for its answer; an engine that does not
    /// answer is killed and its death read.
    fn ask(
        &mut self,
        request: &Request,
        fds: &[std::os::fd::BorrowedFd<'_>],
        stage: &'static str,
        deadline: Duration,
        on_progress: &mut dyn FnMut(crate::video::Progress),
    ) -> Result<(Answer, Vec<std::os::fd::OwnedFd>), RenderError> {
        let engine = self.engine.as_mut().ok_or_else(|| crashed(stage, "no engine".into()))?;
        let by = std::time::Instant::now() + deadline;
        let mut answered = wire::send(&engine.socket, request, fds).and_then(|()| wire::receive_by(&engine.socket, by));
        // Progress is passed on at most once a second, clamped: an engine
        // cannot flood the worker or the broker with it.
        let mut passed: Option<std::time::Instant> = None;
        while let Ok(Some((Answer::Progress(progress), _))) = answered {
            if passed.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY) {
                passed = Some(std::time::Instant::now());
                on_progress(clamped(progress));
            }
            answered = wire::receive_by(&engine.socket, by);
        }
        match answered {
            Ok(Some((Answer::Refused { code, message }, _))) => Err(RenderError::Answered {
                code: engine_code(code),
                message: message.chars().take(MESSAGE_CHARS).collect(),
            }),
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Err(self.died(stage)),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                self.died(stage);
                Err(RenderError::Deadline(format!(
                    "the engine took longer than {deadline:?}"
                )))
            }
            Err(_) => Err(self.died(stage)),
        }
    }

    /// Kills the engine (if it still lives), reads how it ended, and says
    /// what that means for the job: out of memory is `too_large`; anything
    /// else a crash.
    fn died(&mut self, stage: &'static str) -> RenderError {
        let Some(mut engine) = self.engine.take() else {
            return crashed(stage, "no engine".into());
        };
        self.pool.crashed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let status = engine.kill();
        // The stderr reader may still be draining the pipe.
        std::thread::sleep(Duration::from_millis(20));
        let said =
            String::from_utf8_lossy(engine.stderr.lock().expect("the tail's lock").make_contiguous()).into_owned();
        if said.contains("memory allocation of") {
            return RenderError::DecoderLimit(format!(
                "the render needed more memory than its reservation allows ({})",
                said.lines()
                    .rev()
                    .find(|l| l.contains("memory allocation"))
                    .unwrap_or("")
                    .trim()
            ));
        }
        let how = match status {
            Ok(s) => match s.signal() {
                Some(signal) => format!("signal {signal} ({})", signal_name(signal)),
                None => format!("exit status {:?}", s.code()),
            },
            Err(e) => e.to_string(),
        };
        crashed(stage, how)
    }
}

impl Drop for Session {
    /// A healthy engine goes back to the pool, until its job count is up;
    /// any other is killed with whatever it started.
    fn drop(&mut self) {
        let Some(mut engine) = self.engine.take() else { return };
        engine.jobs += 1;
        if !self.discard && engine.jobs < self.pool.settings.jobs_per_engine {
            self.pool.idle.lock().expect("the pool's lock").push(engine);
        } else {
            let _ = engine.kill();
        }
    }
}

impl EngineProcess {
    /// Kills the engine's process group (it and what it forked: it was
    /// started with `process_group(0)`), reaps it, and says how it ended.
    fn kill(&mut self) -> std::io::Result<std::process::ExitStatus> {
        // A reaped engine's process id may be another's by now.
        if !self.stopped {
            kill_group(&self.child);
            self.stopped = true;
        }
        self.child.wait()
    }
}

impl Drop for EnginePool {
    fn drop(&mut self) {
        for mut engine in self.idle.get_mut().expect("the pool's lock").drain(..) {
            let _ = engine.kill();
        }
    }
}

/// How long an engine may take over one answer, all of it: twice the
/// document deadline, at least two minutes.
fn deadline(limits: &EngineLimits) -> Duration {
    limits.document_deadline.max(Duration::from_secs(60)) * 2
}

/// A logo's width and height, and its RGBA pixels in a file.
type LogoFile = (Option<(u32, u32)>, Option<File>);

/// A watermark's logo as a sealed memory file of its RGBA pixels, and
/// its size, to send beside a request.
fn logo_file(watermark: Option<&crate::rendition::WatermarkSpec>) -> Result<LogoFile, RenderError> {
    match watermark.and_then(|w| w.logo.as_ref()) {
        Some(logo) => {
            let file =
                wire::sealed_memory_file("rendition-logo", logo.pixels.as_raw()).map_err(RenderError::corrupt)?;
            Ok((Some(logo.pixels.dimensions()), Some(file)))
        }
        None => Ok((None, None)),
    }
}

fn crashed(stage: &'static str, how: String) -> RenderError {
    RenderError::Crashed { stage, how }
}

fn unexpected(answer: Answer) -> RenderError {
    RenderError::CorruptInput(format!("the engine answered out of turn: {answer:?}"))
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGKILL => "SIGKILL",
        libc::SIGXCPU => "SIGXCPU, its CPU limit",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGSYS => "SIGSYS",
        _ => "a signal",
    }
}
