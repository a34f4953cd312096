//! Checks a policy document and builds its tree. Every problem is collected
//! (not just the first) and names its place, e.g.
//! `collections[0].children[1] (g-launch).invited[0].role`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use super::document::{Collection, InheritMode, NodeKind, PolicyDocument};
use super::tree::{NodeIdx, Tree};

/// One thing wrong (or worth a warning) in a policy, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub place: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// What validation produced: the tree and the groups, or the problems.
pub struct Checked {
    pub tree: Tree,
    pub index: HashMap<String, NodeIdx>,
    pub groups: BTreeSet<String>,
    pub warnings: Vec<Problem>,
}

/// A collection entry before it is placed in the tree.
struct Entry<'a> {
    doc: &'a Collection,
    place: String,
    /// The entry it is nested in, or (for top-level entries) its `parent` id.
    parent: Parent,
}

enum Parent {
    Root,
    Nested(usize),
    Named(String),
}

#[derive(Default)]
struct Report {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Report {
    fn error(&mut self, place: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem { place: place.into(), message: message.into() });
    }
    fn warn(&mut self, place: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem { place: place.into(), message: message.into() });
    }
}

/// Validates `doc`; on failure returns every error found.
pub fn check(doc: &PolicyDocument) -> Result<Checked, Vec<Problem>> {
    let mut report = Report::default();
    let groups = known_groups(doc);
    check_roles_and_users(doc, &mut report);
    check_proxy_and_watermark(doc, &mut report);

    let entries = flatten(&doc.collections);
    let index = index_entries(&entries, &mut report);
    let parents = resolve_parents(&entries, &index, &mut report);
    for (i, entry) in entries.iter().enumerate() {
        check_entry(doc, &groups, entry, parents[i].is_none(), &mut report);
    }
    check_shares(doc, &index, &mut report);
    let order = parents_first(&entries, &parents, &mut report);

    if !report.errors.is_empty() {
        return Err(report.errors);
    }
    let mut tree = Tree::default();
    let mut placed: Vec<Option<NodeIdx>> = vec![None; entries.len()];
    for i in order {
        let parent = parents[i].map(|p| placed[p].expect("parents come first"));
        placed[i] = Some(tree.push(entries[i].doc, mode_of(entries[i].doc, parent.is_none()), parent));
    }
    let index = tree.nodes.iter().enumerate().map(|(i, n)| (n.id.clone(), i)).collect();
    Ok(Checked { tree, index, groups, warnings: report.warnings })
}

fn mode_of(doc: &Collection, is_root: bool) -> InheritMode {
    doc.inherit.unwrap_or(if is_root { InheritMode::Native } else { InheritMode::Inherit })
}

/// Groups are those declared at the top plus those any user is in.
fn known_groups(doc: &PolicyDocument) -> BTreeSet<String> {
    doc.groups.iter().chain(doc.users.values().flat_map(|u| &u.groups)).cloned().collect()
}

fn check_roles_and_users(doc: &PolicyDocument, report: &mut Report) {
    for (name, role) in &doc.roles {
        if role.staff && role.download.is_some() {
            report.warn(format!("roles.{name}.download"), "ignored: a staff role may download anything");
        }
    }
    for (id, user) in &doc.users {
        if !doc.roles.contains_key(&user.role) {
            report.error(format!("users.{id}.role"), format!("`{}` is not a role", user.role));
        }
    }
    let mut declared = BTreeSet::new();
    for (i, group) in doc.groups.iter().enumerate() {
        if !declared.insert(group) {
            report.error(format!("groups[{i}]"), format!("duplicate id `{group}`"));
        }
    }
}

fn check_proxy_and_watermark(doc: &PolicyDocument, report: &mut Report) {
    if doc.proxy.image == 0 || doc.proxy.video == 0 {
        report.error("proxy", "proxy sizes must be at least 1 px");
    }
    let w = &doc.watermark;
    if !(0.0..=1.0).contains(&w.opacity) {
        report.error("watermark.opacity", format!("{} is not between 0 and 1", w.opacity));
    }
    if w.text.trim().is_empty() && w.logo.is_none() {
        report.error("watermark", "needs a text or a logo");
    }
}

/// Lists every entry, nested ones after their parents, with its place.
fn flatten(top: &[Collection]) -> Vec<Entry<'_>> {
    let mut out = Vec::new();
    for (i, doc) in top.iter().enumerate() {
        let parent = doc.parent.clone().map_or(Parent::Root, Parent::Named);
        push_entry(&mut out, doc, format!("collections[{i}]"), parent);
    }
    out
}

fn push_entry<'a>(out: &mut Vec<Entry<'a>>, doc: &'a Collection, at: String, parent: Parent) {
    let me = out.len();
    out.push(Entry { doc, place: format!("{at} ({})", doc.id), parent });
    for (i, child) in doc.children.iter().enumerate() {
        push_entry(out, child, format!("{at}.children[{i}]"), Parent::Nested(me));
    }
}

fn index_entries(entries: &[Entry], report: &mut Report) -> HashMap<String, usize> {
    let mut index = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let id = &entry.doc.id;
        if id.trim().is_empty() {
            report.error(&entry.place, "id must not be empty");
        } else if let Some(&first) = index.get(id) {
            let first: &Entry = &entries[first];
            report.error(&entry.place, format!("duplicate id `{id}` (first at {})", first.place));
        } else {
            index.insert(id.clone(), i);
        }
    }
    index
}

