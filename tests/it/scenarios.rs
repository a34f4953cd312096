//! Every scenario of fixtures/scenarios.yaml, decided by the library.

use std::collections::{BTreeSet, HashMap};

use rendition::job::Job;
use rendition::policy::{Policy, Query, resolve};

use crate::common::{ScenarioFile, load_policy, mismatches};

#[test]
fn every_scenario_decides_as_expected() {
    let file = ScenarioFile::load();
    let mut policies: HashMap<String, Policy> = HashMap::new();
    let mut failures = Vec::new();
    for scenario in &file.scenarios {
        let name = file.policy_name(scenario).to_string();
        let policy = policies.entry(name.clone()).or_insert_with(|| load_policy(&name));
        let bytes = serde_json::to_vec(&file.job(scenario)).unwrap();
        let job = Job::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", scenario.name));
        let decision = serde_json::to_value(resolve(policy, &Query::of(&job, file.at))).unwrap();
        for problem in mismatches(&decision, &scenario.expect) {
            failures.push(format!("{}: {problem}", scenario.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_has_allowed_or_denied_scenarios_with_reasons() {
    let file = ScenarioFile::load();
    let rules: BTreeSet<&str> = file.scenarios.iter().map(|s| s.rule.as_str()).collect();
    for rule in [
        "staff",
        "visibility",
        "access",
        "password",
        "share",
        "restricted",
        "watermark",
        "limit",
        "on_exceed",
        "purpose",
        "unknown_user",
        "unknown_collection",
    ] {
        assert!(rules.contains(rule), "no scenario shows the {rule} rule");
    }
    let names: BTreeSet<&str> = file.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), file.scenarios.len(), "scenario names are unique");
    for s in &file.scenarios {
        assert!(
            s.expect.contains_key("allowed") && s.expect.contains_key("reason"),
            "{} must expect allowed and reason",
            s.name
        );
    }
}
