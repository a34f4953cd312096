//! Operator settings (contract §6): a TOML file (`--config`) overlaid by
//! `RENDITION_*` environment variables, validated once, logged redacted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use rendition::queue::{JobQueue, Topology};
use rendition::storage::s3::{DEFAULT_MULTIPART_THRESHOLD, S3Config};
use rendition::video::VideoLimits;
use serde::Deserialize;

/// The file's keys are the variables' names without `RENDITION_`, lower case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    amqp_url: Option<String>,
    policy: Option<String>,
    store: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_path_style: Option<bool>,
    s3_access_key: Option<String>,
    s3_secret_key: Option<String>,
    s3_multipart_threshold: Option<usize>,
    originals_bucket: Option<String>,
    renditions_bucket: Option<String>,
    link_secret: Option<String>,
    link_base: Option<String>,
    concurrency: Option<u16>,
    http_addr: Option<String>,
    queue_prefix: Option<String>,
    queues: Option<String>,
    max_attempts: Option<u32>,
    retry_base_ms: Option<u64>,
    drain_timeout_s: Option<u64>,
    max_link_ttl_s: Option<u64>,
    log_format: Option<String>,
    video_concurrency: Option<u16>,
    video_deadline_s: Option<u64>,
    video_max_duration_s: Option<u64>,
}

#[derive(Debug, Clone)]
pub enum StoreSetting {
    Fs {
        dir: PathBuf,
        link_secret: Option<String>,
        link_base: String,
    },
    S3 {
        config: S3Config,
        originals: String,
        renditions: String,
    },
}

/// Everything the worker, `enqueue` and `dlq` need, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub amqp_url: String,
    pub policy: String,
    pub store: StoreSetting,
    pub concurrency: u16,
    pub http_addr: SocketAddr,
    pub topology: Topology,
    pub queues: Vec<JobQueue>,
    pub drain_timeout: Duration,
    pub max_link_ttl_s: u64,
    pub json_logs: bool,
    /// Transcodes at once (the video pool's threads).
    pub video_concurrency: u16,
    pub video_limits: VideoLimits,
}

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

fn env_value<T: FromStr>(name: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse() {
            Ok(value) => Ok(Some(value)),
            Err(e) => bail!("{name}={v:?}: {e}"),
        },
        _ => Ok(None),
    }
}

impl Settings {
    /// The file (if any), then the environment, then defaults.
    pub fn load(config: Option<&Path>) -> anyhow::Result<Settings> {
        let mut raw = match config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("{}", path.display()))?
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
            max_link_ttl_s,
            log_format,
            video_concurrency,
            video_deadline_s,
            video_max_duration_s
        );
        Settings::validate(raw)
    }

    fn validate(raw: RawSettings) -> anyhow::Result<Settings> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let concurrency = raw.concurrency.unwrap_or(cores as u16);
        if concurrency == 0 {
            bail!("RENDITION_CONCURRENCY must be at least 1");
        }
        let http_addr = raw.http_addr.as_deref().unwrap_or("127.0.0.1:9464");
        let http_addr = http_addr
            .parse()
            .with_context(|| format!("RENDITION_HTTP_ADDR={http_addr:?}"))?;
        let max_attempts = raw.max_attempts.unwrap_or(5);
        if !(1..=16).contains(&max_attempts) {
            bail!("RENDITION_MAX_ATTEMPTS must be 1 to 16, not {max_attempts}");
        }
        let base = Duration::from_millis(raw.retry_base_ms.unwrap_or(1000));
        let prefix = raw.queue_prefix.clone().unwrap_or_default();
        let video_limits = video_limits(&raw)?;
        let video_concurrency = raw.video_concurrency.unwrap_or(1);
        if video_concurrency == 0 {
            bail!("RENDITION_VIDEO_CONCURRENCY must be at least 1");
        }
        let json_logs = match raw.log_format.as_deref().unwrap_or("text") {
            "text" => false,
            "json" => true,
            other => bail!("RENDITION_LOG_FORMAT must be text or json, not {other:?}"),
        };
        Ok(Settings {
            amqp_url: raw
                .amqp_url
                .clone()
                .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
            policy: raw.policy.clone().unwrap_or_else(|| "fixtures/policy.yaml".into()),
            store: store_setting(&raw)?,
            concurrency,
            http_addr,
            topology: Topology::new(&prefix, max_attempts, base),
            queues: queues(raw.queues.as_deref())?,
            drain_timeout: Duration::from_secs(raw.drain_timeout_s.unwrap_or(30)),
            max_link_ttl_s: raw.max_link_ttl_s.unwrap_or(rendition::pipeline::MAX_LINK_TTL_S),
            json_logs,
            video_concurrency,
            video_limits,
        })
    }

    /// One line per setting for the start-up log; secrets are redacted.
    pub fn describe(&self) -> String {
        let amqp = redact_url(&self.amqp_url);
        format!(
            "amqp_url={amqp} policy={} store={:?} concurrency={} http_addr={} queue_prefix={:?} queues={:?} \
             max_attempts={} retry_delays={:?} drain_timeout={:?} max_link_ttl_s={} video_concurrency={} \
             video_deadline={:?} video_max_duration_s={}",
            self.policy,
            self.store,
            self.concurrency,
            self.http_addr,
            self.topology.prefix,
            self.queues,
            self.topology.max_attempts(),
            self.topology.retry_delays,
            self.drain_timeout,
            self.max_link_ttl_s,
            self.video_concurrency,
            self.video_limits.deadline,
            self.video_limits.max_duration_s
        )
    }
}

