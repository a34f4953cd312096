//! `rendition policy check` and `rendition policy explain`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rendition::job::Job;
use rendition::policy::document::NodeKind;
use rendition::policy::{Policy, Query, resolve};
use rendition::settings::Settings;

use crate::exit;

/// Check a policy, or explain a decision.
#[derive(clap::Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file and print a summary (exit 0 valid, 2 invalid).
    Check {
        /// A .yaml, .yml or .json policy document.
        file: PathBuf,
    },
    /// Print the decision for a job as JSON (exit 0 allowed, 3 denied, 2 bad input).
    Explain {
        /// The policy document (default: RENDITION_POLICY).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// The job message (contract §2).
        #[arg(long)]
        job: PathBuf,
        /// Judge share expiry at this moment (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
}

pub fn run(command: PolicyCommand) -> u8 {
    match command {
        PolicyCommand::Check { file } => check(&file),
        PolicyCommand::Explain { policy, job, at } => {
            let policy = match policy.map_or_else(settings_policy, Ok) {
                Ok(policy) => policy,
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::BAD_INPUT;
                }
            };
            explain(&policy, &job, at.unwrap_or_else(Utc::now))
        }
    }
}

/// The policy the settings name, when no --policy is given.
fn settings_policy() -> anyhow::Result<PathBuf> {
    Ok(PathBuf::from(Settings::load(None)?.policy()?))
}

/// Validates a policy file and prints what it holds.
fn check(file: &Path) -> u8 {
    let policy = match Policy::load(file) {
        Ok(policy) => policy,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return exit::BAD_INPUT;
        }
    };
    print!("{}", summary(file, &policy));
    for warning in policy.warnings() {
        eprintln!("warning: {warning}");
    }
    exit::OK
}

fn summary(file: &Path, policy: &Policy) -> String {
    let doc = policy.document();
    let nodes = &policy.tree().nodes;
    let staff: Vec<&str> = doc
        .roles
        .iter()
        .filter(|(_, r)| r.staff)
        .map(|(n, _)| n.as_str())
        .collect();
    let galleries = nodes.iter().filter(|n| n.kind == NodeKind::Gallery).count();
    let roots = nodes.iter().filter(|n| n.parent.is_none()).count();
    let depth = (0..nodes.len())
        .map(|i| policy.tree().ancestry(i).count())
        .max()
        .unwrap_or(0);
    let revoked = doc.shares.iter().filter(|s| s.revoked).count();
    format!(
        "{}: policy version {} is valid\n  roles: {} (staff: {})\n  users: {}, groups: {}\n  collections: {} nodes ({} top-level, {} galleries, depth {})\n  shares: {} ({} revoked)\n",
        file.display(),
        policy.version(),
        doc.roles.len(),
        if staff.is_empty() {
            "none".to_string()
        } else {
            staff.join(", ")
        },
        doc.users.len(),
        policy.groups().len(),
        nodes.len(),
        roots,
        galleries,
        depth,
        doc.shares.len(),
        revoked,
    )
}

/// Prints the decision for one job.
fn explain(policy_file: &Path, job_file: &Path, now: DateTime<Utc>) -> u8 {
    let policy = match Policy::load(policy_file) {
        Ok(policy) => policy,
        Err(e) => {
            eprintln!("{}: {e}", policy_file.display());
            return exit::BAD_INPUT;
        }
    };
    let job = match std::fs::read(job_file) {
        Err(e) => Err(format!("cannot read job: {e}")),
        Ok(bytes) => Job::parse(&bytes).map_err(|e| e.to_string()),
    };
    let job = match job {
        Ok(job) => job,
        Err(message) => {
            eprintln!("{}: {message}", job_file.display());
            return exit::BAD_INPUT;
        }
    };
    let decision = resolve(&policy, &Query::of(&job, now));
    println!(
        "{}",
        serde_json::to_string_pretty(&decision).expect("a decision serializes")
    );
    if decision.allowed { exit::OK } else { exit::DENIED }
}
