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
        self.errors.push(Problem {
            place: place.into(),
            message: message.into(),
        });
    }
    fn warn(&mut self, place: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem {
            place: place.into(),
            message: message.into(),
        });
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
    check_presets(doc, &mut report);
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
    Ok(Checked {
        tree,
        index,
        groups,
        warnings: report.warnings,
    })
}

fn mode_of(doc: &Collection, is_root: bool) -> InheritMode {
    doc.inherit.unwrap_or(if is_root {
        InheritMode::Native
    } else {
        InheritMode::Inherit
    })
}

/// Groups are those declared at the top plus those any user is in.
fn known_groups(doc: &PolicyDocument) -> BTreeSet<String> {
    doc.groups
        .iter()
        .chain(doc.users.values().flat_map(|u| &u.groups))
        .cloned()
        .collect()
}

/// A name people and tools can write and read back: not blank, no space
/// at either end, no control character. (`policy diff` asks roles and
/// groups as users whose names start with a space: no real name can be one.)
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.trim() == name && !name.chars().any(char::is_control)
}

fn check_names(doc: &PolicyDocument, report: &mut Report) {
    let mut named: Vec<(&str, String)> = Vec::new();
    named.extend(doc.roles.keys().map(|n| ("roles", n.clone())));
    named.extend(doc.users.keys().map(|n| ("users", n.clone())));
    named.extend(known_groups(doc).into_iter().map(|n| ("groups", n)));
    for (kind, name) in named {
        if !is_plain_name(&name) {
            let message = "a name may not be blank, start or end with a space, or hold a control character";
            report.error(format!("{kind}.{name:?}"), message);
        }
    }
}

/// Presets and the role and share lists that name them
/// (docs/contract.md#presets).
fn check_presets(doc: &PolicyDocument, report: &mut Report) {
    let roles = doc
        .roles
        .iter()
        .map(|(name, role)| (format!("roles.{name}.presets"), role.presets.as_ref()));
    let shares = (doc.shares.iter()).map(|share| (format!("shares.{}.presets", share.id), share.presets.as_ref()));
    let lists: Vec<_> = roles.chain(shares).collect();
    let all_held = !doc.roles.is_empty() && doc.roles.values().all(|r| r.staff || r.presets.is_some());
    let (errors, warnings) = super::preset::problems(&doc.presets, &lists, all_held);
    for name in doc.presets.keys().filter(|n| !is_plain_name(n)) {
        report.error(
            format!("presets.{name:?}"),
            "a name may not be blank, start or end with a space, or hold a control character",
        );
    }
    errors
        .into_iter()
        .for_each(|(place, message)| report.error(place, message));
    warnings
        .into_iter()
        .for_each(|(place, message)| report.warn(place, message));
}