fn video_limits(raw: &RawSettings) -> anyhow::Result<VideoLimits> {
    let defaults = VideoLimits::default();
    let deadline = raw.video_deadline_s.map_or(defaults.deadline, Duration::from_secs);
    if deadline.is_zero() {
        bail!("RENDITION_VIDEO_DEADLINE_S must be at least 1");
    }
    Ok(VideoLimits {
        deadline,
        max_duration_s: raw.video_max_duration_s.map_or(defaults.max_duration_s, |s| s as f64),
        ..defaults
    })
}

fn store_setting(raw: &RawSettings) -> anyhow::Result<StoreSetting> {
    let store = raw.store.as_deref().unwrap_or("fs:./rendition-data");
    if store != "s3" {
        return Ok(StoreSetting::Fs {
            dir: crate::settings::store_dir(store)?,
            link_secret: raw.link_secret.clone(),
            link_base: raw.link_base.clone().unwrap_or_else(|| "http://127.0.0.1:8080".into()),
        });
    }
    // Explicit settings, else the standard AWS variables.
    let access_key = raw
        .s3_access_key
        .clone()
        .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok());
    let secret_key = raw
        .s3_secret_key
        .clone()
        .or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").ok());
    let (Some(access_key), Some(secret_key)) = (access_key, secret_key) else {
        bail!(
            "RENDITION_STORE=s3 needs RENDITION_S3_ACCESS_KEY and RENDITION_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        );
    };
    let endpoint = raw.s3_endpoint.clone();
    let config = S3Config {
        path_style: raw.s3_path_style.unwrap_or(endpoint.is_some()),
        endpoint,
        region: raw.s3_region.clone().unwrap_or_else(|| "us-east-1".into()),
        access_key,
        secret_key,
        session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
        multipart_threshold: raw.s3_multipart_threshold.unwrap_or(DEFAULT_MULTIPART_THRESHOLD),
    };
    Ok(StoreSetting::S3 {
        config,
        originals: raw.originals_bucket.clone().unwrap_or_else(|| "originals".into()),
        renditions: raw.renditions_bucket.clone().unwrap_or_else(|| "renditions".into()),
    })
}

fn queues(list: Option<&str>) -> anyhow::Result<Vec<JobQueue>> {
    let Some(list) = list else {
        return Ok(JobQueue::ALL.to_vec());
    };
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match JobQueue::parse(name) {
            Some(q) => out.push(q),
            None => bail!("RENDITION_QUEUES: unknown queue {name:?} (image, video, publish)"),
        }
    }
    if out.is_empty() {
        bail!("RENDITION_QUEUES names no queue");
    }
    Ok(out)
}

/// `amqp://user:***@host…`
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_and_secrets() {
        assert_eq!(redact_url("amqp://guest:pw@h:5672/%2f"), "amqp://guest:***@h:5672/%2f");
        assert_eq!(redact_url("amqp://h:5672"), "amqp://h:5672");
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
        let file: RawSettings = toml::from_str("queues = 'video'\nmax_attempts = 3\n").unwrap();
        let settings = Settings::validate(file).unwrap();
        assert_eq!(settings.queues, [JobQueue::Video]);
        assert_eq!(settings.topology.max_attempts(), 3);
    }
}
