//! Audio proxies (docs/contract.md#audio-proxies): a role whose audio
//! limit is a bit rate gets the audio alone as AAC at most that rate, in
//! process and in a confined video engine; whole audio stays whole; a
//! proxy asked by someone who may have the whole gets the default rate.

use std::process::Command;

use rendition::pipeline::{Arrival, VideoEngines};
use rendition::policy::{DocFormat, Policy};
use rendition::result::{JobResult, Status};
use rendition::work::Work;

use crate::common::fixture;
use crate::video::{in_process, video_pipeline, video_processes};

const POLICY: &str = "version: 1
roles:
  listener: { download: { audio: 64 } }
  producer: { download: { audio: true } }
  previewer: { download: { audio: true, audio_seconds: 1 } }
users: { u-lis: { role: listener }, u-pro: { role: producer }, u-pre: { role: previewer } }
collections:
  - { id: c-sound, visibility: everyone, access: any_visitor, download: { audio: true } }
";

fn ask(engines: VideoEngines, store: &std::path::Path, user: &str, rendition: &str) -> JobResult {
    ask_of(engines, store, (user, rendition), "jingle.m4a")
}

fn ask_of(engines: VideoEngines, store: &std::path::Path, (user, rendition): (&str, &str), source: &str) -> JobResult {
    let temp = tempfile::tempdir().unwrap();
    let pipeline = video_pipeline(engines, &fixture(""), (temp.path(), store), Default::default());
    let job = serde_json::json!({
        "schema": "rendition.job/v1", "job_id": format!("a-{user}-{rendition}"), "purpose": "download",
        "principal": {"user": user},
        "asset": {"id": "a-j", "collection": "c-sound", "media": "audio",
                  "source": format!("originals/video/{source}"), "filename": source},
        "request": {"rendition": rendition, "format": "auto"},
    });
    let work = Work::parse(&serde_json::to_vec(&job).unwrap(), false);
    let policy = Policy::parse(POLICY, DocFormat::Yaml).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(pipeline.run(&policy, &work, Arrival::now(), None)).result
}

/// ffprobe's (streams' codec types and names, bit rate, duration).
fn probe(path: &std::path::Path) -> (Vec<String>, f64, f64) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration,bit_rate:stream=codec_type,codec_name",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"].as_array().unwrap().iter();
    let kinds = streams.map(|s| {
        format!(
            "{}:{}",
            s["codec_type"].as_str().unwrap(),
            s["codec_name"].as_str().unwrap()
        )
    });
    let number = |k: &str| v["format"][k].as_str().unwrap().parse::<f64>().unwrap();
    (kinds.collect(), number("bit_rate"), number("duration"))
}

fn check_proxy(result: &JobResult, store: &std::path::Path, kbps: u32) {
    assert_eq!(result.status, Status::Done, "{:?} {:?}", result.error, result.decision);
    let decision = serde_json::to_value(result.decision.as_ref().unwrap()).unwrap();
    assert_eq!(
        decision["targets"],
        serde_json::json!([{ "audio": { "max_kbps": kbps } }])
    );
    let record = &result.renditions[0];
    assert_eq!(record.content_type, "audio/mp4");
    assert!(record.key.ends_with(".m4a") && record.width.is_none(), "{record:?}");
    let (kinds, bit_rate, duration) = probe(&store.join(&record.key));
    assert_eq!(kinds, ["audio:aac"], "the audio alone, AAC");
    assert!(
        bit_rate <= f64::from(kbps) * 1000.0 * 1.25,
        "{bit_rate} b/s over {kbps} kb/s"
    );
    assert!((duration - 1.0).abs() < 0.1, "the whole jingle: {duration} s");
}

#[test]
fn a_role_held_to_a_bit_rate_gets_an_aac_proxy_at_most_that_rate() {
    let store = tempfile::tempdir().unwrap();
    let result = ask(in_process(), store.path(), "u-lis", "original");
    assert!(
        result.decision.as_ref().unwrap().clamped,
        "the original was brought down to a proxy"
    );
    check_proxy(&result, store.path(), 64);
    let scratch = tempfile::tempdir().unwrap();
    let confined = ask(video_processes(scratch.path()), store.path(), "u-lis", "proxy");
    check_proxy(&confined, store.path(), 64);
}

#[test]
fn whole_audio_stays_whole_and_its_proxy_has_the_default_rate() {
    let store = tempfile::tempdir().unwrap();
    let whole = ask(in_process(), store.path(), "u-pro", "original");
    assert_eq!(whole.status, Status::Done);
    let record = &whole.renditions[0];
    let stored = std::fs::read(store.path().join(&record.key)).unwrap();
    assert_eq!(
        stored,
        std::fs::read(fixture("originals/video/jingle.m4a")).unwrap(),
        "byte for byte"
    );
    check_proxy(&ask(in_process(), store.path(), "u-pro", "proxy"), store.path(), 128);
}

#[test]
fn a_preview_length_cuts_the_audio_to_it() {
    let store = tempfile::tempdir().unwrap();
    // clip.mp4's 3 s of sound, asked whole by a role that previews 1 s.
    let result = ask_of(in_process(), store.path(), ("u-pre", "original"), "clip.mp4");
    assert_eq!(result.status, Status::Done, "{:?} {:?}", result.error, result.decision);
    let decision = serde_json::to_value(result.decision.as_ref().unwrap()).unwrap();
    assert_eq!(
        decision["targets"],
        serde_json::json!([{ "audio": { "max_kbps": 128, "max_seconds": 1 } }])
    );
    let (kinds, _, duration) = probe(&store.path().join(&result.renditions[0].key));
    assert_eq!(kinds, ["audio:aac"], "the sound alone, no picture");
    assert!((0.9..1.2).contains(&duration), "cut to 1 s: {duration} s");
}