fn resolve_parents(entries: &[Entry], index: &HashMap<String, usize>, report: &mut Report) -> Vec<Option<usize>> {
    entries
        .iter()
        .map(|entry| match &entry.parent {
            Parent::Root => None,
            Parent::Nested(p) => {
                if entry.doc.parent.is_some() {
                    report.error(format!("{}.parent", entry.place), "only top-level entries name a parent");
                }
                Some(*p)
            }
            Parent::Named(id) => {
                let found = index.get(id).copied();
                if found.is_none() {
                    report.error(format!("{}.parent", entry.place), format!("`{id}` is not a collection"));
                }
                found
            }
        })
        .collect()
}

fn check_entry(doc: &PolicyDocument, groups: &BTreeSet<String>, entry: &Entry, is_root: bool, report: &mut Report) {
    let node = entry.doc;
    let place = &entry.place;
    match (mode_of(node, is_root), is_root) {
        (InheritMode::InheritAndNative, _) if node.kind != NodeKind::Gallery => report.error(
            format!("{place}.inherit"),
            "inherit_and_native is for galleries only; a collection inherits or is native",
        ),
        (InheritMode::Inherit | InheritMode::InheritAndNative, true) => {
            report.error(format!("{place}.inherit"), "a top-level node has nothing to inherit from: it must be native")
        }
        (InheritMode::Inherit, false) => warn_ignored(entry, report),
        (InheritMode::InheritAndNative, false) => warn_ignored_in_mixed(entry, report),
        (InheritMode::Native, _) => {}
    }
    if let Some(hash) = &node.password_sha256
        && !(hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()))
    {
        report.error(format!("{place}.password_sha256"), "must be 64 hexadecimal digits");
    }
    for (i, inv) in node.invited.iter().enumerate() {
        let at = format!("{place}.invited[{i}]");
        if !doc.roles.contains_key(&inv.role) {
            report.error(format!("{at}.role"), format!("`{}` is not a role", inv.role));
        }
        match (&inv.user, &inv.group) {
            (Some(u), None) if !doc.users.contains_key(u) => {
                report.error(format!("{at}.user"), format!("`{u}` is not a user"))
            }
            (None, Some(g)) if !groups.contains(g) => {
                report.error(format!("{at}.group"), format!("`{g}` is not a group (no user is in it)"))
            }
            (Some(_), None) | (None, Some(_)) => {}
            _ => report.error(at, "name exactly one of `user` or `group`"),
        }
    }
}

/// An inheriting node takes everything from above: say so when it sets its own.
fn warn_ignored(entry: &Entry, report: &mut Report) {
    let n = entry.doc;
    let set: Vec<&str> = [
        ("visibility", n.visibility.is_some()),
        ("access", n.access.is_some()),
        ("password_sha256", n.password_sha256.is_some()),
        ("download", n.download.is_some()),
        ("invited", !n.invited.is_empty()),
        ("watermark", n.watermark.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, is_set)| is_set.then_some(name))
    .collect();
    if !set.is_empty() {
        report.warn(
            &entry.place,
            format!(
                "ignored: {} (an `inherit` node takes these from above; use native, or inherit_and_native on a gallery)",
                set.join(", ")
            ),
        );
    }
}

fn warn_ignored_in_mixed(entry: &Entry, report: &mut Report) {
    let n = entry.doc;
    if n.visibility.is_some() || n.access.is_some() || n.password_sha256.is_some() {
        report.warn(&entry.place, "ignored: visibility, access and password are inherited in inherit_and_native");
    }
    if n.download.is_some() && n.invited.is_empty() {
        report.warn(&entry.place, "its download applies to its own invitations only, and it invites no one");
    }
}

fn check_shares(doc: &PolicyDocument, index: &HashMap<String, usize>, report: &mut Report) {
    let mut seen = BTreeSet::new();
    for (i, share) in doc.shares.iter().enumerate() {
        let place = format!("shares[{i}] ({})", share.id);
        if share.id.trim().is_empty() {
            report.error(&place, "id must not be empty");
        } else if !seen.insert(&share.id) {
            report.error(&place, format!("duplicate id `{}`", share.id));
        }
        if !share.email.contains('@') {
            report.error(format!("{place}.email"), format!("`{}` is not an e-mail address", share.email));
        }
        if share.scope.is_empty() {
            report.error(format!("{place}.scope"), "names no collection");
        }
        for (j, id) in share.scope.iter().enumerate() {
            if !index.contains_key(id) {
                report.error(format!("{place}.scope[{j}]"), format!("`{id}` is not a collection"));
            }
        }
    }
}

/// Orders entries parents first; reports each cycle of `parent` links once.
fn parents_first(entries: &[Entry], parents: &[Option<usize>], report: &mut Report) -> Vec<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; entries.len()];
    let mut order = Vec::with_capacity(entries.len());
    for start in 0..entries.len() {
        let mut path = Vec::new();
        let mut at = Some(start);
        while let Some(i) = at {
            match mark[i] {
                Mark::Done => break,
                Mark::Open => {
                    let from = path.iter().position(|&p| p == i).unwrap_or(0);
                    let ids: Vec<&str> = path[from..].iter().map(|&p: &usize| entries[p].doc.id.as_str()).collect();
                    report.error(&entries[i].place, format!("parent links form a cycle: {} → {}", ids.join(" → "), ids[0]));
                    break;
                }
                Mark::New => {
                    mark[i] = Mark::Open;
                    path.push(i);
                    at = parents[i];
                }
            }
        }
        // Walked child → root; the tree needs root → child.
        for &i in path.iter().rev() {
            mark[i] = Mark::Done;
            order.push(i);
        }
    }
    order
}
