//! deploy/ (the Kubernetes example) against the code, so it cannot drift:
//! every `RENDITION_*` name in it is a setting the worker reads (taken from
//! `struct RawSettings` and the environment overlay in src/settings.rs);
//! each pool's settings pass the worker's own validation; every queue KEDA
//! scales on is one the worker declares (`Topology`, over `JobQueue::ALL`)
//! and one its pool consumes, and a pool scales on every queue it consumes;
//! the pod outlives the drain; the probes hit /healthz and /readyz on the
//! port of RENDITION_HTTP_ADDR, which listens beyond the pod's loopback.

use std::collections::{BTreeMap, BTreeSet};

use rendition::queue::{JobQueue, Priority};
use rendition::settings::{RawSettings, Settings};
use serde::Deserialize;
use serde_yaml::Value;

use crate::common::repo_file;

const PREFIX: &str = "RENDITION_";

fn read(name: &str) -> String {
    std::fs::read_to_string(repo_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every document of a (multi-document) YAML file.
fn documents(name: &str, text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{name}: {e}")))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> impl Iterator<Item = &'a Value> {
    docs.iter().filter(move |d| d["kind"].as_str() == Some(kind))
}

fn name_of(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or("<unnamed>")
}

/// The operator settings by variable name, with the type inside `Option<…>`:
/// the fields of `struct RawSettings` that are not `#[serde(skip)]` (the
/// file's keys), kept only if the environment overlay reads them too (when
/// its `overlay!(raw, …)` call is there to read).
pub(crate) fn settings_in(source: &str) -> BTreeMap<String, String> {
    let start = source
        .find("pub struct RawSettings {")
        .expect("`pub struct RawSettings {` in src/settings.rs: teach tests/it/deploy.rs where the settings are");
    let body = &source[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("\n}").expect("the end of RawSettings")];
    let mut fields = BTreeMap::new();
    let mut skip = false;
    for line in body.lines().map(str::trim) {
        if line.starts_with("#[") {
            skip |= line.contains("skip");
            continue;
        }
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let Some((name, ty)) = line.strip_prefix("pub ").unwrap_or(line).split_once(':') else {
            continue;
        };
        let ty = ty.trim().trim_end_matches(',').trim();
        if !std::mem::take(&mut skip) {
            let inner = ty
                .strip_prefix("Option<")
                .and_then(|t| t.strip_suffix('>'))
                .unwrap_or(ty);
            fields.insert(
                format!("{PREFIX}{}", name.trim().to_ascii_uppercase()),
                inner.to_string(),
            );
        }
    }
    assert!(!fields.is_empty(), "no fields found in RawSettings");
    if let Some(call) = source.find("overlay!(") {
        let args = &source[call + "overlay!(".len()..];
        let args = &args[..args.find(')').expect("the end of overlay!(…)")];
        let overlaid: BTreeSet<String> = args
            .split(',')
            .skip(1) // the RawSettings binding
            .map(|f| format!("{PREFIX}{}", f.trim().to_ascii_uppercase()))
            .collect();
        fields.retain(|name, _| overlaid.contains(name));
    }
    fields
}

/// Every `RENDITION_*` word in the documents' keys and strings.
fn names_used(docs: &[Value]) -> BTreeSet<String> {
    fn walk(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::String(s) => {
                for word in s.split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')) {
                    if word.starts_with(PREFIX) {
                        out.insert(word.to_string());
                    }
                }
            }
            Value::Sequence(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Mapping(map) => {
                for (k, v) in map {
                    walk(k, out);
                    walk(v, out);
                }
            }
            Value::Tagged(tagged) => walk(&tagged.value, out),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    docs.iter().for_each(|d| walk(d, &mut out));
    out
}

fn unknown_names(used: &BTreeSet<String>, known: &BTreeMap<String, String>) -> Vec<String> {
    used.iter().filter(|n| !known.contains_key(*n)).cloned().collect()
}

/// A Deployment's worker container and its environment: a value, or `None`
/// for one from a Secret (or anywhere else not in the manifests).
struct Pool<'a> {
    name: String,
    pod: &'a Value,
    container: &'a Value,
    env: BTreeMap<String, Option<String>>,
}

fn pools<'a>(docs: &'a [Value], problems: &mut Vec<String>) -> BTreeMap<String, Pool<'a>> {
    let config_maps: BTreeMap<&str, &Value> = of_kind(docs, "ConfigMap").map(|c| (name_of(c), &c["data"])).collect();
    let mut out = BTreeMap::new();
    for deployment in of_kind(docs, "Deployment") {
        let name = name_of(deployment).to_string();
        let pod = &deployment["spec"]["template"]["spec"];
        let containers = pod["containers"].as_sequence().map(Vec::as_slice).unwrap_or_default();
        let [container] = containers else {
            problems.push(format!("{name}: expected one container, found {}", containers.len()));
            continue;
        };
        let mut env = BTreeMap::new();
        for from in container["envFrom"].as_sequence().into_iter().flatten() {
            if let Some(map) = from["configMapRef"]["name"].as_str() {
                let Some(data) = config_maps.get(map) else {
                    problems.push(format!(
                        "{name}: envFrom names ConfigMap {map}, which is not in worker.yaml"
                    ));
                    continue;
                };
                for (k, v) in data.as_mapping().into_iter().flatten() {
                    env.insert(
                        k.as_str().unwrap_or_default().to_string(),
                        v.as_str().map(str::to_string),
                    );
                }
            } else {
                problems.push(format!(
                    "{name}: envFrom other than a ConfigMap of worker.yaml hides the variables' names; list them in env"
                ));
            }
        }
        for var in container["env"].as_sequence().into_iter().flatten() {
            let key = var["name"].as_str().unwrap_or_default().to_string();
            let value = match (&var["value"], &var["valueFrom"]["configMapKeyRef"]) {
                (Value::String(s), _) => Some(s.clone()),
                (_, Value::Mapping(_)) => {
                    let r = &var["valueFrom"]["configMapKeyRef"];
                    config_maps
                        .get(r["name"].as_str().unwrap_or_default())
                        .and_then(|data| data[r["key"].as_str().unwrap_or_default()].as_str())
                        .map(str::to_string)
                }
                (Value::Null, _) => None,
                (other, _) => {
                    problems.push(format!("{name}: {key} must be a string, not {other:?}"));
                    None
                }
            };
            env.insert(key, value);
        }
        out.insert(
            name.clone(),
            Pool {
                name,
                pod,
                container,
                env,
            },
        );
    }
    out
}

