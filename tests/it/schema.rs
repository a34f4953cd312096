//! The JSON Schemas under schema/ and the Rust types must not drift: every
//! example validates and parses, every bad example fails both, and random
//! messages and random damage get the same verdict from each.

use std::path::Path;
use std::sync::LazyLock;

use jsonschema::Validator;
use proptest::prelude::*;
use rendition::job::Job;
use rendition::policy::{DocFormat, Policy};
use rendition::result::JobResult;
use serde_json::Value;

use crate::common::{ScenarioFile, fixture, repo_file};

fn validator(name: &str) -> Validator {
    let text = std::fs::read_to_string(repo_file(&format!("schema/{name}.schema.json"))).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{name} schema: {e}"))
}

fn schema_errors(v: &Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn json_files(dir: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(fixture(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.display().to_string(),
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no fixtures in {dir}");
    out
}

#[test]
fn example_jobs_validate_and_parse() {
    let v = validator("job");
    for (name, job) in json_files("jobs") {
        assert_eq!(schema_errors(&v, &job), Vec::<String>::new(), "{name}");
        Job::parse(&serde_json::to_vec(&job).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn scenario_jobs_validate_and_parse() {
    let v = validator("job");
    let file = ScenarioFile::load();
    for scenario in &file.scenarios {
        let job = file.job(scenario);
        assert_eq!(schema_errors(&v, &job), Vec::<String>::new(), "{}", scenario.name);
    }
}

#[test]
fn invalid_jobs_fail_schema_and_parser_alike() {
    let v = validator("job");
    for (name, job) in json_files("invalid-jobs") {
        assert!(!v.is_valid(&job), "{name} passes the schema");
        assert!(Job::parse(&serde_json::to_vec(&job).unwrap()).is_err(), "{name} parses");
    }
}

#[test]
fn example_results_validate_and_parse() {
    let v = validator("result");
    for (name, result) in json_files("results") {
        assert_eq!(schema_errors(&v, &result), Vec::<String>::new(), "{name}");
        serde_json::from_value::<JobResult>(result).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn scenario_decisions_make_valid_results() {
    let v = validator("result");
    let file = ScenarioFile::load();
    let policy = crate::common::load_policy(&file.policy);
    for scenario in file.scenarios.iter().filter(|s| s.policy.is_none()) {
        let job = Job::parse(&serde_json::to_vec(&file.job(scenario)).unwrap()).unwrap();
        let decision = rendition::policy::resolve(&policy, &rendition::policy::Query::of(&job, file.at));
        let result = if decision.allowed {
            JobResult::done(&job.job_id, policy.version(), decision, Vec::new())
        } else {
            JobResult::denied(&job.job_id, policy.version(), decision)
        };
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(schema_errors(&v, &json), Vec::<String>::new(), "{}", scenario.name);
        assert_eq!(serde_json::from_value::<JobResult>(json).unwrap(), result);
    }
}

#[test]
fn example_policies_validate_and_load() {
    let v = validator("policy");
    for name in ["policy.yaml", "policy-contract-example.json"] {
        let path = fixture(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value = match DocFormat::from_path(Path::new(name)).unwrap() {
            DocFormat::Json => serde_json::from_str(&text).unwrap(),
            DocFormat::Yaml => serde_yaml::from_str(&text).unwrap(),
        };
        assert_eq!(schema_errors(&v, &doc), Vec::<String>::new(), "{name}");
        Policy::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Random damage to a valid job: drop a field, replace a value, add a field.
#[derive(Debug, Clone)]
enum Damage {
    Remove(usize),
    Replace(usize, Value),
    Add(usize, String),
}

fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::Bool(true)),
        Just(Value::Bool(false)),
        prop::sample::select(vec![-1i64, 0, 1, 3, 100, 101, 2048, 65_536]).prop_map(Value::from),
        prop::sample::select(vec![
            "",
            "x",
            "image",
            "video",
            "proxy",
            "poster",
            "original",
            "a/b",
            "../x",
            "s3://b/k",
            "publish",
            "bulk",
            "interactive"
        ])
        .prop_map(Value::from),
        Just(serde_json::json!({})),
        Just(serde_json::json!([])),
        Just(serde_json::json!({"max_edge": 10})),
        Just(serde_json::json!({"set": [10, 20]})),
    ]
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Remove),
        (any::<usize>(), odd_value()).prop_map(|(i, v)| Damage::Replace(i, v)),
        (
            any::<usize>(),
            prop::sample::select(vec!["extra", "priority", "user", "max_edge", "collection"])
        )
            .prop_map(|(i, k)| Damage::Add(i, k.to_string())),
    ]
}

/// JSON pointers to every value in `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => map.iter().for_each(|(k, c)| pointers(c, format!("{at}/{k}"), out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, c)| pointers(c, format!("{at}/{i}"), out)),
        _ => {}
    }
    out.push(at);
}

fn apply(job: &mut Value, damage: &Damage) {
    let mut ptrs = Vec::new();
    pointers(job, String::new(), &mut ptrs);
    let pick = |i: usize| ptrs[i % ptrs.len()].clone();
    match damage {
        Damage::Replace(i, value) => *job.pointer_mut(&pick(*i)).unwrap() = value.clone(),
        Damage::Remove(i) => {
            let ptr = pick(*i);
            if let Some((parent, key)) = ptr.rsplit_once('/') {
                match job.pointer_mut(parent).unwrap() {
                    Value::Object(map) => drop(map.remove(key)),
                    Value::Array(items) => drop(items.remove(key.parse::<usize>().unwrap())),
                    _ => unreachable!(),
                }
            }
        }
        Damage::Add(i, key) => {
            let objects: Vec<String> = ptrs
                .iter()
                .filter(|p| job.pointer(p).unwrap().is_object())
                .cloned()
                .collect();
            if let Some(ptr) = objects.get(i % objects.len().max(1)) {
                job.pointer_mut(ptr)
                    .unwrap()
                    .as_object_mut()
                    .unwrap()
                    .insert(key.clone(), Value::from(1));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Whatever the damage, the schema and the parser give the same verdict.
    #[test]
    fn schema_and_parser_agree_on_damaged_jobs(which in 0usize..100, damages in prop::collection::vec(damage(), 1..3)) {
        static EXAMPLES: LazyLock<(Validator, Vec<(String, Value)>)> = LazyLock::new(|| (validator("job"), json_files("jobs")));
        let (validator, examples) = &*EXAMPLES;
        let mut job = examples[which % examples.len()].1.clone();
        for d in &damages {
            apply(&mut job, d);
        }
        let by_schema = validator.is_valid(&job);
        let by_parser = Job::parse(&serde_json::to_vec(&job).unwrap());
        prop_assert_eq!(by_schema, by_parser.is_ok(), "job {} parser says {:?}", job, by_parser.err());
    }
}

#[test]
fn progress_messages_match_their_schema() {
    let v = validator("progress");
    let progress = rendition::result::JobProgress::new("job-1", 42.5, 310, 96.0);
    let json = serde_json::to_value(&progress).unwrap();
    assert!(schema_errors(&v, &json).is_empty(), "{:?}", schema_errors(&v, &json));
    let bytes = serde_json::to_vec(&json).unwrap();
    assert_eq!(rendition::result::JobProgress::from_reply(&bytes), Some(progress));
    // A result is not a progress message, for the schema or the parser.
    let mut result = json.clone();
    result["schema"] = "rendition.result/v1".into();
    assert!(!schema_errors(&v, &result).is_empty());
    assert_eq!(
        rendition::result::JobProgress::from_reply(&serde_json::to_vec(&result).unwrap()),
        None
    );
}

/// Audit records of every kind of answer: each job fixture with each
/// example result, a revoke, and bodies that are not jobs.
fn audit_records() -> Vec<(String, rendition::audit::AuditRecord)> {
    use rendition::audit::AuditRecord;
    use rendition::work::Work;
    let at = "2026-12-01T08:00:00Z".parse().unwrap();
    let mut works: Vec<(String, Work)> = json_files("jobs")
        .into_iter()
        .map(|(name, job)| (name, Work::parse(&serde_json::to_vec(&job).unwrap(), false)))
        .collect();
    let revoke = br#"{"schema":"rendition.revoke/v1","job_id":"r-1","share":"s-7"}"#;
    works.push(("revoke".into(), Work::parse(revoke, true)));
    works.push(("not json".into(), Work::parse(b"{ nope", false)));
    works.push((
        "bad job".into(),
        Work::parse(br#"{"job_id":"j","purpose":"share"}"#, false),
    ));
    let mut out = Vec::new();
    for (job, work) in &works {
        for (name, result) in json_files("results") {
            let result: JobResult = serde_json::from_value(result).unwrap();
            out.push((
                format!("{job} × {name}"),
                AuditRecord::of(work, &result, at, "pod-7-42"),
            ));
        }
    }
    out
}

#[test]
fn audit_records_match_their_schema_and_read_back() {
    use rendition::audit::AuditRecord;
    let v = validator("audit");
    for (name, record) in audit_records() {
        let line = record.to_line();
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1, "one line: {name}");
        let json: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(schema_errors(&v, &json), Vec::<String>::new(), "{name}");
        assert_eq!(
            serde_json::from_value::<AuditRecord>(json.clone()).unwrap(),
            record,
            "{name}"
        );
        // What the schema refuses, the reader refuses too.
        for damage in ["worker", "time", "status", "principal", "asset", "decision", "error"] {
            let mut bad = json.clone();
            bad.as_object_mut().unwrap().remove(damage);
            assert!(!v.is_valid(&bad), "{name} without {damage} passes the schema");
            assert!(
                serde_json::from_value::<AuditRecord>(bad).is_err(),
                "{name} without {damage} parses"
            );
        }
        let mut extra = json.clone();
        extra["surprise"] = true.into();
        assert!(!v.is_valid(&extra) && serde_json::from_value::<AuditRecord>(extra).is_err());
    }
}

#[test]
fn the_audit_schema_describes_decisions_and_principals_as_results_and_jobs_do() {
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(repo_file(&format!("schema/{name}.schema.json"))).unwrap())
            .unwrap()
    };
    let (audit, result, job) = (read("audit"), read("result"), read("job"));
    assert_eq!(audit["$defs"]["decision"], result["$defs"]["decision"]);
    assert_eq!(audit["$defs"]["principal"], job["properties"]["principal"]);
}

/// Signed control messages as `rendition sign` makes them match their
/// schemas; the shapes the worker refuses as malformed do not.
#[test]
fn control_messages_match_their_schemas() {
    use rendition::control::{PolicyBody, SignedPolicyUpdate, SigningKey};
    let key = SigningKey::generate("ops-1").unwrap();
    let update = validator("policy-update");
    let inline = SignedPolicyUpdate::sign(&key, &PolicyBody::Inline("version: 3\n".into()));
    let at = PolicyBody::At {
        location: "s3://policies/v3.yaml".into(),
        sha256: [1; 32],
        standing: rendition::policy::Standing { epoch: 1, version: 3 },
    };
    let located = SignedPolicyUpdate::sign(&key, &at);
    for message in [&inline, &located] {
        let value = serde_json::to_value(message).unwrap();
        assert_eq!(schema_errors(&update, &value), Vec::<String>::new(), "{value}");
    }
    let both = SignedPolicyUpdate {
        document: Some("version: 3\n".into()),
        ..located.clone()
    };
    let no_digest = SignedPolicyUpdate {
        sha256: None,
        ..located.clone()
    };
    let no_version = SignedPolicyUpdate {
        version: None,
        ..located
    };
    for bad in [both, no_digest, no_version] {
        assert!(!update.is_valid(&serde_json::to_value(&bad).unwrap()), "{bad:?}");
    }
    let revoke = validator("revoke");
    let signed = rendition::revocation::RevokeMessage::signed(&key, "r-1", "s-7");
    assert_eq!(
        schema_errors(&revoke, &serde_json::to_value(&signed).unwrap()),
        Vec::<String>::new()
    );
    let unsigned = serde_json::json!({"schema": "rendition.revoke/v1", "job_id": "r-1", "share": "s-7"});
    assert!(
        !revoke.is_valid(&unsigned),
        "the schema asks for the signature the worker asks for"
    );
}
