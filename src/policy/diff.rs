//! What a policy change does (`rendition policy diff`, docs/control-plane.md)
//! and what one principal gets (`rendition policy explain --as`).
//!
//! Both ask the resolver itself, so they cannot disagree with what workers
//! will do. For every principal class the two policies name (each user,
//! each role as a user with only that role, each group as a member whose
//! team role grants nothing of its own, each share's recipient and
//! anyone else holding its link, each password-protected collection's
//! password holders, anonymous visitors), every collection node, every
//! media type, restricted or not, generated or not (publish), every
//! purpose and a few probing requests (the original, a proxy, a poster for
//! video), the two decisions are compared on what is delivered: allowed,
//! limit, watermark, delivery and targets. The probes pin every decision
//! down: any other size, or `on_exceed: deny`, is decided from the same
//! limit and delivery (tests/it/properties/diffs.rs holds the diff to
//! every generated question). What one moment's decisions cannot show —
//! a share's expiry, the watermark's look — is compared setting by setting
//! ([`settings`]).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::decision::{Decision, Delivery, Rule, Target};
use super::limit::{Cap, Limit};
use super::query::Query;
use super::resolve::resolve;
use super::{Policy, PolicyDocument};
use crate::job::{Asset, Media, OnExceed, Principal, Purpose, Rendition, Request};

mod settings;

pub use settings::{SettingChange, setting_changes};

/// The users roles and groups are asked as, named with a prefix no name in
/// either policy starts with (so none can stand in for one, whatever the
/// policies call their users and roles).
#[derive(Debug, Clone)]
pub struct AskedAs {
    prefix: String,
}

impl AskedAs {
    fn new(policies: &[&Policy]) -> AskedAs {
        let mut prefix = "~diff~".to_string();
        let taken = |prefix: &str| {
            policies.iter().any(|p| {
                let doc = p.document();
                doc.users.keys().chain(doc.roles.keys()).any(|n| n.starts_with(prefix))
            })
        };
        while taken(&prefix) {
            prefix.push('~');
        }
        AskedAs { prefix }
    }

    fn role_user(&self, role: &str) -> String {
        format!("{}role:{role}", self.prefix)
    }
    fn group_user(&self, group: &str) -> String {
        format!("{}group:{group}", self.prefix)
    }
    /// The team role group members hold: it grants and caps nothing.
    fn no_role(&self) -> String {
        format!("{}no-role", self.prefix)
    }
}

/// A kind of principal, as the diff and `explain --as` name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Who {
    Role(String),
    /// A member of the group whose team role grants nothing of its own:
    /// what the group's invitations give.
    Group(String),
    User(String),
    /// A share's link, opened by `email`.
    Share {
        share: String,
        email: String,
    },
    /// Whoever holds the share's link with another address.
    ShareOther(String),
    Password(String),
    Anonymous,
}

/// An e-mail no share is addressed to.
const SOMEONE_ELSE: &str = "someone-else@invalid";

impl Who {
    pub fn label(&self) -> String {
        match self {
            Who::Role(r) => format!("role {r}"),
            Who::Group(g) => format!("group {g}"),
            Who::User(u) => format!("user {u}"),
            Who::Share { share, email } => format!("share {share} ({email})"),
            Who::ShareOther(share) => format!("share {share} (another recipient)"),
            Who::Password(c) => format!("password holder of {c}"),
            Who::Anonymous => "anonymous visitor".into(),
        }
    }

    /// The principal a job would name (roles and groups: as `asked`).
    pub fn principal(&self, asked: &AskedAs) -> Principal {
        match self {
            Who::Role(r) => Principal::User(asked.role_user(r)),
            Who::Group(g) => Principal::User(asked.group_user(g)),
            who => who.job_principal().expect("a class a job can name"),
        }
    }

    /// The principal of this class a job can name (none for roles and
    /// groups: they are asked as stand-in users).
    pub fn job_principal(&self) -> Option<Principal> {
        Some(match self {
            Who::Role(_) | Who::Group(_) => return None,
            Who::User(u) => Principal::User(u.clone()),
            Who::Share { share, email } => Principal::Share {
                share: share.clone(),
                email: email.clone(),
            },
            Who::ShareOther(share) => Principal::Share {
                share: share.clone(),
                email: SOMEONE_ELSE.into(),
            },
            Who::Password(c) => Principal::Password { collection: c.clone() },
            Who::Anonymous => Principal::Anonymous,
        })
    }

