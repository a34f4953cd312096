//! Invariants of the resolver over random policy trees and principals.
//!
//! The generator builds valid policies of up to eight nodes (nested or as a
//! flat list with `parent` links), random roles, users, groups and shares,
//! and asks several random questions of each. The checks read the policy
//! document directly, with a naive walk of the tree, not the resolver's own
//! precomputed settings.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use rendition::job::{Asset, Media, OnExceed, Principal, Purpose, Rendition, Request};
use rendition::policy::document::{
    Access, Collection, InheritMode, Invitation, NodeKind, PolicyDocument, ProxySize, PublishRight, Role, Share,
    ShareKind, ShareRight, User, Visibility, Watermark,
};
use rendition::policy::{Decision, Delivery, DownloadLimits, Limit, Policy, Query, Target, resolve};

const CASES: u32 = 10_000;
const ROLES: [&str; 5] = ["boss", "r0", "r1", "r2", "r3"];
const USERS: usize = 6;
const GROUPS: [&str; 2] = ["g0", "g1"];

fn now() -> DateTime<Utc> {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

// ── generators ─────────────────────────────────────────────────────────────

fn limit() -> impl Strategy<Value = Limit> {
    prop_oneof![1 => Just(Limit::None), 2 => Just(Limit::Original), 3 => (1u32..5000).prop_map(Limit::Px)]
}

fn limits() -> impl Strategy<Value = DownloadLimits> {
    (limit(), limit(), any::<bool>(), any::<bool>()).prop_map(|(image, video, audio, other)| DownloadLimits {
        image,
        video,
        audio,
        other,
    })
}

fn role(staff: bool) -> impl Strategy<Value = Role> {
    let share = prop::sample::select(vec![ShareRight::None, ShareRight::Proxy, ShareRight::Original]);
    let publish = prop::sample::select(vec![PublishRight::None, PublishRight::Generated, PublishRight::All]);
    (
        prop::option::of(limits()),
        share,
        publish,
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.3),
    )
        .prop_map(move |(download, share, publish, watermark, manage_restricted)| Role {
            staff,
            download,
            share,
            publish,
            watermark,
            manage_restricted,
        })
}

/// A node before it is placed: raw choices, resolved by [`build_policy`].
#[derive(Debug, Clone)]
struct NodeSpec {
    parent: Option<usize>,
    gallery: bool,
    mode: u8,
    visibility: Option<Visibility>,
    access: Option<Access>,
    password: bool,
    download: Option<DownloadLimits>,
    watermark: Option<bool>,
    invited: Vec<(bool, usize, usize)>,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    // Weighted towards open settings, so that most questions get past the door.
    let visibility = prop_oneof![4 => Just(Visibility::Everyone), 2 => Just(Visibility::WithPermission), 1 => Just(Visibility::OwnerOnly)];
    let access = prop_oneof![4 => Just(Access::AnyVisitor), 1 => Just(Access::Password), 2 => Just(Access::People)];
    (
        prop::option::of(any::<usize>()),
        any::<bool>(),
        0u8..4,
        prop::option::weighted(0.85, visibility),
        prop::option::weighted(0.85, access),
        any::<bool>(),
        prop::option::weighted(0.85, limits()),
        prop::option::of(prop::bool::weighted(0.3)),
        prop::collection::vec((any::<bool>(), any::<usize>(), any::<usize>()), 0..4),
    )
        .prop_map(
            |(parent, gallery, mode, visibility, access, password, download, watermark, invited)| NodeSpec {
                parent,
                gallery,
                mode,
                visibility,
                access,
                password,
                download,
                watermark,
                invited,
            },
        )
}

#[derive(Debug, Clone)]
struct ShareSpec {
    scope: Vec<usize>,
    proxy: bool,
    verified: bool,
    expires_in_days: Option<i64>,
    revoked: bool,
    watermark: bool,
}

fn share_spec() -> impl Strategy<Value = ShareSpec> {
    (
        prop::collection::vec(any::<usize>(), 1..3),
        any::<bool>(),
        prop::bool::weighted(0.8),
        prop::option::of(-10i64..30),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(scope, proxy, verified, expires_in_days, revoked, watermark)| ShareSpec {
                scope,
                proxy,
                verified,
                expires_in_days,
                revoked,
                watermark,
            },
        )
}