/// The pool's settings through the worker's own parsing and validation
/// (defaults included). Values from Secrets stand in as placeholders.
fn settings_of(pool: &Pool, known: &BTreeMap<String, String>) -> Result<Settings, String> {
    let mut raw = serde_json::Map::new();
    for (name, value) in &pool.env {
        let (Some(field), Some(ty)) = (name.strip_prefix(PREFIX), known.get(name)) else {
            continue; // not ours, or unknown (reported on its own)
        };
        let text = match value {
            Some(v) if v.trim().is_empty() => continue, // empty is unset, as in the worker
            Some(v) => v.trim().to_string(),
            // A cluster's list, as deploy/README.md's Secret holds it.
            None if name == "RENDITION_AMQP_URL" => {
                "amqp://u:secret@rabbitmq-0:5672/%2f,rabbitmq-1,rabbitmq-2".to_string()
            }
            None if matches!(ty.as_str(), "String" | "PathBuf") => {
                "a-value-from-a-kubernetes-secret-placeholder".to_string()
            }
            None => continue,
        };
        let json = match ty.as_str() {
            "String" | "PathBuf" => serde_json::Value::String(text),
            "bool" => text
                .parse::<bool>()
                .map(serde_json::Value::Bool)
                .map_err(|e| format!("{}: {name}={text:?}: {e}", pool.name))?,
            int if int.starts_with('u') || int.starts_with('i') => text
                .parse::<i64>()
                .map(|n| serde_json::Value::Number(n.into()))
                .map_err(|e| format!("{}: {name}={text:?}: {e}", pool.name))?,
            other => return Err(format!("{name} is a {other}: teach tests/it/deploy.rs that type")),
        };
        raw.insert(field.to_ascii_lowercase(), json);
    }
    let raw: RawSettings =
        serde_json::from_value(serde_json::Value::Object(raw)).map_err(|e| format!("{}: {e}", pool.name))?;
    Settings::validate(raw).map_err(|e| format!("{}: {e}", pool.name))
}