    /// The class a job's principal falls in (for tests and support).
    pub fn of(principal: &Principal, old: &Policy, new: &Policy) -> Who {
        match principal {
            Principal::User(u) => Who::User(u.clone()),
            Principal::Share { share, email } => {
                // Named by the address the policy wrote (addresses match
                // without regard to case, as the resolver matches them).
                let addressed = [old, new]
                    .iter()
                    .filter_map(|p| p.share(share))
                    .find(|s| s.email.eq_ignore_ascii_case(email));
                match addressed {
                    Some(s) => Who::Share {
                        share: share.clone(),
                        email: s.email.clone(),
                    },
                    None => Who::ShareOther(share.clone()),
                }
            }
            Principal::Password { collection } => Who::Password(collection.clone()),
            Principal::Anonymous => Who::Anonymous,
        }
    }
}

/// One probing request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    Original,
    Proxy,
    Poster,
    /// An image preset of either policy (a list of presets decides it).
    Preset(String),
}

impl Probe {
    fn for_media(media: Media, presets: &BTreeSet<String>) -> Vec<Probe> {
        match media {
            Media::Video => vec![Probe::Original, Probe::Proxy, Probe::Poster],
            Media::Image => [Probe::Original, Probe::Proxy]
                .into_iter()
                .chain(presets.iter().cloned().map(Probe::Preset))
                .collect(),
            _ => vec![Probe::Original, Probe::Proxy],
        }
    }

    pub fn request(&self) -> Request {
        let (rendition, on_exceed) = match self {
            Probe::Original => (Rendition::Original, OnExceed::Clamp),
            Probe::Proxy => (Rendition::Proxy, OnExceed::Clamp),
            Probe::Poster => (Rendition::Poster, OnExceed::Clamp),
            Probe::Preset(name) => (Rendition::Preset(name.clone()), OnExceed::Clamp),
        };
        Request {
            rendition,
            format: Default::default(),
            quality: 85,
            on_exceed,
            page: 1,
        }
    }
}

/// Where and what is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    pub node: String,
    pub media: Media,
    pub restricted: bool,
    pub generated: bool,
    pub purpose: Purpose,
    pub probe: Probe,
}

impl Place {
    /// What `policy` answers `principal` asking this.
    fn ask(&self, policy: &Policy, principal: &Principal, now: DateTime<Utc>) -> Side {
        let (asset, request) = (self.asset(), self.probe.request());
        let query = Query {
            purpose: self.purpose,
            principal,
            asset: &asset,
            request: &request,
            now,
        };
        Side::of(resolve(policy, &query))
    }

    pub fn asset(&self) -> Asset {
        Asset {
            id: "policy-diff".into(),
            collection: self.node.clone(),
            media: self.media,
            source: "policy-diff".into(),
            restricted: self.restricted,
            generated: self.generated,
            filename: None,
            focal_point: None,
        }
    }
}

/// What a side delivers: allowed, limit, (watermark, forensic mark),
/// delivery, targets.
pub type Delivered<'a> = (bool, Option<Cap>, (bool, bool), Option<Delivery>, &'a [Target]);

/// One side of a change: what is delivered, and the rule that decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    pub allowed: bool,
    pub limit: Option<Cap>,
    pub watermark: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forensic: bool,
    pub delivery: Option<Delivery>,
    pub targets: Vec<Target>,
    pub rule: Rule,
    pub node: Option<String>,
    pub reason: String,
}

impl Side {
    fn of(d: Decision) -> Side {
        Side {
            allowed: d.allowed,
            limit: d.limit,
            watermark: d.watermark,
            forensic: d.forensic,
            delivery: d.delivery,
            targets: d.targets,
            rule: d.rule,
            node: d.node,
            reason: d.reason,
        }
    }

    /// What is delivered, without why.
    pub fn delivered(&self) -> Delivered<'_> {
        let marks = (self.watermark, self.forensic);
        (self.allowed, self.limit, marks, self.delivery, &self.targets)
    }

    pub fn describe(&self) -> String {
        if !self.allowed {
            return "denied".into();
        }
        let limit = match self.limit.map(|c| c.as_limit()) {
            Some(Limit::Original) | None => "original size".to_string(),
            Some(Limit::Px(n)) => format!("≤{n} px"),
            Some(Limit::None) => "nothing".into(),
        };
        let delivery = match self.delivery {
            Some(Delivery::Original) => "original",
            Some(Delivery::Rendition) => "rendition",
            Some(Delivery::Proxy) => "proxy",
            None => "-",
        };
        let mark = if self.watermark { ", watermarked" } else { "" };
        let forensic = if self.forensic { ", forensically marked" } else { "" };
        format!("{delivery} {limit}{mark}{forensic}")
    }
}

/// One decision that differs between the two policies.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub who: Who,
    pub place: Place,
    pub before: Side,
    pub after: Side,
    /// The new policy gives more: allowed where it was not, a larger
    /// limit, no watermark, or a delivery closer to the original.
    pub widened: bool,
}

