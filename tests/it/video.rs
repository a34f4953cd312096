//! The video engine on its own (no worker, no services): its limits; and
//! video jobs through the pipeline: local copies, cleaned up.

use std::time::Duration;

use rendition::pipeline::{Arrival, Outcome, Pipeline, PipelineConfig, VideoEngines};
use rendition::result::{JobResult, Status};
use rendition::storage::fs::FsStore;
use rendition::storage::link::LinkSigner;
use rendition::work::Work;
use sha2::{Digest, Sha256};

use crate::common::fixture;

#[test]
fn the_video_engine_refuses_what_is_over_its_limits() {
    use rendition::error::Coded;
    use rendition::video::{ProxySpec, VideoLimits, poster, transcode};
    let input = fixture("originals/video/clip.mp4");
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.mp4");
    let spec = ProxySpec {
        max_height: Some(360),
        watermark: None,
        audio_kbps: None,
        audio_seconds: None,
    };
    let defaults = VideoLimits::default();
    let cases = [
        (
            "deadline_exceeded",
            VideoLimits {
                deadline: Duration::ZERO,
                ..defaults
            },
        ),
        (
            "too_large",
            VideoLimits {
                max_duration_s: 2.0,
                ..defaults
            },
        ),
        (
            "too_large",
            VideoLimits {
                max_source_pixels: 1280 * 719,
                ..defaults
            },
        ),
        (
            "too_large",
            VideoLimits {
                max_frames: 74,
                ..defaults
            },
        ),
    ];
    for (code, limits) in cases {
        let made = transcode(&input, &output, &spec, &limits, &mut |_| {});
        assert_eq!(made.map_err(|e| e.code()).unwrap_err(), code, "{limits:?}");
        assert_eq!(poster(&input, None, &limits).map_err(|e| e.code()).unwrap_err(), code);
    }
    // Within the limits, the same call succeeds and reports its progress.
    let mut reports = Vec::new();
    let made = transcode(&input, &output, &spec, &defaults, &mut |p| reports.push(p)).unwrap();
    assert_eq!((made.width, made.height, made.frames), (640, 360, 75));
    assert!(!reports.is_empty() && reports[0].frames == 1);
    assert_eq!(poster(&input, Some(2.0), &defaults).unwrap().dimensions(), (1280, 720));
}

/// A proxy job for a fixture video through the pipeline on the filesystem
/// store, with its temporary files in `temp`.
fn video_run(temp: &std::path::Path, limits: rendition::video::VideoLimits, source: &str, id: &str) -> JobResult {
    video_job_in(in_process(), &fixture(""), temp, limits, (source, "proxy"), id).result
}

/// Video engine processes: the real `rendition-video-engine`, confined,
/// with their scratch directories under `scratch`.
pub(crate) fn video_processes(scratch: &std::path::Path) -> VideoEngines {
    VideoEngines::Processes(rendition::isolated::EngineSettings {
        program: env!("CARGO_BIN_EXE_rendition-video-engine").into(),
        scratch: scratch.to_path_buf(),
        threads: 1,
        jobs_per_engine: 1,
        strict: true,
    })
}

/// FFmpeg in the test's own process, as the library's default.
pub(crate) fn in_process() -> VideoEngines {
    VideoEngines::InProcess(rendition::video::InProcess::FFMPEG)
}

/// A video job asking for `rendition` of `originals/video/{source}` under
/// `originals`, made where `engines` says, through the pipeline on the
/// filesystem store.
pub(crate) fn video_job_in(
    engines: VideoEngines,
    originals: &std::path::Path,
    temp: &std::path::Path,
    limits: rendition::video::VideoLimits,
    (source, rendition): (&str, &str),
    id: &str,
) -> Outcome {
    let (mut outcomes, _) = video_jobs_in(engines, originals, temp, limits, &[(source, rendition, id)]);
    outcomes.remove(0)
}

/// A pipeline on the filesystem store (`originals`, renditions in
/// `store`) with video made where `engines` says.
pub(crate) fn video_pipeline(
    engines: VideoEngines,
    originals: &std::path::Path,
    (temp, store): (&std::path::Path, &std::path::Path),
    limits: rendition::video::VideoLimits,
) -> Pipeline<FsStore> {
    let config = PipelineConfig {
        temp_dir: Some(temp.to_path_buf()),
        video_limits: limits,
        ..PipelineConfig::with_video(engines)
    };
    let renditions = FsStore::new(store, Some(LinkSigner::new("s", "http://x")));
    Pipeline::new(FsStore::new(originals, None), renditions, config)
}

/// Video jobs (`source`, `rendition`, job id) one after another through one
/// pipeline, and its engine processes started and crashed at the end.
pub(crate) fn video_jobs_in(
    engines: VideoEngines,
    originals: &std::path::Path,
    temp: &std::path::Path,
    limits: rendition::video::VideoLimits,
    jobs: &[(&str, &str, &str)],
) -> (Vec<Outcome>, Option<(u64, u64)>) {
    let store = tempfile::tempdir().unwrap();
    let pipeline = video_pipeline(engines, originals, (temp, store.path()), limits);
    let policy = crate::common::load_policy("policy.yaml");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut outcomes = Vec::new();
    for (source, rendition, id) in jobs {
        let job = serde_json::json!({
            "schema": "rendition.job/v1", "job_id": id, "purpose": "download",
            "principal": {"user": "u-cleo"},
            "asset": {"id": "a-v", "collection": "g-launch", "media": "video",
                      "source": format!("originals/video/{source}"), "filename": source},
            "request": {"rendition": rendition, "format": "auto"},
        });
        let work = Work::parse(&serde_json::to_vec(&job).unwrap(), false);
        let outcome = rt.block_on(pipeline.run(&policy, &work, Arrival::now(), None));
        let result = &outcome.result;
        if result.status == Status::Done {
            // What was uploaded from the local file is the rendition, byte for byte.
            let record = &result.renditions[0];
            let stored = std::fs::read(store.path().join(&record.key)).unwrap();
            assert_eq!(hex::encode(Sha256::digest(&stored)), record.sha256);
            assert_eq!(stored.len() as u64, record.bytes);
        }
        outcomes.push(outcome);
    }
    (outcomes, pipeline.engine_counts())
}

