//! Operator settings (docs/operating.md#configuration), read in this one place, once: a TOML
//! file (`--config`) overlaid by `RENDITION_*` environment variables,
//! overlaid by command-line flags, validated into
//! [`Settings`], logged redacted. [`Settings`] builds the pipeline's
//! configuration; `render`, `serve` and `worker` all start from it. The
//! standard `AWS_*` variables and files are aws-config's to read
//! ([`S3Config`]), so they mean here what they mean to every AWS tool.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::budget::MemoryBudget;
use crate::control::{ControlKeys, ControlPlane, PolicyLocations};
use crate::destinations::PublishDestinations;
use crate::isolated::EngineSettings;
use crate::pipeline::{Lookups, MAX_LINK_TTL_S, PipelineConfig, VideoEngines};
use crate::queue::addresses::BrokerAddresses;
use crate::queue::{JobQueue, Topology};
use crate::storage::s3::S3Config;
use crate::video::VideoLimits;
use crate::worker::WorkerConfig;
use crate::worker::handler::{STORAGE_WAIT, default_worker_id};

/// A setting that cannot be used, named as the operator wrote it.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{name} {message}")]
    Invalid { name: String, message: String },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn invalid(name: &str, message: impl std::fmt::Display) -> SettingsError {
    SettingsError::Invalid {
        name: name.to_string(),
        message: message.to_string(),
    }
}

macro_rules! bail {
    ($name:expr, $($fmt:tt)+) => {
        return Err(invalid($name, format!($($fmt)+)))
    };
}

// After `bail!`, which the store settings use too.
mod forensic;
mod print;
mod store;
pub use store::link_signer;
use store::{publish_destinations, store_setting};

/// The file's keys are the variables' names without `RENDITION_`, lower
/// case. Command-line flags set the same fields before validation. No
/// `Debug`: it holds secrets; [`Settings::describe`] prints them redacted.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    pub amqp_url: Option<String>,
    pub policy: Option<String>,
    pub store: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_path_style: Option<bool>,
    pub s3_access_key: Option<String>,
    pub s3_secret_key: Option<String>,
    pub s3_multipart_threshold: Option<usize>,
    pub originals_bucket: Option<String>,
    pub renditions_bucket: Option<String>,
    pub link_secret: Option<String>,
    pub link_base: Option<String>,
    pub concurrency: Option<u16>,
    pub http_addr: Option<String>,
    pub queue_prefix: Option<String>,
    pub queues: Option<String>,
    pub max_attempts: Option<u32>,
    pub retry_base_ms: Option<u64>,
    pub drain_timeout_s: Option<u64>,
    pub storage_wait_s: Option<u64>,
    pub max_link_ttl_s: Option<u64>,
    pub log_format: Option<String>,
    pub video_concurrency: Option<u16>,
    pub video_deadline_s: Option<u64>,
    pub video_max_duration_s: Option<u64>,
    pub store_lookups: Option<String>,
    pub worker_id: Option<String>,
    /// An OTLP/HTTP collector for the jobs' spans (docs/operating.md#traces).
    pub otlp_endpoint: Option<String>,
    pub video_max_source_bytes: Option<u64>,
    pub temp_dir: Option<PathBuf>,
    /// Bytes, or with a K/M/G/T suffix ([`crate::budget::parse_bytes`]).
    pub memory_budget: Option<String>,
    /// Where publish jobs may copy to ([`crate::destinations`]).
    pub publish_destinations: Option<String>,
    /// `ID:BASE64,…`: the keys control messages must be signed with.
    pub control_keys: Option<String>,
    /// `s3://bucket/prefix` or a directory: where signed policy
    /// locations may point.
    pub policy_locations: Option<String>,
    /// `processes` (the default) or `in-process`: where image jobs decode.
    pub engines: Option<String>,
    /// Jobs an engine process does before it is replaced.
    pub engine_jobs: Option<u32>,
    /// `NAME=PATH,…`: CMYK output profiles presets may name.
    pub print_profiles: Option<String>,
    /// `KEY,…`: forensic mark keys; the first marks, all trace.
    pub forensic_keys: Option<String>,
    /// Where `render` reads originals from (a flag, not a variable).
    #[serde(skip)]
    pub originals_dir: Option<PathBuf>,
}

