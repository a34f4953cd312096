//! The worker's metrics in prometheus-client's types (the Prometheus
//! project's Rust client), written in the Prometheus text format 0.0.4 by
//! [`Metrics::render`], with the standard process metrics ([`process`]).
//! The names and what they count: docs/operating.md#health-and-metrics.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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

/// A metric's labels.
type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

fn stage_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Every metric of one worker, and the registry that writes them.
pub struct Metrics {
    registry: Registry,
    jobs: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    retries: Counter,
    moves: Counter,
    audit_failures: Counter,
    dead_letters: Counter,
    replays: Counter,
    cache_hits: Counter,
    revocations: Counter,
    policy_updates: Counter,
    policy_rejected: Counter,
    policy_version: Gauge,
    engine_panics: Counter,
    engines_started: Counter,
    engine_crashes: Counter,
    task_panics: Counter,
    storage_outages: Counter,
    storage_paused: Gauge,
    broker_failovers: Counter,
    broker_connected: Gauge,
    /// The broker node consumed from (`host:port`), while connected.
    broker_node: Family<Labels, Gauge>,
    /// Jobs ready in each lane this worker consumes.
    queue_ready: Family<Labels, Gauge>,
    memory_reserved: Gauge,
    memory_for_jobs: Gauge,
    in_flight: Gauge,
    stages: Histograms,
    /// Refused control messages by kind and reason.
    control_refused: Family<Labels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            jobs: Family::default(),
            failures: Family::default(),
            retries: Counter::default(),
            moves: Counter::default(),
            audit_failures: Counter::default(),
            dead_letters: Counter::default(),
            replays: Counter::default(),
            cache_hits: Counter::default(),
            revocations: Counter::default(),
            policy_updates: Counter::default(),
            policy_rejected: Counter::default(),
            policy_version: Gauge::default(),
            engine_panics: Counter::default(),
            engines_started: Counter::default(),
            engine_crashes: Counter::default(),
            task_panics: Counter::default(),
            storage_outages: Counter::default(),
            storage_paused: Gauge::default(),
            broker_failovers: Counter::default(),
            broker_connected: Gauge::default(),
            broker_node: Family::default(),
            queue_ready: Family::default(),
            memory_reserved: Gauge::default(),
            memory_for_jobs: Gauge::default(),
            in_flight: Gauge::default(),
            stages: Family::new_with_constructor(stage_histogram),
            control_refused: Family::default(),
        };
        // Every status and stage from the start, at zero.
        for status in ["done", "denied", "failed"] {
            let _ = m.jobs.get_or_create(&labels(&[("status", status)]));
        }
        for stage in Stage::ALL {
            let _ = m.stages.get_or_create(&labels(&[("stage", stage.name())]));
        }
        m.registered()
    }
}

impl Metrics {
    /// Registers every metric under its name (counters without `_total`,
    /// which the encoder adds) and the process collector.
    fn registered(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register("rendition_jobs", "Jobs answered, by status", self.jobs.clone());
        r.register(
            "rendition_failures",
            "Jobs answered failed, by error code",
            self.failures.clone(),
        );
        r.register("rendition_retries", "Jobs sent to a retry queue", self.retries.clone());
        r.register(
            "rendition_lane_moves",
            "Jobs re-sent to the lane of their priority (sent under the other lane's key)",
            self.moves.clone(),
        );
        r.register(
            "rendition_audit_failures",
            "Answers held back because their audit record could not be written (the job was requeued)",
            self.audit_failures.clone(),
        );
        r.register(
            "rendition_dead_letters",
            "Jobs sent to the dead-letter queue",
            self.dead_letters.clone(),
        );
        r.register(
            "rendition_replays",
            "Repeated job ids answered from memory",
            self.replays.clone(),
        );
        r.register(
            "rendition_cache_hits",
            "Renditions found already made",
            self.cache_hits.clone(),
        );
        r.register("rendition_revocations", "Shares revoked", self.revocations.clone());
        r.register(
            "rendition_engine_panics",
            "Panics caught in engine work (answered engine_error)",
            self.engine_panics.clone(),
        );
        r.register(
            "rendition_engine_processes_started",
            "Engine processes started (at the first image job, after a crash, after RENDITION_ENGINE_JOBS jobs)",
            self.engines_started.clone(),
        );
        r.register(
            "rendition_engine_crashes",
            "Engine processes that died under a job (a signal, an abort, a limit, a deadline)",
            self.engine_crashes.clone(),
        );
        r.register(
            "rendition_task_panics",
            "Panics caught in a job's task (delivery nacked)",
            self.task_panics.clone(),
        );
        r.register(
            "rendition_storage_outages",
            "Times the stores stopped answering and the worker paused",
            self.storage_outages.clone(),
        );
        r.register(
            "rendition_broker_failovers",
            "Broker connections moved to another node of the cluster after losing one",
            self.broker_failovers.clone(),
        );
        r.register(
            "rendition_policy_updates",
            "Policy updates applied",
            self.policy_updates.clone(),
        );
        r.register(
            "rendition_policy_rejected",
            "Policy updates refused",
            self.policy_rejected.clone(),
        );
        r.register(
            "rendition_control_refused",
            "Control messages refused (unsigned, forged, stale, ...), by kind and reason",
            self.control_refused.clone(),
        );
        self.register_gauges();
        self
    }

