//! What an engine process does to itself before it reads a byte of a
//! source (docs/security.md#engine-processes). Its parent already gave it
//! an empty environment, no descriptor but its socket and stderr, and,
//! when the worker runs as root, the `nobody` user. Here it adds:
//! `PR_SET_NO_NEW_PRIVS`; limits on open files, processes, file size and
//! core files; a Landlock ruleset (the system's libraries and tools read
//! only, its own scratch directory read-write, nothing else); a seccomp
//! filter refusing sockets, tracing, other processes' memory, mounts,
//! namespaces, keyrings, BPF and io_uring. Each job then runs under a data
//! limit from its reservation and a CPU limit ([`Confinement::within`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule};

/// Open files: the socket, a source, outputs, a child's pipes.
const MAX_OPEN_FILES: u64 = 64;

/// Processes and threads of the engine's user (`RLIMIT_NPROC`): its render
/// threads and the tools it starts; a fork bomb stops here.
pub const MAX_PROCESSES: u64 = 512;

/// The largest file written (a tool's scratch copy of a big original).
const MAX_FILE_BYTES: u64 = 4 << 30;

/// CPU seconds one job may use.
const JOB_CPU_SECONDS: u64 = 600;

/// Room over a job's reservation: the estimate is a model, and the
/// decoders' own tables and buffers come on top.
const DATA_SLACK: u64 = 256 << 20;

/// What is read only: the libraries, the tools the engine starts (poppler,
/// ImageMagick, dcraw) and their configuration and fonts.
const READ_ONLY: &[&str] = &[
    "/usr",
    "/lib",
    "/lib64",
    "/bin",
    "/sbin",
    "/etc",
    "/var/cache/fontconfig",
];

/// The engine's confinement, as it came out on this kernel.
pub struct Confinement {
    /// `/proc/self/statm`, opened before Landlock closed `/proc`.
    statm: File,
}

/// Confines this process for good; what Landlock could enforce is kept
/// (an older kernel enforces less, and the engine still runs). `strict`:
/// no Landlock at all, no engine; otherwise a warning (a video engine
/// beside in-process image renders, the operator's choice).
pub fn confine(strict: bool, no_children: bool) -> std::io::Result<Confinement> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    set_limit(libc::RLIMIT_NOFILE, MAX_OPEN_FILES, MAX_OPEN_FILES)?;
    set_limit(libc::RLIMIT_NPROC, MAX_PROCESSES, MAX_PROCESSES)?;
    set_limit(libc::RLIMIT_FSIZE, MAX_FILE_BYTES, MAX_FILE_BYTES)?;
    set_limit(libc::RLIMIT_CORE, 0, 0)?;
    let statm = File::open("/proc/self/statm")?;
    // Without Landlock nothing but the user would keep an engine from the
    // worker's files: the engine does not run (RENDITION_ENGINES=in-process
    // is the operator's explicit choice on such a kernel).
    let landlock = restrict_files().map_err(|e| std::io::Error::other(format!("Landlock: {e}")))?;
    match landlock {
        RulesetStatus::FullyEnforced => {}
        RulesetStatus::PartiallyEnforced => eprintln!("engine: this kernel enforces Landlock in part (an older ABI)"),
        RulesetStatus::NotEnforced if !strict => {
            eprintln!(
                "engine: this kernel does not enforce Landlock; running without it (RENDITION_ENGINES=in-process)"
            );
        }
        RulesetStatus::NotEnforced => {
            return Err(std::io::Error::other(
                "this kernel does not enforce Landlock: engines are not confined; \
                 set RENDITION_ENGINES=in-process to render in the worker instead",
            ));
        }
    }
    seccompiler::apply_filter_all_threads(&seccomp_filter()?).map_err(std::io::Error::other)?;
    seccompiler::apply_filter_all_threads(&clone3_filter()?).map_err(std::io::Error::other)?;
    // SAFETY: plain system calls.
    let (worker, group) = unsafe { (libc::getppid(), libc::getpgid(libc::getppid())) };
    seccompiler::apply_filter_all_threads(&no_signals_to(worker, group)?).map_err(std::io::Error::other)?;
    if no_children {
        seccompiler::apply_filter_all_threads(&no_children_filter()?).map_err(std::io::Error::other)?;
    }
    Ok(Confinement { statm })
}

