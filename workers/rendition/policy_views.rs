//! `rendition policy diff`, `policy explain --as` and `policy publish`:
//! the resolver's answers laid out for people (tables) and tools (JSON).

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use rendition::control::SignedPolicyUpdate;
use rendition::policy::Policy;
use rendition::policy::diff::{Change, Place, Side, Who, diff as diff_policies, view_as as view};
use rendition::queue::amqp::AmqpBroker;
use rendition::queue::{Message, Publisher};
use rendition::settings::Settings;

use crate::exit;
use crate::policy_cmd::load;

/// Prints what changes from `old` to `new`; exit 1 when anything widened.
pub fn diff(old: &Path, new: &Path, json: bool, at: DateTime<Utc>) -> u8 {
    let (old, new) = match (load(old), load(new)) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let diff = diff_policies(&old, &new, at);
    if json {
        println!("{}", serde_json::to_string_pretty(&diff).expect("a diff serializes"));
    } else {
        println!("policy {} → {}", diff.from, diff.to);
        for change in &diff.changes {
            println!("{}", change_line(change));
        }
        for c in &diff.settings {
            let mark = if c.widened { "+" } else { "-" };
            println!("{mark} {} {}: {} → {}", c.subject, c.field, c.before, c.after);
        }
        for share in &diff.shares_revoked {
            println!("  revoked: share {share} (its renditions are deleted when this applies)");
        }
        println!("{}", diff.summary());
    }
    if diff.widened() > 0 { exit::WIDENED } else { exit::OK }
}

fn change_line(c: &Change) -> String {
    let mark = if c.widened { "+" } else { "-" };
    format!(
        "{mark} {:<32} {:<16} {:<32} {} → {}   [{} → {}]",
        c.who.label(),
        c.place.node,
        asked(&c.place),
        c.before.describe(),
        c.after.describe(),
        rule(&c.before),
        rule(&c.after),
    )
}

/// "image, restricted: download the original (deny on exceed)".
fn asked(place: &Place) -> String {
    let mut what = format!("{:?}", place.media).to_lowercase();
    if place.restricted {
        what.push_str(" restricted");
    }
    if place.generated {
        what.push_str(" generated");
    }
    format!("{what}: {:?} {:?}", place.purpose, place.probe).to_lowercase()
}

fn rule(side: &Side) -> String {
    let rule = serde_json::to_value(side.rule).ok();
    let rule = rule.as_ref().and_then(|r| r.as_str()).unwrap_or("?");
    match &side.node {
        Some(node) => format!("{rule} at {node}"),
        None => rule.to_string(),
    }
}

/// Prints what `who` gets at `node` ("view as").
pub fn view_as(policy: &Path, who: &str, node: &str, json: bool, at: DateTime<Utc>) -> u8 {
    let policy = match load(policy) {
        Ok(policy) => policy,
        Err(code) => return code,
    };
    let who = match parse_who(&policy, who) {
        Ok(who) => who,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    if policy.node_idx(node).is_none() {
        eprintln!("error: collection {node} is not in policy {}", policy.version());
        return exit::BAD_INPUT;
    }
    let rows = view(&policy, &who, node, at);
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(place, side)| serde_json::json!({"asked": place, "decision": side}))
            .collect();
        let out = serde_json::json!({"who": who, "node": node, "policy_version": policy.version(), "rows": rows});
        println!("{}", serde_json::to_string_pretty(&out).expect("rows serialize"));
    } else {
        println!("{} at {node}, policy version {}:", who.label(), policy.version());
        for (place, side) in &rows {
            println!("  {:<40} {:<36} [{}]", asked(place), side.describe(), rule(side));
        }
    }
    exit::OK
}

/// `role:NAME`, `group:NAME`, `user:ID`, `share:ID`, `password:COLLECTION`, `anonymous`,
/// or a bare name: a user if the policy has one, else a role.
fn parse_who(policy: &Policy, text: &str) -> Result<Who, String> {
    let doc = policy.document();
    let role = |r: &str| match doc.roles.contains_key(r) {
        true => Ok(Who::Role(r.to_string())),
        false => Err(format!("role {r} is not in the policy")),
    };
    match text.split_once(':') {
        Some(("role", r)) => role(r),
        Some(("group", g)) if policy.groups().contains(g) => Ok(Who::Group(g.to_string())),
        Some(("group", g)) => Err(format!("group {g} is not in the policy")),
        Some(("user", u)) => Ok(Who::User(u.to_string())),
        Some(("password", c)) => Ok(Who::Password(c.to_string())),
        Some(("share", s)) => policy
            .share(s)
            .map(|share| Who::Share {
                share: s.to_string(),
                email: share.email.clone(),
            })
            .ok_or_else(|| format!("share {s} is not in the policy")),
        _ if text == "anonymous" => Ok(Who::Anonymous),
        _ if policy.user(text).is_some() => Ok(Who::User(text.to_string())),
        _ => role(text).map_err(|_| format!("{text} is neither a user nor a role of the policy")),
    }
}

/// Publishes a signed update on the policy exchange, after checking it is
/// one (and, when this machine lists control keys, that it verifies).
pub async fn publish(message: PathBuf, config: Option<PathBuf>) -> anyhow::Result<()> {
    let settings = Settings::load(config.as_deref())?;
    let body = std::fs::read(&message).with_context(|| message.display().to_string())?;
    serde_json::from_slice::<SignedPolicyUpdate>(&body)
        .with_context(|| format!("{} is not a signed update (rendition sign policy)", message.display()))?;
    if !settings.control.keys.is_empty() {
        settings.control.keys.verify_update(&body)?;
    }
    let broker = AmqpBroker::connect_as_publisher(&settings.amqp_url, &settings.topology)
        .await
        .context("connecting to the broker")?;
    let exchange = settings.topology.policy_exchange();
    let message = Message {
        body,
        ..Message::default()
    };
    broker.publish(&exchange, &message).await?;
    broker.close().await;
    eprintln!("published on {exchange}");
    Ok(())
}
