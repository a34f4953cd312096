//! Video, audio and other files through the real worker (RabbitMQ and
//! s3s-fs): every proxy is downloaded over its presigned link and checked
//! with `ffprobe` and decoded frames from the `ffmpeg` CLI.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use image::RgbImage;
use rendition::result::{JobResult, Status};
use serde_json::{Value, json};

use crate::common::fixture;
use crate::lab::Lab;

const LIMIT: Duration = Duration::from_secs(180);

/// A download job for `source` (under fixtures/originals/video) in `collection`.
fn video_job(id: &str, principal: Value, source: &str, collection: &str, rendition: Value) -> Value {
    let media = match source.rsplit('.').next() {
        Some("mp4") => "video",
        Some("m4a") => "audio",
        _ => "other",
    };
    json!({
        "schema": "rendition.job/v1",
        "job_id": id,
        "purpose": "download",
        "principal": principal,
        "asset": {
            "id": format!("a-{id}"), "collection": collection, "media": media,
            "source": format!("originals/video/{source}"), "filename": source
        },
        "request": { "rendition": rendition, "format": "auto" },
        "link_ttl_s": 900
    })
}

fn fetch(url: &str) -> Vec<u8> {
    let response = reqwest::blocking::get(url).unwrap();
    assert_eq!(response.status().as_u16(), 200, "{url}");
    response.bytes().unwrap().to_vec()
}

fn in_temp_file(bytes: &[u8], ext: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    file
}

/// `ffprobe`'s streams and format, as JSON.
fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_streams", "-show_format"])
        .arg(path)
        .output()
        .expect("ffprobe is installed (scripts/install-deps)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stream<'a>(probe: &'a Value, kind: &str) -> Option<&'a Value> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
}

fn seconds(v: &Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

/// The frame shown at `at` seconds, decoded by the `ffmpeg` CLI.
fn frame_at(path: &Path, at: f64) -> RgbImage {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &at.to_string(), "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    image::load_from_memory(&out.stdout).unwrap().to_rgb8()
}

/// The top-level MP4 boxes, in file order.
fn top_level_boxes(bytes: &[u8]) -> Vec<String> {
    let mut at = 0usize;
    let mut names = Vec::new();
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        names.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
        if size < 8 {
            break;
        }
        at += size;
    }
    names
}

/// Checks a delivered MP4 proxy the way a player would, and returns its path.
fn check_proxy(result: &JobResult, max_height: u32, source: &str, audio: bool) -> tempfile::NamedTempFile {
    assert_eq!(result.status, Status::Done, "{result:?}");
    let record = &result.renditions[0];
    assert_eq!(record.content_type, "video/mp4");
    let bytes = fetch(&record.url);
    assert_eq!(bytes.len() as u64, record.bytes);
    let boxes = top_level_boxes(&bytes);
    let (moov, mdat) = (
        boxes.iter().position(|b| b == "moov"),
        boxes.iter().position(|b| b == "mdat"),
    );
    assert!(
        moov.unwrap() < mdat.unwrap(),
        "fast start: the index comes first ({boxes:?})"
    );
    let file = in_temp_file(&bytes, ".mp4");
    let probe = ffprobe(file.path());
    let video = stream(&probe, "video").unwrap();
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["pix_fmt"], "yuv420p");
    let (w, h) = (video["width"].as_u64().unwrap(), video["height"].as_u64().unwrap());
    assert!(h <= u64::from(max_height), "{h} px high, the limit is {max_height}");
    assert!(w % 2 == 0 && h % 2 == 0, "{w}x{h}");
    assert_eq!((Some(w as u32), Some(h as u32)), (record.width, record.height));
    assert_eq!(
        stream(&probe, "audio").map(|a| a["codec_name"].clone()),
        audio.then(|| json!("aac"))
    );
    let original = ffprobe(&fixture(&format!("originals/video/{source}")));
    let source_video = stream(&original, "video").unwrap();
    let frame = {
        let (n, d) = source_video["avg_frame_rate"]
            .as_str()
            .unwrap()
            .split_once('/')
            .unwrap();
        d.parse::<f64>().unwrap() / n.parse::<f64>().unwrap()
    };
    let (ours, theirs) = (seconds(&video["duration"]), seconds(&source_video["duration"]));
    assert!(
        (ours - theirs).abs() <= frame + 1e-6,
        "duration {ours} s, source {theirs} s"
    );
    file
}