/// Read-only system paths and the scratch directory (`TMPDIR`); every
/// other path refused; no signals to, nor abstract sockets of, processes
/// outside the engine's own domain (the worker's), where the kernel scopes.
fn restrict_files() -> Result<RulesetStatus, landlock::RulesetError> {
    let abi = ABI::V6;
    let scratch = std::env::var_os("TMPDIR").map(PathBuf::from);
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))?
        .scope(Scope::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(READ_ONLY, AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(["/dev/null"], AccessFs::from_all(abi)))?
        .add_rules(path_beneath_rules(scratch, AccessFs::from_all(abi)))?
        .restrict_self()?;
    Ok(status.ruleset)
}

/// System calls refused with `EPERM`: no network, no tracing or reading
/// another process (or its descriptors), no mounts, namespaces, modules,
/// keyrings, BPF, performance counters, io_uring, swap, reboot or kernel
/// log. Another architecture's calls (32-bit `int 0x80`) are refused by
/// the architecture check every seccompiler filter starts with.
fn seccomp_filter() -> std::io::Result<BpfProgram> {
    let refused = [
        libc::SYS_socket,
        libc::SYS_connect,
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_accept,
        libc::SYS_accept4,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_pidfd_getfd,
        libc::SYS_process_madvise,
        libc::SYS_kcmp,
        libc::SYS_open_by_handle_at,
        libc::SYS_fanotify_init,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_syslog,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_name_to_handle_at,
        // The new mount API.
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
    ];
    // The same calls by their x32 numbers, where a kernel still has x32.
    const X32: i64 = 0x4000_0000;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = refused
        .into_iter()
        .flat_map(|call| [call, call | X32])
        .map(|call| (call, Vec::new()))
        .collect();
    // Threads and processes, yes; new namespaces through `clone`, no.
    let new_namespace = [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWCGROUP,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
    ]
    .into_iter()
    .map(|flag| {
        let flag = flag as u64;
        let op = seccompiler::SeccompCmpOp::MaskedEq(flag);
        seccompiler::SeccompCondition::new(0, seccompiler::SeccompCmpArgLen::Qword, op, flag)
            .and_then(|c| SeccompRule::new(vec![c]))
            .map_err(std::io::Error::other)
    })
    .collect::<std::io::Result<Vec<_>>>()?;
    rules.insert(libc::SYS_clone, new_namespace);
    bpf(rules, libc::EPERM)
}

/// No signal to the worker (`worker`, its process group `group`) nor to
/// every process at once (`kill(-1)`), no `pidfd` of the worker's, no
/// `tkill` (glibc signals threads with `tgkill`). Before 6.12 Landlock does
/// not scope signals, and an engine of the worker's own user (a worker
/// that does not run as root) could otherwise stop or kill it.
fn no_signals_to(worker: i32, group: i32) -> std::io::Result<BpfProgram> {
    let first_is = |value: i32| {
        seccompiler::SeccompCondition::new(
            0,
            seccompiler::SeccompCmpArgLen::Dword,
            seccompiler::SeccompCmpOp::Eq,
            u64::from(value as u32),
        )
        .and_then(|c| SeccompRule::new(vec![c]))
        .map_err(std::io::Error::other)
    };
    let targets = [worker, -worker, -group.max(1), -1];
    let mut rules = BTreeMap::new();
    for call in [
        libc::SYS_kill,
        libc::SYS_tgkill,
        libc::SYS_rt_sigqueueinfo,
        libc::SYS_rt_tgsigqueueinfo,
    ] {
        rules.insert(
            call,
            targets
                .iter()
                .map(|&t| first_is(t))
                .collect::<std::io::Result<Vec<_>>>()?,
        );
    }
    rules.insert(libc::SYS_pidfd_open, vec![first_is(worker)?]);
    rules.insert(libc::SYS_tkill, Vec::new());
    bpf(rules, libc::EPERM)
}

/// An engine that starts no program (the video engine: FFmpeg needs none)
/// may start no process either: no `fork`, `vfork`, `execve`,
/// `execveat`, `setsid` or `setpgid`, and `clone` only for threads. A
/// process it made could leave its group and outlive the kill.
fn no_children_filter() -> std::io::Result<BpfProgram> {
    const X32: i64 = 0x4000_0000;
    let calls = [
        libc::SYS_fork,
        libc::SYS_vfork,
        libc::SYS_execve,
        libc::SYS_execveat,
        libc::SYS_setsid,
        libc::SYS_setpgid,
    ];
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = calls
        .into_iter()
        .flat_map(|call| [call, call | X32])
        .map(|call| (call, Vec::new()))
        .collect();
    let thread = libc::CLONE_THREAD as u64;
    let not_a_thread = seccompiler::SeccompCondition::new(
        0,
        seccompiler::SeccompCmpArgLen::Qword,
        seccompiler::SeccompCmpOp::MaskedEq(thread),
        0,
    )
    .and_then(|c| SeccompRule::new(vec![c]))
    .map_err(std::io::Error::other)?;
    rules.insert(libc::SYS_clone, vec![not_a_thread]);
    bpf(rules, libc::EPERM)
}