/// Everything that differs, and the shares the new policy revokes.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub from: u64,
    pub to: u64,
    pub changes: Vec<Change>,
    /// Share and watermark settings that differ (module docs).
    pub settings: Vec<SettingChange>,
    pub shares_revoked: Vec<String>,
}

impl Diff {
    /// Decisions and settings that give more than before.
    pub fn widened(&self) -> usize {
        let settings = self.settings.iter().filter(|c| c.widened).count();
        self.changes.iter().filter(|c| c.widened).count() + settings
    }

    /// One line for a log: counts by principal class.
    pub fn summary(&self) -> String {
        let whos: BTreeSet<String> = self.changes.iter().map(|c| c.who.label()).collect();
        format!(
            "{} decision(s) changed for {} principal class(es), {} setting(s) changed, {} widened; {} share(s) revoked",
            self.changes.len(),
            whos.len(),
            self.settings.len(),
            self.widened(),
            self.shares_revoked.len()
        )
    }
}

/// How many questions a diff of these two policies asks each of them.
pub fn size(old: &Policy, new: &Policy) -> usize {
    whos(old, new).len() * nodes(old, new).len() * places_at("", &presets(old, new)).len()
}

/// Compares every decision the two policies make (module docs).
pub fn diff(old: &Policy, new: &Policy, now: DateTime<Utc>) -> Diff {
    let asked = AskedAs::new(&[old, new]);
    let (old_asked, new_asked) = (with_role_users(old, &asked), with_role_users(new, &asked));
    let mut changes = Vec::new();
    for who in whos(old, new) {
        let principal = who.principal(&asked);
        for place in places(old, new) {
            let (before, after) = (
                place.ask(&old_asked, &principal, now),
                place.ask(&new_asked, &principal, now),
            );
            if before.delivered() != after.delivered() {
                let widened = widens(&before, &after);
                changes.push(Change {
                    who: who.clone(),
                    place,
                    before,
                    after,
                    widened,
                });
            }
        }
    }
    Diff {
        from: old.version(),
        to: new.version(),
        changes,
        settings: setting_changes(old, new),
        shares_revoked: crate::revocation::newly_revoked(Some(old), new),
    }
}

/// What `who` gets at `node`, for each media type, purpose and probe.
pub fn view_as(policy: &Policy, who: &Who, node: &str, now: DateTime<Utc>) -> Vec<(Place, Side)> {
    let names = AskedAs::new(&[policy]);
    let asked = with_role_users(policy, &names);
    let principal = who.principal(&names);
    let mut rows = Vec::new();
    for place in places_at(node, &presets(policy, policy)) {
        let side = place.ask(&asked, &principal, now);
        rows.push((place, side));
    }
    rows
}

/// Whether any part of what is delivered grew.
fn widens(before: &Side, after: &Side) -> bool {
    let limit = |s: &Side| s.limit.map_or(Limit::None, |c| c.as_limit());
    let rank = |s: &Side| match s.delivery {
        None => 0,
        Some(Delivery::Proxy) => 1,
        Some(Delivery::Rendition) => 2,
        Some(Delivery::Original) => 3,
    };
    if !after.allowed {
        return false;
    }
    !before.allowed
        || limit(after) > limit(before)
        || (before.watermark && !after.watermark)
        || (before.forensic && !after.forensic)
        || rank(after) > rank(before)
}

/// The policy with one user per role holding only that role, and one per
/// group holding a role that grants nothing of its own.
fn with_role_users(policy: &Policy, asked: &AskedAs) -> Policy {
    use super::document::{Role, User};
    let mut doc: PolicyDocument = policy.document().clone();
    let user = |role: &str, groups: Vec<String>| User {
        role: role.to_string(),
        groups,
        manage_restricted: None,
    };
    for role in policy.document().roles.keys() {
        doc.users.insert(asked.role_user(role), user(role, Vec::new()));
    }
    // No rights and no ceiling of its own: the group's invitations decide.
    doc.roles.insert(asked.no_role(), Role::default());
    for group in policy.groups() {
        doc.users
            .insert(asked.group_user(group), user(&asked.no_role(), vec![group.clone()]));
    }
    Policy::from_document(doc).expect("adding users of existing roles keeps a policy valid")
}