#[derive(Clone)]
pub enum StoreSetting {
    Fs {
        dir: PathBuf,
        /// Where sources are read: `dir` unless `render --originals` says.
        originals: PathBuf,
        link_secret: Option<String>,
        link_base: String,
    },
    S3 {
        config: S3Config,
        originals: String,
        renditions: String,
    },
}

impl std::fmt::Debug for StoreSetting {
    // Never print the link secret (settings are logged at start).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSetting::Fs {
                dir,
                originals,
                link_secret,
                link_base,
            } => f
                .debug_struct("Fs")
                .field("dir", dir)
                .field("originals", originals)
                .field("link_secret", &link_secret.as_ref().map(|_| "<redacted>"))
                .field("link_base", link_base)
                .finish(),
            StoreSetting::S3 {
                config,
                originals,
                renditions,
            } => f
                .debug_struct("S3")
                .field("config", config)
                .field("originals", originals)
                .field("renditions", renditions)
                .finish(),
        }
    }
}

/// Everything the commands need, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// As given: one broker URL or a cluster's list (what `enqueue`, `dlq`
    /// and `policy publish` pass to [`crate::queue::amqp::AmqpBroker::connect`]).
    pub amqp_url: String,
    /// The same, parsed: the worker's failover list.
    pub brokers: BrokerAddresses,
    /// A policy file or `s3://bucket/key`; no default ([`Settings::policy`]).
    pub policy: Option<String>,
    pub store: StoreSetting,
    pub concurrency: u16,
    pub http_addr: SocketAddr,
    pub topology: Topology,
    pub queues: Vec<JobQueue>,
    pub drain_timeout: Duration,
    /// How long a job waits out unreachable stores before its usual retry.
    pub storage_wait: Duration,
    pub max_link_ttl_s: u64,
    pub json_logs: bool,
    /// Transcodes at once (the video pool's threads).
    pub video_concurrency: u16,
    pub video_limits: VideoLimits,
    pub lookups: Lookups,
    /// Names this process in audit records (default: host name and pid).
    pub worker_id: String,
    /// Where spans are exported; `None`: nowhere (no cost).
    pub otlp_endpoint: Option<String>,
    /// Where video sources and large originals are copied (default: the system's).
    pub temp_dir: Option<PathBuf>,
    /// The process's memory budget in bytes ([`crate::budget`]).
    pub memory_budget: u64,
    /// Where publish jobs may copy to.
    pub publish: PublishDestinations,
    /// What policy updates and revokes are verified with.
    pub control: ControlPlane,
    /// Jobs per engine process.
    pub engine_jobs: u32,
    /// Image jobs decode in engine processes (`false`: in this process;
    /// video is always made in video engine processes).
    pub image_engines: bool,
    /// CMYK output profiles by name.
    pub print_profiles: crate::plan::PrintProfiles,
    /// Forensic mark keys (docs/forensic.md#keys).
    pub forensic: crate::forensic::ForensicKeys,
}

/// Sets each named field from `RENDITION_{FIELD}` when that is set.
macro_rules! overlay {
    ($raw:ident, $($field:ident),+) => {
        $(
            let name = concat!("RENDITION_", stringify!($field)).to_ascii_uppercase();
            if let Some(value) = env_value(&name)? {
                $raw.$field = Some(value);
            }
        )+
    };
}

fn env_value<T: FromStr>(name: &str) -> Result<Option<T>, SettingsError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse() {
            Ok(value) => Ok(Some(value)),
            Err(e) => bail!(name, "is {v:?}: {e}"),
        },
        _ => Ok(None),
    }
}