/// Bytes of a Kubernetes quantity (`512Mi`, `2Gi`, `1G`, `1000`).
fn quantity(q: &Value) -> Option<u64> {
    let q = match q {
        Value::Number(n) => return n.as_u64(),
        Value::String(s) => s.as_str(),
        _ => return None,
    };
    let units = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    for (suffix, scale) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<u64>().ok().map(|n| n * scale);
        }
    }
    q.parse().ok()
}

/// Everything wrong with the manifests, one line each.
fn problems(worker: &[Value], keda: &[Value], known: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    for name in unknown_names(&names_used(worker), known)
        .into_iter()
        .chain(unknown_names(&names_used(keda), known))
    {
        problems.push(format!("{name} is not a setting the worker reads"));
    }
    let pools = pools(worker, &mut problems);
    if pools.is_empty() {
        problems.push("no Deployment in worker.yaml".into());
    }
    let mut settings = BTreeMap::new();
    for pool in pools.values() {
        match settings_of(pool, known) {
            Ok(s) => {
                settings.insert(pool.name.clone(), s);
            }
            Err(e) => problems.push(e),
        }
    }

    for (name, s) in &settings {
        let pool = &pools[name];
        // Kubernetes' default grace is 30 s.
        let grace = pool.pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
        if grace <= s.drain_timeout.as_secs() {
            problems.push(format!(
                "{name}: terminationGracePeriodSeconds {grace} must exceed RENDITION_DRAIN_TIMEOUT_S {}",
                s.drain_timeout.as_secs()
            ));
        }
        if !s.http_addr.ip().is_unspecified() {
            problems.push(format!(
                "{name}: RENDITION_HTTP_ADDR {} is not reachable by the kubelet's probes (listen on 0.0.0.0)",
                s.http_addr
            ));
        }
        let ports: BTreeMap<&str, u64> = pool.container["ports"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p["name"].as_str()?, p["containerPort"].as_u64()?)))
            .collect();
        for (probe, path, required) in [
            ("livenessProbe", "/healthz", true),
            ("readinessProbe", "/readyz", true),
            ("startupProbe", "/healthz", false),
        ] {
            let get = &pool.container[probe]["httpGet"];
            if get.is_null() {
                if required {
                    problems.push(format!("{name}: no {probe}.httpGet"));
                }
                continue;
            }
            if get["path"].as_str() != Some(path) {
                problems.push(format!("{name}: {probe} asks {:?}, not {path}", get["path"]));
            }
            let port = match &get["port"] {
                Value::Number(n) => n.as_u64(),
                Value::String(named) => ports.get(named.as_str()).copied(),
                _ => None,
            };
            if port != Some(u64::from(s.http_addr.port())) {
                problems.push(format!(
                    "{name}: {probe} port {:?} is not RENDITION_HTTP_ADDR's {}",
                    get["port"],
                    s.http_addr.port()
                ));
            }
        }
        let resources = &pool.container["resources"];
        match (
            quantity(&resources["requests"]["memory"]),
            quantity(&resources["limits"]["memory"]),
        ) {
            (Some(request), Some(limit)) if request <= limit => {}
            (request, limit) => problems.push(format!(
                "{name}: memory request {request:?} and limit {limit:?} must both be set, request <= limit"
            )),
        }
        if resources["limits"]["cpu"].is_null() {
            problems.push(format!(
                "{name}: no CPU limit: the render pool is as large as the CPUs the worker sees, and the memory is sized by it"
            ));
        }
    }

    let auths: BTreeSet<&str> = of_kind(keda, "TriggerAuthentication").map(name_of).collect();
    let mut scaled = BTreeSet::new();
    for object in of_kind(keda, "ScaledObject") {
        let so = name_of(object);
        let target = object["spec"]["scaleTargetRef"]["name"].as_str().unwrap_or_default();
        let Some(s) = settings.get(target) else {
            problems.push(format!(
                "ScaledObject {so} scales {target:?}, which is not a valid Deployment of worker.yaml"
            ));
            continue;
        };
        if !scaled.insert(target) {
            problems.push(format!("{target} has more than one ScaledObject"));
        }
        // The worker's own names (its prefix included): both lanes of every queue.
        let declared: BTreeMap<String, JobQueue> = JobQueue::ALL
            .iter()
            .flat_map(|&q| Priority::ALL.map(|p| (s.topology.lane_queue(q, p), q)))
            .collect();
        let queue_of = |name: &str| declared.get(name).copied();
        let mut triggered = BTreeSet::new();
        for trigger in object["spec"]["triggers"].as_sequence().into_iter().flatten() {
            if trigger["type"].as_str() != Some("rabbitmq") {
                continue;
            }
            let meta = &trigger["metadata"];
            if meta["mode"].as_str() != Some("QueueLength") {
                problems.push(format!("{so}: trigger mode {:?}, not QueueLength", meta["mode"]));
            }
            let auth = trigger["authenticationRef"]["name"].as_str().unwrap_or_default();
            if !auths.contains(auth) {
                problems.push(format!(
                    "{so}: authenticationRef {auth:?} is not a TriggerAuthentication of keda.yaml"
                ));
            }
            let queue = meta["queueName"].as_str().unwrap_or_default();
            match queue_of(queue).as_ref() {
                None => problems.push(format!(
                    "{so}: queue {queue:?} is not one the worker declares ({})",
                    declared.keys().cloned().collect::<Vec<_>>().join(", ")
                )),
                Some(q) if !s.queues.contains(q) => problems.push(format!(
                    "{so}: {target} does not consume {queue} (RENDITION_QUEUES: {:?})",
                    s.queues.iter().map(JobQueue::name).collect::<Vec<_>>()
                )),
                Some(_) => {
                    triggered.insert(queue.to_string());
                }
            }
        }
        for lane in s
            .queues
            .iter()
            .flat_map(|&q| Priority::ALL.map(|p| s.topology.lane_queue(q, p)))
        {
            if !triggered.contains(&lane) {
                problems.push(format!("{so}: {target} consumes {lane} but is not scaled on it"));
            }
        }
    }
    for name in settings.keys() {
        if !scaled.contains(name.as_str()) {
            problems.push(format!("{name} has no ScaledObject in keda.yaml"));
        }
    }
    problems
}

