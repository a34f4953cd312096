//! The fuzz targets' bodies (fuzz/, `scripts/fuzz`), kept in the library so
//! that tests/it/fuzz_corpus.rs replays the committed corpus and every past
//! crasher on stable through exactly the same code.
//!
//! Each function takes arbitrary bytes to a production entry point. An `Err`
//! is a fine answer to garbage; a panic means the code under test panicked or
//! an answer broke an invariant checked here.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::job::{Asset, Format, Job, Media, OnExceed, Principal, Purpose, Rendition, Request};
use crate::policy::document::PolicyDocument;
use crate::policy::invariants::{Nodes, check, index};
use crate::policy::{DocFormat, Policy, Query, resolve};
use crate::rendition::{EngineLimits, OutputFormat, Position, Size, Spec, WatermarkSpec};
use crate::video::{Deadline, VideoLimits};
use crate::work::Work;

/// A delivery body, read as a job and as a revoke. A job that parses must
/// pass its own checks, survive a JSON round trip, and get a decision from
/// the fixture policy that keeps the resolver's invariants.
pub fn job(bytes: &[u8]) {
    for revoke in [false, true] {
        let work = Work::parse(bytes, revoke);
        let _ = (work.job_id(), work.purpose());
        let Work::Job(job) = work else { continue };
        job.check().expect("a parsed job passes its own checks");
        let json = serde_json::to_vec(&job).expect("a job serializes");
        assert_eq!(
            Job::parse(&json).as_ref(),
            Ok(&*job),
            "a job survives a JSON round trip"
        );
        let policy = fixture_policy();
        let q = Query::of(&job, now());
        keeps_invariants(policy.document(), &q, &resolve(policy, &q));
    }
}

/// A policy document, read as JSON and as YAML. One that validates must
/// survive a JSON round trip deciding the same, and every decision asked of
/// it (its own nodes, users, shares; every media and request kind) keeps the
/// invariants.
pub fn policy(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    for format in [DocFormat::Json, DocFormat::Yaml] {
        let Ok(policy) = Policy::parse(text, format) else {
            continue;
        };
        let doc = policy.document();
        let json = serde_json::to_string(doc).expect("a policy serializes");
        let again = Policy::parse(&json, DocFormat::Json).expect("a valid policy survives a JSON round trip");
        let nodes = index(doc);
        asks(doc, &nodes, |q| {
            let d = resolve(&policy, q);
            keeps_invariants(doc, q, &d);
            assert_eq!(resolve(&again, q), d, "the round trip decides the same");
        });
    }
}

/// An original, through the whole image engine with the production limits
/// (a bomb must be refused from its header, not allocated), to small
/// outputs. Whatever renders has the asked size and decodes again.
pub fn image(bytes: &[u8]) {
    // Vary format and watermark by the input itself, so a unit always runs
    // the same way.
    use OutputFormat::{Auto, Jpeg, Png, Webp};
    let watermark = (bytes.len() % 2 == 1).then(|| WatermarkSpec {
        text: "© fuzz".into(),
        opacity: 0.35,
        position: [Position::Tiled, Position::Center, Position::BottomRight][bytes.len() % 3],
        logo: None,
    });
    let spec = Spec {
        sizes: vec![Size::LongEdge(64), Size::LongEdge(17)],
        format: [Auto, Jpeg, Png, Webp][bytes.len() / 2 % 4],
        quality: 80,
        watermark,
        page: 1,
        metadata: Default::default(),
        colour: Default::default(),
        dpi: None,
        forensic: None,
    };
    let Ok(out) = crate::rendition::render(bytes, &spec, &EngineLimits::default()) else {
        return;
    };
    assert_eq!(out.len(), spec.sizes.len());
    for (r, size) in out.iter().zip(&spec.sizes) {
        let edge = size.long_edge().expect("sized outputs");
        assert!(r.width >= 1 && r.height >= 1 && r.width.max(r.height) <= edge);
        let back = ::image::load_from_memory(&r.bytes).expect("an output decodes");
        assert_eq!((back.width(), back.height()), (r.width, r.height));
    }
}

