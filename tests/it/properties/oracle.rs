//! A naive reading of the policy document: the tree walked node by node,
//! not the resolver's own precomputed settings. The invariants and the
//! inheritance property check the resolver's decisions against it.
use std::collections::HashMap;

use rendition::job::{Media, Principal, Rendition};
use rendition::policy::document::{Collection, InheritMode, PolicyDocument};
use rendition::policy::{DownloadLimits, Limit};

use super::asks::Ask;

pub(super) fn count_nodes(list: &[Collection]) -> usize {
    list.iter().map(|c| 1 + count_nodes(&c.children)).sum()
}

/// Every node by id, without its children, with its parent's id.
pub(super) fn index(doc: &PolicyDocument) -> HashMap<String, (Collection, Option<String>)> {
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

pub(super) fn mode(nodes: &HashMap<String, (Collection, Option<String>)>, id: &str) -> InheritMode {
    let (c, parent) = &nodes[id];
    c.inherit.unwrap_or(if parent.is_none() {
        InheritMode::Native
    } else {
        InheritMode::Inherit
    })
}

/// The nearest node at or above `id` that does not inherit at all.
pub(super) fn native_source(nodes: &HashMap<String, (Collection, Option<String>)>, id: &str) -> String {
    let mut at = id.to_string();
    while mode(nodes, &at) != InheritMode::Native {
        at = nodes[&at].1.clone().expect("roots are native");
    }
    at
}

pub(super) fn is_within(nodes: &HashMap<String, (Collection, Option<String>)>, id: &str, top: &str) -> bool {
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
pub(super) fn largest_collection_limit(
    nodes: &HashMap<String, (Collection, Option<String>)>,
    id: &str,
    media: Media,
) -> Limit {
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

pub(super) fn limit_media(ask: &Ask) -> Media {
    if ask.request.rendition == Rendition::Poster {
        Media::Image
    } else {
        ask.asset.media
    }
}

pub(super) fn is_staff(doc: &PolicyDocument, p: &Principal) -> bool {
    matches!(p, Principal::User(u) if doc.users.get(u).is_some_and(|u| doc.roles[&u.role].staff))
}

/// Roles a user could hold anywhere: the team role and every invitation's.
pub(super) fn roles_of(
    doc: &PolicyDocument,
    nodes: &HashMap<String, (Collection, Option<String>)>,
    user: &str,
) -> Vec<String> {
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
