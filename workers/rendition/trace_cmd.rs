//! `rendition trace FILE`: who was this picture delivered to? Finds the
//! forensic mark (docs/forensic.md#tracing), checks it under every
//! configured key, and prints the deliveries the audit trail holds for its
//! delivery id; or says plainly that no mark was found.

use std::path::PathBuf;

use anyhow::Context;
use rendition::audit::{AuditQuery, AuditRecord};
use rendition::forensic::{self, Traced};
use rendition::job::Principal;
use rendition::settings::{RawSettings, Settings};

use crate::audit_cmd::trail;
use crate::exit;

/// The largest suspect read, per side and in bytes of decoded pixels: a
/// file from anywhere is hostile, and reading a mark takes about 24 bytes
/// a pixel (128 MiB of RGB is 44 MP, twice a 6000 px print preset).
const MAX_SIDE: u32 = 20_000;
const MAX_ALLOC: u64 = 128 << 20;

/// Finds a picture's forensic mark and the delivery it names.
#[derive(clap::Args)]
pub struct TraceArgs {
    /// The suspect image (JPEG, PNG, WebP, TIFF, GIF, BMP).
    file: PathBuf,
    /// The asset it shows, when known: only its deliveries are searched
    /// and their sizes tried to undo scaling.
    #[arg(long)]
    asset: Option<String>,
    /// Print one JSON object instead of lines of text.
    #[arg(long)]
    json: bool,
    /// The renditions store: fs:DIR or DIR (default: RENDITION_STORE, else fs:./rendition-data).
    #[arg(long)]
    store: Option<String>,
    /// A TOML file with the settings; RENDITION_* variables win over it, flags over both.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn main(args: TraceArgs) -> u8 {
    let json = args.json;
    let mut found = None;
    let code = crate::on_runtime(async {
        found = Some(run(args).await?);
        Ok(())
    });
    let Some((traced, records)) = found else { return code };
    print(traced.as_ref(), &records, json);
    match (&traced, records.is_empty()) {
        (Some(_), false) => exit::OK,
        _ => exit::NOT_TRACED,
    }
}

async fn run(args: TraceArgs) -> anyhow::Result<(Option<Traced>, Vec<AuditRecord>)> {
    let mut raw = RawSettings::load(args.config.as_deref())?;
    raw.store = args.store.or(raw.store);
    let settings = Settings::validate(raw)?;
    anyhow::ensure!(
        !settings.forensic.0.is_empty(),
        "no forensic key: set RENDITION_FORENSIC_KEYS to the keys the marks were made with"
    );
    let query = AuditQuery {
        asset: args.asset,
        ..AuditQuery::default()
    };
    let marked: Vec<AuditRecord> = trail(&settings.store, &query)
        .await?
        .into_iter()
        .filter(|r| r.renditions.iter().any(|h| h.forensic_mark.is_some()))
        .collect();
    let mut sizes: Vec<(u32, u32)> = marked
        .iter()
        .flat_map(|r| &r.renditions)
        .filter(|h| h.forensic_mark.is_some())
        .filter_map(|h| Some((h.width?, h.height?)))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let image = suspect(&args.file)?;
    let keys = settings.forensic.clone();
    let traced = tokio::task::spawn_blocking(move || forensic::trace(&image, &keys, &sizes)).await?;
    let records = match &traced {
        Some(t) => marked
            .into_iter()
            .filter(|r| {
                r.renditions
                    .iter()
                    .any(|h| h.forensic_mark.as_ref() == Some(&t.delivery_id))
            })
            .collect(),
        None => Vec::new(),
    };
    Ok((traced, records))
}

/// The suspect's pixels, read within limits.
fn suspect(path: &std::path::Path) -> anyhow::Result<image::DynamicImage> {
    let mut reader = image::ImageReader::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    reader.decode().with_context(|| format!("reading {}", path.display()))
}

fn print(traced: Option<&Traced>, records: &[AuditRecord], json: bool) {
    if json {
        let deliveries: Vec<serde_json::Value> = records.iter().map(delivery).collect();
        let out = serde_json::json!({
            "found": traced.is_some(),
            "delivery_id": traced.map(|t| &t.delivery_id),
            "key": traced.map(|t| t.key),
            "rescaled_to": traced.and_then(|t| t.rescaled_to),
            "pilot_z": traced.map(|t| t.pilot_z),
            "deliveries": deliveries,
        });
        println!("{out}");
        return;
    }
    let Some(t) = traced else {
        println!("no forensic mark found: no configured key verifies a mark in this picture");
        return;
    };
    let how = t
        .rescaled_to
        .map_or(String::new(), |(w, h)| format!(", scaled back to {w}×{h}"));
    println!(
        "forensic mark {} (key {}, pilot {:.1} σ{how})",
        t.delivery_id,
        t.key + 1,
        t.pilot_z
    );
    if records.is_empty() {
        println!("the audit trail holds no delivery with this mark (another store, or records removed?)");
    }
    for record in records {
        let d = delivery(record);
        println!(
            "delivered to {} · asset {} · job {} · {} · {} · policy version {}",
            d["recipient"].as_str().unwrap_or("?"),
            d["asset"].as_str().unwrap_or("?"),
            d["job_id"].as_str().unwrap_or("?"),
            d["time"].as_str().unwrap_or("?"),
            d["renditions"],
            d["policy_version"]
        );
    }
}

/// What a trace says of one delivery.
fn delivery(r: &AuditRecord) -> serde_json::Value {
    let recipient = match &r.principal {
        Some(Principal::User(id)) => format!("user {id}"),
        Some(Principal::Share { share, email }) => format!("{email} (share {share})"),
        Some(Principal::Password { collection }) => format!("a password holder of {collection}"),
        Some(Principal::Anonymous) => "anonymous".into(),
        None => "?".into(),
    };
    let renditions: Vec<String> = r
        .renditions
        .iter()
        .filter(|h| h.forensic_mark.is_some())
        .map(|h| format!("{}×{} {}", h.width.unwrap_or(0), h.height.unwrap_or(0), h.key))
        .collect();
    serde_json::json!({
        "recipient": recipient,
        "principal": r.principal,
        "asset": r.asset,
        "job_id": r.job_id,
        "time": r.time.to_rfc3339(),
        "purpose": r.purpose,
        "renditions": renditions.join(", "),
        "policy_version": r.policy_version,
    })
}
