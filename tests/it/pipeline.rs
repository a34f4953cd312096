//! Jobs end to end on the embedded default: the real filesystem store,
//! the engine on a rayon pool, signed links served over a real socket.

use std::path::Path;

use chrono::{Duration, Utc};
use image::GenericImageView;
use rendition::forensic::{ForensicKey, ForensicKeys, trace};
use rendition::job::Job;
use rendition::pipeline::{Arrival, Pipeline, PipelineConfig};
use rendition::policy::preset::Fit;
use rendition::policy::{Cap, Policy, Query, Target, resolve};
use rendition::result::{JobResult, Status};
use rendition::storage::fs::FsStore;
use rendition::storage::link::LinkSigner;
use rendition::work::Work;
use serde_json::Value;

use crate::common::{ScenarioFile, fixture, load_policy};

// At least 32 bytes: settings refuse a shorter one.
const SECRET: &str = "test-secret-of-thirty-two-bytes!";
const FORENSIC_KEY: &[u8] = b"test-forensic-key-of-32-bytes-or-more";

fn pipeline(store: &Path, base: &str) -> Pipeline<FsStore> {
    let config = PipelineConfig {
        render_threads: 2,
        forensic_key: Some(ForensicKey::new(FORENSIC_KEY)),
        ..PipelineConfig::default()
    };
    let renditions = FsStore::new(store, Some(LinkSigner::new(SECRET, base)));
    Pipeline::new(FsStore::new(fixture(""), None), renditions, config)
}

/// The same job under another id (the same id would answer from memory).
fn renamed(mut job: Value, id: &str) -> Value {
    job["job_id"] = Value::from(id);
    job
}

fn run(p: &Pipeline<FsStore>, policy: &Policy, job: &Value) -> JobResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let work = Work::parse(&serde_json::to_vec(job).unwrap(), false);
    rt.block_on(p.run(policy, &work, Arrival::now(), None)).result
}

fn demo_job(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(&format!("demo/{name}.json"))).unwrap()).unwrap()
}

fn stored(store: &Path, key: &str) -> Vec<u8> {
    std::fs::read(store.join(key)).unwrap()
}

#[test]
fn three_roles_get_their_sizes_and_a_repeat_is_a_cache_hit() {
    let dir = tempfile::tempdir().unwrap();
    let (p, policy) = (pipeline(dir.path(), "http://h"), load_policy("policy.yaml"));
    let admin = run(&p, &policy, &demo_job("1-admin-original"));
    assert_eq!(admin.status, Status::Done);
    assert_eq!(
        (admin.renditions[0].width, admin.renditions[0].height),
        (Some(2400), Some(1598))
    );
    assert_eq!(
        stored(dir.path(), &admin.renditions[0].key),
        std::fs::read(fixture("originals/hero.jpg")).unwrap()
    );

    let collab = run(&p, &policy, &demo_job("2-collaborator-2048"));
    let r = &collab.renditions[0];
    assert_eq!(
        (r.width, r.height, r.watermarked, r.cached),
        (Some(2048), Some(1364), false, false)
    );
    let img = image::load_from_memory(&stored(dir.path(), &r.key)).unwrap();
    assert_eq!((img.width(), img.height()), (2048, 1364));
    assert_eq!(r.bytes as usize, stored(dir.path(), &r.key).len());

    let restricted = run(&p, &policy, &demo_job("3-restricted-1024-watermarked"));
    let r = &restricted.renditions[0];
    assert_eq!((r.width, r.height, r.watermarked), (Some(1024), Some(682), true));

    assert!(!admin.renditions[0].cached);
    let replay = run(&p, &policy, &demo_job("1-admin-original"));
    assert_eq!(replay, admin, "the same job id answers the same result");
    let admin_again = run(&p, &policy, &renamed(demo_job("1-admin-original"), "again-1"));
    assert!(
        admin_again.renditions[0].cached,
        "a repeated original is a cache hit too"
    );
    assert_eq!(admin_again.renditions[0].key, admin.renditions[0].key);
    let again = run(&p, &policy, &renamed(demo_job("2-collaborator-2048"), "again-2"));
    assert!(again.renditions[0].cached, "same request, same key: a cache hit");
    assert_eq!(again.renditions[0].key, collab.renditions[0].key);
    assert_eq!(again.renditions[0].sha256, collab.renditions[0].sha256);
}

