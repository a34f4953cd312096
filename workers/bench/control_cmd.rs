//! `rendition-bench control`: what a signed control message costs a worker
//! (docs/control-plane.md). Jobs pay nothing: no signature is checked per
//! job. A policy update pays one Ed25519 verification beside parsing and
//! validating the document it already paid for; a revoke pays one
//! verification. This prints both, per message, on the demo policy.

use std::path::PathBuf;
use std::time::Instant;

use rendition::control::{PolicyBody, SignedPolicyUpdate, SigningKey};
use rendition::policy::{DocFormat, Policy};

/// Time verifying and parsing signed control messages.
#[derive(clap::Args)]
pub struct ControlArgs {
    /// The policy document to sign (default: the demo policy).
    #[arg(long, default_value = "fixtures/policy.yaml")]
    policy: PathBuf,
    #[arg(long, default_value_t = 2000)]
    rounds: u32,
}

pub fn run(args: &ControlArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.policy)?;
    let key = SigningKey::generate("bench").map_err(anyhow::Error::msg)?;
    let keys = rendition::control::ControlKeys::parse(&key.public_entry()).map_err(anyhow::Error::msg)?;
    let message = serde_json::to_vec(&SignedPolicyUpdate::sign(&key, &PolicyBody::Inline(text.clone())))?;
    let per = |f: &mut dyn FnMut()| {
        let started = Instant::now();
        for _ in 0..args.rounds {
            f();
        }
        started.elapsed().as_secs_f64() * 1e6 / f64::from(args.rounds)
    };
    let verify = per(&mut || {
        keys.verify_update(&message).expect("verifies");
    });
    let parse = per(&mut || {
        Policy::parse(&text, DocFormat::Yaml).expect("valid");
    });
    let revoke = rendition::revocation::RevokeMessage::signed(&key, "r-1", "s-7");
    let check_revoke = per(&mut || {
        keys.verify_revoke(&revoke.share, revoke.key_id.as_deref(), revoke.signature.as_deref())
            .expect("verifies");
    });
    println!(
        "policy {} ({} bytes), {} rounds",
        args.policy.display(),
        text.len(),
        args.rounds
    );
    println!("| message | verify µs | parse + validate µs | verify share |");
    println!("|---|---|---|---|");
    println!(
        "| policy update | {verify:.1} | {parse:.1} | {:.0}% |",
        100.0 * verify / (verify + parse)
    );
    println!("| revoke | {check_revoke:.1} | - | - |");
    println!("| job | 0 (no signature is checked per job) | - | - |");
    Ok(())
}
