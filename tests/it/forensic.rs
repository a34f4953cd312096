//! Forensic marks end to end (docs/forensic.md): jobs rendered by the
//! `rendition render` command on the filesystem store, their outputs
//! attacked, and `rendition trace` naming each delivery from the audit
//! trail; an unmarked delivery and another library's key name no one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView};
use rendition::result::JobResult;
use serde_json::{Value, json};

use crate::common::fixture;

const KEY: &str = "forensic-test-key-of-thirty-two-bytes";
const OTHER_KEY: &str = "another-library-key-of-thirty-two-bytes";
const SECRET: &str = "test-secret-of-thirty-two-bytes!";

fn rendition(args: &[&str], store: &Path, key: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rendition"))
        .args(args)
        .arg("--store")
        .arg(store)
        .env("RENDITION_LINK_SECRET", SECRET)
        .env("RENDITION_FORENSIC_KEYS", key)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

/// The demo collaborator job as `id`, for `principal`, asking `asked`.
fn write_job(dir: &Path, id: &str, principal: Value, asked: Value) -> PathBuf {
    let mut job: Value =
        serde_json::from_slice(&std::fs::read(fixture("demo/2-collaborator-2048.json")).unwrap()).unwrap();
    job["job_id"] = json!(id);
    job["principal"] = principal;
    job["request"]["rendition"] = asked;
    let path = dir.join(format!("{id}.json"));
    std::fs::write(&path, serde_json::to_vec(&job).unwrap()).unwrap();
    path
}

fn jpeg(img: &DynamicImage, quality: u8, path: &Path) {
    let mut bytes = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality);
    img.to_rgb8().write_with_encoder(encoder).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `rendition trace FILE --json [ARGS]`: the exit code and the answer.
fn trace(file: &Path, store: &Path, key: &str, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["trace", file.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let out = rendition(&all, store, key);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answer = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), answer)
}

fn traced_job(answer: &Value) -> Vec<&str> {
    answer["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["job_id"].as_str().unwrap())
        .collect()
}

#[test]
fn leaked_copies_are_traced_to_their_recipients_and_unmarked_ones_to_no_one() {
    let (store, jobs, work) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let store = store.path();
    let ben = json!({"user": "u-ben"});
    let buyer = json!({"share": "s-7", "email": "buyer@example.com"});
    write_job(jobs.path(), "ben-review", ben.clone(), json!({"preset": "review"}));
    write_job(jobs.path(), "buyer-proxy", buyer, json!("original"));
    write_job(jobs.path(), "ben-original", ben, json!("original"));
    let out = rendition(
        &[
            "render",
            "--policy",
            "fixtures/policy.yaml",
            "--job",
            jobs.path().to_str().unwrap(),
            "--originals",
            "fixtures",
        ],
        store,
        KEY,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<JobResult> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rendition_of = |id: &str| results.iter().find(|r| r.job_id == id).unwrap().renditions[0].clone();
    let (review, proxy, plain) = (
        rendition_of("ben-review"),
        rendition_of("buyer-proxy"),
        rendition_of("ben-original"),
    );
    let decoded = |key: &str| image::load_from_memory(&std::fs::read(store.join(key)).unwrap()).unwrap();

    // The preset's copy, cropped at offsets nobody told the tracer, then
    // re-encoded; and a copy shrunk to 60 % (undone from the trail's sizes).
    let img = decoded(&review.key);
    let (w, h) = img.dimensions();
    let cropped = work.path().join("cropped.jpg");
    jpeg(
        &img.crop_imm(w * 7 / 100, h * 5 / 100, w * 85 / 100, h * 88 / 100),
        80,
        &cropped,
    );
    let (code, answer) = trace(&cropped, store, KEY, &[]);
    assert_eq!(
        (code, &answer["delivery_id"]),
        (0, &json!(review.forensic_mark)),
        "{answer}"
    );
    assert_eq!(traced_job(&answer), ["ben-review"]);
    assert_eq!(answer["deliveries"][0]["principal"], json!({"user": "u-ben"}));
    let shrunk = work.path().join("shrunk.jpg");
    jpeg(
        &img.resize_exact(w * 6 / 10, h * 6 / 10, FilterType::CatmullRom),
        75,
        &shrunk,
    );
    let (code, answer) = trace(&shrunk, store, KEY, &["--asset", "a-1001"]);
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["rescaled_to"], json!([w, h]));
    assert_eq!(traced_job(&answer), ["ben-review"]);

    // The share's watermarked proxy, in greyscale: the buyer, not Ben.
    let grey = work.path().join("grey.jpg");
    jpeg(&DynamicImage::ImageLuma8(decoded(&proxy.key).to_luma8()), 90, &grey);
    let (code, answer) = trace(&grey, store, KEY, &[]);
    assert_ne!(proxy.forensic_mark, review.forensic_mark);
    assert_eq!(
        (code, &answer["delivery_id"]),
        (0, &json!(proxy.forensic_mark)),
        "{answer}"
    );
    assert_eq!(answer["deliveries"][0]["principal"]["email"], "buyer@example.com");

    // Ben's own unmarked rendition, and the marked copy under another key.
    assert_eq!(plain.forensic_mark, None);
    let unmarked = work.path().join("plain.jpg");
    jpeg(&decoded(&plain.key), 90, &unmarked);
    let (code, answer) = trace(&unmarked, store, KEY, &[]);
    assert_eq!(
        (code, &answer["found"], traced_job(&answer).len()),
        (4, &json!(false), 0),
        "{answer}"
    );
    let (code, answer) = trace(&cropped, store, OTHER_KEY, &[]);
    assert_eq!((code, &answer["found"]), (4, &json!(false)), "{answer}");
    // A key rotated out of marking still traces what it marked.
    let (code, _) = trace(&cropped, store, &format!("{OTHER_KEY},{KEY}"), &[]);
    assert_eq!(code, 0);
}

#[test]
fn a_worker_without_a_forensic_key_fails_a_job_that_needs_a_mark() {
    let dir = tempfile::tempdir().unwrap();
    let config = rendition::pipeline::PipelineConfig::default();
    let originals = rendition::storage::fs::FsStore::new(fixture(""), None);
    let renditions = rendition::storage::fs::FsStore::new(
        dir.path(),
        Some(rendition::storage::link::LinkSigner::new(SECRET, "http://h")),
    );
    let p = rendition::pipeline::Pipeline::new(originals, renditions, config);
    let policy = crate::common::load_policy("policy.yaml");
    let job = write_job(
        dir.path(),
        "needs-a-mark",
        json!({"user": "u-ben"}),
        json!({"preset": "review"}),
    );
    let work = rendition::work::Work::parse(&std::fs::read(job).unwrap(), false);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt
        .block_on(p.run(&policy, &work, rendition::pipeline::Arrival::now(), None))
        .result;
    assert_eq!(result.status, rendition::result::Status::Failed);
    let error = result.error.unwrap();
    assert_eq!(error.code, "invalid_policy");
    assert!(error.message.contains("RENDITION_FORENSIC_KEYS"), "{}", error.message);
    assert!(result.renditions.is_empty());
}
