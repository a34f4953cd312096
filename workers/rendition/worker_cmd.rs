//! `rendition worker`: load settings, build the context, run, drain on
//! SIGTERM (or Ctrl-C), exit 0.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rendition::ops::Metrics;
use rendition::ops::http::{BrokerFlag, Readiness};
use rendition::pipeline::Pipeline;
use rendition::policy::Policy;
use rendition::revocation::Revoked;
use rendition::settings::{Settings, StoreSetting, link_signer};
use rendition::storage::Store;
use rendition::storage::fs::FsStore;
use rendition::storage::s3::S3Store;
use rendition::worker::Handler;
use rendition::worker::policy_updates::{UpdateError, load_policy, sweep_all};
use tokio::signal::unix::{SignalKind, signal};

/// Consume the broker's job queues (docs/contract.md#broker-topology) with the settings of §6.
#[derive(clap::Args)]
pub struct WorkerArgs {
    /// A TOML file with the settings; RENDITION_* variables win over it.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let settings = Settings::load(args.config.as_deref())?;
    init_logs(settings.json_logs);
    tracing::info!(settings = %settings.describe(), "starting");
    settings.policy()?;
    match settings.store.clone() {
        StoreSetting::Fs {
            dir,
            originals,
            link_secret,
            link_base,
        } => {
            std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
            let signer = link_signer(&dir, &link_base, link_secret.as_deref())?;
            let originals = FsStore::new(&originals, None);
            serve(settings, originals, FsStore::new(&dir, Some(signer))).await
        }
        StoreSetting::S3 {
            config,
            originals,
            renditions,
        } => {
            tracing::info!(region = ?config.region, credentials = config.credentials(), "S3");
            let originals = S3Store::connect(&config, &originals).await?;
            let renditions = originals.bucket(&renditions)?;
            if let Err(e) = originals.check_credentials().await {
                tracing::error!(error = %e, "S3 credentials are not available yet; waiting for them with the stores");
            }
            if let Err(e) = renditions.ensure_bucket().await {
                tracing::warn!(error = %e, "could not check or create the renditions bucket");
            }
            serve(settings, originals, renditions).await
        }
    }
}

/// Builds the context from the settings and runs until SIGTERM has drained it.
async fn serve<S: Store + Clone + 'static>(settings: Settings, originals: S, renditions: S) -> anyhow::Result<()> {
    let source = settings.policy()?;
    let Some((policy, swept)) = until_stores_answer(source, &originals, &renditions).await? else {
        return Ok(());
    };
    tracing::info!(
        version = policy.version(),
        revoked_shares = swept.len(),
        "policy loaded"
    );
    if settings.control.keys.is_empty() {
        tracing::warn!(
            "RENDITION_CONTROL_KEYS is not set: every policy update and revoke will be refused \
             (docs/control-plane.md)"
        );
    }
    // Flushes the spans still batched when the worker stops.
    let _traces = match &settings.otlp_endpoint {
        Some(endpoint) => Some(
            rendition::ops::trace::Traces::export(endpoint, "rendition-worker")
                .map_err(|e| anyhow::anyhow!("RENDITION_OTLP_ENDPOINT: {e}"))?,
        ),
        None => None,
    };
    let metrics = Arc::new(Metrics::default());
    metrics.set_policy_version(policy.version());
    let pipeline = Pipeline::new(originals, renditions.clone(), settings.pipeline_config());
    let handler = Handler::new(pipeline, policy, settings.topology.clone(), metrics.clone())
        .with_storage_wait(settings.storage_wait)
        .with_worker_id(&settings.worker_id);
    let handler = Arc::new(handler);
    let connected = Arc::new(BrokerFlag::default());
    let readiness = Arc::new(Ready {
        connected: connected.clone(),
        store: renditions,
        storage: handler.storage.subscribe(),
    });
    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("binding {}", settings.http_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "health and metrics");
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(rendition::ops::http::run(listener, metrics, readiness, async {
        let _ = http_stopped.await;
    }));
    rendition::worker::run(settings.worker_config(), handler, connected, terminated()).await;
    let _ = stop_http.send(());
    let _ = http.await;
    tracing::info!("stopped");
    Ok(())
}

/// Loads the policy and sweeps revoked shares. A worker (re)started during
/// a storage outage waits for the stores instead of exiting; a bad policy
/// stops it at once. `None` when told to stop while waiting.
async fn until_stores_answer<S: Store>(
    source: &str,
    originals: &S,
    renditions: &S,
) -> anyhow::Result<Option<(Policy, Vec<Revoked>)>> {
    let mut backoff = Duration::from_millis(500);
    let mut stop = std::pin::pin!(terminated());
    loop {
        let loaded = match load_policy(source, originals).await {
            Ok(policy) => sweep_all(&policy, renditions)
                .await
                .map(|swept| (policy, swept))
                .map_err(Into::into),
            Err(e) => Err(e),
        };
        match loaded {
            Ok(loaded) => return Ok(Some(loaded)),
            Err(e @ UpdateError::Policy(_)) => {
                return Err(e).with_context(|| format!("loading the policy from {source}"));
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "the stores do not answer yet")
            }
        }
        tokio::select! {
            _ = &mut stop => return Ok(None),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// SIGTERM (what orchestrators send) or SIGINT.
async fn terminated() {
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
    }
}

struct Ready<S> {
    connected: Arc<BrokerFlag>,
    store: S,
    /// Down while a storage outage pauses the worker.
    storage: tokio::sync::watch::Receiver<bool>,
}

impl<S: Store + 'static> Readiness for Ready<S> {
    fn broker_node(&self) -> Option<String> {
        self.connected.get()
    }
    async fn store_reachable(&self) -> Result<(), String> {
        if !*self.storage.borrow() {
            return Err("unreachable: no new jobs are taken until it answers".into());
        }
        self.store.ready().await.map_err(|e| e.to_string())
    }
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws=warn,lapin=warn,hyper=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
}