impl RawSettings {
    /// The file (if any), then the environment over it.
    pub fn load(config: Option<&Path>) -> Result<RawSettings, SettingsError> {
        let file = |source: Box<dyn std::error::Error + Send + Sync>| SettingsError::File {
            path: config.unwrap_or(Path::new("")).to_path_buf(),
            source,
        };
        let mut raw = match config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| file(e.into()))?;
                toml::from_str(&text).map_err(|e| file(e.into()))?
            }
            None => RawSettings::default(),
        };
        overlay!(
            raw,
            amqp_url,
            policy,
            store,
            s3_endpoint,
            s3_region,
            s3_path_style,
            s3_access_key,
            s3_secret_key,
            s3_multipart_threshold,
            originals_bucket,
            renditions_bucket,
            link_secret,
            link_base,
            concurrency,
            http_addr,
            queue_prefix,
            queues,
            max_attempts,
            retry_base_ms,
            drain_timeout_s,
            storage_wait_s,
            max_link_ttl_s,
            log_format,
            video_concurrency,
            video_deadline_s,
            video_max_duration_s,
            store_lookups,
            worker_id,
            otlp_endpoint,
            video_max_source_bytes,
            temp_dir,
            memory_budget,
            publish_destinations,
            control_keys,
            policy_locations,
            engines,
            engine_jobs,
            print_profiles,
            forensic_keys
        );
        Ok(raw)
    }
}

impl Settings {
    /// The file (if any), then the environment, then defaults.
    pub fn load(config: Option<&Path>) -> Result<Settings, SettingsError> {
        Settings::validate(RawSettings::load(config)?)
    }

