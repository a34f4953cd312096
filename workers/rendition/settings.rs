//! Raw settings (arguments and environment) turned into validated ones
//! for the embedded default: a filesystem store and local signed links.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rendition::storage::link::LinkSigner;

/// `fs:DIR` or a plain directory; `s3` is for the worker.
pub fn store_dir(store: &str) -> anyhow::Result<PathBuf> {
    match store.strip_prefix("fs:") {
        Some(dir) => Ok(PathBuf::from(dir)),
        None if store == "s3" => {
            bail!("this command runs on the filesystem store (fs:DIR); RENDITION_STORE=s3 is for `rendition worker`")
        }
        None => Ok(PathBuf::from(store)),
    }
}

/// The link secret: the configured one (`RENDITION_LINK_SECRET`), else the
/// one kept in the store (`DIR/.link-secret`), else a new one saved there,
/// so that `render` and a later `serve` over the same store agree.
pub fn link_signer(dir: &Path, base_url: &str, configured: Option<String>) -> anyhow::Result<LinkSigner> {
    let configured = configured.or_else(|| std::env::var("RENDITION_LINK_SECRET").ok());
    if let Some(secret) = configured.filter(|s| !s.is_empty()) {
        return Ok(LinkSigner::new(secret, base_url));
    }
    let path = dir.join(".link-secret");
    if let Ok(secret) = std::fs::read_to_string(&path) {
        return Ok(LinkSigner::new(secret.trim(), base_url));
    }
    let secret = hex::encode(rand::random::<[u8; 32]>());
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_private(&path, &secret).with_context(|| format!("saving {}", path.display()))?;
    eprintln!(
        "warning: RENDITION_LINK_SECRET is not set; generated one and kept it in {}",
        path.display()
    );
    Ok(LinkSigner::new(secret, base_url))
}

fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(secret.as_bytes())
}

/// Jobs in execution order: files as given, directories' `*.json` sorted.
pub fn job_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            found.sort();
            out.extend(found);
        } else if path.exists() {
            out.push(path.clone());
        } else {
            bail!("{}: no such job file or directory", path.display());
        }
    }
    Ok(out)
}