#[test]
fn video_sources_go_through_local_disk_and_leave_nothing_behind() {
    use rendition::video::VideoLimits;
    let temp = tempfile::tempdir().unwrap();
    let left = || std::fs::read_dir(temp.path()).unwrap().count();
    let defaults = VideoLimits::default();
    let clip_bytes = std::fs::metadata(fixture("originals/video/clip.mp4")).unwrap().len();

    let done = video_run(temp.path(), defaults, "clip.mp4", "v-done");
    assert_eq!(done.status, Status::Done, "{done:?}");
    assert_eq!(done.renditions[0].height, Some(540));
    assert_eq!(left(), 0, "removed after success");

    let corrupt = video_run(temp.path(), defaults, "truncated.mp4", "v-corrupt");
    assert_eq!(corrupt.status, Status::Failed);
    assert_eq!(left(), 0, "removed after a failure");

    let late = VideoLimits {
        deadline: Duration::ZERO,
        ..defaults
    };
    let late = video_run(temp.path(), late, "clip.mp4", "v-late");
    assert_eq!(late.error.unwrap().code, "deadline_exceeded");
    assert_eq!(left(), 0, "removed after the deadline");

    // The size cap is a setting: below the source it refuses before copying…
    let capped = VideoLimits {
        max_source_bytes: clip_bytes - 1,
        ..defaults
    };
    let refused = video_run(temp.path(), capped, "clip.mp4", "v-capped");
    assert_eq!(refused.error.unwrap().code, "too_large");
    // …and a source above a lowered cap transcodes once the cap is raised.
    let raised = VideoLimits {
        max_source_bytes: clip_bytes,
        ..defaults
    };
    assert_eq!(
        video_run(temp.path(), raised, "clip.mp4", "v-raised").status,
        Status::Done
    );
    assert_eq!(left(), 0);
}

/// Peak RSS (`VmHWM`, KiB) of `rendition render` running `job` in a child process.
fn render_peak_kib(originals: &std::path::Path, job: &serde_json::Value) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let job_file = dir.path().join("job.json");
    std::fs::write(&job_file, serde_json::to_vec(job).unwrap()).unwrap();
    let report = dir.path().join("time.txt");
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_rendition"))
        .args(["render", "--policy"])
        .arg(fixture("policy.yaml"))
        .arg("--job")
        .arg(&job_file)
        .arg("--originals")
        .arg(originals)
        .arg("--store")
        .arg(dir.path().join("store"))
        .output()
        .expect("GNU time (scripts/install-deps installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"status\":\"done\""),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&report).unwrap().trim().parse().unwrap()
}

#[test]
fn a_longer_video_source_does_not_cost_more_memory() {
    // Two ProRes masters, 2 s and 14 s (about 6 and 42 MB): the transcode
    // must hold packets and frames, never the source, so the longer one
    // may not raise the peak by anything like the difference.
    let originals = tempfile::tempdir().unwrap();
    std::fs::create_dir(originals.path().join("m")).unwrap();
    let master = |seconds: u32| {
        let name = format!("m/prores-{seconds}.mov");
        let status = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size=1280x720:rate=30:duration={seconds}"))
            .args(["-c:v", "prores_ks", "-profile:v", "3", "-pix_fmt", "yuv422p10le"])
            .arg(originals.path().join(&name))
            .status()
            .expect("the ffmpeg CLI (scripts/install-deps installs it)");
        assert!(status.success());
        let bytes = std::fs::metadata(originals.path().join(&name)).unwrap().len();
        let job = serde_json::json!({
            "schema": "rendition.job/v1", "job_id": format!("m-{seconds}"), "purpose": "download",
            "principal": {"user": "u-cleo"},
            "asset": {"id": "a-m", "collection": "g-launch", "media": "video", "source": name},
            "request": {"rendition": "proxy", "format": "auto"},
        });
        (job, bytes)
    };
    let ((short, short_bytes), (long, long_bytes)) = (master(2), master(14));
    let (short_peak, long_peak) = (
        render_peak_kib(originals.path(), &short),
        render_peak_kib(originals.path(), &long),
    );
    let extra_source_kib = (long_bytes - short_bytes) / 1024;
    let growth = long_peak.saturating_sub(short_peak);
    assert!(
        growth < extra_source_kib / 4,
        "peak {short_peak} KiB → {long_peak} KiB for {extra_source_kib} KiB more source"
    );
}

#[test]
fn a_poster_skips_a_white_slate() {
    // One second of white, then a test pattern; 10 % of 3 s falls on white.
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("slate.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "color=white:size=320x240:rate=25:duration=1"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2"])
        .args(["-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(&clip)
        .status()
        .expect("the ffmpeg CLI (scripts/install-deps installs it)");
    assert!(status.success());
    let still = rendition::video::poster(&clip, None, &rendition::video::VideoLimits::default()).unwrap();
    let white = still.pixels().filter(|p| p.0.iter().all(|&c| c > 235)).count();
    assert!(
        white * 2 < still.pixels().len(),
        "the poster is the slate: {white} white pixels"
    );
}