#[test]
fn bad_jobs_fail_with_their_codes_and_denials_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (p, policy) = (pipeline(dir.path(), "http://h"), load_policy("policy.yaml"));
    let with_source = |source: &str| {
        let mut job = renamed(demo_job("2-collaborator-2048"), &source.replace('/', "-"));
        job["asset"]["source"] = Value::from(source);
        job
    };
    for (source, code) in [
        ("originals/truncated.jpg", "corrupt_input"),
        ("originals/bomb.png", "too_large"),
        ("originals/not-an-image.jpg", "unsupported_format"),
        ("originals/nowhere.jpg", "missing_source"),
    ] {
        let result = run(&p, &policy, &with_source(source));
        assert_eq!(result.status, Status::Failed, "{source}");
        assert_eq!(result.error.as_ref().unwrap().code, code, "{source}");
        assert!(result.renditions.is_empty());
    }
    let mut bad = demo_job("2-collaborator-2048");
    bad["request"]["sharpen"] = Value::from(true);
    let result = run(&p, &policy, &bad);
    assert_eq!(
        (result.status, result.error.unwrap().code.as_str()),
        (Status::Failed, "invalid_job")
    );
    assert_eq!(result.job_id, "demo-collaborator-2048");

    let mut denied = demo_job("2-collaborator-2048");
    denied["principal"] = serde_json::json!({"user": "u-dan"});
    let result = run(&p, &policy, &denied);
    assert_eq!(result.status, Status::Denied);
    assert!(!dir.path().join("renditions").exists(), "a denial writes nothing");
}

#[test]
fn share_renditions_live_under_the_share_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (p, policy) = (pipeline(dir.path(), "http://h"), load_policy("policy.yaml"));
    let mut job = demo_job("2-collaborator-2048");
    job["principal"] = serde_json::json!({"share": "s-7", "email": "buyer@example.com"});
    let result = run(&p, &policy, &job);
    let r = &result.renditions[0];
    assert!(r.key.starts_with("renditions/shares/s-7/a-1001/"), "{}", r.key);
    assert_eq!((r.width, r.watermarked), (Some(1024), true));
}

/// The resolver's limit, watermark and forensic mark hold for what is
/// actually delivered, for every image scenario of the table, made from a
/// real photograph: a marked decision's pixels name the delivery its
/// record names, an unmarked one's name no one.
#[test]
fn delivered_renditions_never_exceed_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "http://h");
    let file = ScenarioFile::load();
    let policy = load_policy(&file.policy);
    let (mut checked, mut frames, mut marked) = (0, 0, 0);
    let keys = ForensicKeys(vec![ForensicKey::new(FORENSIC_KEY)]);
    for scenario in file.scenarios.iter().filter(|s| s.policy.is_none()) {
        let mut job = file.job(scenario);
        if job["asset"]["media"] != "image" || job["purpose"] == "publish" {
            continue;
        }
        job["asset"]["source"] = Value::from("originals/hero.jpg");
        let parsed = Job::parse(&serde_json::to_vec(&job).unwrap()).unwrap();
        let decision = resolve(&policy, &Query::of(&parsed, Utc::now()));
        let result = run(&p, &policy, &job);
        assert_eq!(result.status == Status::Done, decision.allowed, "{}", scenario.name);
        for r in &result.renditions {
            let img = image::load_from_memory(&stored(dir.path(), &r.key)).unwrap();
            let long = img.width().max(img.height());
            match decision.limit.unwrap() {
                Cap::MaxEdge(n) => assert!(long <= n, "{}: {long} > {n}", scenario.name),
                Cap::Original | Cap::MaxHeight(_) | Cap::MaxKbps(_) => {}
            }
            // A preset's cover frame is delivered exactly (hero.jpg is
            // larger than every frame of the demo policy).
            if let [
                Target::Frame {
                    width,
                    height,
                    fit: Fit::Cover,
                },
            ] = decision.targets.as_slice()
            {
                assert_eq!(img.dimensions(), (*width, *height), "{}", scenario.name);
                frames += 1;
            }
            assert_eq!(r.watermarked, decision.watermark, "{}", scenario.name);
            let found = trace(&img, &keys, &[]).map(|t| t.delivery_id);
            assert_eq!(r.forensic_mark.is_some(), decision.forensic, "{}", scenario.name);
            assert_eq!(
                found, r.forensic_mark,
                "{}: the pixels and the record disagree",
                scenario.name
            );
            marked += usize::from(decision.forensic);
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} renditions checked");
    assert!(marked >= 3, "only {marked} forensically marked renditions checked");
    assert!(frames >= 2, "only {frames} preset frames checked");
}

