//! Chaos at a size CI affords: 300 jobs through two real workers while one
//! is SIGKILLed, the S3 server is stopped for 5 s, RabbitMQ is restarted
//! and 1 % of the jobs crash the engine that renders them — run by `rendition-bench chaos` (the driver of scripts/chaos)
//! against the real services. Its own test binary, run after the others
//! (cargo runs test binaries one after another), because it stops servers
//! they share. Left out of a plain `cargo test`; scripts/test runs it.

use std::process::Command;

use serde_json::Value;

fn setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests with scripts/test"))
}

#[test]
fn kills_a_broker_restart_and_a_storage_outage_lose_nothing_and_dead_letter_nothing() {
    let root = env!("CARGO_MANIFEST_DIR");
    let run = format!("t{}-chaos", std::process::id());
    let logs = tempfile::tempdir().unwrap();
    let images =
        ["hero.jpg", "photo.jpg", "alpha.png", "srgb-600.png"].map(|f| format!("{root}/fixtures/originals/{f}"));
    let out = Command::new(env!("CARGO_BIN_EXE_rendition-bench"))
        .args([
            "chaos",
            "--jobs",
            "300",
            "--workers",
            "2",
            "--kill-every-s",
            "3",
            "--kills",
            "1",
        ])
        .args([
            "--storage-outage-s",
            "5",
            "--storage-at",
            "0.2",
            "--broker-restart",
            "app",
            "--broker-at",
            "0.6",
        ])
        .args(["--quiet-s", "120", "--worker-bin", env!("CARGO_BIN_EXE_rendition")])
        .args(["--engine-crashes", "0.01"])
        .arg("--logs")
        .arg(logs.path())
        .args(&images)
        .env("RENDITION_AMQP_URL", setting("RENDITION_TEST_AMQP_URL"))
        .env("RENDITION_STORE", "s3")
        .env("RENDITION_POLICY", format!("{root}/fixtures/policy.yaml"))
        .env("RENDITION_S3_ENDPOINT", setting("RENDITION_TEST_S3_ENDPOINT"))
        .env("RENDITION_S3_ACCESS_KEY", setting("RENDITION_TEST_S3_ACCESS_KEY"))
        .env("RENDITION_S3_SECRET_KEY", setting("RENDITION_TEST_S3_SECRET_KEY"))
        .env("RENDITION_ORIGINALS_BUCKET", format!("{run}-orig"))
        .env("RENDITION_RENDITIONS_BUCKET", format!("{run}-rend"))
        .env("RENDITION_QUEUE_PREFIX", format!("{run}."))
        .env("RENDITION_CONCURRENCY", "4")
        .output()
        .expect("rendition-bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chaos failed:\n{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{stderr}"));
    let worker_logs = || {
        let mut text = String::new();
        for entry in std::fs::read_dir(logs.path()).unwrap().flatten() {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
        text
    };
    eprintln!("{stderr}");
    let n = |k: &str| summary[k].as_u64().unwrap_or_else(|| panic!("{k} in {summary}"));
    assert_eq!(n("lost"), 0, "{summary}\n{}", worker_logs());
    // 1 % of the jobs crash their engine: each answered `engine_crashed`
    // and dead-lettered, every other job done.
    assert_eq!(n("crash_jobs"), 3, "{summary}");
    assert_eq!(n("crash_jobs_engine_crashed"), 3, "{summary}");
    assert_eq!(n("innocent_not_done"), 0, "{summary}");
    assert_eq!(n("done"), 297, "every other job done: {summary}");
    assert_eq!(n("dead_letters"), 3, "the crashing jobs alone: {summary}");
    assert_eq!(
        n("audit_records"),
        300,
        "one audit record per job, repeats included: {summary}"
    );
    assert_eq!(n("duplicates_same_content"), n("duplicates"), "{summary}");
    assert_eq!(
        (n("kills"), n("storage_outages"), n("broker_restarts")),
        (1, 1, 1),
        "{summary}"
    );
    assert!(
        worker_logs().contains("storage unreachable"),
        "the workers saw the outage"
    );
}