fn policy_doc() -> impl Strategy<Value = PolicyDocument> {
    (
        (role(true), prop::collection::vec(role(false), 4)),
        prop::collection::vec(
            (
                any::<usize>(),
                any::<bool>(),
                any::<bool>(),
                prop::option::of(any::<bool>()),
            ),
            USERS,
        ),
        prop::collection::vec(node_spec(), 1..=8),
        prop::collection::vec(share_spec(), 0..4),
        (64u32..2100, 100u32..1100),
        any::<bool>(),
    )
        .prop_map(
            |((boss, others), users, nodes, shares, (proxy_image, proxy_video), flat)| {
                build_policy(
                    boss,
                    others,
                    users,
                    nodes,
                    shares,
                    ProxySize {
                        image: proxy_image,
                        video: proxy_video,
                    },
                    flat,
                )
            },
        )
}

fn build_policy(
    boss: Role,
    others: Vec<Role>,
    users: Vec<(usize, bool, bool, Option<bool>)>,
    nodes: Vec<NodeSpec>,
    shares: Vec<ShareSpec>,
    proxy: ProxySize,
    flat: bool,
) -> PolicyDocument {
    let roles = std::iter::once(boss)
        .chain(others)
        .zip(ROLES)
        .map(|(r, n)| (n.to_string(), r))
        .collect();
    let users = users
        .into_iter()
        .enumerate()
        .map(|(i, (role, g0, g1, manage_restricted))| {
            let groups = [(g0, GROUPS[0]), (g1, GROUPS[1])]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, g)| g.to_string())
                .collect();
            (
                format!("u{i}"),
                User {
                    role: ROLES[role % ROLES.len()].to_string(),
                    groups,
                    manage_restricted,
                },
            )
        })
        .collect();
    let parents: Vec<Option<usize>> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| if i == 0 { None } else { n.parent.map(|p| p % i) })
        .collect();
    let docs: Vec<Collection> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| collection(i, n, parents[i].is_none()))
        .collect();
    let shares = shares
        .into_iter()
        .enumerate()
        .map(|(i, s)| Share {
            id: format!("s{i}"),
            email: format!("s{i}@example.com"),
            scope: s.scope.iter().map(|n| format!("n{}", n % nodes.len())).collect(),
            kind: if s.proxy { ShareKind::Proxy } else { ShareKind::Original },
            verified: s.verified,
            expires_at: s.expires_in_days.map(|d| now() + Duration::days(d)),
            revoked: s.revoked,
            watermark: s.watermark,
        })
        .collect();
    PolicyDocument {
        version: 1,
        roles,
        users,
        groups: GROUPS.iter().map(|g| g.to_string()).collect(),
        collections: if flat {
            as_flat_list(docs, &parents)
        } else {
            as_nested(docs, &parents)
        },
        shares,
        proxy,
        watermark: Watermark::default(),
    }
}

fn collection(i: usize, n: &NodeSpec, is_root: bool) -> Collection {
    let mode = match n.mode {
        _ if is_root => (n.mode % 2 == 1).then_some(InheritMode::Native),
        0 => None,
        1 => Some(InheritMode::Inherit),
        2 => Some(InheritMode::Native),
        _ if n.gallery => Some(InheritMode::InheritAndNative),
        _ => Some(InheritMode::Inherit),
    };
    let invited = n
        .invited
        .iter()
        .map(|&(is_user, who, role)| Invitation {
            user: is_user.then(|| format!("u{}", who % USERS)),
            group: (!is_user).then(|| GROUPS[who % GROUPS.len()].to_string()),
            role: ROLES[role % ROLES.len()].to_string(),
        })
        .collect();
    Collection {
        id: format!("n{i}"),
        kind: if n.gallery {
            NodeKind::Gallery
        } else {
            NodeKind::Collection
        },
        inherit: mode,
        parent: None,
        visibility: n.visibility,
        access: n.access,
        password_sha256: n.password.then(|| "0".repeat(64)),
        download: n.download,
        invited,
        watermark: n.watermark,
        children: Vec::new(),
    }
}

