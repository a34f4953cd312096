//! Video sources that are not media but send FFmpeg somewhere else: an HLS
//! playlist or a DASH manifest naming another file, a concat script naming
//! another file or itself, a `subfile,` or `data:` path. Each is refused as
//! `unsupported_format` before FFmpeg follows it, by the engine and through
//! the pipeline: the file it names is never delivered, and the worker lives.
//! Real containers, written by the `ffmpeg` CLI, still open.

use std::path::{Path, PathBuf};

use rendition::error::Coded;
use rendition::result::Status;
use rendition::video::probe::{self, Source};
use rendition::video::{Deadline, ProxySpec, VideoError, VideoLimits, poster, transcode};

use crate::common::fixture;
use crate::video::{in_process, video_job_in, video_processes};

/// An HLS playlist whose one segment is `target` (3 s, as the clip is).
fn hls(target: &str) -> String {
    format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXTINF:3.0,\n{target}\n#EXT-X-ENDLIST\n"
    )
}

/// A DASH manifest whose one representation is `target`.
fn dash(target: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011"
     type="static" mediaPresentationDuration="PT3S" minBufferTime="PT1S">
  <Period>
    <AdaptationSet mimeType="video/mp4">
      <Representation id="v" bandwidth="1000000" width="1280" height="720" codecs="avc1.640028">
        <BaseURL>{target}</BaseURL>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"#
    )
}

/// An FFmpeg concat script playing `target` (relative names only: the
/// demuxer's `safe` default refuses absolute ones).
fn ffconcat(target: &str) -> String {
    format!("ffconcat version 1.0\nfile {target}\n")
}

/// A directory with another asset's video (`other.mp4`, the 1280×720 clip)
/// and `name` holding `text`, as the pipeline stages a source.
fn beside_other(name: &str, text: impl FnOnce(&Path) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.mp4");
    std::fs::copy(fixture("originals/video/clip.mp4"), &other).unwrap();
    let source = dir.path().join(name);
    std::fs::write(&source, text(&other)).unwrap();
    (dir, source)
}

fn opened(source: &Path) -> Result<Source, VideoError> {
    let limits = VideoLimits::default();
    probe::open(source, &limits, Deadline::after(limits.deadline)).map(|(_, source)| source)
}

/// Probe, poster and transcode all refuse `source` as `unsupported_format`,
/// naming `demuxer`; no proxy is written.
fn refused_by_the_engine(source: &Path, demuxer: &str) {
    let refusal = opened(source).expect_err("the source must not open");
    assert_eq!(refusal.code(), "unsupported_format", "{refusal}");
    assert!(refusal.to_string().contains(demuxer), "{refusal}");
    let limits = VideoLimits::default();
    let still = poster(source, None, &limits).map(|i| i.dimensions());
    assert_eq!(still.map_err(|e| e.code().as_str()), Err("unsupported_format"));
    let output = source.with_file_name("proxy.mp4");
    let spec = ProxySpec {
        max_height: Some(360),
        watermark: None,
        audio_kbps: None,
        audio_seconds: None,
    };
    let made = transcode(source, &output, &spec, &limits, &mut |_| {});
    assert_eq!(
        made.map_err(|e| e.code().as_str()),
        Err("unsupported_format"),
        "the other file was transcoded"
    );
    assert!(!output.exists(), "nothing is written for a refused source");
}

#[test]
fn an_hls_playlist_naming_another_file_is_refused() {
    // By absolute path, from a file named as the pipeline names a source…
    let (_dir, source) = beside_other("source", |other| hls(other.to_str().unwrap()));
    refused_by_the_engine(&source, "hls");
    // …and by a relative one, from a file named like a playlist.
    let (_dir, source) = beside_other("playlist.m3u8", |_| hls("other.mp4"));
    refused_by_the_engine(&source, "hls");
}

#[test]
fn a_dash_manifest_naming_another_file_is_refused() {
    let (_dir, source) = beside_other("source", |other| dash(other.to_str().unwrap()));
    refused_by_the_engine(&source, "dash");
    let (_dir, source) = beside_other("manifest.mpd", |_| dash("other.mp4"));
    refused_by_the_engine(&source, "dash");
}