#[test]
fn video_audio_and_other_files_on_the_worker_path() {
    let lab = Lab::new("video");
    let _worker = lab.worker(&[]);
    let cleo = json!({"user": "u-cleo"});
    let anyone = json!({"anonymous": true});
    let jobs = [
        // Role restricted in g-launch: 540 px high, watermarked.
        video_job("proxy", cleo.clone(), "clip.mp4", "g-launch", json!("proxy")),
        // c-public allows anyone 540 px high video, without a watermark.
        video_job("plain", anyone.clone(), "clip.mp4", "g-events", json!("original")),
        video_job("portrait", cleo.clone(), "portrait.mp4", "g-launch", json!("original")),
        video_job("silent", cleo.clone(), "silent-odd.mp4", "g-launch", json!("original")),
        video_job("poster", cleo.clone(), "clip.mp4", "g-launch", json!("poster")),
        video_job("fade", anyone.clone(), "fade-in.mp4", "g-events", json!("poster")),
        video_job(
            "truncated",
            cleo.clone(),
            "truncated.mp4",
            "g-launch",
            json!("original"),
        ),
        video_job("text", cleo.clone(), "not-a-video.mp4", "g-launch", json!("original")),
        video_job("audio-ok", anyone.clone(), "jingle.m4a", "g-events", json!("original")),
        video_job(
            "audio-no",
            json!({"user": "u-ben"}),
            "jingle.m4a",
            "g-launch",
            json!("original"),
        ),
        video_job("other-ok", anyone.clone(), "brief.pdf", "g-events", json!("original")),
        video_job(
            "other-no",
            json!({"user": "u-ben"}),
            "brief.pdf",
            "g-launch",
            json!("original"),
        ),
    ];
    for job in &jobs {
        lab.send(job);
    }
    let results: HashMap<String, JobResult> = lab.replies(jobs.len(), LIMIT).into_iter().collect();

    // The watermarked proxy and the plain rendition: same size, same source.
    let proxy = check_proxy(&results["proxy"], 540, "clip.mp4", true);
    let plain = check_proxy(&results["plain"], 540, "clip.mp4", true);
    assert!(results["proxy"].renditions[0].watermarked && !results["plain"].renditions[0].watermarked);
    assert_eq!(
        results["proxy"].renditions[0].height,
        Some(540),
        "720 px source, 540 px limit"
    );
    let difference = crate::common::mean_diff(&frame_at(proxy.path(), 1.0), &frame_at(plain.path(), 1.0));
    assert!(
        difference > 2.0,
        "the mark shows in the decoded frame (mean difference {difference:.2})"
    );

    // Phone video comes out upright: stored 640x360, shown 360x640, red on top.
    let portrait = check_proxy(&results["portrait"], 540, "portrait.mp4", true);
    let frame = frame_at(portrait.path(), 0.5);
    assert!(frame.height() > frame.width(), "{:?}", frame.dimensions());
    let (top, bottom) = (
        frame.get_pixel(frame.width() / 2, 10),
        frame.get_pixel(frame.width() / 2, frame.height() - 10),
    );
    assert!(top[0] > 150 && top[2] < 100, "red on top: {top:?}");
    assert!(bottom[2] > 150 && bottom[0] < 100, "blue below: {bottom:?}");

    // Odd dimensions become even; no audio in, none out.
    check_proxy(&results["silent"], 540, "silent-odd.mp4", false);

    // Posters are images: the role's 1024 px image limit and its watermark.
    let poster = &results["poster"].renditions[0];
    assert_eq!(
        (poster.content_type.as_str(), poster.width, poster.height),
        ("image/jpeg", Some(1024), Some(576))
    );
    assert!(poster.watermarked);
    let still = image::load_from_memory(&fetch(&poster.url)).unwrap();
    assert_eq!((still.width(), still.height()), (1024, 576));
    // The fade-in clip is black for its first second, where 10 % falls.
    let fade = image::load_from_memory(&fetch(&results["fade"].renditions[0].url))
        .unwrap()
        .to_rgb8();
    let bright = fade.pixels().filter(|p| p.0.iter().any(|&c| c > 40)).count();
    assert!(bright * 10 > fade.pixels().len(), "the poster skipped the black frames");

    // Bad files fail with their codes.
    let code = |id: &str| results[id].error.as_ref().map(|e| e.code.clone());
    assert_eq!(
        code("truncated").as_deref(),
        Some("corrupt_input"),
        "{:?}",
        results["truncated"]
    );
    assert_eq!(
        code("text").as_deref(),
        Some("unsupported_format"),
        "{:?}",
        results["text"]
    );

    // Audio and other files: the original, byte for byte, or a denial.
    for (id, source) in [("audio-ok", "jingle.m4a"), ("other-ok", "brief.pdf")] {
        let original = std::fs::read(fixture(&format!("originals/video/{source}"))).unwrap();
        assert_eq!(results[id].status, Status::Done, "{:?}", results[id]);
        assert_eq!(fetch(&results[id].renditions[0].url), original);
    }
    for id in ["audio-no", "other-no"] {
        assert_eq!(results[id].status, Status::Denied, "{:?}", results[id]);
        assert!(results[id].renditions.is_empty());
    }
    assert!(results["audio-no"].decision.as_ref().unwrap().reason.contains("audio"));

    // Transcodes told their caller they started, with the job's correlation id.
    let progress = lab.progress.lock().unwrap();
    assert!(
        progress
            .iter()
            .any(|(id, p)| id == "proxy" && p.job_id == "proxy" && p.frames >= 1)
    );
    assert!(progress.iter().all(|(_, p)| (0.0..=100.0).contains(&p.percent)));
}

#[test]
fn video_and_image_pools_scale_apart() {
    let lab = Lab::new("pools");
    let video_worker = lab.worker(&[("RENDITION_QUEUES", "video")]);
    let image_worker = lab.worker(&[("RENDITION_QUEUES", "image")]);
    lab.send(&video_job(
        "clip",
        json!({"user": "u-cleo"}),
        "clip.mp4",
        "g-launch",
        json!("proxy"),
    ));
    lab.send(&crate::lab::job("3-restricted-1024-watermarked", "photo"));
    let results: HashMap<String, JobResult> = lab.replies(2, LIMIT).into_iter().collect();
    assert_eq!(results["clip"].status, Status::Done, "{:?}", results["clip"]);
    assert_eq!(results["photo"].status, Status::Done, "{:?}", results["photo"]);
    let ran = |log: &str, id: &str| log.contains(&format!("job_id={id} "));
    let (video_log, image_log) = (plain(&video_worker.log_text()), plain(&image_worker.log_text()));
    assert!(ran(&video_log, "clip") && !ran(&video_log, "photo"), "{video_log}");
    assert!(ran(&image_log, "photo") && !ran(&image_log, "clip"), "{image_log}");
}

/// The log without its colour codes.
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}