struct Manifests {
    worker: Vec<Value>,
    keda: Vec<Value>,
    known: BTreeMap<String, String>,
}

fn manifests() -> Manifests {
    Manifests {
        worker: documents("deploy/worker.yaml", &read("deploy/worker.yaml")),
        keda: documents("deploy/keda.yaml", &read("deploy/keda.yaml")),
        known: settings_in(&read("src/settings.rs")),
    }
}

#[test]
fn the_kubernetes_example_matches_the_worker() {
    let m = manifests();
    let problems = problems(&m.worker, &m.keda, &m.known);
    assert!(
        problems.is_empty(),
        "deploy/ disagrees with the code:\n  {}",
        problems.join("\n  ")
    );
    // It does say something: both pools, on real queues.
    assert!(of_kind(&m.worker, "Deployment").count() >= 2);
    assert!(of_kind(&m.keda, "ScaledObject").count() >= 2);
}

#[test]
fn the_settings_are_read_from_the_code() {
    let known = settings_in(&read("src/settings.rs"));
    for name in [
        "RENDITION_QUEUES",
        "RENDITION_DRAIN_TIMEOUT_S",
        "RENDITION_HTTP_ADDR",
        "RENDITION_AMQP_URL",
    ] {
        assert!(known.contains_key(name), "{name} not found in {known:?}");
    }
    assert_eq!(known["RENDITION_DRAIN_TIMEOUT_S"], "u64");
    // A flag, not a variable.
    assert!(!known.contains_key("RENDITION_ORIGINALS_DIR"));

    let source = "pub struct RawSettings {\n    pub amqp_url: Option<String>,\n    /// doc\n    pub concurrency: Option<u16>,\n    \
                  #[serde(skip)]\n    pub originals_dir: Option<PathBuf>,\n    pub queues: Option<String>,\n}\n\
                  overlay!(\n raw,\n amqp_url,\n concurrency\n );";
    let known = settings_in(source);
    assert_eq!(
        known.keys().map(String::as_str).collect::<Vec<_>>(),
        ["RENDITION_AMQP_URL", "RENDITION_CONCURRENCY"],
        "skipped fields and fields the environment does not overlay are not settings"
    );
    let used: BTreeSet<String> = ["RENDITION_AMQP_UR", "RENDITION_CONCURRENCY"].map(String::from).into();
    assert_eq!(unknown_names(&used, &known), ["RENDITION_AMQP_UR"]);
}

