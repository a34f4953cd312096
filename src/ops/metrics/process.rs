//! The process metrics every Prometheus client exports under the standard
//! names (`process_resident_memory_bytes`, `process_cpu_seconds_total`,
//! `process_open_fds`, `process_max_fds`, `process_start_time_seconds`),
//! read from `/proc` when `/metrics` is asked. Our engine processes are
//! children of the worker: their resident memory is
//! `rendition_engine_resident_bytes`, so a dashboard sees every process of
//! ours. Off Linux the lines are left out.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Reads `/proc` at each scrape.
#[derive(Debug)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(me) = Process::read("self") else {
            return Ok(());
        };
        let engines: u64 = children()
            .iter()
            .filter_map(|pid| Process::read(&pid.to_string()))
            .map(|p| p.resident_bytes)
            .sum();
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory of the worker process",
                me.resident_bytes as f64,
            ),
            ("process_open_fds", "Open file descriptors", me.open_fds as f64),
            ("process_max_fds", "The open file descriptor limit", me.max_fds as f64),
            (
                "process_start_time_seconds",
                "When the process started, in seconds since the epoch",
                me.start_time,
            ),
            (
                "rendition_engine_resident_bytes",
                "Resident memory of the worker's engine processes together",
                engines as f64,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let cpu = ConstCounter::new(me.cpu_seconds);
        let help = "User and system CPU time of the worker process";
        cpu.encode(encoder.encode_descriptor("process_cpu_seconds", help, None, cpu.metric_type())?)
    }
}

struct Process {
    resident_bytes: u64,
    cpu_seconds: f64,
    open_fds: usize,
    max_fds: u64,
    start_time: f64,
}

impl Process {
    fn read(pid: &str) -> Option<Process> {
        let dir = format!("/proc/{pid}");
        let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        let ticks = clock_ticks();
        let (utime, stime, start, rss_pages) = (field(14)?, field(15)?, field(22)?, field(24)?);
        let open_fds = std::fs::read_dir(format!("{dir}/fd")).map_or(0, |d| d.count());
        Some(Process {
            resident_bytes: rss_pages * page_size(),
            cpu_seconds: (utime + stime) as f64 / ticks,
            open_fds,
            max_fds: max_fds(&dir).unwrap_or(0),
            start_time: boot_time().unwrap_or(0.0) + start as f64 / ticks,
        })
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a constant of the running system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: as above.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

fn max_fds(dir: &str) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("{dir}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()
}

/// The worker's child processes (its engines): every process whose parent
/// is this one. (`/proc/self/task/*/children` would be quicker, but the
/// kernel documents it as able to miss children that are running.)
fn children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parent_of = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| parent_of(*pid) == Some(me))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::ops::Metrics;

    #[test]
    fn the_worker_and_its_children_are_measured() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let text = Metrics::default().render();
        let _ = child.kill();
        let _ = child.wait();
        let value = |name: &str| -> f64 {
            let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap();
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert!(value("process_resident_memory_bytes") > 1e6, "{text}");
        assert!(value("process_open_fds") >= 3.0, "{text}");
        assert!(value("process_max_fds") >= value("process_open_fds"), "{text}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = value("process_start_time_seconds");
        assert!(started > now - 3600.0 && started <= now + 1.0, "{started} vs {now}");
        assert!(
            value("rendition_engine_resident_bytes") > 0.0,
            "the child counts: {text}"
        );
    }
}