#[test]
fn an_ffconcat_script_naming_another_file_is_refused() {
    let (_dir, source) = beside_other("source", |_| ffconcat("other.mp4"));
    refused_by_the_engine(&source, "concat");
}

/// The 33-byte script that names itself: FFmpeg would open it within
/// itself until the thread's stack overflowed and the process aborted.
#[test]
fn a_self_naming_ffconcat_script_is_refused_without_a_crash() {
    let (_dir, source) = beside_other("source", |_| ffconcat("source"));
    assert_eq!(std::fs::metadata(&source).unwrap().len(), 33);
    refused_by_the_engine(&source, "concat");
}

#[test]
fn protocol_paths_are_refused() {
    use base64::Engine;
    // Another file's bytes through the `subfile` protocol…
    let clip = fixture("originals/video/clip.mp4");
    let subfile = PathBuf::from(format!("subfile,,start,0,end,0,,:{}", clip.display()));
    // …and a whole (small) video inline in a `data:` URI.
    let small = std::fs::read(fixture("originals/video/silent-odd.mp4")).unwrap();
    let inline = base64::engine::general_purpose::STANDARD.encode(small);
    let data = PathBuf::from(format!("data:video/mp4;base64,{inline}"));
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("proxy.mp4");
    for path in [subfile, data] {
        let refusal = opened(&path).expect_err("only files open");
        assert_eq!(refusal.code(), "unsupported_format", "{refusal}");
        assert!(refusal.to_string().contains("not a local file"), "{refusal}");
        let spec = ProxySpec {
            max_height: None,
            watermark: None,
            audio_kbps: None,
            audio_seconds: None,
        };
        let made = transcode(&path, &output, &spec, &VideoLimits::default(), &mut |_| {});
        assert_eq!(made.map_err(|e| e.code().as_str()), Err("unsupported_format"));
        assert!(!output.exists());
    }
}

/// `seconds` of 64×48 test pattern (or `size`) written by the `ffmpeg` CLI
/// as `format` with `args`, to a file without an extension (as staged).
fn written(dir: &Path, format: &str, size: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(format);
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=25:duration=0.4"))
        .args(args)
        .args(["-f", format])
        .arg(&path)
        .status()
        .expect("the ffmpeg CLI (scripts/install-deps installs it)");
    assert!(status.success(), "ffmpeg could not write {format}");
    path
}

#[test]
fn real_containers_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let small = "64x48";
    let cases: [(&str, &str, &[&str]); 11] = [
        ("mov", small, &["-c:v", "libx264"]),
        ("mp4", small, &["-c:v", "libx264"]),
        ("matroska", small, &["-c:v", "libx264"]),
        ("webm", small, &["-c:v", "libvpx", "-deadline", "realtime"]),
        ("avi", small, &["-c:v", "mpeg4"]),
        ("mpegts", small, &["-c:v", "mpeg2video"]),
        ("vob", small, &["-c:v", "mpeg2video"]),
        ("mxf", "720x576", &["-c:v", "mpeg2video"]),
        ("flv", small, &["-c:v", "flv1"]),
        ("ogg", small, &["-c:v", "libtheora"]),
        ("asf", small, &["-c:v", "wmv2"]),
    ];
    for (format, size, args) in cases {
        let source = opened(&written(dir.path(), format, size, args)).unwrap_or_else(|e| panic!("{format}: {e}"));
        let (w, h) = size.split_once('x').unwrap();
        assert_eq!(
            (source.width.to_string(), source.height.to_string()),
            (w.into(), h.into())
        );
    }
    let dv = written(dir.path(), "dv", "720x576", &["-c:v", "dvvideo", "-pix_fmt", "yuv420p"]);
    assert_eq!(opened(&dv).map(|s| s.width).unwrap(), 720);
    // The fixtures, each as it is, and staged under a name without a hint.
    for name in ["clip.mp4", "fade-in.mp4", "portrait.mp4", "silent-odd.mp4"] {
        let staged = dir.path().join("source");
        std::fs::copy(fixture(&format!("originals/video/{name}")), &staged).unwrap();
        for path in [fixture(&format!("originals/video/{name}")), staged] {
            assert!(opened(&path).is_ok(), "{name} opens");
        }
    }
}