/// Serves `store` on a loopback port for the test's lifetime.
fn serve(store: &Path) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let store = FsStore::new(store, None);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            rendition::serve::run(listener, store, LinkSigner::new(SECRET, ""), std::future::pending())
                .await
                .unwrap();
        });
    });
    format!("http://{addr}")
}

fn get(url: &str) -> reqwest::blocking::Response {
    reqwest::blocking::get(url).unwrap()
}

/// `rendition ARGS --store DIR` from the repository root: its output lines, parsed.
fn lines_of<T: serde::de::DeserializeOwned>(args: &[&str], store: &Path) -> Vec<T> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rendition"))
        .args(args)
        .arg("--store")
        .arg(store)
        .env("RENDITION_LINK_SECRET", SECRET)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn the_render_command_prints_links_that_serve_the_right_files() {
    let dir = tempfile::tempdir().unwrap();
    let base = serve(dir.path());
    let render = [
        "render",
        "--policy",
        "fixtures/policy.yaml",
        "--job",
        "fixtures/demo",
        "--originals",
        "fixtures",
        "--link-base",
        &base,
    ];
    let results: Vec<JobResult> = lines_of(&render, dir.path());
    // The same jobs again: the remembered answers, and still one audit record each.
    let again: Vec<JobResult> = lines_of(&render, dir.path());
    assert_eq!(again.len(), 3);
    let trail: Vec<rendition::audit::AuditRecord> = lines_of(&["audit"], dir.path());
    let mut ids: Vec<_> = trail.iter().map(|r| r.job_id.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        ["demo-admin-original", "demo-collaborator-2048", "demo-restricted-1024"]
    );
    let anna: Vec<rendition::audit::AuditRecord> = lines_of(&["audit", "--principal", "u-anna"], dir.path());
    assert_eq!(anna.len(), 1);
    let original = results.iter().find(|r| r.job_id == "demo-admin-original").unwrap();
    assert_eq!(anna[0].renditions[0].sha256, original.renditions[0].sha256);
    assert_eq!(results.len(), 3);
    for result in &results {
        assert_eq!(result.status, Status::Done, "{}", result.job_id);
        let r = &result.renditions[0];
        let response = get(&r.url);
        assert_eq!(response.status(), 200, "{}", r.url);
        let disposition = response.headers()["content-disposition"].to_str().unwrap().to_string();
        assert!(disposition.contains("launch-hero.jpg"), "{disposition}");
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        let body = response.bytes().unwrap();
        let img = image::load_from_memory(&body).unwrap();
        let want = match result.job_id.as_str() {
            "demo-admin-original" => 2400,
            "demo-collaborator-2048" => 2048,
            _ => 1024,
        };
        assert_eq!(img.width(), want, "{}", result.job_id);
    }
}

#[test]
fn tampered_expired_and_unsigned_links_get_403_and_gone_files_404() {
    let dir = tempfile::tempdir().unwrap();
    let base = serve(dir.path());
    let (p, policy) = (pipeline(dir.path(), &base), load_policy("policy.yaml"));
    let result = run(&p, &policy, &demo_job("2-collaborator-2048"));
    let url = result.renditions[0].url.clone();
    assert_eq!(get(&url).status(), 200);

    let (path, query) = url.split_once('?').unwrap();
    let sig_at = query.find("sig=").unwrap() + 4;
    let mut flipped = query.to_string();
    let c = if &query[sig_at..sig_at + 1] == "0" { "1" } else { "0" };
    flipped.replace_range(sig_at..sig_at + 1, c);
    assert_eq!(get(&format!("{path}?{flipped}")).status(), 403, "a flipped signature");
    let later = query.replace("exp=", "exp=9");
    assert_eq!(get(&format!("{path}?{later}")).status(), 403, "a pushed-back expiry");
    let other_key = path.replace(".jpg", ".png");
    assert_eq!(get(&format!("{other_key}?{query}")).status(), 403, "another key");
    assert_eq!(get(path).status(), 403, "no signature at all");

    let signer = LinkSigner::new(SECRET, &base);
    let key = &result.renditions[0].key;
    let expired = signer.sign(key, Utc::now() - Duration::seconds(5));
    assert_eq!(get(&expired).status(), 403, "an expired link");
    let wrong_secret = LinkSigner::new("not-the-secret", &base).sign(key, Utc::now() + Duration::seconds(60));
    assert_eq!(get(&wrong_secret).status(), 403, "another secret");

    std::fs::remove_file(dir.path().join(key)).unwrap();
    assert_eq!(get(&url).status(), 404, "a deleted rendition");
}

