//! The docs cannot rot. Every setting the code reads is in the table of
//! docs/operating.md#configuration and nothing else is; every error code
//! is in docs/contract.md#error-codes and in result.schema.json; every
//! relative link and anchor in README.md and docs/ resolves, and so does
//! every docs/ page a comment in the code cites; the contract's example
//! job validates; prose lines stay under 200 characters; and nothing cites
//! a document outside the repository.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rendition::error::ErrorCode;

use crate::common::repo_file;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md and every page of docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![repo_file("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo_file("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(docs.len() >= 8, "docs/ has lost pages: {docs:?}");
    pages.extend(docs);
    pages
}

/// The lines of a page outside fenced code blocks, numbered from 1.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            lines.push((i + 1, line));
        }
    }
    lines
}

/// GitHub's anchor for a heading: lower case, spaces to hyphens, other
/// punctuation dropped; a repeated heading gets `-1`, `-2`, ….
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (_, line) in prose(text) {
        let Some(title) = line.strip_prefix('#').map(|t| t.trim_start_matches('#').trim()) else {
            continue;
        };
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while !seen.insert(unique.clone()) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
    }
    seen
}

/// `(line, target)` of every `[text](target)` outside code blocks.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push((n, after[..end].to_string()));
            rest = &after[end..];
        }
    }
    out
}

/// Whether `target` (a path relative to `from`'s folder, maybe with an
/// anchor) names a file of the repository and, for a page, a heading of it.
fn resolves(from: &Path, target: &str) -> Result<(), String> {
    if target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:") {
        return Ok(());
    }
    let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
    let file = match path {
        "" => from.to_path_buf(),
        path => from.parent().unwrap().join(path),
    };
    if !file.exists() {
        return Err(format!("{} does not exist", file.display()));
    }
    if !anchor.is_empty() && file.extension().is_some_and(|e| e == "md") && !anchors(&read(&file)).contains(anchor) {
        return Err(format!("{} has no heading #{anchor}", file.display()));
    }
    Ok(())
}

#[test]
fn every_link_and_anchor_in_the_readme_and_docs_resolves() {
    let mut broken = Vec::new();
    for page in pages() {
        for (line, target) in links(&read(&page)) {
            if let Err(e) = resolves(&page, &target) {
                broken.push(format!("{}:{line}: {target}: {e}", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Every source file under the folders the code lives in.
fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs: Vec<PathBuf> = ["src", "workers", "tests", "scripts", "fixtures", "deploy", "schema"]
        .iter()
        .map(|d| repo_file(d))
        .collect();
    dirs.push(repo_file(".ci"));
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if std::fs::read_to_string(&path).is_ok() {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn every_docs_page_the_code_cites_exists_with_its_anchor() {
    let root = repo_file("");
    let mut broken = Vec::new();
    for file in sources() {
        let text = read(&file);
        for (at, _) in text.match_indices("docs/") {
            let cited: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "/-_.#".contains(*c))
                .collect();
            let cited = cited.trim_end_matches('.');
            if !cited.contains(".md") || at > 0 && text.as_bytes()[at - 1].is_ascii_alphanumeric() {
                continue;
            }
            if let Err(e) = resolves(&root.join("README.md"), cited) {
                broken.push(format!("{}: {cited}: {e}", file.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "citations that do not resolve:\n{}",
        broken.join("\n")
    );
}

#[test]
fn nothing_cites_a_document_outside_the_repository() {
    let outside = ["..", "/", "shared", "/"].concat();
    let design = ["shared", "/design"].concat();
    let mut found = Vec::new();
    for file in sources().into_iter().chain(pages()) {
        for (n, line) in read(&file).lines().enumerate() {
            // The advisory snapshot is CI's, read by scripts/supply-chain.
            if line.contains(&outside) && !line.contains("advisory-db") || line.contains(&design) {
                found.push(format!("{}:{}: {line}", file.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The `RENDITION_*` names in the first column of the table under
/// `## Configuration` in docs/operating.md.
fn documented_settings() -> BTreeSet<String> {
    let text = read(&repo_file("docs/operating.md"));
    let section = &text[text
        .find("\n## Configuration")
        .expect("docs/operating.md#configuration")..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |n| n + 1)];
    let mut names = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `RENDITION_")) {
        let first = line.split('|').nth(1).unwrap();
        for word in first.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("RENDITION_") {
                names.insert(word.to_string());
            }
        }
    }
    names
}

#[test]
fn every_setting_the_code_reads_is_documented_and_nothing_else_is() {
    let code: BTreeSet<String> = crate::deploy::settings_in(&read(&repo_file("src/settings.rs")))
        .into_keys()
        .collect();
    let documented = documented_settings();
    let undocumented: Vec<_> = code.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&code).collect();
    assert!(
        undocumented.is_empty(),
        "settings missing from docs/operating.md: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "docs/operating.md documents settings the code does not read: {unknown:?}"
    );
}

#[test]
fn every_error_code_is_in_the_contract_and_the_result_schema() {
    let code: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let contract = read(&repo_file("docs/contract.md"));
    let section = &contract[contract.find("\n## Error codes").expect("docs/contract.md#error-codes")..];
    let documented: BTreeSet<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    assert_eq!(documented, code, "docs/contract.md#error-codes and ErrorCode differ");
    let schema: serde_json::Value = serde_json::from_str(&read(&repo_file("schema/result.schema.json"))).unwrap();
    let listed = &schema["properties"]["error"]["oneOf"][1]["properties"]["code"]["examples"];
    let listed: BTreeSet<&str> = listed.as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(listed, code, "result.schema.json's error codes and ErrorCode differ");
}

#[test]
fn the_contract_s_example_job_and_the_readme_s_job_validate() {
    let contract = read(&repo_file("docs/contract.md"));
    let job = &contract[contract.find("\n### Job").expect("docs/contract.md#job")..];
    let start = job.find("```json\n").unwrap() + "```json\n".len();
    let example = &job[start..start + job[start..].find("```").unwrap()];
    let readme = read(&repo_file("README.md"));
    let fixture = readme
        .split('"')
        .find(|s| s.starts_with("fixtures/") && s.ends_with(".json"))
        .expect("the README's example names a fixture job");
    let schema: serde_json::Value = serde_json::from_str(&read(&repo_file("schema/job.schema.json"))).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for (name, text) in [
        ("docs/contract.md#job", example.to_string()),
        (fixture, read(&repo_file(fixture))),
    ] {
        let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(validator.is_valid(&value), "{name} does not validate");
        rendition::job::Job::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn prose_lines_stay_readable_and_the_readme_short() {
    let mut long = Vec::new();
    for page in pages() {
        for (n, line) in prose(&read(&page)) {
            if !line.starts_with('|') && line.chars().count() > 200 {
                long.push(format!("{}:{n}", page.display()));
            }
        }
    }
    assert!(long.is_empty(), "prose lines over 200 characters: {long:?}");
    let readme = read(&repo_file("README.md")).lines().count();
    assert!(readme < 300, "README.md has {readme} lines; move detail into docs/");
}

#[test]
fn anchors_follow_github() {
    let found =
        anchors("# A\n## Job (`schema/job.schema.json`)\n## Error codes\n## Error codes\n```\n# not a heading\n```\n");
    let expected = ["a", "error-codes", "error-codes-1", "job-schemajobschemajson"];
    assert_eq!(found, expected.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
}