/// `clone3` answers "not implemented": its flags sit in memory a filter
/// cannot read, and glibc then creates threads with `clone`, which the
/// filter above reads.
fn clone3_filter() -> std::io::Result<BpfProgram> {
    let rules = BTreeMap::from([
        (libc::SYS_clone3, Vec::new()),
        (libc::SYS_clone3 | 0x4000_0000, Vec::new()),
    ]);
    bpf(rules, libc::ENOSYS)
}

/// A filter that answers `errno` to the calls `rules` match and lets every
/// other call through.
fn bpf(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> std::io::Result<BpfProgram> {
    let arch = std::env::consts::ARCH.try_into().map_err(std::io::Error::other)?;
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno as u32), arch)
        .map_err(std::io::Error::other)?;
    filter.try_into().map_err(std::io::Error::other)
}

impl Confinement {
    /// Runs one image job with its data segment limited to what it uses
    /// now plus its reservation (and slack), and its CPU to
    /// [`JOB_CPU_SECONDS`] more. Past the data limit allocations fail: the
    /// job fails `too_large`.
    pub fn within<T>(&self, memory: u64, job: impl FnOnce() -> T) -> T {
        self.within_cpu(memory, JOB_CPU_SECONDS, job)
    }

    /// [`Confinement::within`], with `cpu_seconds` of CPU (a transcode's).
    pub fn within_cpu<T>(&self, memory: u64, cpu_seconds: u64, job: impl FnOnce() -> T) -> T {
        let data = self.data_bytes().unwrap_or(0);
        let cap = data
            .saturating_add(memory.saturating_mul(3) / 2)
            .saturating_add(DATA_SLACK);
        let cpu = cpu_used().saturating_add(cpu_seconds);
        let limited = set_soft(libc::RLIMIT_DATA, cap).and(set_soft(libc::RLIMIT_CPU, cpu));
        if let Err(e) = limited {
            eprintln!("engine: the job's limits were not set: {e}");
        }
        let out = job();
        // Back to the hard limits between jobs.
        let _ = set_soft(libc::RLIMIT_DATA, libc::RLIM_INFINITY);
        let _ = set_soft(libc::RLIMIT_CPU, libc::RLIM_INFINITY);
        out
    }

    /// The data segment's size now (`statm`'s sixth field, in pages).
    fn data_bytes(&self) -> std::io::Result<u64> {
        let mut buf = [0u8; 256];
        let n = self.statm.read_at(&mut buf, 0)?;
        let pages: u64 = String::from_utf8_lossy(&buf[..n])
            .split_whitespace()
            .nth(5)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| std::io::Error::other("statm unreadable"))?;
        // SAFETY: sysconf with a constant.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Ok(pages * u64::try_from(page).unwrap_or(4096))
    }
}

fn cpu_used() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1) as u64
}

fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct it is given.
    match unsafe { libc::setrlimit(resource, &limit) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Sets the soft limit, keeping the hard one.
fn set_soft(resource: libc::__rlimit_resource_t, soft: u64) -> std::io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    set_limit(resource, soft.min(limit.rlim_max), limit.rlim_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `kill(parent, 0)` (a permission check, no signal sent) gives in
    /// a forked child, with the filter or without: the exit code is the
    /// errno, 0 when the signal would have gone through.
    fn signal_parent_from_a_child(filtered: bool) -> i32 {
        // SAFETY: the filter is built before the fork; the child makes
        // system calls only and leaves with `_exit`.
        unsafe {
            let parent = libc::getpid();
            let filter = no_signals_to(parent, libc::getpgid(parent)).unwrap();
            match libc::fork() {
                0 => {
                    libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                    if filtered && seccompiler::apply_filter(&filter).is_err() {
                        libc::_exit(99);
                    }
                    let code = match libc::kill(parent, 0) {
                        0 => 0,
                        _ => *libc::__errno_location(),
                    };
                    libc::_exit(code)
                }
                pid => {
                    let mut status = 0;
                    libc::waitpid(pid, &mut status, 0);
                    libc::WEXITSTATUS(status)
                }
            }
        }
    }

    #[test]
    fn the_signal_filter_alone_keeps_an_engine_from_the_worker() {
        // Same user, no Landlock: only the filter stands in the way.
        assert_eq!(
            signal_parent_from_a_child(false),
            0,
            "without the filter the signal goes"
        );
        assert_eq!(signal_parent_from_a_child(true), libc::EPERM);
    }
}