fn as_nested(mut docs: Vec<Collection>, parents: &[Option<usize>]) -> Vec<Collection> {
    // Children have larger indices than parents: fold from the end.
    for i in (1..docs.len()).rev() {
        if let Some(p) = parents[i] {
            let child = std::mem::replace(&mut docs[i], placeholder());
            docs[p].children.insert(0, child);
        }
    }
    docs.into_iter()
        .enumerate()
        .filter(|(i, _)| parents[*i].is_none())
        .map(|(_, d)| d)
        .collect()
}

fn as_flat_list(docs: Vec<Collection>, parents: &[Option<usize>]) -> Vec<Collection> {
    docs.into_iter()
        .enumerate()
        .map(|(i, mut d)| {
            d.parent = parents[i].map(|p| format!("n{p}"));
            d
        })
        .rev() // a parent may come after its children in the list
        .collect()
}

fn placeholder() -> Collection {
    collection(
        usize::MAX,
        &NodeSpec {
            parent: None,
            gallery: false,
            mode: 0,
            visibility: None,
            access: None,
            password: false,
            download: None,
            watermark: None,
            invited: Vec::new(),
        },
        true,
    )
}

#[derive(Debug, Clone)]
struct Ask {
    purpose: Purpose,
    principal: Principal,
    asset: Asset,
    request: Request,
}

fn ask(nodes: usize, shares: usize) -> impl Strategy<Value = Ask> {
    let purpose = prop::sample::select(vec![
        Purpose::Download,
        Purpose::Download,
        Purpose::Share,
        Purpose::Preview,
        Purpose::Publish,
    ]);
    let media = prop::sample::select(Media::ALL.to_vec());
    let (restricted, right_email, deny) = (
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.2),
    );
    (
        purpose,
        0u8..5,
        any::<usize>(),
        right_email,
        any::<usize>(),
        media,
        restricted,
        any::<bool>(),
        request_shape(),
        deny,
    )
        .prop_map(
            move |(purpose, kind, who, right_email, node, media, restricted, generated, shape, deny)| {
                let principal = match kind {
                    0 | 1 => Principal::User(format!("u{}", who % (USERS + 1))), // u6 is unknown
                    2 if shares > 0 => {
                        let s = who % shares;
                        let email = if right_email {
                            format!("S{s}@example.com")
                        } else {
                            "nobody@example.com".into()
                        };
                        Principal::Share {
                            share: format!("s{s}"),
                            email,
                        }
                    }
                    3 => Principal::Password {
                        collection: format!("n{}", who % nodes),
                    },
                    _ => Principal::Anonymous,
                };
                let asset = Asset {
                    id: "a-1".into(),
                    collection: format!("n{}", node % nodes),
                    media,
                    source: "originals/a-1".into(),
                    restricted,
                    generated,
                    filename: None,
                };
                let on_exceed = if deny { OnExceed::Deny } else { OnExceed::Clamp };
                Ask {
                    purpose,
                    principal,
                    asset,
                    request: Request {
                        rendition: shape.for_media(media),
                        format: Default::default(),
                        quality: 85,
                        on_exceed,
                    },
                }
            },
        )
}

/// A request drawn before the media is known, then fitted to it.
#[derive(Debug, Clone)]
struct Shape(u8, Vec<u32>);

impl Shape {
    fn for_media(&self, media: Media) -> Rendition {
        let n = self.1[0];
        match (self.0, media) {
            (0, _) => Rendition::Original,
            (1, _) => Rendition::Proxy,
            (2, Media::Image) => Rendition::MaxEdge(n),
            (3, Media::Image) => Rendition::Set(self.1.clone()),
            (2, Media::Video) => Rendition::MaxHeight(n),
            (3, Media::Video) => Rendition::Poster,
            _ => Rendition::Original,
        }
    }
}

fn request_shape() -> impl Strategy<Value = Shape> {
    (0u8..4, prop::collection::vec(1u32..6000, 1..5)).prop_map(|(k, sizes)| Shape(k, sizes))
}

/// A policy and some questions about it.
fn case() -> impl Strategy<Value = (PolicyDocument, Vec<Ask>)> {
    policy_doc().prop_flat_map(|doc| {
        let (nodes, shares) = (count_nodes(&doc.collections), doc.shares.len());
        (Just(doc), prop::collection::vec(ask(nodes, shares), 4))
    })
}

fn count_nodes(list: &[Collection]) -> usize {
    list.iter().map(|c| 1 + count_nodes(&c.children)).sum()
}

