//! `rendition policy check | explain | diff | publish`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rendition::control::ControlKeys;
use rendition::job::Job;
use rendition::policy::document::NodeKind;
use rendition::policy::{Policy, Query, resolve};
use rendition::settings::Settings;

use crate::exit;
use crate::policy_views;

/// Check, sign-check, explain, diff or publish policies.
#[derive(clap::Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file and print a summary (exit 0 valid, 2 invalid).
    Check {
        /// A .yaml, .yml or .json policy document.
        file: PathBuf,
        /// Also verify this signed update message (from `rendition sign
        /// policy`) against FILE and the control keys.
        #[arg(long)]
        signed: Option<PathBuf>,
        /// The control keys (ID:BASE64,...) to verify with.
        #[arg(long, env = "RENDITION_CONTROL_KEYS", hide_env_values = true)]
        keys: Option<String>,
    },
    /// Print the decision for a job as JSON (exit 0 allowed, 3 denied, 2
    /// bad input), or with --as and --node what a principal gets there.
    Explain {
        /// The policy document (default: RENDITION_POLICY).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// The job message (docs/contract.md#job).
        #[arg(long, required_unless_present = "who", conflicts_with = "who")]
        job: Option<PathBuf>,
        /// "View as": role:NAME, group:NAME, user:ID, share:ID,
        /// password:COLLECTION or anonymous (a bare name is a user, else a
        /// role).
        #[arg(long = "as", requires = "node")]
        who: Option<String>,
        /// The collection node to look at, with --as.
        #[arg(long)]
        node: Option<String>,
        /// With --as: JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Judge share expiry at this moment (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
    /// What changes from OLD to NEW, for every principal class, node and
    /// media type (exit 0 nothing widened, 1 something widened, 2 bad input).
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// JSON for tools instead of a table.
        #[arg(long)]
        json: bool,
        /// Judge share expiry at this moment (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
    /// Publish a signed update message (from `rendition sign policy`) on
    /// the policy exchange.
    Publish {
        message: PathBuf,
        /// A TOML file with the settings; RENDITION_* variables win over it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn run(command: PolicyCommand) -> u8 {
    match command {
        PolicyCommand::Check { file, signed, keys } => check(&file, signed.as_deref(), keys.as_deref()),
        PolicyCommand::Explain {
            policy,
            job,
            who,
            node,
            json,
            at,
        } => {
            let policy = match policy.map_or_else(settings_policy, Ok) {
                Ok(policy) => policy,
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::BAD_INPUT;
                }
            };
            let at = at.unwrap_or_else(Utc::now);
            match (job, who, node) {
                (Some(job), _, _) => explain(&policy, &job, at),
                (None, Some(who), Some(node)) => policy_views::view_as(&policy, &who, &node, json, at),
                _ => exit::BAD_INPUT,
            }
        }
        PolicyCommand::Diff { old, new, json, at } => policy_views::diff(&old, &new, json, at.unwrap_or_else(Utc::now)),
        PolicyCommand::Publish { message, config } => crate::on_runtime(policy_views::publish(message, config)),
    }
}

/// The policy the settings name, when no --policy is given.
fn settings_policy() -> anyhow::Result<PathBuf> {
    Ok(PathBuf::from(Settings::load(None)?.policy()?))
}

/// Reads a policy file, or says why not (exit 2).
pub fn load(file: &Path) -> Result<Policy, u8> {
    Policy::load(file).map_err(|e| {
        eprintln!("{}: {e}", file.display());
        exit::BAD_INPUT
    })
}

/// Validates a policy file and prints what it holds; with `signed`, also
/// checks that the message is a valid signature of exactly this file.
fn check(file: &Path, signed: Option<&Path>, keys: Option<&str>) -> u8 {
    let policy = match load(file) {
        Ok(policy) => policy,
        Err(code) => return code,
    };
    print!("{}", summary(file, &policy));
    for warning in policy.warnings() {
        eprintln!("warning: {warning}");
    }
    let Some(signed) = signed else {
        return exit::OK;
    };
    match check_signature(file, &policy, signed, keys.unwrap_or("")) {
        Ok(line) => {
            println!("{line}");
            exit::OK
        }
        Err(e) => {
            eprintln!("{}: {e}", signed.display());
            exit::BAD_INPUT
        }
    }
}

fn check_signature(file: &Path, policy: &Policy, signed: &Path, keys: &str) -> anyhow::Result<String> {
    use rendition::control::PolicyBody;
    use sha2::{Digest, Sha256};
    let keys = ControlKeys::parse(keys).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        !keys.is_empty(),
        "no control keys: set RENDITION_CONTROL_KEYS or --keys"
    );
    let message = std::fs::read(signed)?;
    let verified = keys.verify_update(&message)?;
    let text = std::fs::read(file)?;
    let matches = match &verified.body {
        PolicyBody::Inline(document) => document.as_bytes() == text,
        PolicyBody::At { sha256, .. } => Sha256::digest(&text).as_slice() == sha256,
    };
    anyhow::ensure!(
        matches,
        "the signature is valid, but for another document than {}",
        file.display()
    );
    let place = match &verified.body {
        PolicyBody::Inline(_) => "inline".to_string(),
        PolicyBody::At { location, standing, .. } => {
            anyhow::ensure!(
                policy.standing() == *standing,
                "the message says {standing}, the document is {}",
                policy.standing()
            );
            format!("at {location}, {standing}")
        }
    };
    Ok(format!("  signature: valid, key {} ({place})", verified.key_id))
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
    let policy = match load(policy_file) {
        Ok(policy) => policy,
        Err(code) => return code,
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