/// A video source, opened as the pipeline opens one: from a file (in
/// /dev/shm when there is one) with the production limits and a deadline.
/// Whatever opens is within the limits.
pub fn video_probe(bytes: &[u8]) {
    let shm = std::path::Path::new("/dev/shm");
    let dir = tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir());
    let dir = dir.expect("a temporary directory");
    let path = dir.path().join("source");
    std::fs::write(&path, bytes).expect("a temporary file");
    let limits = VideoLimits {
        deadline: Duration::from_secs(10),
        ..VideoLimits::default()
    };
    let Ok((_input, source)) = crate::video::probe::open(&path, &limits, Deadline::after(limits.deadline)) else {
        return;
    };
    let (w, h) = source.upright();
    assert!(w >= 1 && h >= 1 && source.quarter_turns < 4);
    assert!(u64::from(w) * u64::from(h) <= limits.max_source_pixels);
    assert!(
        (0.0..=limits.max_duration_s).contains(&source.duration_s),
        "duration {} passed the limit",
        source.duration_s
    );
    assert!(source.frames_expected() <= limits.max_frames);
}

fn now() -> DateTime<Utc> {
    "2026-06-01T00:00:00Z".parse().expect("a timestamp")
}

fn fixture_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::parse(include_str!("../fixtures/policy.yaml"), DocFormat::Yaml).expect("the fixture policy")
    })
}

/// Questions derived from the document: a few of its nodes and one unknown,
/// its users, its shares with the right and a wrong e-mail, a password,
/// anonymous; each with a few media/request pairs, rotating purpose,
/// `on_exceed`, restricted and generated.
fn asks(doc: &PolicyDocument, nodes: &Nodes, mut each: impl FnMut(&Query)) {
    let mut ids: Vec<&str> = nodes.keys().copied().collect();
    ids.sort_unstable();
    ids.truncate(3);
    ids.push("zz-not-a-node");
    let mut principals: Vec<Principal> = doc.users.keys().take(2).map(|u| Principal::User(u.clone())).collect();
    principals.push(Principal::User("zz-not-a-user".into()));
    if let Some(s) = doc.shares.first() {
        for email in [s.email.to_ascii_uppercase(), "zz@example.com".into()] {
            principals.push(Principal::Share {
                share: s.id.clone(),
                email,
            });
        }
    }
    principals.push(Principal::Password {
        collection: ids[0].to_string(),
    });
    principals.push(Principal::Anonymous);
    let requests = [
        (Media::Image, Rendition::Original),
        (Media::Image, Rendition::MaxEdge(1024)),
        (Media::Image, Rendition::Set(vec![64, 40_000])),
        (Media::Image, Rendition::Proxy),
        (Media::Image, Rendition::Preset("web".into())),
        (Media::Video, Rendition::MaxHeight(720)),
        (Media::Video, Rendition::Poster),
        (Media::Video, Rendition::Proxy),
        (Media::Audio, Rendition::Original),
        (Media::Other, Rendition::Proxy),
    ];
    let purposes = [Purpose::Download, Purpose::Share, Purpose::Preview, Purpose::Publish];
    let mut k = 0usize;
    for id in &ids {
        for principal in &principals {
            for j in 0..4 {
                k += 1;
                let (media, rendition) = &requests[(k + j * 2) % requests.len()];
                let asset = Asset {
                    id: "a-1".into(),
                    collection: id.to_string(),
                    media: *media,
                    source: "a/1".into(),
                    restricted: k.is_multiple_of(5),
                    generated: k.is_multiple_of(3),
                    filename: None,
                    focal_point: None,
                };
                let on_exceed = if k % 7 < 2 { OnExceed::Deny } else { OnExceed::Clamp };
                let request = Request {
                    rendition: rendition.clone(),
                    format: Format::Auto,
                    quality: 85,
                    on_exceed,
                    page: 1,
                };
                let q = Query {
                    purpose: purposes[k % 4],
                    principal,
                    asset: &asset,
                    request: &request,
                    now: now(),
                };
                each(&q);
            }
        }
    }
}

/// The invariants of src/policy/invariants.rs, as a panic for the fuzzer.
fn keeps_invariants(doc: &PolicyDocument, q: &Query, d: &crate::policy::Decision) {
    if let Err(broken) = check(doc, q, d) {
        panic!("a decision broke an invariant: {broken}");
    }
}
