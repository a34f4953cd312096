//! The policy settings a diff compares field by field, because asking the
//! resolver at one moment cannot show them: a share's expiry, validation
//! and recipient (asked at `now`, a later expiry decides the same), and
//! the watermark's look (the resolver says only whether one is drawn).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::policy::Policy;
use crate::policy::document::{Share, ShareKind, Watermark};

/// One setting that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingChange {
    /// `share s-7`, or `watermark`.
    pub subject: String,
    pub field: &'static str,
    pub before: String,
    pub after: String,
    /// The new value gives more: a later expiry, a removed check, a
    /// fainter watermark.
    pub widened: bool,
}

/// Every share and watermark setting that differs between the two.
pub fn setting_changes(old: &Policy, new: &Policy) -> Vec<SettingChange> {
    let mut changes = Vec::new();
    let ids = old
        .document()
        .shares
        .iter()
        .chain(&new.document().shares)
        .map(|s| s.id.as_str());
    let ids: std::collections::BTreeSet<&str> = ids.collect();
    for id in ids {
        share_changes(id, old.share(id), new.share(id), &mut changes);
    }
    watermark_changes(&old.document().watermark, &new.document().watermark, &mut changes);
    changes
}

/// Records a change of `subject`'s `field` when its two values differ.
fn recorder(out: &mut Vec<SettingChange>, subject: String) -> impl FnMut(&'static str, String, String, bool) + '_ {
    move |field, before, after, widened| {
        if before != after {
            out.push(SettingChange {
                subject: subject.clone(),
                field,
                before,
                after,
                widened,
            });
        }
    }
}

fn share_changes(id: &str, old: Option<&Share>, new: Option<&Share>, out: &mut Vec<SettingChange>) {
    let mut push = recorder(out, format!("share {id}"));
    let (old, new) = match (old, new) {
        (Some(old), Some(new)) => (old, new),
        (None, Some(_)) => return push("exists", "no".into(), "yes".into(), true),
        (Some(_), None) => return push("exists", "yes".into(), "no".into(), false),
        (None, None) => return,
    };
    let expiry = |e: Option<DateTime<Utc>>| e.map_or("never".to_string(), |t| t.to_rfc3339());
    let later = match (old.expires_at, new.expires_at) {
        (Some(_), None) => true,
        (Some(a), Some(b)) => b > a,
        _ => false,
    };
    push("expires_at", expiry(old.expires_at), expiry(new.expires_at), later);
    push("email", old.email.clone(), new.email.clone(), true);
    push(
        "verified",
        old.verified.to_string(),
        new.verified.to_string(),
        new.verified,
    );
    push(
        "revoked",
        old.revoked.to_string(),
        new.revoked.to_string(),
        !new.revoked,
    );
    push(
        "watermark",
        old.watermark.to_string(),
        new.watermark.to_string(),
        old.watermark.drops_any(new.watermark),
    );
    let kind = |k: ShareKind| format!("{k:?}").to_lowercase();
    let opened = old.kind == ShareKind::Proxy && new.kind == ShareKind::Original;
    push("kind", kind(old.kind), kind(new.kind), opened);
    let added = new.scope.iter().any(|n| !old.scope.contains(n));
    push("scope", old.scope.join(", "), new.scope.join(", "), added);
}

fn watermark_changes(old: &Watermark, new: &Watermark, out: &mut Vec<SettingChange>) {
    let mut push = recorder(out, "watermark".into());
    push(
        "opacity",
        old.opacity.to_string(),
        new.opacity.to_string(),
        new.opacity < old.opacity,
    );
    push("text", old.text.clone(), new.text.clone(), new.text.trim().is_empty());
    let logo = |l: &Option<String>| l.clone().unwrap_or_else(|| "none".into());
    push("logo", logo(&old.logo), logo(&new.logo), new.logo.is_none());
    let position = |w: &Watermark| format!("{:?}", w.position).to_lowercase();
    push("position", position(old), position(new), false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DocFormat;

    const BASE: &str = "version: 1\nroles: { admin: { staff: true } }\ncollections: [{ id: c-1 }, { id: c-2 }]\n\
                        shares: [{ id: s-1, email: a@x, scope: [c-1], kind: proxy, verified: true, expires_at: 2030-01-01T00:00:00Z }]\n\
                        watermark: { text: Confidential, opacity: 0.5 }\n";

    fn changes(edit: &[(&str, &str)]) -> Vec<(String, &'static str, bool)> {
        let mut text = BASE.to_string();
        for (from, to) in edit {
            text = text.replace(from, to);
        }
        let (old, new) = (
            Policy::parse(BASE, DocFormat::Yaml).unwrap(),
            Policy::parse(&text, DocFormat::Yaml).unwrap(),
        );
        setting_changes(&old, &new)
            .into_iter()
            .map(|c| (c.subject, c.field, c.widened))
            .collect()
    }

    #[test]
    fn what_a_decision_at_one_moment_cannot_show_is_compared_field_by_field() {
        assert!(changes(&[]).is_empty());
        assert_eq!(
            changes(&[("2030-01-01", "2099-01-01")]),
            [("share s-1".into(), "expires_at", true)]
        );
        assert_eq!(
            changes(&[("2030-01-01", "2029-01-01")]),
            [("share s-1".into(), "expires_at", false)]
        );
        assert_eq!(
            changes(&[("opacity: 0.5", "opacity: 0.0")]),
            [("watermark".into(), "opacity", true)]
        );
        assert_eq!(
            changes(&[("scope: [c-1]", "scope: [c-1, c-2]")]),
            [("share s-1".into(), "scope", true)]
        );
        assert_eq!(
            changes(&[("kind: proxy", "kind: original")]),
            [("share s-1".into(), "kind", true)]
        );
        assert_eq!(
            changes(&[("verified: true", "verified: false")]),
            [("share s-1".into(), "verified", false)]
        );
    }
}
