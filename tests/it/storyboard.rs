//! Storyboards (docs/contract.md#storyboards) through the pipeline on the
//! filesystem store, made by FFmpeg in this process and by the confined
//! video engine: a watermarked 5 × 5 sheet within the image limit and a
//! WebVTT index whose cues share the clip's duration and name tiles on
//! the sheet; a repeat finds both.

use rendition::pipeline::{Arrival, VideoEngines};
use rendition::result::{JobResult, Status};
use rendition::work::Work;

use crate::common::fixture;
use crate::video::{in_process, video_pipeline, video_processes};

fn storyboard(engines: VideoEngines, store: &std::path::Path, id: &str) -> JobResult {
    let temp = tempfile::tempdir().unwrap();
    let pipeline = video_pipeline(engines, &fixture(""), (temp.path(), store), Default::default());
    let job = serde_json::json!({
        "schema": "rendition.job/v1", "job_id": id, "purpose": "download",
        "principal": {"user": "u-cleo"},
        "asset": {"id": "a-v", "collection": "g-launch", "media": "video",
                  "source": "originals/video/clip.mp4", "filename": "clip.mp4"},
        "request": {"rendition": "storyboard", "format": "auto"},
    });
    let work = Work::parse(&serde_json::to_vec(&job).unwrap(), false);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(pipeline.run(&crate::common::load_policy("policy.yaml"), &work, Arrival::now(), None))
        .result
}

/// The cues of an index: (start, end) in seconds and the fragment.
fn cues(text: &str) -> Vec<(f64, f64, String)> {
    let seconds = |t: &str| {
        let parts: Vec<f64> = t.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    };
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .filter_map(|w| {
            let (start, end) = w[0].split_once(" --> ")?;
            Some((seconds(start), seconds(end), w[1].to_string()))
        })
        .collect()
}

fn check(result: &JobResult, store: &std::path::Path) {
    assert_eq!(result.status, Status::Done, "{:?}", result.error);
    let [sheet, index] = result.renditions.as_slice() else {
        panic!("a sheet and an index: {:?}", result.renditions)
    };
    assert_eq!(
        (sheet.content_type.as_str(), index.content_type.as_str()),
        ("image/jpeg", "text/vtt")
    );
    assert_eq!((sheet.width, sheet.height), (Some(800), Some(450)));
    assert!(
        sheet.watermarked,
        "u-cleo's role requires a watermark: so does every tile"
    );
    let picture = image::open(store.join(&sheet.key)).unwrap().to_rgb8();
    let text = std::fs::read_to_string(store.join(&index.key)).unwrap();
    let cues = cues(&text);
    assert!(text.starts_with("WEBVTT"), "{text}");
    assert_eq!(cues.len(), 25);
    assert_eq!((cues[0].0, cues[24].1), (0.0, 3.0), "the cues share the clip's 3 s");
    assert!(cues.windows(2).all(|w| w[0].1 == w[1].0), "one cue after another");
    for (_, _, fragment) in &cues {
        let (name, xywh) = fragment.split_once("#xywh=").unwrap();
        assert_eq!(
            name,
            sheet.key.rsplit('/').next().unwrap(),
            "the sheet by its key's name"
        );
        let v: Vec<u32> = xywh.split(',').map(|n| n.parse().unwrap()).collect();
        assert!(
            v[0] + v[2] <= picture.width() && v[1] + v[3] <= picture.height(),
            "{fragment}"
        );
    }
    // The tiles are different moments of the clip, not one frame repeated.
    let tile = |x: u32, y: u32| image::imageops::crop_imm(&picture, x, y, 160, 90).to_image();
    let diff = crate::common::mean_diff(&tile(0, 0), &tile(640, 360));
    assert!(diff > 2.0, "the first and last tiles look alike: {diff:.1}");
}

#[test]
fn a_storyboard_is_a_watermarked_sheet_and_an_index_of_the_clip() {
    let store = tempfile::tempdir().unwrap();
    let made = storyboard(in_process(), store.path(), "sb-1");
    check(&made, store.path());
    assert!(made.renditions.iter().all(|r| !r.cached));
    let again = storyboard(in_process(), store.path(), "sb-2");
    check(&again, store.path());
    assert!(again.renditions.iter().all(|r| r.cached), "a repeat finds both");
    assert_eq!(made.renditions[1].sha256, again.renditions[1].sha256);
}

#[test]
fn a_video_engine_process_makes_the_same_storyboard() {
    let (store, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let result = storyboard(video_processes(scratch.path()), store.path(), "sb-3");
    check(&result, store.path());
}
