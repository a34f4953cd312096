//! No two files of `src/` import each other, directly or round a circle
//! (a folder's `mod.rs` and its own files excepted: the root re-exports
//! what its children define). Read from the `use crate::…`, `use super::…`
//! and `crate::…` paths of each file outside comments and its test module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::repo_file;

/// Every `.rs` file under `src/` and its module path (`rendition::probe`).
fn modules() -> BTreeMap<Vec<String>, PathBuf> {
    let src = repo_file("src");
    let mut files = BTreeMap::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&src).unwrap().with_extension("");
                let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                    parts.pop();
                }
                files.insert(parts, path);
            }
        }
    }
    files
}

/// The file a module path lands in: the longest prefix that is a file.
fn file_of<'a>(modules: &'a BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<&'a PathBuf> {
    (1..=path.len()).rev().find_map(|n| modules.get(&path[..n]))
}

/// The module paths a file's code names.
fn named(text: &str, me: &[String]) -> Vec<Vec<String>> {
    let code: String = text
        .split("#[cfg(test)]")
        .next()
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    // `super` names the parent module, for a folder's root as for a file.
    let parent: Vec<String> = me[..me.len().saturating_sub(1)].to_vec();
    let mut paths = Vec::new();
    for (start, base) in [("crate::", Vec::new()), ("super::", parent)] {
        for (at, _) in code.match_indices(start) {
            if at > 0 && code.as_bytes()[at - 1].is_ascii_alphanumeric() {
                continue;
            }
            let rest = &code[at + start.len()..];
            let head: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut path = base.clone();
            path.extend(head.split("::").filter(|p| !p.is_empty()).map(str::to_string));
            // `use super::{a, b}`: each name in the braces.
            let after = &rest[head.len()..];
            let braces = (head.is_empty() || head.ends_with("::"))
                .then(|| after.strip_prefix('{').and_then(|l| l.split('}').next()))
                .flatten();
            if let Some(list) = braces {
                for item in list.split(',') {
                    let first = item.trim().split("::").next().unwrap_or("").trim();
                    if !first.is_empty() && first != "self" {
                        let mut each = path.clone();
                        each.push(first.to_string());
                        paths.push(each);
                    }
                }
                continue;
            }
            paths.push(path);
        }
    }
    paths
}

/// The import graph between files, without edges into a folder's own root.
fn graph() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let modules = modules();
    let mut edges = BTreeMap::new();
    for (me, file) in &modules {
        let is_root = file.file_name().is_some_and(|n| n == "mod.rs");
        let text = std::fs::read_to_string(file).unwrap();
        let mut to = BTreeSet::new();
        for path in named(&text, me) {
            if let Some(target) = file_of(&modules, &path) {
                let is_own_root = target.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs")
                    && file.starts_with(target.parent().unwrap());
                if target != file && !is_own_root && !(is_root && target.starts_with(file.parent().unwrap())) {
                    to.insert(target.clone());
                }
            }
        }
        edges.insert(file.clone(), to);
    }
    edges
}

/// A circle through `start`, if there is one.
fn circle(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>, start: &Path) -> Option<Vec<PathBuf>> {
    let mut stack = vec![(start.to_path_buf(), vec![start.to_path_buf()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in &edges[&at] {
            if next == start {
                return Some(path);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_file_of_src_imports_another_round_a_circle() {
    let edges = graph();
    assert!(edges.len() > 100, "src/ was not read: {} files", edges.len());
    let circles: Vec<String> = edges
        .keys()
        .filter_map(|file| circle(&edges, file))
        .map(|c| {
            let names: Vec<String> = c
                .iter()
                .map(|p| p.strip_prefix(repo_file("src")).unwrap().display().to_string())
                .collect();
            names.join(" → ")
        })
        .collect();
    assert!(circles.is_empty(), "import circles:\n{}", circles.join("\n"));
}

#[test]
fn a_circle_is_found_when_there_is_one() {
    let (a, b, c) = (PathBuf::from("a.rs"), PathBuf::from("b.rs"), PathBuf::from("c.rs"));
    let mut edges = BTreeMap::new();
    edges.insert(a.clone(), BTreeSet::from([b.clone()]));
    edges.insert(b.clone(), BTreeSet::from([c.clone()]));
    edges.insert(c.clone(), BTreeSet::from([a.clone()]));
    assert_eq!(circle(&edges, &a), Some(vec![a.clone(), b.clone(), c.clone()]));
    edges.insert(c.clone(), BTreeSet::new());
    assert_eq!(circle(&edges, &a), None);
}