#[test]
fn audio_containers_open_and_are_told_apart_from_refused_ones() {
    // An audio file is a container read and found to have no video, not a
    // refused kind of file: the message says which.
    let dir = tempfile::tempdir().unwrap();
    let tone = |format: &str| {
        let path = dir.path().join(format);
        let status = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .args(["sine=duration=0.3", "-f", format])
            .arg(&path)
            .status()
            .expect("the ffmpeg CLI");
        assert!(status.success(), "{format}");
        path
    };
    let mut files: Vec<PathBuf> = ["wav", "mp3", "flac", "adts", "aiff"].map(tone).into();
    files.push(fixture("originals/video/jingle.m4a"));
    for path in files {
        let refusal = opened(&path).expect_err("no video stream");
        assert_eq!(refusal.code(), "unsupported_format");
        assert!(
            refusal.to_string().contains("no video stream"),
            "{}: {refusal}",
            path.display()
        );
    }
}

/// An originals store holding another asset's video (`other.mp4`) and, as
/// `name`, a source that names it (`text` is given its absolute path).
fn originals_with(name: &str, text: impl FnOnce(&Path) -> String) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let videos = root.path().join("originals/video");
    std::fs::create_dir_all(&videos).unwrap();
    let other = videos.join("other.mp4");
    std::fs::copy(fixture("originals/video/clip.mp4"), &other).unwrap();
    std::fs::write(videos.join(name), text(&other)).unwrap();
    root
}

/// Both video renditions of `name` from `originals`, each failed as
/// `unsupported_format` with nothing stored, and nothing left behind: with
/// FFmpeg in this process and in a video engine process.
fn refused_by_the_pipeline(originals: &Path, name: &str) {
    let temp = tempfile::tempdir().unwrap();
    for (engines, rendition) in [
        (in_process(), "proxy"),
        (in_process(), "poster"),
        (video_processes(temp.path()), "proxy"),
        (video_processes(temp.path()), "poster"),
    ] {
        let id = format!("hostile-{rendition}");
        let outcome = video_job_in(
            engines,
            originals,
            temp.path(),
            VideoLimits::default(),
            (name, rendition),
            &id,
        );
        assert!(
            !outcome.retry && !outcome.panicked,
            "{name} {rendition}: final, no panic"
        );
        let result = outcome.result;
        assert_eq!(result.status, Status::Failed, "{name} {rendition}: {result:?}");
        assert!(result.renditions.is_empty(), "{result:?}");
        let error = result.error.expect("a failed job says why");
        assert_eq!(error.code, "unsupported_format", "{error:?}");
    }
    assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 0);
}

#[test]
fn playlists_and_manifests_fail_through_the_pipeline() {
    let originals = originals_with("playlist.m3u8", |other| hls(other.to_str().unwrap()));
    refused_by_the_pipeline(originals.path(), "playlist.m3u8");
    let originals = originals_with("manifest.mpd", |other| dash(other.to_str().unwrap()));
    refused_by_the_pipeline(originals.path(), "manifest.mpd");
    // The same store's real video still makes both.
    let temp = tempfile::tempdir().unwrap();
    let limits = VideoLimits::default();
    for rendition in ["proxy", "poster"] {
        let real = ("other.mp4", rendition);
        let done = video_job_in(in_process(), originals.path(), temp.path(), limits, real, "real").result;
        assert_eq!(done.status, Status::Done, "{done:?}");
    }
}

#[test]
fn a_self_naming_ffconcat_fails_through_the_pipeline_and_the_worker_lives() {
    // The pipeline stages every source as `source`: the script names itself.
    let originals = originals_with("loop.ffconcat", |_| ffconcat("source"));
    refused_by_the_pipeline(originals.path(), "loop.ffconcat");
}