// ── a naive reading of the document ────────────────────────────────────────

/// Every node by id, without its children, with its parent's id.
fn index(doc: &PolicyDocument) -> HashMap<String, (Collection, Option<String>)> {
    fn walk(list: &[Collection], parent: Option<&str>, out: &mut HashMap<String, (Collection, Option<String>)>) {
        for c in list {
            let parent = parent.map(str::to_string).or_else(|| c.parent.clone());
            out.insert(
                c.id.clone(),
                (
                    Collection {
                        children: Vec::new(),
                        ..c.clone()
                    },
                    parent,
                ),
            );
            walk(&c.children, Some(&c.id), out);
        }
    }
    let mut out = HashMap::new();
    walk(&doc.collections, None, &mut out);
    out
}

fn mode(nodes: &HashMap<String, (Collection, Option<String>)>, id: &str) -> InheritMode {
    let (c, parent) = &nodes[id];
    c.inherit.unwrap_or(if parent.is_none() {
        InheritMode::Native
    } else {
        InheritMode::Inherit
    })
}

/// The nearest node at or above `id` that does not inherit at all.
fn native_source(nodes: &HashMap<String, (Collection, Option<String>)>, id: &str) -> String {
    let mut at = id.to_string();
    while mode(nodes, &at) != InheritMode::Native {
        at = nodes[&at].1.clone().expect("roots are native");
    }
    at
}

fn is_within(nodes: &HashMap<String, (Collection, Option<String>)>, id: &str, top: &str) -> bool {
    let mut at = Some(id.to_string());
    while let Some(n) = at {
        if n == top {
            return true;
        }
        at = nodes[&n].1.clone();
    }
    false
}

/// The largest collection limit any principal could get at `id` for `media`:
/// the native source's, or a native grant of an inherit_and_native gallery.
fn largest_collection_limit(nodes: &HashMap<String, (Collection, Option<String>)>, id: &str, media: Media) -> Limit {
    let mut best = Limit::None;
    let mut at = id.to_string();
    loop {
        let (c, parent) = &nodes[&at];
        match mode(nodes, &at) {
            InheritMode::Native => {
                return best.max(c.download.unwrap_or(DownloadLimits::NOTHING).for_media(media));
            }
            InheritMode::InheritAndNative => best = best.max(c.download.map_or(Limit::None, |d| d.for_media(media))),
            InheritMode::Inherit => {}
        }
        at = parent.clone().unwrap();
    }
}

fn limit_media(ask: &Ask) -> Media {
    if ask.request.rendition == Rendition::Poster {
        Media::Image
    } else {
        ask.asset.media
    }
}

fn decide(policy: &Policy, ask: &Ask) -> Decision {
    let q = Query {
        purpose: ask.purpose,
        principal: &ask.principal,
        asset: &ask.asset,
        request: &ask.request,
        now: now(),
    };
    resolve(policy, &q)
}

fn decided_limit(d: &Decision) -> Limit {
    d.limit.map_or(Limit::None, |c| c.as_limit())
}

fn is_staff(doc: &PolicyDocument, p: &Principal) -> bool {
    matches!(p, Principal::User(u) if doc.users.get(u).is_some_and(|u| doc.roles[&u.role].staff))
}

/// Roles a user could hold anywhere: the team role and every invitation's.
fn roles_of(doc: &PolicyDocument, nodes: &HashMap<String, (Collection, Option<String>)>, user: &str) -> Vec<String> {
    let u = &doc.users[user];
    let mut roles = vec![u.role.clone()];
    for (c, _) in nodes.values() {
        for inv in &c.invited {
            let named = inv.user.as_deref() == Some(user) || inv.group.as_ref().is_some_and(|g| u.groups.contains(g));
            if named {
                roles.push(inv.role.clone());
            }
        }
    }
    roles
}

// ── the invariants ─────────────────────────────────────────────────────────

