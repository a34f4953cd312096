//! Measuring every process of a run, ours and the anchors' alike: CPU
//! seconds of the program and every descendant it waited for (`wait4`'s
//! rusage), the largest single RSS among them, and the peak of the summed
//! PSS of the whole process tree (`/proc/<pid>/smaps_rollup` of the program
//! and its descendants, sampled every 10 ms). PSS splits shared pages among
//! the processes that map them, so a library mapped by a worker and its
//! engines counts once in the sum.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

/// What one run cost.
#[derive(Default, Clone, Copy)]
pub(crate) struct Run {
    /// CPU seconds, user + system, of the program and its descendants.
    pub(crate) secs: f64,
    /// The largest single process's peak RSS, KiB.
    pub(crate) rss_kib: u64,
    /// The peak of the process tree's summed PSS, KiB.
    pub(crate) pss_kib: u64,
}

/// Runs `program` with `args` (and `env`), measuring it as above.
pub(crate) fn measure(program: &str, args: &[String], env: &[(&str, &str)]) -> anyhow::Result<Run> {
    let child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("running {program}"))?;
    let pid = child.id() as i32;
    let mut pss_kib = 0;
    loop {
        pss_kib = pss_kib.max(crate::pss::tree_pss_kib(pid as u32));
        let mut status = 0;
        // SAFETY: wait4 fills the status and rusage it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let done = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if done == pid {
            if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                bail!("{program} {args:?} failed ({status})");
            }
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            return Ok(Run {
                secs: secs(usage.ru_utime) + secs(usage.ru_stime),
                rss_kib: usage.ru_maxrss as u64,
                pss_kib,
            });
        }
        if done < 0 {
            bail!("waiting for {program}: {}", std::io::Error::last_os_error());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
