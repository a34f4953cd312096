//! The collection tree after validation, with each node's effective settings
//! worked out once at load (inheritance is a property of the tree, not of a
//! request).

use super::document::{Access, Collection, InheritMode, Invitation, NodeKind, Visibility};
use super::limit::DownloadLimits;

/// A node's position in [`Tree::nodes`].
pub type NodeIdx = usize;

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    /// The mode after defaults (`native` at the top, `inherit` below).
    pub mode: InheritMode,
    pub parent: Option<NodeIdx>,
    pub effective: Effective,
}

/// The settings that apply at a node once inheritance is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    pub visibility: Visibility,
    pub access: Access,
    pub password_sha256: Option<String>,
    /// The limits for everyone admitted without a grant of this node's own.
    pub download: DownloadLimits,
    /// The nearest node (itself or an ancestor) whose native visibility,
    /// access and limits these are: named in reasons.
    pub source: NodeIdx,
    /// The node whose `watermark: true` applies, if any.
    pub watermark_from: Option<NodeIdx>,
    pub grants: Vec<Grant>,
}

/// An invitation in force at a node, with the limits it comes with.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub invitation: Invitation,
    pub download: DownloadLimits,
    /// The node that set `download`, named in reasons.
    pub download_from: NodeIdx,
    /// Where the invitation was written.
    pub node: NodeIdx,
}

impl Grant {
    /// Does this grant name the user, directly or through one of the groups?
    pub fn names(&self, user: &str, groups: &[String]) -> bool {
        match (&self.invitation.user, &self.invitation.group) {
            (Some(u), _) => u == user,
            (None, Some(g)) => groups.contains(g),
            (None, None) => false,
        }
    }
}

/// The validated tree: nodes stored parents first.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn node(&self, idx: NodeIdx) -> &Node {
        &self.nodes[idx]
    }

    pub fn id(&self, idx: NodeIdx) -> &str {
        &self.nodes[idx].id
    }

    /// Is `node` the node `top` or below it?
    pub fn is_within(&self, node: NodeIdx, top: NodeIdx) -> bool {
        self.ancestry(node).any(|n| n == top)
    }

    /// The node itself, then its parent, up to the root.
    pub fn ancestry(&self, node: NodeIdx) -> impl Iterator<Item = NodeIdx> + '_ {
        std::iter::successors(Some(node), |&n| self.nodes[n].parent)
    }

    /// Does `node` take its settings from `top` (it is `top`, or every node
    /// between them inherits)? Password holders reach only such nodes.
    pub fn inherits_from(&self, node: NodeIdx, top: NodeIdx) -> bool {
        for n in self.ancestry(node) {
            if n == top {
                return true;
            }
            if self.nodes[n].mode == InheritMode::Native {
                return false;
            }
        }
        false
    }

    /// Adds a node whose parent (if any) is already in the tree.
    pub fn push(&mut self, doc: &Collection, mode: InheritMode, parent: Option<NodeIdx>) -> NodeIdx {
        let idx = self.nodes.len();
        let effective = match (mode, parent) {
            (InheritMode::Inherit, Some(p)) => self.nodes[p].effective.clone(),
            (InheritMode::InheritAndNative, Some(p)) => inherit_and_native(&self.nodes[p].effective, doc, idx),
            // Validation refuses inheriting roots; a root is always native.
            _ => native(doc, idx),
        };
        self.nodes.push(Node {
            id: doc.id.clone(),
            kind: doc.kind,
            mode,
            parent,
            effective,
        });
        idx
    }
}

/// Defaults of a native node that leaves a setting out: only invited people,
/// nothing downloadable, which is the least a typo can open.
fn native(doc: &Collection, idx: NodeIdx) -> Effective {
    let download = doc.download.unwrap_or(DownloadLimits::NOTHING);
    Effective {
        visibility: doc.visibility.unwrap_or(Visibility::WithPermission),
        access: doc.access.unwrap_or(Access::People),
        password_sha256: doc.password_sha256.clone(),
        download,
        source: idx,
        watermark_from: doc.watermark.unwrap_or(false).then_some(idx),
        grants: own_grants(doc, (download, idx), idx),
    }
}

/// Inherited settings plus the gallery's own grants: its invitations, which
/// come with its own `download` (or the inherited one when it sets none).
/// A native `watermark: true` adds a watermark; nothing native removes one.
fn inherit_and_native(parent: &Effective, doc: &Collection, idx: NodeIdx) -> Effective {
    let mut effective = parent.clone();
    let download = match doc.download {
        Some(own) => (own, idx),
        None => (parent.download, parent.source),
    };
    effective.grants.extend(own_grants(doc, download, idx));
    if effective.watermark_from.is_none() && doc.watermark == Some(true) {
        effective.watermark_from = Some(idx);
    }
    effective
}

/// The node's invitations, each with the limits (and their origin) it grants.
fn own_grants(doc: &Collection, (download, download_from): (DownloadLimits, NodeIdx), idx: NodeIdx) -> Vec<Grant> {
    doc.invited
        .iter()
        .map(|invitation| Grant {
            invitation: invitation.clone(),
            download,
            download_from,
            node: idx,
        })
        .collect()
}