    fn register_gauges(&mut self) {
        let r = &mut self.registry;
        r.register("rendition_in_flight", "Jobs being worked on", self.in_flight.clone());
        r.register(
            "rendition_policy_version",
            "Policy version in force",
            self.policy_version.clone(),
        );
        r.register(
            "rendition_storage_paused",
            "1 while the stores are unreachable and no new job is taken",
            self.storage_paused.clone(),
        );
        r.register(
            "rendition_memory_budget_reserved_bytes",
            "Bytes of the memory budget renders hold now (RENDITION_MEMORY_BUDGET)",
            self.memory_reserved.clone(),
        );
        r.register(
            "rendition_memory_budget_bytes",
            "Bytes of the memory budget jobs may reserve at once",
            self.memory_for_jobs.clone(),
        );
        r.register(
            "rendition_broker_connected",
            "1 while the worker consumes from a broker node",
            self.broker_connected.clone(),
        );
        r.register(
            "rendition_broker_node_info",
            "The broker node (host:port) the worker consumes from",
            self.broker_node.clone(),
        );
        r.register(
            "rendition_queue_ready",
            "Jobs waiting in each lane this worker consumes (read every 10 s)",
            self.queue_ready.clone(),
        );
        r.register(
            "rendition_stage_seconds",
            "Time spent per job, by stage",
            self.stages.clone(),
        );
        r.register_collector(Box::new(process::ProcessCollector));
    }

    pub fn job_finished(&self, status: Status) {
        let status = match status {
            Status::Done => "done",
            Status::Denied => "denied",
            Status::Failed => "failed",
        };
        self.jobs.get_or_create(&labels(&[("status", status)])).inc();
    }
    pub fn failed_with(&self, code: &'static str) {
        self.failures.get_or_create(&labels(&[("code", code)])).inc();
    }
    pub fn moved(&self) {
        self.moves.inc();
    }
    pub fn audit_failed(&self) {
        self.audit_failures.inc();
    }
    pub fn retried(&self) {
        self.retries.inc();
    }
    pub fn dead_lettered(&self) {
        self.dead_letters.inc();
    }
    pub fn replayed(&self) {
        self.replays.inc();
    }
    pub fn cache_hits(&self, n: usize) {
        self.cache_hits.inc_by(n as u64);
    }
    pub fn revoked(&self) {
        self.revocations.inc();
    }
    pub fn policy(&self, version: u64, applied: bool) {
        if applied {
            self.policy_updates.inc();
            self.set_policy_version(version);
        } else {
            self.policy_rejected.inc();
        }
    }
    /// A control message (`policy` or `revoke`) refused, with the code of why.
    pub fn control_refused(&self, kind: &'static str, reason: &str) {
        let key = labels(&[("kind", kind), ("reason", reason)]);
        self.control_refused.get_or_create(&key).inc();
    }
    /// A panic caught on an engine pool (the job was answered `engine_error`).
    pub fn engine_panicked(&self) {
        self.engine_panics.inc();
    }
    /// The engine pool's own counts, as of the last job.
    pub fn engines(&self, started: u64, crashed: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.engines_started.inner().store(started, Relaxed);
        self.engine_crashes.inner().store(crashed, Relaxed);
    }
    /// A panic caught in a job's async task (the delivery was nacked).
    pub fn task_panicked(&self) {
        self.task_panics.inc();
    }
    /// The stores stopped answering (`true`) or answer again (`false`).
    pub fn storage_paused(&self, paused: bool) {
        if paused {
            self.storage_outages.inc();
        }
        self.storage_paused.set(i64::from(paused));
    }
    /// A connection moved to another broker node after losing one.
    pub fn broker_failover(&self) {
        self.broker_failovers.inc();
    }
    /// The node consumed from now, or none.
    pub fn broker_node(&self, node: Option<&str>) {
        self.broker_node.clear();
        if let Some(node) = node {
            self.broker_node.get_or_create(&labels(&[("node", node)])).set(1);
        }
        self.broker_connected.set(i64::from(node.is_some()));
    }
    /// Messages waiting in a lane (read every few seconds by the worker).
    pub fn queue_ready(&self, queue: &'static str, lane: &'static str, ready: u32) {
        let key = labels(&[("queue", queue), ("lane", lane)]);
        self.queue_ready.get_or_create(&key).set(i64::from(ready));
    }
    /// The memory budget now: bytes reserved, bytes jobs may reserve.
    pub fn memory_budget(&self, reserved: u64, for_jobs: u64) {
        self.memory_reserved.set(i64::try_from(reserved).unwrap_or(i64::MAX));
        self.memory_for_jobs.set(i64::try_from(for_jobs).unwrap_or(i64::MAX));
    }
    pub fn set_policy_version(&self, version: u64) {
        self.policy_version.set(i64::try_from(version).unwrap_or(i64::MAX));
    }
    /// Counts a job in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }
    pub fn observe(&self, stage: Stage, took: Duration) {
        let key = labels(&[("stage", stage.name())]);
        self.stages.get_or_create(&key).observe(took.as_secs_f64());
    }

    /// The Prometheus text exposition of everything above.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
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
