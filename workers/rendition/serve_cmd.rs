//! `rendition serve`: the signed-link server for the filesystem store.

use std::net::SocketAddr;

use anyhow::Context;
use rendition::storage::fs::FsStore;

use crate::settings;

pub async fn serve(store: &str, addr: SocketAddr, link_base: &str) -> anyhow::Result<()> {
    let dir = settings::store_dir(store)?;
    let signer = settings::link_signer(&dir, link_base, None)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    eprintln!(
        "serving signed links for {} on http://{}",
        dir.display(),
        listener.local_addr()?
    );
    rendition::serve::run(listener, FsStore::new(dir, None), signer, shutdown()).await?;
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
