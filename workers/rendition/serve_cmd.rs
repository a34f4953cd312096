//! `rendition serve`: the signed-link server for the filesystem store.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use rendition::serve::ServeLimits;
use rendition::settings::{RawSettings, Settings, StoreSetting, link_signer};
use rendition::storage::fs::FsStore;

/// Serve signed local links (403 when tampered or expired).
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The store: fs:DIR or DIR (default: RENDITION_STORE, else fs:./rendition-data).
    #[arg(long)]
    store: Option<String>,
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The base of the links (default: RENDITION_LINK_BASE).
    #[arg(long)]
    link_base: Option<String>,
    /// A TOML file with the settings; RENDITION_* variables win over it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Connections served at once; more wait in the listen backlog until one ends.
    #[arg(long, default_value_t = ServeLimits::default().max_connections)]
    max_connections: usize,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut raw = RawSettings::load(args.config.as_deref())?;
    raw.store = args.store.or(raw.store);
    raw.link_base = args.link_base.or(raw.link_base);
    let settings = Settings::validate(raw)?;
    let StoreSetting::Fs {
        dir,
        link_secret,
        link_base,
        ..
    } = &settings.store
    else {
        bail!("serve is for the filesystem store (fs:DIR); S3 serves its own presigned links");
    };
    let signer = link_signer(dir, link_base, link_secret.as_deref())?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    eprintln!(
        "serving signed links for {} on http://{}",
        dir.display(),
        listener.local_addr()?
    );
    let limits = ServeLimits {
        max_connections: args.max_connections,
        ..ServeLimits::default()
    };
    rendition::serve::run_with_limits(listener, FsStore::new(dir, None), signer, limits, shutdown()).await?;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