#[test]
fn mistakes_in_the_manifests_are_caught() {
    let m = manifests();
    let caught = |worker: &[Value], keda: &[Value], what: &str| {
        let found = problems(worker, keda, &m.known);
        assert!(
            found.iter().any(|p| p.contains(what)),
            "expected a problem about {what:?}, got {found:?}"
        );
    };
    let deployment = m.worker.iter().position(|d| d["kind"] == "Deployment").unwrap();
    let object = m.keda.iter().position(|d| d["kind"] == "ScaledObject").unwrap();
    fn container(docs: &mut [Value], deployment: usize) -> &mut Value {
        &mut docs[deployment]["spec"]["template"]["spec"]["containers"][0]
    }
    fn push_env(docs: &mut [Value], deployment: usize, var: &str) {
        let env = container(docs, deployment)["env"].as_sequence_mut().unwrap();
        env.push(serde_yaml::from_str(var).unwrap());
    }

    let mut w = m.worker.clone();
    container(&mut w, deployment)["env"][0]["name"] = "RENDITION_QUEUE".into();
    caught(&w, &m.keda, "RENDITION_QUEUE is not a setting");

    let mut k = m.keda.clone();
    k[object]["spec"]["triggers"][0]["metadata"]["queueName"] = "rendition.jobs.imgae".into();
    caught(&m.worker, &k, "is not one the worker declares");

    let mut k = m.keda.clone();
    let video = m
        .keda
        .iter()
        .position(|d| d["kind"] == "ScaledObject" && name_of(d).contains("video"));
    let other = m
        .keda
        .iter()
        .position(|d| d["kind"] == "ScaledObject" && !name_of(d).contains("video"));
    if let (Some(video), Some(other)) = (video, other) {
        let wrong = k[video]["spec"]["triggers"][0]["metadata"]["queueName"].clone();
        k[other]["spec"]["triggers"][0]["metadata"]["queueName"] = wrong;
        caught(&m.worker, &k, "does not consume");
    }

    let mut w = m.worker.clone();
    w[deployment]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 5.into();
    caught(&w, &m.keda, "must exceed RENDITION_DRAIN_TIMEOUT_S");

    let mut w = m.worker.clone();
    container(&mut w, deployment)["livenessProbe"]["httpGet"]["path"] = "/health".into();
    caught(&w, &m.keda, "livenessProbe asks");

    let mut w = m.worker.clone();
    container(&mut w, deployment)["readinessProbe"]["httpGet"]["port"] = 8080.into();
    caught(&w, &m.keda, "readinessProbe port");

    let mut w = m.worker.clone();
    push_env(
        &mut w,
        deployment,
        "{name: RENDITION_HTTP_ADDR, value: '127.0.0.1:9464'}",
    );
    caught(&w, &m.keda, "not reachable by the kubelet");

    let mut w = m.worker.clone();
    push_env(&mut w, deployment, "{name: RENDITION_QUEUES, value: 'image,vidoe'}");
    caught(&w, &m.keda, "unknown queue");
}