    pub fn validate(raw: RawSettings) -> Result<Settings, SettingsError> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let concurrency = raw.concurrency.unwrap_or(cores as u16);
        if concurrency == 0 {
            bail!("RENDITION_CONCURRENCY", "must be at least 1");
        }
        let http_addr = raw.http_addr.as_deref().unwrap_or("127.0.0.1:9464");
        let http_addr = http_addr
            .parse()
            .map_err(|e| invalid("RENDITION_HTTP_ADDR", format!("is {http_addr:?}: {e}")))?;
        let max_attempts = raw.max_attempts.unwrap_or(5);
        if !(1..=16).contains(&max_attempts) {
            bail!("RENDITION_MAX_ATTEMPTS", "must be 1 to 16, not {max_attempts}");
        }
        let base = Duration::from_millis(raw.retry_base_ms.unwrap_or(1000));
        let prefix = raw.queue_prefix.clone().unwrap_or_default();
        let video_concurrency = raw.video_concurrency.unwrap_or(1);
        if video_concurrency == 0 {
            bail!("RENDITION_VIDEO_CONCURRENCY", "must be at least 1");
        }
        let json_logs = match raw.log_format.as_deref().unwrap_or("text") {
            "text" => false,
            "json" => true,
            other => bail!("RENDITION_LOG_FORMAT", "must be text or json, not {other:?}"),
        };
        let store = store_setting(&raw)?;
        let amqp_url = raw
            .amqp_url
            .clone()
            .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
        let brokers = BrokerAddresses::parse(&amqp_url).map_err(|e| invalid("RENDITION_AMQP_URL", e))?;
        Ok(Settings {
            amqp_url,
            brokers,
            policy: raw.policy.clone().filter(|p| !p.trim().is_empty()),
            lookups: lookups(raw.store_lookups.as_deref(), &store)?,
            concurrency,
            http_addr,
            topology: Topology::new(&prefix, max_attempts, base),
            queues: queues(raw.queues.as_deref())?,
            drain_timeout: Duration::from_secs(raw.drain_timeout_s.unwrap_or(30)),
            storage_wait: raw.storage_wait_s.map_or(STORAGE_WAIT, Duration::from_secs),
            max_link_ttl_s: raw.max_link_ttl_s.unwrap_or(MAX_LINK_TTL_S).min(MAX_LINK_TTL_S),
            json_logs,
            video_concurrency,
            video_limits: video_limits(&raw)?,
            worker_id: raw
                .worker_id
                .clone()
                .filter(|w| !w.trim().is_empty())
                .unwrap_or_else(default_worker_id),
            otlp_endpoint: otlp_endpoint(raw.otlp_endpoint.as_deref())?,
            temp_dir: temp_dir(raw.temp_dir.as_deref())?,
            memory_budget: memory_budget(raw.memory_budget.as_deref())?,
            publish: publish_destinations(raw.publish_destinations.as_deref(), &store)?,
            control: control_plane(&raw)?,
            engine_jobs: engine_jobs(&raw)?,
            image_engines: image_engines(&raw)?,
            print_profiles: print::print_profiles(raw.print_profiles.as_deref())?,
            forensic: forensic::forensic_keys(raw.forensic_keys.as_deref(), &store)?,
            store,
        })
    }

    /// The policy to load; a command that decides anything stops here
    /// without one rather than fall back on a sample.
    pub fn policy(&self) -> Result<&str, SettingsError> {
        self.policy.as_deref().ok_or_else(|| {
            invalid(
                "RENDITION_POLICY",
                "is not set: name the policy file (or s3://bucket/key) with RENDITION_POLICY, `policy` in the \
                 --config file, or --policy",
            )
        })
    }

    /// What the pipeline is built from.
    pub fn pipeline_config(&self) -> PipelineConfig {
        PipelineConfig {
            max_link_ttl_s: self.max_link_ttl_s,
            video_threads: usize::from(self.video_concurrency),
            video_limits: self.video_limits,
            lookups: self.lookups,
            temp_dir: self.temp_dir.clone(),
            memory_budget: self.memory_budget,
            publish: self.publish.clone(),
            print_profiles: self.print_profiles.clone(),
            forensic_key: self.forensic.marking().cloned(),
            control: self.control.clone(),
            engines: self.image_engines.then(|| self.engine_settings("rendition-engine")),
            ..PipelineConfig::with_video(VideoEngines::Processes(EngineSettings {
                // One job each: a transcode takes minutes, a start
                // milliseconds, and no engine sees two jobs' files.
                jobs_per_engine: 1,
                // Without Landlock only when the operator chose image
                // renders in this process (a kernel without it) and the
                // engine runs as another user than the worker.
                strict: self.image_engines || crate::rendition::sandbox_id().is_none(),
                ..self.engine_settings("rendition-video-engine")
            }))
        }
    }

    /// Engine processes run `program` from beside this one, with scratch
    /// space in the temporary directory and as many render threads as this
    /// process's pool.
    fn engine_settings(&self, program: &str) -> EngineSettings {
        let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("rendition"));
        EngineSettings {
            program: me.with_file_name(program),
            scratch: self.temp_dir.clone().unwrap_or_else(std::env::temp_dir),
            threads: crate::pipeline::default_render_threads(),
            jobs_per_engine: self.engine_jobs,
            strict: true,
        }
    }

    /// What the consume loop is built from.
    pub fn worker_config(&self) -> WorkerConfig {
        WorkerConfig {
            brokers: self.brokers.clone(),
            queues: self.queues.clone(),
            concurrency: self.concurrency,
            drain_timeout: self.drain_timeout,
        }
    }

    /// One line per setting for the start-up log; secrets are redacted.
    pub fn describe(&self) -> String {
        let amqp = self.brokers.redacted();
        format!(
            "amqp_url={amqp} policy={:?} store={:?} concurrency={} http_addr={} queue_prefix={:?} queues={:?} \
             max_attempts={} retry_delays={:?} drain_timeout={:?} storage_wait={:?} max_link_ttl_s={} video_concurrency={} \
             video_deadline={:?} video_max_duration_s={} store_lookups={:?} worker_id={:?} otlp_endpoint={:?} control_keys={:?} \
             policy_locations={:?} {}",
            self.policy,
            self.store,
            self.concurrency,
            self.http_addr,
            self.topology.prefix,
            self.queues,
            self.topology.max_attempts(),
            self.topology.retry_delays,
            self.drain_timeout,
            self.storage_wait,
            self.max_link_ttl_s,
            self.video_concurrency,
            self.video_limits.deadline,
            self.video_limits.max_duration_s,
            self.lookups,
            self.worker_id,
            self.otlp_endpoint,
            self.control.keys.ids().collect::<Vec<_>>(),
            self.control.locations.as_ref().map(|l| l.describe()),
            MemoryBudget::new(self.memory_budget).describe()
        )
    }
}