fn check_roles_and_users(doc: &PolicyDocument, report: &mut Report) {
    check_names(doc, report);
    for (name, role) in &doc.roles {
        if role.staff && role.download.is_some() {
            report.warn(
                format!("roles.{name}.download"),
                "ignored: a staff role may download anything",
            );
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
    // A domain that can never match would mark nobody's shares as inside.
    for (i, domain) in doc.forensic.domains.iter().enumerate() {
        if domain.is_empty()
            || domain.contains('@')
            || domain.starts_with('.')
            || domain.chars().any(char::is_whitespace)
        {
            report.error(
                format!("forensic.domains[{i}]"),
                format!("{domain:?} is not an e-mail domain (write `brand.example`)"),
            );
        }
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
    out.push(Entry {
        doc,
        place: format!("{at} ({})", doc.id),
        parent,
    });
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
                    report.error(
                        format!("{}.parent", entry.place),
                        "only top-level entries name a parent",
                    );
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
        (InheritMode::Inherit | InheritMode::InheritAndNative, true) => report.error(
            format!("{place}.inherit"),
            "a top-level node has nothing to inherit from: it must be native",
        ),
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
            (None, Some(g)) if !groups.contains(g) => report.error(
                format!("{at}.group"),
                format!("`{g}` is not a group (no user is in it)"),
            ),
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
        report.warn(
            &entry.place,
            "ignored: visibility, access and password are inherited in inherit_and_native",
        );
    }
    if n.download.is_some() && n.invited.is_empty() {
        report.warn(
            &entry.place,
            "its download applies to its own invitations only, and it invites no one",
        );
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
            report.error(
                format!("{place}.email"),
                format!("`{}` is not an e-mail address", share.email),
            );
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
                    let ids: Vec<&str> = path[from..]
                        .iter()
                        .map(|&p: &usize| entries[p].doc.id.as_str())
                        .collect();
                    report.error(
                        &entries[i].place,
                        format!("parent links form a cycle: {} → {}", ids.join(" → "), ids[0]),
                    );
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

#[cfg(test)]
mod tests {
    use crate::policy::{DocFormat, Policy, PolicyError};

    /// The problems of an invalid policy, as "place: message" lines.
    fn problems(yaml: &str) -> Vec<String> {
        match Policy::parse(yaml, DocFormat::Yaml) {
            Err(PolicyError::Invalid(problems)) => problems.iter().map(|p| p.to_string()).collect(),
            Err(other) => vec![other.to_string()],
            Ok(_) => Vec::new(),
        }
    }

    fn assert_problem(yaml: &str, place: &str, words: &str) {
        let found = problems(yaml);
        assert!(
            found.iter().any(|p| p.starts_with(place) && p.contains(words)),
            "want `{place}` … `{words}`, got {found:#?}"
        );
    }

    const HEAD: &str = "version: 1\nroles: { viewer: {} }\nusers: { u-1: { role: viewer, groups: [press] } }\n";

    #[test]
    fn duplicate_ids_are_named_with_both_places() {
        let yaml = format!("{HEAD}collections:\n  - id: c-a\n    children: [ {{ id: c-a }} ]\n");
        assert_problem(
            &yaml,
            "collections[0].children[0] (c-a)",
            "duplicate id `c-a` (first at collections[0] (c-a))",
        );
        let yaml = format!(
            "{HEAD}collections: [ {{ id: c-a }} ]\nshares:\n  - {{ id: s, email: a@b, scope: [c-a], kind: proxy }}\n  - {{ id: s, email: a@b, scope: [c-a], kind: proxy }}\n"
        );
        assert_problem(&yaml, "shares[1] (s)", "duplicate id `s`");
        let json = r#"{"version": 1, "roles": {"a": {}, "a": {"staff": true}}}"#;
        let err = Policy::parse(json, DocFormat::Json).unwrap_err().to_string();
        assert!(err.contains("roles") && err.contains("duplicate id `a`"), "{err}");
    }

    #[test]
    fn unknown_references_are_named() {
        let yaml = format!(
            "{HEAD}collections:\n  - id: c-a\n    invited:\n      - {{ user: u-9, role: viewer }}\n      - {{ group: sales, role: viewer }}\n      - {{ group: press, role: boss }}\n      - {{ user: u-1, group: press, role: viewer }}\n"
        );
        assert_problem(&yaml, "collections[0] (c-a).invited[0].user", "`u-9` is not a user");
        assert_problem(&yaml, "collections[0] (c-a).invited[1].group", "`sales` is not a group");
        assert_problem(&yaml, "collections[0] (c-a).invited[2].role", "`boss` is not a role");
        assert_problem(
            &yaml,
            "collections[0] (c-a).invited[3]",
            "exactly one of `user` or `group`",
        );
        assert_problem(
            "version: 1\nusers: { u: { role: boss } }\n",
            "users.u.role",
            "`boss` is not a role",
        );
    }

    #[test]
    fn declared_groups_need_no_members() {
        let yaml = format!(
            "{HEAD}groups: [sales]\ncollections:\n  - {{ id: c-a, invited: [ {{ group: sales, role: viewer }} ] }}\n"
        );
        assert_eq!(problems(&yaml), Vec::<String>::new());
    }

    #[test]
    fn inherit_and_native_is_for_galleries_only() {
        let yaml =
            format!("{HEAD}collections:\n  - id: c-a\n    children: [ {{ id: c-b, inherit: inherit_and_native }} ]\n");
        assert_problem(&yaml, "collections[0].children[0] (c-b).inherit", "for galleries only");
        let ok = format!(
            "{HEAD}collections:\n  - id: c-a\n    children: [ {{ id: g-b, kind: gallery, inherit: inherit_and_native }} ]\n"
        );
        assert_eq!(problems(&ok), Vec::<String>::new());
    }

    #[test]
    fn a_top_level_node_cannot_inherit() {
        assert_problem(
            &format!("{HEAD}collections: [ {{ id: c-a, inherit: inherit }} ]\n"),
            "collections[0] (c-a).inherit",
            "must be native",
        );
    }

    #[test]
    fn parent_links_must_name_a_node_and_form_no_cycle() {
        let yaml = format!(
            "{HEAD}collections:\n  - {{ id: c-a, parent: c-c }}\n  - {{ id: c-b, parent: c-a }}\n  - {{ id: c-c, parent: c-b }}\n  - {{ id: c-d, parent: c-zz }}\n"
        );
        let found = problems(&yaml);
        let cycles: Vec<&String> = found.iter().filter(|p| p.contains("cycle")).collect();
        assert_eq!(cycles.len(), 1, "one cycle, reported once: {found:#?}");
        assert!(cycles[0].contains("c-a → c-c → c-b → c-a"), "{found:#?}");
        assert_problem(&yaml, "collections[3] (c-d).parent", "`c-zz` is not a collection");
    }

    #[test]
    fn a_flat_list_builds_the_same_tree_as_nesting() {
        let flat = format!(
            "{HEAD}collections:\n  - {{ id: g-b, kind: gallery, parent: c-a }}\n  - {{ id: c-a, visibility: everyone }}\n"
        );
        let policy = Policy::parse(&flat, DocFormat::Yaml).unwrap();
        let tree = policy.tree();
        let b = policy.node_idx("g-b").unwrap();
        assert_eq!(tree.id(tree.node(b).parent.unwrap()), "c-a");
        assert_eq!(
            tree.node(b).effective.visibility,
            crate::policy::document::Visibility::Everyone
        );
    }

    #[test]
    fn a_share_scope_must_name_collections() {
        let yaml = format!(
            "{HEAD}collections: [ {{ id: c-a }} ]\nshares:\n  - {{ id: s-1, email: a@b, scope: [], kind: proxy }}\n  - {{ id: s-2, email: a@b, scope: [c-zz], kind: proxy }}\n  - {{ id: s-3, email: nobody, scope: [c-a], kind: proxy }}\n"
        );
        assert_problem(&yaml, "shares[0] (s-1).scope", "names no collection");
        assert_problem(&yaml, "shares[1] (s-2).scope[0]", "`c-zz` is not a collection");
        assert_problem(&yaml, "shares[2] (s-3).email", "not an e-mail address");
    }

    #[test]
    fn values_are_checked() {
        let yaml = format!(
            "{HEAD}collections: [ {{ id: c-a, password_sha256: abc }} ]\nwatermark: {{ opacity: 1.5 }}\nproxy: {{ image: 0 }}\n\
             forensic: {{ domains: [brand.example, '@brand.example'] }}\n"
        );
        assert_problem(&yaml, "forensic.domains[1]", "not an e-mail domain");
        assert_problem(&yaml, "collections[0] (c-a).password_sha256", "64 hexadecimal digits");
        assert_problem(&yaml, "watermark.opacity", "not between 0 and 1");
        assert_problem(&yaml, "proxy", "at least 1 px");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let yaml =
            "version: 1\nusers: { u: { role: boss } }\ncollections: [ { id: c-a, inherit: inherit }, { id: c-a } ]\n";
        assert_eq!(problems(yaml).len(), 3, "{:#?}", problems(yaml));
    }

    #[test]
    fn unknown_and_mistyped_fields_name_their_path() {
        let err = Policy::parse(
            "version: 1\ncollections:\n  - id: c-a\n    visibilty: everyone\n",
            DocFormat::Yaml,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("collections[0]") && text.contains("visibilty"), "{text}");
        let err = Policy::parse(
            r#"{"version": 1, "shares": [{"id": "s", "email": "a@b", "scope": ["c"], "kind": "gift"}]}"#,
            DocFormat::Json,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("shares[0].kind") && err.contains("gift"), "{err}");
    }

    #[test]
    fn names_with_spaces_at_the_ends_or_control_characters_are_refused() {
        for bad in [
            "version: 1\nroles: { \" no role\": { staff: true } }\n",
            "version: 1\nroles: { r: {} }\nusers: { \" role r\": { role: r } }\n",
            "version: 1\nroles: { r: {} }\nusers: { u: { role: r, groups: [\"g\\t\"] } }\n",
        ] {
            let e = Policy::parse(bad, crate::policy::DocFormat::Yaml).unwrap_err();
            assert!(e.to_string().contains("may not be blank"), "{bad}: {e}");
        }
    }
}