fn whos(old: &Policy, new: &Policy) -> BTreeSet<Who> {
    let mut whos = BTreeSet::from([Who::Anonymous]);
    for p in [old, new] {
        let doc = p.document();
        whos.extend(doc.roles.keys().map(|r| Who::Role(r.clone())));
        whos.extend(p.groups().iter().map(|g| Who::Group(g.clone())));
        whos.extend(doc.users.keys().map(|u| Who::User(u.clone())));
        for share in &doc.shares {
            whos.insert(Who::Share {
                share: share.id.clone(),
                email: share.email.clone(),
            });
            whos.insert(Who::ShareOther(share.id.clone()));
        }
    }
    // Password holders: asked of every node, since a node without its own
    // password may inherit one.
    whos.extend(nodes(old, new).into_iter().map(Who::Password));
    whos
}

fn nodes(old: &Policy, new: &Policy) -> BTreeSet<String> {
    let ids = |p: &Policy| {
        (0..p.tree().nodes.len())
            .map(|i| p.tree().id(i).to_string())
            .collect::<Vec<_>>()
    };
    ids(old).into_iter().chain(ids(new)).collect()
}

/// The preset names of either policy.
fn presets(old: &Policy, new: &Policy) -> BTreeSet<String> {
    let names = |p: &Policy| p.document().presets.keys().cloned().collect::<Vec<_>>();
    names(old).into_iter().chain(names(new)).collect()
}

fn places(old: &Policy, new: &Policy) -> Vec<Place> {
    let presets = presets(old, new);
    nodes(old, new).iter().flat_map(|n| places_at(n, &presets)).collect()
}

const PURPOSES: [Purpose; 4] = [Purpose::Download, Purpose::Share, Purpose::Preview, Purpose::Publish];

fn places_at(node: &str, presets: &BTreeSet<String>) -> Vec<Place> {
    let mut places = Vec::new();
    for media in Media::ALL {
        for restricted in [false, true] {
            for purpose in PURPOSES {
                // Only publishing tells generated assets apart.
                let generated: &[bool] = if purpose == Purpose::Publish {
                    &[false, true]
                } else {
                    &[false]
                };
                for &generated in generated {
                    for probe in Probe::for_media(media, presets) {
                        places.push(Place {
                            node: node.to_string(),
                            media,
                            restricted,
                            generated,
                            purpose,
                            probe,
                        });
                    }
                }
            }
        }
    }
    places
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DocFormat;

    const OLD: &str = "version: 1\nroles: { admin: { staff: true }, viewer: { download: { image: 1024, video: none, audio: false, other: false } } }\n\
                       users: { u-1: { role: viewer, groups: [press] } }\ncollections: [{ id: c-1, visibility: everyone, access: people, download: { image: original, video: original, audio: true, other: true }, invited: [{ group: press, role: viewer }] }]\n";

    fn parse(text: &str) -> Policy {
        Policy::parse(text, DocFormat::Yaml).unwrap()
    }

    #[test]
    fn nothing_changes_between_a_policy_and_itself() {
        let old = parse(OLD);
        let diff = diff(&old, &old, Utc::now());
        assert!(diff.changes.is_empty(), "{:?}", diff.changes.first());
    }

    #[test]
    fn a_larger_limit_is_a_widening_for_the_role_and_its_users() {
        let (old, new) = (
            parse(OLD),
            parse(
                &OLD.replace("image: 1024", "image: 4096")
                    .replace("version: 1", "version: 2"),
            ),
        );
        let diff = diff(&old, &new, Utc::now());
        assert!(!diff.changes.is_empty());
        let narrowed: Vec<_> = diff.changes.iter().filter(|c| !c.widened).collect();
        assert!(narrowed.is_empty(), "only widenings: {:#?}", narrowed.first());
        let whos: BTreeSet<String> = diff.changes.iter().map(|c| c.who.label()).collect();
        // Only the invited press members gain: the role alone is not invited.
        assert_eq!(
            whos,
            BTreeSet::from(["group press".to_string(), "user u-1".to_string()])
        );
        assert!(diff.changes.iter().all(|c| c.place.media == Media::Image));
        // And back: the same changes, none of them a widening.
        let back = super::diff(&new, &old, Utc::now());
        assert_eq!(back.changes.len(), diff.changes.len());
        assert_eq!(back.widened(), 0);
    }

    #[test]
    fn a_policy_naming_the_stand_in_users_cannot_hide_a_change() {
        let old = parse(OLD);
        let new = OLD.replace("version: 1", "version: 2").replace(
            "users: { u-1: { role: viewer, groups: [press] } }",
            "users: { u-1: { role: viewer, groups: [press] }, mallory: { role: \"~diff~no-role\" } }",
        );
        let new = new.replace("roles: {", "roles: { \"~diff~no-role\": { staff: true },");
        let diff = diff(&old, &parse(&new), Utc::now());
        assert!(
            diff.changes
                .iter()
                .any(|c| c.who == Who::User("mallory".into()) && c.widened),
            "{}",
            diff.summary()
        );
    }
}
