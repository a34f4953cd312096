//! `rendition`: the one program (contract §7). Each subcommand is a short
//! function in its own module; this file only parses arguments and maps
//! outcomes to exit codes.

mod policy_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes fixed by contract §7.
pub mod exit {
    pub const OK: u8 = 0;
    pub const BAD_INPUT: u8 = 2;
    pub const DENIED: u8 = 3;
}

#[derive(Parser)]
#[command(name = "rendition", version, about = "Renditions each person is allowed to download")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a policy, or explain a decision.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy file and print a summary (exit 0 valid, 2 invalid).
    Check {
        /// A .yaml, .yml or .json policy document.
        file: PathBuf,
    },
    /// Print the decision for a job as JSON (exit 0 allowed, 3 denied, 2 bad input).
    Explain {
        /// The policy document.
        #[arg(long, env = "RENDITION_POLICY", default_value = "fixtures/policy.yaml")]
        policy: PathBuf,
        /// The job message (contract §2).
        #[arg(long)]
        job: PathBuf,
        /// Judge share expiry at this moment (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Policy(PolicyCommand::Check { file }) => policy_cmd::check(&file),
        Command::Policy(PolicyCommand::Explain { policy, job, at }) => {
            policy_cmd::explain(&policy, &job, at.unwrap_or_else(chrono::Utc::now))
        }
    };
    ExitCode::from(code)
}
