//! Strategies for random valid policies: up to eight nodes (nested or as a
//! flat list with `parent` links), random roles, users, groups and shares;
//! and `case`, a policy with several questions about it (see `asks`).

use chrono::Duration;
use proptest::prelude::*;
use rendition::policy::document::{
    Access, Collection, InheritMode, Invitation, Marks, NodeKind, PolicyDocument, ProxySize, PublishRight, Role, Share,
    ShareKind, ShareRight, User, Visibility, Watermark,
};
use rendition::policy::preset::{Fit, Preset};
use rendition::policy::{DownloadLimits, Limit};
use rendition::rendition::MetadataProfile;

use super::asks::{Ask, ask};
use super::now;
use rendition::policy::invariants::count_nodes;

pub(super) const ROLES: [&str; 5] = ["boss", "r0", "r1", "r2", "r3"];
pub(super) const USERS: usize = 6;
pub(super) const GROUPS: [&str; 2] = ["g0", "g1"];

fn limit() -> impl Strategy<Value = Limit> {
    prop_oneof![1 => Just(Limit::None), 2 => Just(Limit::Original), 3 => (1u32..5000).prop_map(Limit::Px)]
}

pub(super) fn limits() -> impl Strategy<Value = DownloadLimits> {
    // Audio: whole, none, or a proxy of 8–512 kb/s.
    let audio = prop_oneof![1 => Just(Limit::None), 2 => Just(Limit::Original), 1 => (8u32..=512).prop_map(Limit::Px)];
    let seconds = prop::option::weighted(0.2, 1u32..600);
    (limit(), limit(), audio, seconds, any::<bool>()).prop_map(|(image, video, audio, audio_seconds, other)| {
        DownloadLimits {
            image,
            video,
            audio,
            audio_seconds,
            other,
        }
    })
}

fn role(staff: bool) -> impl Strategy<Value = Role> {
    let share = prop::sample::select(vec![ShareRight::None, ShareRight::Proxy, ShareRight::Original]);
    let publish = prop::sample::select(vec![PublishRight::None, PublishRight::Generated, PublishRight::All]);
    (
        prop::option::of(limits()),
        share,
        publish,
        marks(),
        prop::bool::weighted(0.3),
    )
        .prop_map(move |(download, share, publish, watermark, manage_restricted)| Role {
            staff,
            download,
            share,
            publish,
            watermark,
            manage_restricted,
            presets: None,
            metadata: None,
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
    watermark: Marks,
}

fn share_spec() -> impl Strategy<Value = ShareSpec> {
    (
        prop::collection::vec(any::<usize>(), 1..3),
        any::<bool>(),
        prop::bool::weighted(0.8),
        prop::option::of(-10i64..30),
        prop::bool::weighted(0.2),
        marks(),
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

/// No mark most often; the visible one, the forensic one or both.
fn marks() -> impl Strategy<Value = Marks> {
    prop::sample::select(vec![
        Marks::None,
        Marks::None,
        Marks::Visible,
        Marks::Forensic,
        Marks::Both,
    ])
}

/// A random valid policy with presets `p0` (a long edge), `p1` (a cover
/// frame) and `p2` (a pad frame); some roles and shares are held to a few
/// of them.
pub(super) fn policy_doc() -> impl Strategy<Value = PolicyDocument> {
    let held = || prop::option::weighted(0.3, prop::sample::subsequence(vec!["p0", "p1", "p2", "p9"], 0..=2));
    let frame = || (1u32..5000, 1u32..5000);
    (
        policy_doc_without_presets(),
        (1u32..5000, frame(), frame()),
        prop::collection::vec(held(), ROLES.len()),
        prop::collection::vec(held(), 4),
        (prop::collection::vec(metadata(), ROLES.len() + 4 + 3), metadata()),
        (prop::collection::vec(marks(), 3), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(mut doc, (edge, (w1, h1), (w2, h2)), role_lists, share_lists, (held_to, default), forensic)| {
                let preset = |max_edge, frame: Option<(u32, u32, Fit)>| Preset {
                    max_edge,
                    width: frame.map(|f| f.0),
                    height: frame.map(|f| f.1),
                    fit: frame.map_or(Fit::Inside, |f| f.2),
                    format: Default::default(),
                    quality: None,
                    metadata: None,
                    colour: Default::default(),
                    print_profile: None,
                    dpi: None,
                    watermark: Marks::None,
                };
                doc.presets = [
                    ("p0", preset(Some(edge), None)),
                    ("p1", preset(None, Some((w1, h1, Fit::Cover)))),
                    ("p2", preset(None, Some((w2, h2, Fit::Pad)))),
                ]
                .into_iter()
                .map(|(name, p)| (name.to_string(), p))
                .collect();
                // `p9` is no preset: a list naming it is refused, so drop it.
                let list =
                    |l: Option<Vec<&str>>| l.map(|l| l.into_iter().filter(|n| *n != "p9").map(String::from).collect());
                for (role, l) in doc.roles.values_mut().zip(role_lists) {
                    role.presets = list(l);
                }
                for (share, l) in doc.shares.iter_mut().zip(share_lists) {
                    share.presets = list(l);
                }
                // Metadata profiles on some roles, shares and presets, and a
                // default now and then.
                let mut held_to = held_to.into_iter();
                for role in doc.roles.values_mut() {
                    role.metadata = held_to.next().flatten();
                }
                for share in doc.shares.iter_mut() {
                    share.metadata = held_to.next().flatten();
                }
                for preset in doc.presets.values_mut() {
                    preset.metadata = held_to.next().flatten();
                }
                doc.metadata.default = default;
                // Forensic marks on some presets; shares (all to
                // example.com) inside or outside the library's domains,
                // marked when outside unless the policy says not.
                let (preset_marks, domains, external_shares) = forensic;
                for (preset, marks) in doc.presets.values_mut().zip(preset_marks) {
                    preset.watermark = marks;
                }
                doc.forensic.domains = if domains {
                    vec!["example.com".into()]
                } else {
                    Vec::new()
                };
                doc.forensic.external_shares = external_shares;
                doc
            },
        )
}

fn metadata() -> impl Strategy<Value = Option<MetadataProfile>> {
    prop::option::weighted(
        0.3,
        prop::sample::select(vec![
            MetadataProfile::None,
            MetadataProfile::Rights,
            MetadataProfile::Public,
            MetadataProfile::All,
        ]),
    )
}

fn policy_doc_without_presets() -> impl Strategy<Value = PolicyDocument> {
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
            presets: None,
            metadata: None,
        })
        .collect();
    PolicyDocument {
        version: 1,
        epoch: 0,
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
        presets: Default::default(),
        metadata: Default::default(),
        forensic: Default::default(),
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

/// A policy and some questions about it.
pub(super) fn case() -> impl Strategy<Value = (PolicyDocument, Vec<Ask>)> {
    policy_doc().prop_flat_map(|doc| {
        let (nodes, shares) = (count_nodes(&doc.collections), doc.shares.len());
        (Just(doc), prop::collection::vec(ask(nodes, shares), 4))
    })
}