#[test]
fn the_policy_logo_is_burnt_in_and_a_missing_one_fails_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "http://h");
    let mut doc = load_policy("policy.yaml").document().clone();
    doc.watermark.logo = Some("originals/logo.png".into());
    let with_logo = Policy::from_document(doc.clone()).unwrap();
    let result = run(&p, &with_logo, &demo_job("3-restricted-1024-watermarked"));
    assert_eq!(result.status, Status::Done);
    let plain = run(
        &p,
        &load_policy("policy.yaml"),
        &renamed(demo_job("3-restricted-1024-watermarked"), "plain"),
    );
    assert_ne!(
        result.renditions[0].key, plain.renditions[0].key,
        "the logo is part of the cache key"
    );
    let redness = |key: &str| {
        let img = image::load_from_memory(&stored(dir.path(), key)).unwrap().to_rgb8();
        img.pixels()
            .filter(|px| px[0] > 150 && px[1] < 90 && px[2] < 90)
            .count()
    };
    assert!(redness(&result.renditions[0].key) > redness(&plain.renditions[0].key) + 100);

    doc.watermark.logo = Some("originals/no-such-logo.png".into());
    let missing = Policy::from_document(doc).unwrap();
    let result = run(
        &p,
        &missing,
        &renamed(demo_job("3-restricted-1024-watermarked"), "no-logo"),
    );
    assert_eq!(
        (result.status, result.error.unwrap().code.as_str()),
        (Status::Failed, "missing_source")
    );
}

/// A document collection: readers may have other files whole and their
/// pages at 600 px; reviewers get pages watermarked; guests no other files.
const DOCUMENTS: &str = r#"
version: 7
roles:
  reader: { download: { image: 600, other: true } }
  reviewer: { download: { image: 600, other: true }, watermark: true }
  guest: { download: { image: 600, other: false } }
users:
  u-rita: { role: reader }
  u-rex: { role: reviewer }
  u-gail: { role: guest }
collections:
  - id: c-docs
    visibility: everyone
    access: any_visitor
    download: { image: original, other: true }
"#;

fn page_poster(user: &str, page: u32) -> Value {
    serde_json::json!({
        "schema": "rendition.job/v1", "job_id": format!("pdf-{user}-{page}"), "purpose": "download",
        "principal": {"user": user},
        "asset": {"id": "a-doc", "collection": "c-docs", "media": "other",
                  "source": "originals/formats/pages.pdf", "restricted": false, "filename": "brief.pdf"},
        "request": {"rendition": "poster", "format": "png", "page": page},
        "link_ttl_s": 900
    })
}

#[test]
fn a_pdf_poster_obeys_the_image_limit_the_watermark_and_the_other_files_right() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "http://h");
    let policy = Policy::parse(DOCUMENTS, rendition::policy::DocFormat::Yaml).unwrap();
    let picture = |result: &JobResult| {
        assert_eq!(result.status, Status::Done, "{:?}", result.error);
        let r = &result.renditions[0];
        let img = image::load_from_memory(&stored(dir.path(), &r.key)).unwrap().to_rgb8();
        assert_eq!((Some(img.width()), Some(img.height())), (r.width, r.height));
        (img, r.watermarked)
    };
    let (plain, marked) = (picture(&run(&p, &policy, &page_poster("u-rita", 1))), false);
    assert_eq!((plain.0.dimensions(), plain.1), ((464, 600), marked));
    assert!(plain.0.get_pixel(10, 10)[0] > 230, "upright: red on top");
    let (mut reviewed, watermarked) = picture(&run(&p, &policy, &page_poster("u-rex", 1)));
    assert!(watermarked);
    assert_eq!(reviewed.dimensions(), (464, 600));
    let changed = plain
        .0
        .pixels()
        .zip(reviewed.pixels_mut())
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        changed > 5000,
        "the reviewer's page carries the mark ({changed} pixels)"
    );
    let (second, _) = picture(&run(&p, &policy, &page_poster("u-rita", 2)));
    assert_eq!(second.dimensions(), (600, 424));
    let denied = run(&p, &policy, &page_poster("u-gail", 1));
    assert_eq!(denied.status, Status::Denied);
    let missing = run(&p, &policy, &page_poster("u-rita", 9));
    assert_eq!(
        (missing.status, missing.error.unwrap().code.as_str()),
        (Status::Failed, "no_such_page")
    );
}
