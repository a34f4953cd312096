//! Engine processes (src/isolated/): the real `rendition-engine`, confined,
//! asked to render and to try what a compromised decoder would. Each
//! attempt must be refused; each crash must cost one request, not the
//! caller. The attempts exist only in test builds (`engine-test-requests`).

use std::sync::Arc;

use rendition::isolated::attempts::{Attempt, SEGFAULT_MARK};
use rendition::isolated::wire::memory_file;
use rendition::isolated::{EnginePool, EngineSettings};
use rendition::rendition::{EngineLimits, OutputFormat, RenderError, Size, Spec, render};

use crate::common::fixture;

fn pool(scratch: &std::path::Path) -> Arc<EnginePool> {
    Arc::new(EnginePool::new(EngineSettings {
        program: env!("CARGO_BIN_EXE_rendition-engine").into(),
        scratch: scratch.to_path_buf(),
        threads: 1,
        jobs_per_engine: 100,
        strict: true,
    }))
}

fn spec() -> Spec {
    Spec {
        sizes: vec![Size::LongEdge(256), Size::LongEdge(64)],
        format: OutputFormat::Jpeg,
        quality: 80,
        watermark: None,
        page: 1,
        metadata: Default::default(),
        colour: Default::default(),
        dpi: None,
        forensic: None,
    }
}

/// What an attempt came to in a fresh engine.
fn attempt(attempt: Attempt) -> Result<String, String> {
    let scratch = tempfile::tempdir().unwrap();
    let mut engine = pool(scratch.path()).session().unwrap();
    engine.attempt(attempt).expect("the engine answers")
}

#[test]
fn an_engine_renders_the_same_bytes_as_the_engine_in_process() {
    let scratch = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("originals/photo.jpg")).unwrap();
    let limits = EngineLimits::default();
    let mut engine = pool(scratch.path()).session().unwrap();
    let source = memory_file("test-source", &bytes).unwrap();
    let header = engine.probe(&source, 1, &limits).unwrap();
    let isolated = engine.render(&source, &header, &spec(), &limits, 64 << 20).unwrap();
    let here = render(&bytes, &spec(), &limits).unwrap();
    assert_eq!(isolated.len(), 2);
    for (a, b) in isolated.iter().zip(&here) {
        assert_eq!((a.size, a.width, a.height), (b.size, b.width, b.height));
        assert!(a.bytes == b.bytes, "{:?}: the engine process made other bytes", a.size);
    }
}

#[test]
fn a_cmyk_render_reaches_the_engine_with_a_print_profile_of_megabytes() {
    // Press profiles (ECI's, FOGRA's) are about 2 MB: as hex in the spec,
    // more than an answer may be. Padded past its end, the profile reads
    // the same.
    let mut icc = std::fs::read("/usr/share/color/icc/ghostscript/default_cmyk.icc").expect("libgs-common");
    icc.resize(2 << 20, 0);
    let mut spec = spec();
    spec.colour = rendition::rendition::Colour::Cmyk(rendition::rendition::PrintProfile {
        name: "press".into(),
        icc,
    });
    let scratch = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("originals/photo.jpg")).unwrap();
    let limits = EngineLimits::default();
    let mut engine = pool(scratch.path()).session().unwrap();
    let source = memory_file("test-source", &bytes).unwrap();
    let header = engine.probe(&source, 1, &limits).unwrap();
    let made = engine.render(&source, &header, &spec, &limits, 64 << 20).unwrap();
    let here = render(&bytes, &spec, &limits).unwrap();
    assert!(
        made[0].bytes == here[0].bytes,
        "the engine separated it as this process does"
    );
}

#[test]
fn an_engine_maps_no_ffmpeg_library() {
    let scratch = tempfile::tempdir().unwrap();
    let mut engine = pool(scratch.path()).session().unwrap();
    // Answered once: started, libraries loaded.
    let source = memory_file("test-source", &std::fs::read(fixture("originals/photo.jpg")).unwrap()).unwrap();
    engine.probe(&source, 1, &EngineLimits::default()).unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", engine.pid().unwrap())).unwrap();
    assert!(maps.contains("libheif"), "the maps were read: {maps}");
    for library in ["libavcodec", "libavformat", "libavutil", "libswscale", "libx264"] {
        assert!(!maps.contains(library), "{library} is mapped");
    }
}

