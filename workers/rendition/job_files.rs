//! Job files named on the command line.

use std::path::PathBuf;

use anyhow::{Context, bail};

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