/// The control keys and the policy locations, checked.
fn control_plane(raw: &RawSettings) -> Result<ControlPlane, SettingsError> {
    let keys = ControlKeys::parse(raw.control_keys.as_deref().unwrap_or(""))
        .map_err(|e| invalid("RENDITION_CONTROL_KEYS", e))?;
    let locations = raw
        .policy_locations
        .as_deref()
        .filter(|l| !l.trim().is_empty())
        .map(PolicyLocations::parse)
        .transpose()
        .map_err(|e| invalid("RENDITION_POLICY_LOCATIONS", e))?;
    Ok(ControlPlane { keys, locations })
}

/// The budget as given, or three quarters of the machine's (or the
/// container's) memory. Below 128 MiB no image would fit beside the
/// process base and the originals cache.
fn engine_jobs(raw: &RawSettings) -> Result<u32, SettingsError> {
    let jobs = raw.engine_jobs.unwrap_or(DEFAULT_ENGINE_JOBS);
    if jobs == 0 {
        bail!("RENDITION_ENGINE_JOBS", "must be at least 1");
    }
    Ok(jobs)
}

fn image_engines(raw: &RawSettings) -> Result<bool, SettingsError> {
    match raw.engines.as_deref().unwrap_or("processes") {
        "processes" => Ok(true),
        "in-process" => Ok(false),
        other => bail!("RENDITION_ENGINES", "must be processes or in-process, not {other:?}"),
    }
}

/// An engine process is replaced after this many jobs.
const DEFAULT_ENGINE_JOBS: u32 = 1000;

fn memory_budget(text: Option<&str>) -> Result<u64, SettingsError> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(MemoryBudget::for_this_machine().total());
    };
    match crate::budget::parse_bytes(text) {
        Some(bytes) if bytes >= 128 << 20 => Ok(bytes),
        Some(_) => bail!("RENDITION_MEMORY_BUDGET", "must be at least 128M, not {text:?}"),
        None => bail!(
            "RENDITION_MEMORY_BUDGET",
            "must be bytes, or a number with K, M, G or T, not {text:?}"
        ),
    }
}

/// A temporary directory must be there (and absolute): found missing at
/// the first video job, every job would fail.
fn temp_dir(dir: Option<&Path>) -> Result<Option<PathBuf>, SettingsError> {
    let Some(dir) = dir else { return Ok(None) };
    if !dir.is_absolute() || !dir.is_dir() {
        bail!(
            "RENDITION_TEMP_DIR",
            "is {dir:?}: must be an existing directory, named by an absolute path"
        );
    }
    Ok(Some(dir.to_path_buf()))
}

fn video_limits(raw: &RawSettings) -> Result<VideoLimits, SettingsError> {
    let defaults = VideoLimits::default();
    let deadline = raw.video_deadline_s.map_or(defaults.deadline, Duration::from_secs);
    if deadline.is_zero() {
        bail!("RENDITION_VIDEO_DEADLINE_S", "must be at least 1");
    }
    Ok(VideoLimits {
        deadline,
        max_duration_s: raw.video_max_duration_s.map_or(defaults.max_duration_s, |s| s as f64),
        max_source_bytes: match raw.video_max_source_bytes {
            Some(0) => bail!("RENDITION_VIDEO_MAX_SOURCE_BYTES", "must be at least 1"),
            other => other.unwrap_or(defaults.max_source_bytes),
        },
        ..defaults
    })
}

