//! The video engine on its own (no worker, no services): its limits.

use std::time::Duration;

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
