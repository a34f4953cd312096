//! Video engine processes (src/isolated/video.rs, video_engine.rs): the
//! real `rendition-video-engine`, confined, making posters and proxies for
//! the pipeline. FFmpeg is mapped there and in no other program of ours;
//! an engine that crashes fails its job alone; an engine that lies about
//! its proxy gets nothing of the worker's uploaded.

use std::path::Path;

use rendition::isolated::EnginePool;
use rendition::isolated::attempts::{LINKED_PROXY_MARK, SEGFAULT_MARK};
use rendition::pipeline::VideoEngines;
use rendition::result::Status;
use rendition::video::{ProxySpec, VideoLimits};

use crate::common::fixture;
use crate::video::{in_process, video_jobs_in, video_processes};

/// The shared libraries `program` loads, as the dynamic loader lists them.
fn libraries(program: &str) -> String {
    let out = std::process::Command::new("ldd").arg(program).output().unwrap();
    assert!(out.status.success(), "ldd {program}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn only_the_video_engine_loads_ffmpeg() {
    let video = libraries(env!("CARGO_BIN_EXE_rendition-video-engine"));
    assert!(video.contains("libavcodec") && video.contains("libavformat"), "{video}");
    for program in [env!("CARGO_BIN_EXE_rendition"), env!("CARGO_BIN_EXE_rendition-engine")] {
        let loaded = libraries(program);
        assert!(loaded.contains("libc.so"), "{loaded}");
        for library in [
            "libavcodec",
            "libavformat",
            "libavutil",
            "libswscale",
            "libavfilter",
            "libx264",
        ] {
            assert!(!loaded.contains(library), "{program} loads {library}");
        }
    }
}

/// The shared libraries process `pid` has mapped.
fn mapped(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap()
}

const FFMPEG: [&str; 5] = ["libavcodec", "libavformat", "libavutil", "libswscale", "libavfilter"];

#[test]
fn a_running_worker_maps_no_ffmpeg_library_and_a_video_engine_does() {
    // A worker waiting for a broker that is not there (it waits, as in an
    // outage), on the embedded store.
    let store = tempfile::tempdir().unwrap();
    let mut worker = std::process::Command::new(env!("CARGO_BIN_EXE_rendition"))
        .arg("worker")
        .env("RENDITION_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .env("RENDITION_STORE", format!("fs:{}", store.path().display()))
        .env("RENDITION_POLICY", fixture("policy.yaml"))
        .env("RENDITION_HTTP_ADDR", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let alive = worker.try_wait().unwrap().is_none();
    let maps = mapped(worker.id());
    let _ = worker.kill();
    let _ = worker.wait();
    assert!(alive && maps.contains("libc.so"), "the worker ran: {maps}");
    for library in FFMPEG {
        assert!(!maps.contains(library), "the worker maps {library}");
    }
    // A video engine, once it has answered, maps them.
    let temp = tempfile::tempdir().unwrap();
    let pool = video_pool(temp.path());
    let mut engine = pool.session().unwrap();
    let _ = engine.attempt(rendition::isolated::attempts::Attempt::Read("/nonexistent".into()));
    let maps = mapped(engine.pid().unwrap());
    assert!(FFMPEG.iter().all(|l| maps.contains(l)), "{maps}");
}

#[test]
fn proxies_and_posters_are_made_in_video_engine_processes_as_in_this_one() {
    let temp = tempfile::tempdir().unwrap();
    let jobs = [("clip.mp4", "proxy", "v-proxy"), ("clip.mp4", "poster", "v-poster")];
    let limits = VideoLimits::default();
    let (there, counts) = video_jobs_in(video_processes(temp.path()), &fixture(""), temp.path(), limits, &jobs);
    let (here, _) = video_jobs_in(in_process(), &fixture(""), temp.path(), limits, &jobs);
    for (there, here) in there.iter().zip(&here) {
        let (there, here) = (&there.result, &here.result);
        assert_eq!(there.status, Status::Done, "{there:?}");
        let (a, b) = (&there.renditions[0], &here.renditions[0]);
        assert_eq!((a.width, a.height, a.watermarked), (b.width, b.height, b.watermarked));
    }
    assert_eq!(there[0].result.renditions[0].height, Some(540));
    // One engine for each job; they and their scratch directories are gone.
    assert_eq!(counts, Some((2, 0)));
    assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 0);
}

/// A pool of real video engines, their scratch directories under `scratch`.
fn video_pool(scratch: &Path) -> std::sync::Arc<EnginePool> {
    let VideoEngines::Processes(settings) = video_processes(scratch) else {
        unreachable!("video_processes gives processes")
    };
    std::sync::Arc::new(EnginePool::new(settings))
}

/// A proxy at the source's own height, unmarked.
fn whole_height() -> ProxySpec {
    ProxySpec {
        max_height: None,
        watermark: None,
        audio_kbps: None,
        audio_seconds: None,
    }
}

/// A store with `originals/video/{name}` holding `bytes`, beside the clip.
fn originals_with(name: &str, bytes: &[u8]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let videos = root.path().join("originals/video");
    std::fs::create_dir_all(&videos).unwrap();
    std::fs::write(videos.join(name), bytes).unwrap();
    std::fs::copy(fixture("originals/video/clip.mp4"), videos.join("clip.mp4")).unwrap();
    root
}

#[test]
fn a_video_that_crashes_its_engine_fails_its_job_alone() {
    let originals = originals_with("crash.mp4", SEGFAULT_MARK);
    let temp = tempfile::tempdir().unwrap();
    let jobs = [
        ("crash.mp4", "proxy", "v-crash-proxy"),
        ("crash.mp4", "poster", "v-crash-poster"),
        ("clip.mp4", "proxy", "v-after"),
    ];
    let engines = video_processes(temp.path());
    let (outcomes, counts) = video_jobs_in(engines, originals.path(), temp.path(), VideoLimits::default(), &jobs);
    for crashed in &outcomes[..2] {
        let error = crashed.result.error.as_ref().expect("failed");
        assert_eq!(error.code, "engine_crashed", "{error:?}");
        assert!(error.message.contains("SIGSEGV"), "{error:?}");
        assert!(!crashed.retry, "answered, not handed to another worker");
    }
    assert_eq!(outcomes[2].result.status, Status::Done, "{:?}", outcomes[2].result);
    // Each crashing job was tried twice, each time in a new engine; the
    // job after it had one more.
    assert_eq!(counts, Some((5, 4)));
}

#[test]
fn a_proxy_the_engine_linked_to_a_file_of_the_workers_is_not_taken() {
    let temp = tempfile::tempdir().unwrap();
    // Another job's video, staged by the worker: an MP4 the engine may not
    // read, which it names as its proxy.
    let secret = temp.path().join("another-jobs-source.mp4");
    std::fs::copy(fixture("originals/video/clip.mp4"), &secret).unwrap();
    let mut source = LINKED_PROXY_MARK.to_vec();
    source.extend(secret.to_str().unwrap().as_bytes());
    let staged = temp.path().join("staged");
    std::fs::write(&staged, &source).unwrap();
    let output = temp.path().join("proxy.mp4");
    let pool = video_pool(temp.path());
    let spec = whole_height();
    let taken = pool.session().unwrap().proxy(
        (&staged, &output),
        &spec,
        &VideoLimits::default(),
        64 << 20,
        &mut |_| {},
    );
    let error = taken.unwrap_err();
    assert_eq!(
        rendition::error::Coded::code(&error).as_str(),
        "corrupt_input",
        "{error}"
    );
    assert!(!output.exists(), "nothing was copied out");
}

#[test]
fn a_video_engine_starts_no_process_and_no_program() {
    use rendition::isolated::attempts::Attempt;
    let temp = tempfile::tempdir().unwrap();
    let pool = video_pool(temp.path());
    let forked = pool.session().unwrap().attempt(Attempt::ForkBomb).unwrap();
    assert!(
        forked.as_ref().is_err_and(|e| e.contains("after 0 processes")),
        "{forked:?}"
    );
    let ran = pool
        .session()
        .unwrap()
        .attempt(Attempt::Run("/bin/true".into()))
        .unwrap();
    assert!(ran.is_err(), "{ran:?}");
}

#[test]
fn a_flood_of_progress_reaches_the_job_a_few_times_and_clamped() {
    let temp = tempfile::tempdir().unwrap();
    let staged = temp.path().join("staged");
    std::fs::write(&staged, rendition::isolated::attempts::PROGRESS_FLOOD_MARK).unwrap();
    let pool = video_pool(temp.path());
    let spec = whole_height();
    let mut passed = Vec::new();
    let output = temp.path().join("proxy.mp4");
    let made = pool
        .session()
        .unwrap()
        .proxy((&staged, &output), &spec, &VideoLimits::default(), 64 << 20, &mut |p| {
            passed.push(p)
        });
    assert_eq!(
        rendition::error::Coded::code(&made.unwrap_err()).as_str(),
        "corrupt_input"
    );
    // 200 000 messages in, one a second out (the flood takes a few).
    assert!(!passed.is_empty() && passed.len() <= 10, "{} passed on", passed.len());
    for p in &passed {
        assert!(p.percent == 100.0 && p.fps == 0.0, "{p:?}");
    }
}

#[test]
fn a_proxy_reports_progress_across_the_socket() {
    let temp = tempfile::tempdir().unwrap();
    let pool = video_pool(temp.path());
    let output = temp.path().join("proxy.mp4");
    let spec = ProxySpec {
        max_height: Some(360),
        watermark: None,
        audio_kbps: None,
        audio_seconds: None,
    };
    let mut reports = Vec::new();
    let clip = temp.path().join("staged");
    std::fs::copy(fixture("originals/video/clip.mp4"), &clip).unwrap();
    let made = pool
        .session()
        .unwrap()
        .proxy((&clip, &output), &spec, &VideoLimits::default(), 160 << 20, &mut |p| {
            reports.push(p)
        })
        .unwrap();
    assert_eq!((made.width, made.height, made.frames), (640, 360, 75));
    assert!(!reports.is_empty() && reports[0].frames == 1, "{reports:?}");
    let probed = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(&output)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&probed.stdout).contains("640,360"));
    // The clip was linked, not moved: the staged file is where it was.
    assert!(Path::new(&clip).exists());
}