fn check_invariants(doc: &PolicyDocument, ask: &Ask, d: &Decision) -> Result<(), TestCaseError> {
    let nodes = index(doc);
    let media = limit_media(ask);
    let limit = decided_limit(d);
    let staff = is_staff(doc, &ask.principal);

    // Shape: a denial carries nothing; an allowance says what to make.
    if !d.allowed {
        prop_assert!(d.limit.is_none() && d.targets.is_empty() && d.delivery.is_none() && !d.watermark);
        prop_assert!(d.reason.starts_with("denied: "));
    } else {
        prop_assert!(limit != Limit::None && !d.targets.is_empty() && d.delivery.is_some());
    }
    // No target exceeds the decided limit; an untouched original only when
    // nothing caps or marks it.
    for t in &d.targets {
        prop_assert!(t.as_limit() <= limit, "target {:?} above limit {:?}", t, limit);
        if *t == Target::Original {
            prop_assert!(limit == Limit::Original && !d.watermark && d.delivery == Some(Delivery::Original));
        }
    }
    if d.allowed && ask.request.on_exceed == OnExceed::Deny {
        prop_assert!(!d.clamped, "on_exceed deny never clamps");
    }
    if staff {
        // Anything, except a proxy of what has no proxy.
        let no_proxy = ask.request.rendition == Rendition::Proxy && matches!(media, Media::Audio | Media::Other);
        prop_assert!(d.allowed || no_proxy, "staff may do anything: {}", d.reason);
        return Ok(());
    }
    let Some(node) = nodes.get(&ask.asset.collection).map(|_| ask.asset.collection.clone()) else {
        prop_assert!(!d.allowed);
        return Ok(());
    };
    // owner_only admits no one but staff.
    let visibility = nodes[&native_source(&nodes, &node)]
        .0
        .visibility
        .unwrap_or(Visibility::WithPermission);
    if visibility == Visibility::OwnerOnly {
        prop_assert!(!d.allowed, "owner_only admitted a non-staff principal: {}", d.reason);
    }
    if !d.allowed {
        return Ok(());
    }
    // The limit never exceeds what the collection, the role or a proxy allows.
    prop_assert!(
        limit <= largest_collection_limit(&nodes, &node, media),
        "above collection limit: {}",
        d.reason
    );
    if let Some(role) = d.role.as_ref().map(|r| &doc.roles[r]).filter(|r| !r.staff)
        && let Some(ceiling) = role.download
    {
        prop_assert!(limit <= ceiling.for_media(media), "above role ceiling: {}", d.reason);
    }
    if d.delivery == Some(Delivery::Proxy) {
        let proxy = doc.proxy.as_limits().for_media(media);
        prop_assert!(
            limit <= proxy && d.watermark,
            "proxy above proxy size or unmarked: {}",
            d.reason
        );
    }
    // A watermark-only role never gets an unmarked rendition.
    if let Some(role) = d.role.as_ref().map(|r| &doc.roles[r]) {
        prop_assert!(!role.watermark || d.watermark, "watermark role unmarked: {}", d.reason);
    }
    if let Principal::User(u) = &ask.principal {
        let all_marked = roles_of(doc, &nodes, u).iter().all(|r| doc.roles[r].watermark);
        prop_assert!(
            !all_marked || d.watermark,
            "user with only watermark roles unmarked: {}",
            d.reason
        );
    }
    // Shares: a bad share never admits; a proxy share never gets more than a proxy.
    if let Principal::Share { share, email } = &ask.principal {
        let s = doc
            .shares
            .iter()
            .find(|s| &s.id == share)
            .expect("admitted share exists");
        prop_assert!(!s.revoked && s.verified && s.expires_at.is_none_or(|at| at > now()));
        prop_assert!(s.email.eq_ignore_ascii_case(email));
        prop_assert!(
            s.scope.iter().any(|top| is_within(&nodes, &node, top)),
            "outside scope: {}",
            d.reason
        );
        if s.kind == ShareKind::Proxy {
            prop_assert_eq!(d.delivery, Some(Delivery::Proxy));
            prop_assert!(d.watermark && limit < Limit::Original);
        }
    }
    // Restricted assets need the right to manage them.
    if ask.asset.restricted {
        let Principal::User(u) = &ask.principal else {
            return Err(TestCaseError::fail(format!(
                "restricted asset to a non-user: {}",
                d.reason
            )));
        };
        let user = &doc.users[u];
        prop_assert!(
            user.manage_restricted
                .unwrap_or(doc.roles[&user.role].manage_restricted)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, max_global_rejects: 50_000, ..ProptestConfig::default() })]

    /// Every generated policy is valid, and every decision keeps the invariants.
    #[test]
    fn decisions_never_exceed_what_the_policy_allows((doc, asks) in case()) {
        let policy = Policy::from_document(doc.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // The policy survives a JSON round trip with the same decisions.
        let again = Policy::parse(&serde_json::to_string(&doc).unwrap(), rendition::policy::DocFormat::Json).unwrap();
        for ask in &asks {
            let d = decide(&policy, ask);
            check_invariants(&doc, ask, &d)?;
            prop_assert_eq!(decide(&again, ask), d);
        }
    }

    /// Inheriting from an ancestor decides exactly as copying its settings.
    #[test]
    fn inheriting_equals_copying_the_ancestor((doc, asks) in case(), pick in any::<usize>()) {
        let nodes = index(&doc);
        let mut inheriting: Vec<&String> = nodes.keys().filter(|id| mode(&nodes, id) == InheritMode::Inherit).collect();
        inheriting.sort();
        prop_assume!(!inheriting.is_empty());
        let x = inheriting[pick % inheriting.len()].clone();
        let source = native_source(&nodes, &x);
        // Only a chain of plain `inherit` nodes copies the source verbatim.
        let mut at = x.clone();
        while at != source {
            prop_assume!(mode(&nodes, &at) == InheritMode::Inherit);
            at = nodes[&at].1.clone().unwrap();
        }
        let copied = copy_settings(&doc, &x, &nodes[&source].0);
        let (before, after) = (Policy::from_document(doc.clone()).unwrap(), Policy::from_document(copied).unwrap());
        for ask in &asks {
            // A password names a collection; one above x no longer reaches x's subtree.
            if let Principal::Password { collection } = &ask.principal
                && is_within(&nodes, &x, collection) && collection != &x {
                continue;
            }
            let (a, b) = (decide(&before, ask), decide(&after, ask));
            prop_assert_eq!(
                (a.allowed, a.limit, a.watermark, a.clamped, &a.role, a.delivery, &a.targets, a.rule),
                (b.allowed, b.limit, b.watermark, b.clamped, &b.role, b.delivery, &b.targets, b.rule),
                "x={} source={}: {} | {}", x, source, a.reason, b.reason
            );
        }
    }

    /// Lowering any limit never raises a decision; adding a watermark never removes one.
    #[test]
    fn tightening_a_policy_never_loosens_a_decision((doc, asks) in case(), pick in any::<usize>(), cut in limits(), mark in any::<usize>()) {
        let before = Policy::from_document(doc.clone()).unwrap();
        let tighter = Policy::from_document(tighten(&doc, pick, &cut)).unwrap();
        let marked = Policy::from_document(add_watermark(&doc, mark)).unwrap();
        for ask in &asks {
            let (a, b, c) = (decide(&before, ask), decide(&tighter, ask), decide(&marked, ask));
            prop_assert!(!b.allowed || a.allowed, "tightening allowed a denied request: {}", b.reason);
            prop_assert!(decided_limit(&b) <= decided_limit(&a), "tightening raised {:?} to {:?}: {}", a.limit, b.limit, b.reason);
            prop_assert!(!c.allowed || a.allowed, "a watermark allowed a denied request: {}", c.reason);
            prop_assert!(!(a.allowed && c.allowed && a.watermark) || c.watermark, "a watermark removed one: {}", c.reason);
        }
    }

    /// A revoked, expired or unverified share always denies, whatever else holds.
    #[test]
    fn bad_shares_always_deny((doc, asks) in case(), which in any::<usize>(), how in 0u8..3) {
        prop_assume!(!doc.shares.is_empty());
        let mut doc = doc;
        let i = which % doc.shares.len();
        match how {
            0 => doc.shares[i].revoked = true,
            1 => doc.shares[i].expires_at = Some(now() - Duration::seconds(1)),
            _ => doc.shares[i].verified = false,
        }
        let policy = Policy::from_document(doc.clone()).unwrap();
        let share = &doc.shares[i];
        for ask in &asks {
            let ask = Ask { principal: Principal::Share { share: share.id.clone(), email: share.email.clone() }, ..ask.clone() };
            let d = decide(&policy, &ask);
            prop_assert!(!d.allowed, "bad share admitted: {}", d.reason);
        }
    }
}

