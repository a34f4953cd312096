//! Counters and duration histograms, written as Prometheus text. A handful
//! of atomics needs no metrics crate.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::result::Status;

mod process;

/// Upper bounds of the duration buckets, in seconds.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Where a job's time goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// From publish (the message timestamp) to the start of work.
    QueueWait,
    /// Deciding, reading, rendering, storing, signing.
    Pipeline,
    /// Publishing the result and waiting for the broker's confirm.
    Reply,
}

impl Stage {
    const ALL: [Stage; 3] = [Stage::QueueWait, Stage::Pipeline, Stage::Reply];
    fn name(&self) -> &'static str {
        match self {
            Stage::QueueWait => "queue_wait",
            Stage::Pipeline => "pipeline",
            Stage::Reply => "reply",
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    done: AtomicU64,
    denied: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
    moves: AtomicU64,
    audit_failures: AtomicU64,
    dead_letters: AtomicU64,
    replays: AtomicU64,
    cache_hits: AtomicU64,
    revocations: AtomicU64,
    policy_updates: AtomicU64,
    policy_rejected: AtomicU64,
    policy_version: AtomicU64,
    engine_panics: AtomicU64,
    engines_started: AtomicU64,
    engine_crashes: AtomicU64,
    task_panics: AtomicU64,
    storage_outages: AtomicU64,
    storage_paused: AtomicI64,
    broker_failovers: AtomicU64,
    /// The broker node consumed from (`host:port`), while connected.
    broker_node: Mutex<Option<String>>,
    /// Failed answers by error code (docs/contract.md#error-codes).
    failures: Mutex<BTreeMap<&'static str, u64>>,
    /// Messages ready in each lane this worker consumes, by (queue, lane).
    queue_ready: Mutex<BTreeMap<(&'static str, &'static str), u32>>,
    /// Bytes of the memory budget reserved by renders now, and what jobs may reserve.
    memory_reserved: AtomicU64,
    memory_for_jobs: AtomicU64,
    in_flight: AtomicI64,
    stages: Mutex<[Histogram; 3]>,
    /// Refused control messages by (kind, reason).
    control_refused: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl Metrics {
    pub fn job_finished(&self, status: Status) {
        let counter = match status {
            Status::Done => &self.done,
            Status::Denied => &self.denied,
            Status::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    pub fn moved(&self) {
        self.moves.fetch_add(1, Ordering::Relaxed);
    }
    pub fn audit_failed(&self) {
        self.audit_failures.fetch_add(1, Ordering::Relaxed);
    }
    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dead_lettered(&self) {
        self.dead_letters.fetch_add(1, Ordering::Relaxed);
    }
    pub fn replayed(&self) {
        self.replays.fetch_add(1, Ordering::Relaxed);
    }
    pub fn cache_hits(&self, n: usize) {
        self.cache_hits.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn revoked(&self) {
        self.revocations.fetch_add(1, Ordering::Relaxed);
    }
    pub fn policy(&self, version: u64, applied: bool) {
        if applied {
            self.policy_updates.fetch_add(1, Ordering::Relaxed);
            self.policy_version.store(version, Ordering::Relaxed);
        } else {
            self.policy_rejected.fetch_add(1, Ordering::Relaxed);
        }
    }
    /// A panic caught on an engine pool (the job was answered `engine_error`).
    /// A control message (`policy` or `revoke`) refused, with the code of why.
    pub fn control_refused(&self, kind: &'static str, reason: &str) {
        let mut refused = self.control_refused.lock().unwrap_or_else(|e| e.into_inner());
        *refused.entry((kind, reason.to_string())).or_default() += 1;
    }

    pub fn engine_panicked(&self) {
        self.engine_panics.fetch_add(1, Ordering::Relaxed);
    }
    /// A panic caught in a job's async task (the delivery was nacked).
    /// The engine pool's own counts, as of the last job.
    pub fn engines(&self, started: u64, crashed: u64) {
        self.engines_started.store(started, Ordering::Relaxed);
        self.engine_crashes.store(crashed, Ordering::Relaxed);
    }

    pub fn task_panicked(&self) {
        self.task_panics.fetch_add(1, Ordering::Relaxed);
    }
    /// The stores stopped answering (`true`) or answer again (`false`).
    pub fn storage_paused(&self, paused: bool) {
        if paused {
            self.storage_outages.fetch_add(1, Ordering::Relaxed);
        }
        self.storage_paused.store(paused as i64, Ordering::Relaxed);
    }
    /// A connection moved to another broker node after losing one.
    pub fn broker_failover(&self) {
        self.broker_failovers.fetch_add(1, Ordering::Relaxed);
    }

    pub fn broker_node(&self, node: Option<&str>) {
        *self.broker_node.lock().unwrap_or_else(|e| e.into_inner()) = node.map(str::to_string);
    }

    pub fn failed_with(&self, code: &'static str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        *failures.entry(code).or_default() += 1;
    }

    /// Messages waiting in a lane (read every few seconds by the worker).
    pub fn queue_ready(&self, queue: &'static str, lane: &'static str, ready: u32) {
        let mut depths = self.queue_ready.lock().unwrap_or_else(|e| e.into_inner());
        depths.insert((queue, lane), ready);
    }

    /// The memory budget now: bytes reserved, bytes jobs may reserve.
    pub fn memory_budget(&self, reserved: u64, for_jobs: u64) {
        self.memory_reserved.store(reserved, Ordering::Relaxed);
        self.memory_for_jobs.store(for_jobs, Ordering::Relaxed);
    }

    pub fn set_policy_version(&self, version: u64) {
        self.policy_version.store(version, Ordering::Relaxed);
    }
    /// Counts a job in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }
    pub fn observe(&self, stage: Stage, took: Duration) {
        let secs = took.as_secs_f64();
        let mut stages = self.stages.lock().unwrap_or_else(|e| e.into_inner());
        let h = &mut stages[stage as usize];
        h.count += 1;
        h.sum += secs;
        for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if secs <= *bound {
                *count += 1;
            }
        }
    }

    /// The Prometheus text exposition of everything above.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.push_str("# HELP rendition_jobs_total Jobs answered, by status.\n# TYPE rendition_jobs_total counter\n");
        for (status, n) in [("done", &self.done), ("denied", &self.denied), ("failed", &self.failed)] {
            let _ = writeln!(out, "rendition_jobs_total{{status=\"{status}\"}} {}", get(n));
        }
        let counters = [
            ("rendition_retries_total", "Jobs sent to a retry queue.", &self.retries),
            (
                "rendition_lane_moves_total",
                "Jobs re-sent to the lane of their priority (sent under the other lane's key).",
                &self.moves,
            ),
            (
                "rendition_audit_failures_total",
                "Answers held back because their audit record could not be written (the job was requeued).",
                &self.audit_failures,
            ),
            (
                "rendition_dead_letters_total",
                "Jobs sent to the dead-letter queue.",
                &self.dead_letters,
            ),
            (
                "rendition_replays_total",
                "Repeated job ids answered from memory.",
                &self.replays,
            ),
            (
                "rendition_cache_hits_total",
                "Renditions found already made.",
                &self.cache_hits,
            ),
            ("rendition_revocations_total", "Shares revoked.", &self.revocations),
            (
                "rendition_engine_panics_total",
                "Panics caught in engine work (answered engine_error).",
                &self.engine_panics,
            ),
            (
                "rendition_engine_processes_started_total",
                "Engine processes started (at the first image job, after a crash, after RENDITION_ENGINE_JOBS jobs).",
                &self.engines_started,
            ),
            (
                "rendition_engine_crashes_total",
                "Engine processes that died under a job (a signal, an abort, a limit, a deadline).",
                &self.engine_crashes,
            ),
            (
                "rendition_task_panics_total",
                "Panics caught in a job's task (delivery nacked).",
                &self.task_panics,
            ),
            (
                "rendition_storage_outages_total",
                "Times the stores stopped answering and the worker paused.",
                &self.storage_outages,
            ),
            (
                "rendition_broker_failovers_total",
                "Broker connections moved to another node of the cluster after losing one.",
                &self.broker_failovers,
            ),
            (
                "rendition_policy_updates_total",
                "Policy updates applied.",
                &self.policy_updates,
            ),
            (
                "rendition_policy_rejected_total",
                "Policy updates refused.",
                &self.policy_rejected,
            ),
        ];
        for (name, help, n) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", get(n));
        }
        let gauges = [
            (
                "rendition_in_flight",
                "Jobs being worked on.",
                self.in_flight.load(Ordering::Relaxed),
            ),
            (
                "rendition_policy_version",
                "Policy version in force.",
                get(&self.policy_version) as i64,
            ),
            (
                "rendition_storage_paused",
                "1 while the stores are unreachable and no new job is taken.",
                self.storage_paused.load(Ordering::Relaxed),
            ),
            (
                "rendition_memory_budget_reserved_bytes",
                "Bytes of the memory budget renders hold now (RENDITION_MEMORY_BUDGET).",
                get(&self.memory_reserved) as i64,
            ),
            (
                "rendition_memory_budget_bytes",
                "Bytes of the memory budget jobs may reserve at once.",
                get(&self.memory_for_jobs) as i64,
            ),
        ];
        for (name, help, n) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {n}");
        }
        self.render_broker(&mut out);
        self.render_queues(&mut out);
        self.render_failures(&mut out);
        self.render_control(&mut out);
        self.render_stages(&mut out);
        process::render(&mut out);
        out
    }

    fn render_broker(&self, out: &mut String) {
        let node = self.broker_node.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let name = "rendition_broker_connected";
        let _ = writeln!(
            out,
            "# HELP {name} 1 while the worker consumes from a broker node.\n# TYPE {name} gauge\n{name} {}",
            u8::from(node.is_some())
        );
        let name = "rendition_broker_node_info";
        let _ = writeln!(
            out,
            "# HELP {name} The broker node (host:port) the worker consumes from.\n# TYPE {name} gauge"
        );
        if let Some(node) = node {
            let _ = writeln!(out, "{name}{{node=\"{node}\"}} 1");
        }
    }

    fn render_failures(&self, out: &mut String) {
        let name = "rendition_failures_total";
        let _ = writeln!(
            out,
            "# HELP {name} Jobs answered failed, by error code.\n# TYPE {name} counter"
        );
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (code, n) in failures {
            let _ = writeln!(out, "{name}{{code=\"{code}\"}} {n}");
        }
    }

    fn render_queues(&self, out: &mut String) {
        let name = "rendition_queue_ready";
        let _ = writeln!(
            out,
            "# HELP {name} Jobs waiting in each lane this worker consumes (read every 10 s).\n# TYPE {name} gauge"
        );
        let depths = self.queue_ready.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for ((queue, lane), n) in depths {
            let _ = writeln!(out, "{name}{{queue=\"{queue}\",lane=\"{lane}\"}} {n}");
        }
    }

    fn render_control(&self, out: &mut String) {
        let name = "rendition_control_refused_total";
        let _ = writeln!(
            out,
            "# HELP {name} Control messages refused (unsigned, forged, stale, ...), by kind and reason.\n# TYPE {name} counter"
        );
        let refused = self.control_refused.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for ((kind, reason), n) in refused {
            let _ = writeln!(out, "{name}{{kind=\"{kind}\",reason=\"{reason}\"}} {n}");
        }
    }

    fn render_stages(&self, out: &mut String) {
        let name = "rendition_stage_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time spent per job, by stage.\n# TYPE {name} histogram"
        );
        let stages = self.stages.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for stage in Stage::ALL {
            let h = &stages[stage as usize];
            let label = stage.name();
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "{name}_bucket{{stage=\"{label}\",le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "{name}_bucket{{stage=\"{label}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{stage=\"{label}\"}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{stage=\"{label}\"}} {}", h.count);
        }
    }
}

pub struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_cumulative_buckets() {
        let m = Metrics::default();
        m.job_finished(Status::Done);
        m.job_finished(Status::Done);
        m.job_finished(Status::Failed);
        m.observe(Stage::Pipeline, Duration::from_millis(30));
        m.observe(Stage::Pipeline, Duration::from_secs(3));
        let guard = m.in_flight();
        let text = m.render();
        drop(guard);
        assert!(text.contains("rendition_jobs_total{status=\"done\"} 2\n"));
        assert!(text.contains("rendition_jobs_total{status=\"failed\"} 1\n"));
        assert!(text.contains("rendition_in_flight 1\n"));
        assert!(text.contains("rendition_stage_seconds_bucket{stage=\"pipeline\",le=\"0.05\"} 1\n"));
        assert!(text.contains("rendition_stage_seconds_bucket{stage=\"pipeline\",le=\"5\"} 2\n"));
        assert!(text.contains("rendition_stage_seconds_count{stage=\"pipeline\"} 2\n"));
        assert!(m.render().contains("rendition_in_flight 0\n"));
    }
}
