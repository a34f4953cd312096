//! deploy/monitoring (the Grafana dashboard and the Prometheus alert rules)
//! against the metrics the worker exports, so neither can drift: every
//! `rendition_*` and `process_*` name in a query is one `/metrics` has,
//! every label a query groups by is one those metrics carry, every alert
//! says how bad it is, what happened and what to do, and the dashboard
//! shows what operators asked for (queue depth per lane, latency by stage,
//! failures by code, dead letters, storage pauses, engine crashes, the
//! memory budget, the broker node).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rendition::ops::{Metrics, Stage};
use rendition::result::Status;
use serde_json::Value;

use crate::common::repo_file;

/// Labels Prometheus adds or histograms carry, on any metric.
const EVERYWHERE: [&str; 3] = ["le", "instance", "job"];

/// Metric name → the labels its samples carry, from a worker's `/metrics`
/// with a sample in every labelled family.
fn exported() -> BTreeMap<String, BTreeSet<String>> {
    let m = Metrics::default();
    m.job_finished(Status::Failed);
    m.failed_with("engine_error");
    m.queue_ready("image", "interactive", 3);
    m.control_refused("policy", "unsigned");
    m.broker_node(Some("127.0.0.1:5672"));
    m.observe(Stage::Pipeline, Duration::from_millis(5));
    let text = m.render();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            let names: Vec<String> = match kind {
                "histogram" => ["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}")).to_vec(),
                _ => vec![name.to_string()],
            };
            for n in names {
                out.entry(n).or_default();
            }
        } else if !line.starts_with('#') {
            let name_end = line.find(['{', ' ']).unwrap();
            let labels = out.entry(line[..name_end].to_string()).or_default();
            if let Some(inner) = line[name_end..].strip_prefix('{').and_then(|l| l.split_once('}')) {
                labels.extend(inner.0.split(',').map(|kv| kv.split('=').next().unwrap().to_string()));
            }
        }
    }
    out
}

/// The metric names in a PromQL expression.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("rendition_") || w.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

/// The labels named in `by (...)` and `without (...)` clauses.
fn grouping_labels(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for keyword in ["by (", "without ("] {
        for part in expr.split(keyword).skip(1) {
            let list = part.split(')').next().unwrap_or("");
            out.extend(list.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()));
        }
    }
    out
}

/// What is wrong with `expr` against `exported`.
fn problems_in(expr: &str, exported: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut problems = Vec::new();
    let names = metrics_in(expr);
    if names.is_empty() {
        problems.push(format!("{expr}: names no metric of ours"));
    }
    let mut labels: BTreeSet<String> = EVERYWHERE.map(str::to_string).into();
    for name in &names {
        match exported.get(name) {
            Some(l) => labels.extend(l.iter().cloned()),
            None => problems.push(format!("{expr}: {name} is not exported")),
        }
    }
    for label in grouping_labels(expr) {
        if !labels.contains(&label) {
            problems.push(format!("{expr}: no metric in it has the label {label:?}"));
        }
    }
    problems
}

fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(repo_file("deploy/monitoring/dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            out.push(target["expr"].as_str().expect("an expr").to_string());
        }
    }
    out
}

fn alert_rules() -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(repo_file("deploy/monitoring/alerts.yaml")).unwrap();
    let rules: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let groups = rules["groups"].as_sequence().expect("groups");
    groups
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("rules").clone())
        .collect()
}

#[test]
fn the_dashboard_queries_what_the_worker_exports() {
    let exported = exported();
    let queries = dashboard_queries();
    let problems: Vec<String> = queries.iter().flat_map(|q| problems_in(q, &exported)).collect();
    assert!(problems.is_empty(), "{problems:#?}");
    let shown: BTreeSet<String> = queries.iter().flat_map(|q| metrics_in(q)).collect();
    for wanted in [
        "rendition_queue_ready",
        "rendition_stage_seconds_bucket",
        "rendition_failures_total",
        "rendition_dead_letters_total",
        "rendition_storage_paused",
        "rendition_engine_crashes_total",
        "rendition_memory_budget_reserved_bytes",
        "rendition_broker_node_info",
        "process_resident_memory_bytes",
        "rendition_engine_resident_bytes",
    ] {
        assert!(shown.contains(wanted), "the dashboard does not show {wanted}");
    }
}

#[test]
fn every_alert_rule_queries_what_the_worker_exports_and_says_what_to_do() {
    let exported = exported();
    let rules = alert_rules();
    assert!(rules.len() >= 8, "{} rules", rules.len());
    let mut problems = Vec::new();
    for rule in &rules {
        let name = rule["alert"].as_str().unwrap_or("(unnamed)");
        problems.extend(problems_in(rule["expr"].as_str().unwrap_or(""), &exported));
        let severity = rule["labels"]["severity"].as_str();
        if !matches!(severity, Some("info" | "warning" | "critical")) {
            problems.push(format!("{name}: severity {severity:?}"));
        }
        for field in ["summary", "action"] {
            if rule["annotations"][field].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{name}: no {field}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_misspelt_metric_or_label_is_caught() {
    let exported = exported();
    assert!(problems_in("sum by (code) (rate(rendition_failures_total[5m]))", &exported).is_empty());
    let typo = problems_in("sum(rate(rendition_failure_total[5m]))", &exported);
    assert!(typo.iter().any(|p| p.contains("not exported")), "{typo:?}");
    let label = problems_in("sum by (status) (rate(rendition_failures_total[5m]))", &exported);
    assert!(label.iter().any(|p| p.contains("label \"status\"")), "{label:?}");
    assert!(!problems_in("up", &exported).is_empty(), "a query of none of ours");
}