/// `doc` with node `x` made native and given `source`'s settings.
fn copy_settings(doc: &PolicyDocument, x: &str, source: &Collection) -> PolicyDocument {
    let mut doc = doc.clone();
    visit_mut(&mut doc.collections, &mut |c| {
        if c.id == x {
            c.inherit = Some(InheritMode::Native);
            c.visibility = Some(source.visibility.unwrap_or(Visibility::WithPermission));
            c.access = Some(source.access.unwrap_or(Access::People));
            c.password_sha256 = source.password_sha256.clone();
            c.download = Some(source.download.unwrap_or(DownloadLimits::NOTHING));
            c.invited = source.invited.clone();
            c.watermark = source.watermark;
        }
    });
    doc
}

/// `doc` with one node's (or role's) limits cut type by type.
fn tighten(doc: &PolicyDocument, pick: usize, cut: &DownloadLimits) -> PolicyDocument {
    let mut doc = doc.clone();
    let lower = |d: &DownloadLimits| DownloadLimits {
        image: d.image.min(cut.image),
        video: d.video.min(cut.video),
        audio: d.audio && cut.audio,
        other: d.other && cut.other,
    };
    let n = count_nodes(&doc.collections);
    if pick % 2 == 0 {
        let role = doc.roles.values_mut().nth(pick / 2 % ROLES.len()).unwrap();
        role.download = Some(role.download.as_ref().map_or(*cut, lower));
    } else {
        let target = format!("n{}", pick / 2 % n);
        visit_mut(&mut doc.collections, &mut |c| {
            if c.id == target {
                c.download = c.download.as_ref().map(lower);
            }
        });
    }
    doc
}

