//! `rendition sign`: control keys and the signed messages workers accept
//! (docs/control-plane.md). Prints each message on stdout, ready for
//! `rendition policy publish` (policy updates) or `rendition enqueue`
//! (revokes).

use std::path::PathBuf;

use anyhow::Context;
use rendition::control::{PolicyBody, SignedPolicyUpdate, SigningKey};
use rendition::policy::{DocFormat, Policy};
use rendition::revocation::RevokeMessage;
use sha2::{Digest, Sha256};

/// Make a control key, or sign a policy update or a revoke.
#[derive(clap::Subcommand)]
pub enum SignCommand {
    /// Make a key pair: the private key goes to --out (mode 0600), the
    /// `ID:BASE64` entry for RENDITION_CONTROL_KEYS to stdout.
    Keygen {
        /// The key's id (what messages name it by), e.g. ops-2026.
        #[arg(long)]
        id: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a policy document: the document itself goes in the message,
    /// or, with --location, where it is published and its SHA-256.
    Policy {
        /// The private key file (from `sign keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The policy document (.yaml, .yml or .json); checked first.
        file: PathBuf,
        /// Where the same bytes are published (s3://bucket/key or a path
        /// inside RENDITION_POLICY_LOCATIONS).
        #[arg(long)]
        location: Option<String>,
    },
    /// Sign a revoke of a share (answered like a job, under --job-id).
    Revoke {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        share: String,
        #[arg(long)]
        job_id: Option<String>,
    },
}

pub fn run(command: SignCommand) -> anyhow::Result<()> {
    match command {
        SignCommand::Keygen { id, out } => {
            let key = SigningKey::generate(&id).map_err(anyhow::Error::msg)?;
            key.save(&out).with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "private key written to {}; add this entry to RENDITION_CONTROL_KEYS:",
                out.display()
            );
            println!("{}", key.public_entry());
        }
        SignCommand::Policy { key, file, location } => {
            let key = SigningKey::load(&key).map_err(anyhow::Error::msg)?;
            let text = std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
            let format = DocFormat::from_path(&file).context("the file name must end in .json, .yaml or .yml")?;
            let policy = Policy::parse(&text, format).with_context(|| file.display().to_string())?;
            let body = match location {
                None => PolicyBody::Inline(text),
                Some(location) => PolicyBody::At {
                    location,
                    sha256: Sha256::digest(text.as_bytes()).into(),
                    standing: policy.standing(),
                },
            };
            let message = SignedPolicyUpdate::sign(&key, &body);
            println!("{}", serde_json::to_string(&message)?);
            eprintln!("signed policy {} with key {}", policy.standing(), key.id);
        }
        SignCommand::Revoke { key, share, job_id } => {
            let key = SigningKey::load(&key).map_err(anyhow::Error::msg)?;
            rendition::job::check_id("share", &share).map_err(|e| anyhow::anyhow!("{e}"))?;
            let job_id = job_id.unwrap_or_else(|| format!("revoke-{share}"));
            println!(
                "{}",
                serde_json::to_string(&RevokeMessage::signed(&key, &job_id, &share))?
            );
        }
    }
    Ok(())
}
