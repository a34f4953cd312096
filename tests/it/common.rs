//! Helpers shared by the pure suite: fixture paths and the scenario table.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rendition::policy::Policy;
use serde::Deserialize;
use serde_json::Value;

#[path = "../common/mod.rs"]
mod shared;

pub use shared::{fixture, mean_diff};

pub fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

pub fn load_policy(name: &str) -> Policy {
    Policy::load(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub policy: String,
    pub at: DateTime<Utc>,
    pub base_job: Value,
    pub scenarios: Vec<Scenario>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub rule: String,
    #[allow(dead_code)] // documentation for readers of the table
    pub seed: String,
    #[serde(default)]
    pub policy: Option<String>,
    pub job: Value,
    /// Decision fields that must match, as JSON.
    pub expect: serde_json::Map<String, Value>,
}

impl ScenarioFile {
    pub fn load() -> ScenarioFile {
        let text = std::fs::read_to_string(fixture("scenarios.yaml")).unwrap();
        serde_yaml::from_str(&text).expect("scenarios.yaml parses")
    }

    /// The scenario's full job: its fields merged over the base job.
    pub fn job(&self, scenario: &Scenario) -> Value {
        let mut job = self.base_job.clone();
        merge(&mut job, &scenario.job);
        job["job_id"] = Value::String(scenario.name.clone());
        job
    }

    pub fn policy_name<'a>(&'a self, scenario: &'a Scenario) -> &'a str {
        scenario.policy.as_deref().unwrap_or(&self.policy)
    }
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                merge(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// The expected fields that the decision (as JSON) gets wrong.
pub fn mismatches(decision: &Value, expect: &serde_json::Map<String, Value>) -> Vec<String> {
    expect
        .iter()
        .filter(|(key, want)| decision.get(key.as_str()) != Some(want))
        .map(|(key, want)| {
            format!(
                "{key}: want {want}, got {}",
                decision.get(key.as_str()).unwrap_or(&Value::Null)
            )
        })
        .collect()
}