/// `doc` with a watermark asked for by one role, node or share.
fn add_watermark(doc: &PolicyDocument, pick: usize) -> PolicyDocument {
    let mut doc = doc.clone();
    let n = count_nodes(&doc.collections);
    match pick % 3 {
        0 => doc.roles.values_mut().nth(pick / 3 % ROLES.len()).unwrap().watermark = true,
        1 => {
            let target = format!("n{}", pick / 3 % n);
            visit_mut(&mut doc.collections, &mut |c| {
                if c.id == target {
                    c.watermark = Some(true);
                }
            });
        }
        _ if !doc.shares.is_empty() => {
            let i = pick / 3 % doc.shares.len();
            doc.shares[i].watermark = true;
        }
        _ => {}
    }
    doc
}

fn visit_mut(list: &mut [Collection], f: &mut impl FnMut(&mut Collection)) {
    for c in list {
        f(c);
        visit_mut(&mut c.children, f);
    }
}

/// The generator reaches every rule and every kind of delivery, so the
/// properties above are not passing on denials alone.
#[test]
fn random_cases_reach_every_rule_and_delivery() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    use rendition::policy::Rule;
    use std::collections::BTreeMap;

    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::deterministic_rng(Default::default()));
    let mut rules: BTreeMap<String, usize> = BTreeMap::new();
    let (mut allowed, mut total, mut marked) = (0, 0, 0);
    let mut deliveries = BTreeMap::new();
    for _ in 0..3_000 {
        let (doc, asks) = case().new_tree(&mut runner).unwrap().current();
        let policy = Policy::from_document(doc).unwrap();
        for ask in &asks {
            let d = decide(&policy, ask);
            total += 1;
            allowed += usize::from(d.allowed);
            marked += usize::from(d.watermark);
            *rules.entry(format!("{:?}", d.rule)).or_default() += 1;
            if let Some(delivery) = d.delivery {
                *deliveries.entry(format!("{delivery:?}")).or_insert(0) += 1;
            }
        }
    }
    let all_rules = [
        Rule::Staff,
        Rule::UnknownUser,
        Rule::Visibility,
        Rule::Access,
        Rule::Share,
        Rule::Password,
        Rule::Restricted,
        Rule::Purpose,
        Rule::Watermark,
        Rule::Limit,
        Rule::OnExceed,
    ];
    for rule in all_rules {
        assert!(
            rules.contains_key(&format!("{rule:?}")),
            "no case decided by {rule:?}: {rules:?}"
        );
    }
    assert_eq!(deliveries.len(), 3, "{deliveries:?}");
    assert!(allowed * 8 > total, "only {allowed} of {total} allowed: {rules:?}");
    assert!(marked * 10 > allowed, "only {marked} of {allowed} watermarked");
}