/// `always` on the filesystem (a lookup is a system call), `on_repeat` on
/// S3 (a lookup is a round trip); see [`Lookups`].
fn lookups(setting: Option<&str>, store: &StoreSetting) -> Result<Lookups, SettingsError> {
    match (setting, store) {
        (Some("always"), _) | (None, StoreSetting::Fs { .. }) => Ok(Lookups::Always),
        (Some("on_repeat"), _) | (None, StoreSetting::S3 { .. }) => Ok(Lookups::OnRepeat),
        (Some(other), _) => bail!("RENDITION_STORE_LOOKUPS", "must be always or on_repeat, not {other:?}"),
    }
}

fn queues(list: Option<&str>) -> Result<Vec<JobQueue>, SettingsError> {
    let Some(list) = list else {
        return Ok(JobQueue::ALL.to_vec());
    };
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match JobQueue::parse(name) {
            Some(q) => out.push(q),
            None => bail!(
                "RENDITION_QUEUES",
                "names an unknown queue {name:?} (image, video, publish)"
            ),
        }
    }
    if out.is_empty() {
        bail!("RENDITION_QUEUES", "names no queue");
    }
    Ok(out)
}

/// `amqp://user:***@host…`
/// An http(s) URL, or unset (empty is unset).
fn otlp_endpoint(raw: Option<&str>) -> Result<Option<String>, SettingsError> {
    let Some(url) = raw.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.parse::<axum::http::Uri>().is_err() {
        bail!(
            "RENDITION_OTLP_ENDPOINT",
            "is an http:// or https:// URL (OTLP over HTTP), not {url:?}"
        );
    }
    Ok(Some(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_and_secrets() {
        let raw = RawSettings {
            store: Some("s3".into()),
            s3_access_key: Some("AK".into()),
            s3_secret_key: Some("sekrit".into()),
            amqp_url: Some("amqp://u:pw@h/%2f".into()),
            ..RawSettings::default()
        };
        let text = Settings::validate(raw).unwrap().describe();
        assert!(!text.contains("sekrit") && !text.contains("pw@"), "{text}");
    }

    #[test]
    fn s3_without_keys_leaves_credentials_and_region_to_the_aws_chain() {
        let raw = RawSettings {
            store: Some("s3".into()),
            ..RawSettings::default()
        };
        let Settings {
            store: StoreSetting::S3 { config, .. },
            ..
        } = Settings::validate(raw).unwrap()
        else {
            panic!("an S3 store")
        };
        assert_eq!((config.keys, config.region), (None, None));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<RawSettings>("amqp_ur = 'x'").is_err());
        let bad = |raw: RawSettings| Settings::validate(raw).is_err();
        assert!(bad(RawSettings {
            queues: Some("image,vidoe".into()),
            ..RawSettings::default()
        }));
        assert!(bad(RawSettings {
            concurrency: Some(0),
            ..RawSettings::default()
        }));
        assert!(bad(RawSettings {
            log_format: Some("xml".into()),
            ..RawSettings::default()
        }));
        assert!(bad(RawSettings {
            store: Some("s3".into()),
            s3_access_key: Some("AK".into()),
            ..RawSettings::default()
        }));
        assert!(bad(RawSettings {
            video_max_source_bytes: Some(0),
            ..RawSettings::default()
        }));
        for dir in ["relative/tmp", "/no/such/dir"] {
            assert!(bad(RawSettings {
                temp_dir: Some(dir.into()),
                ..RawSettings::default()
            }));
        }
        let temp = std::env::temp_dir();
        let ok = Settings::validate(RawSettings {
            temp_dir: Some(temp.clone()),
            video_max_source_bytes: Some(1 << 30),
            ..RawSettings::default()
        });
        let ok = ok.unwrap();
        assert_eq!((ok.temp_dir, ok.video_limits.max_source_bytes), (Some(temp), 1 << 30));
        let file: RawSettings = toml::from_str("queues = 'video'\nmax_attempts = 3\n").unwrap();
        let settings = Settings::validate(file).unwrap();
        assert_eq!(settings.queues, [JobQueue::Video]);
        assert_eq!(settings.topology.max_attempts(), 3);
    }
}
