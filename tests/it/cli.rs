//! The `rendition` program, run as a user would: exit codes and output.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::{ScenarioFile, fixture, mismatches};

fn rendition(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rendition"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RENDITION_POLICY")
        .output()
        .expect("the rendition binary runs")
}

fn explain(policy: &Path, job: &Path, at: &str) -> Output {
    rendition(&[
        "policy",
        "explain",
        "--policy",
        policy.to_str().unwrap(),
        "--job",
        job.to_str().unwrap(),
        "--at",
        at,
    ])
}

#[test]
fn explain_gives_each_scenario_its_decision_and_exit_code() {
    let file = ScenarioFile::load();
    let dir = tempfile::tempdir().unwrap();
    let at = file.at.to_rfc3339();
    let mut failures = Vec::new();
    for scenario in &file.scenarios {
        let job_path = dir.path().join(format!("{}.json", scenario.name));
        std::fs::write(&job_path, serde_json::to_vec(&file.job(scenario)).unwrap()).unwrap();
        let out = explain(&fixture(file.policy_name(scenario)), &job_path, &at);
        let decision: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: stdout is not JSON ({e}): {}",
                scenario.name,
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let want_code = if scenario.expect["allowed"] == Value::Bool(true) {
            0
        } else {
            3
        };
        if out.status.code() != Some(want_code) {
            failures.push(format!(
                "{}: exit {:?}, want {want_code}",
                scenario.name,
                out.status.code()
            ));
        }
        failures.extend(
            mismatches(&decision, &scenario.expect)
                .into_iter()
                .map(|m| format!("{}: {m}", scenario.name)),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn explain_prints_the_contract_decision_fields() {
    let out = explain(
        &fixture("policy.yaml"),
        &fixture("jobs/collaborator-2048.json"),
        "2026-11-24T12:00:00Z",
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in ["allowed", "limit", "watermark", "clamped", "role", "reason"] {
        assert!(decision.get(field).is_some(), "decision lacks {field}");
    }
}

#[test]
fn a_malformed_job_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut job: Value =
        serde_json::from_slice(&std::fs::read(fixture("jobs/collaborator-2048.json")).unwrap()).unwrap();
    job["asset"]["media"] = Value::String("hologram".into());
    let path = dir.path().join("bad.json");
    std::fs::write(&path, serde_json::to_vec(&job).unwrap()).unwrap();
    let out = explain(&fixture("policy.yaml"), &path, "2026-11-24T12:00:00Z");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("asset.media") && stderr.contains("hologram"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    job["asset"]["media"] = Value::String("image".into());
    job["asset"]["colour"] = Value::String("red".into());
    std::fs::write(&path, serde_json::to_vec(&job).unwrap()).unwrap();
    let out = explain(&fixture("policy.yaml"), &path, "2026-11-24T12:00:00Z");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid job") && stderr.contains("colour"), "{stderr}");
}

#[test]
fn a_malformed_policy_exits_2_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "typo.yaml",
            "version: 1\ncollections:\n  - id: c-a\n    visibilty: everyone\n",
            "collections[0]",
        ),
        (
            "badvalue.json",
            r#"{"version": 1, "collections": [{"id": "c-a", "access": "friends"}]}"#,
            "collections[0].access",
        ),
        (
            "badref.yaml",
            "version: 1\nroles: {}\nusers: { u: { role: boss } }\n",
            "users.u.role",
        ),
    ];
    for (name, text, place) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = rendition(&["policy", "check", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(place), "{name}: {stderr}");
        let out = explain(&path, &fixture("jobs/collaborator-2048.json"), "2026-11-24T12:00:00Z");
        assert_eq!(out.status.code(), Some(2), "explain with {name}");
    }
}

#[test]
fn check_summarises_a_valid_policy() {
    let out = rendition(&["policy", "check", "fixtures/policy.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("policy version 42 is valid"), "{stdout}");
    assert!(stdout.contains("shares: 7 (1 revoked)"), "{stdout}");
}

#[test]
fn check_warns_about_settings_an_inheriting_node_ignores() {
    let out = rendition(&["policy", "check", "fixtures/policy-contract-example.json"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: collections[0].children[0] (g-launch): ignored: invited"),
        "{stderr}"
    );
}

#[test]
fn thumbnail_writes_each_size() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jpg");
    let run = rendition(&[
        "thumbnail",
        "fixtures/originals/hero.jpg",
        "--size",
        "1024,320",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    for (name, width) in [("t-1024.jpg", 1024), ("t-320.jpg", 320)] {
        let (w, _) = image::image_dimensions(dir.path().join(name)).unwrap();
        assert_eq!(w, width);
    }
    let bad = rendition(&[
        "thumbnail",
        "fixtures/originals/bomb.png",
        "--size",
        "320",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("too large"));
}
