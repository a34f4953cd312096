//! `rendition audit`: reads the audit trail back from the renditions store
//! (filesystem or S3, as the settings say), one record per line.

use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use rendition::audit::{self, AuditQuery, AuditRecord};
use rendition::settings::{RawSettings, Settings, StoreSetting};
use rendition::storage::fs::FsStore;
use rendition::storage::s3::S3Store;

/// Who received what: the audit records of answered jobs, oldest first.
#[derive(clap::Args)]
pub struct AuditArgs {
    /// A user id, share id, share recipient's e-mail, collection (password
    /// holders) or `anonymous`.
    #[arg(long)]
    principal: Option<String>,
    /// An asset id.
    #[arg(long)]
    asset: Option<String>,
    /// A job id.
    #[arg(long)]
    job: Option<String>,
    /// From this time on: RFC 3339 (`2026-12-01T08:00:00Z`) or a day (`2026-12-01`).
    #[arg(long, value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Before this time (same forms; a day means its start).
    #[arg(long, value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
    /// The renditions store: fs:DIR or DIR (default: RENDITION_STORE, else fs:./rendition-data).
    #[arg(long)]
    store: Option<String>,
    /// A TOML file with the settings; RENDITION_* variables win over it, flags over both.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let mut raw = RawSettings::load(args.config.as_deref())?;
    raw.store = args.store.or(raw.store);
    let settings = Settings::validate(raw)?;
    let query = AuditQuery {
        principal: args.principal,
        asset: args.asset,
        job_id: args.job,
        since: args.since,
        until: args.until,
    };
    for record in trail(&settings.store, &query).await? {
        println!("{}", serde_json::to_string(&record)?);
    }
    Ok(())
}

/// The records `query` matches in the store the settings name.
pub async fn trail(store: &StoreSetting, query: &AuditQuery) -> anyhow::Result<Vec<AuditRecord>> {
    let records = match store {
        StoreSetting::Fs { dir, .. } => {
            if !dir.is_dir() {
                bail!("no store at {}: nothing was answered there yet", dir.display());
            }
            audit::read(&FsStore::new(dir, None), query).await
        }
        StoreSetting::S3 { config, renditions, .. } => {
            audit::read(&S3Store::connect(config, renditions).await?, query).await
        }
    };
    records.context("reading the audit trail")
}

pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = text.parse::<DateTime<Utc>>() {
        return Ok(time);
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is neither an RFC 3339 time nor a YYYY-MM-DD day"))?;
    Ok(day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
}