#[test]
fn an_engine_cannot_open_a_network_connection() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let to = listener.local_addr().unwrap().to_string();
    let refused = attempt(Attempt::Connect(to)).unwrap_err();
    assert!(refused.contains("not permitted"), "{refused}");
}

#[test]
fn an_engine_cannot_read_a_file_outside_its_view() {
    let secret = tempfile::tempdir().unwrap();
    let path = secret.path().join("credentials");
    std::fs::write(&path, "aws_secret_access_key=…").unwrap();
    // Readable by anyone: only the confinement stands in the way.
    std::fs::set_permissions(secret.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let refused = attempt(Attempt::Read(path.display().to_string())).unwrap_err();
    assert!(
        refused.contains("denied") || refused.contains("not permitted"),
        "{refused}"
    );
}

#[test]
fn an_engine_cannot_read_the_workers_environment() {
    let environ = format!("/proc/{}/environ", std::process::id());
    assert!(attempt(Attempt::Read(environ)).is_err());
}

#[test]
fn an_engine_cannot_write_outside_its_scratch_directory() {
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::set_permissions(elsewhere.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let path = elsewhere.path().join("dropped");
    assert!(attempt(Attempt::Write(path.display().to_string())).is_err());
    assert!(!path.exists());
}

#[test]
fn an_engine_cannot_signal_the_worker() {
    assert!(attempt(Attempt::Signal(std::process::id() as i32)).is_err());
}

#[test]
fn an_engine_cannot_make_a_namespace() {
    let refused = attempt(Attempt::NewNamespace).unwrap_err();
    assert!(refused.contains("not permitted"), "{refused}");
}

#[test]
fn a_fork_bomb_in_an_engine_is_stopped() {
    let refused = attempt(Attempt::ForkBomb).unwrap_err();
    assert!(refused.contains("refused after"), "{refused}");
}

#[test]
fn a_crashed_engine_fails_its_request_and_the_pool_starts_another() {
    let scratch = tempfile::tempdir().unwrap();
    let pool = pool(scratch.path());
    let limits = EngineLimits::default();
    let mut engine = pool.session().unwrap();
    let marked = memory_file("test-source", SEGFAULT_MARK).unwrap();
    match engine.probe(&marked, 1, &limits) {
        Err(RenderError::Crashed { how, .. }) => assert!(how.contains("SIGSEGV"), "{how}"),
        other => panic!("not a crash: {other:?}"),
    }
    drop(engine);
    for crash in [Attempt::Abort, Attempt::Segfault] {
        let err = pool.session().unwrap().attempt(crash).unwrap_err();
        assert!(matches!(err, RenderError::Crashed { .. }), "{err:?}");
    }
    // A healthy source still renders, in a new engine.
    let mut engine = pool.session().unwrap();
    let source = memory_file("test-source", &std::fs::read(fixture("originals/photo.jpg")).unwrap()).unwrap();
    let header = engine.probe(&source, 1, &limits).unwrap();
    assert_eq!(
        engine
            .render(&source, &header, &spec(), &limits, 64 << 20)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(pool.crashed.load(std::sync::atomic::Ordering::Relaxed), 3);
}

#[test]
fn an_engine_past_its_memory_limit_fails_the_job_too_large() {
    let scratch = tempfile::tempdir().unwrap();
    let err = pool(scratch.path())
        .session()
        .unwrap()
        .attempt(Attempt::ExhaustMemory(64 << 20))
        .unwrap_err();
    assert_eq!(
        rendition::error::Coded::code(&err),
        rendition::error::ErrorCode::TooLarge,
        "{err}"
    );
}

#[test]
fn an_image_engine_may_start_the_tools_it_needs() {
    // poppler, ImageMagick and dcraw are programs: the image engine runs
    // them (a video engine may not: tests/it/video_engines.rs).
    let ran = attempt(Attempt::Run("/bin/true".into()));
    assert!(ran.as_ref().is_ok_and(|r| r.contains("exit status: 0")), "{ran:?}");
}
