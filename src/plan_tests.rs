//! The planner on its own: no store, no pool, no clock.

use super::*;
use crate::policy::DocFormat;

fn policy() -> Policy {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/policy.yaml");
    Policy::parse(&std::fs::read_to_string(path).unwrap(), DocFormat::Yaml).unwrap()
}

fn job(principal: &str, media: &str, rendition: &str, extra: &str) -> Job {
    let text = format!(
        r#"{{"schema":"rendition.job/v1","job_id":"j-1","purpose":"download","principal":{principal},
        "asset":{{"id":"a-1","collection":"g-launch","media":"{media}","source":"originals/hero.jpg",
        "filename":"launch-hero.jpg"}},"request":{{"rendition":{rendition},"format":"jpeg"}}{extra}}}"#
    );
    Job::parse(text.as_bytes()).unwrap()
}

fn facts() -> Facts {
    Facts {
        now: "2026-06-01T00:00:00Z".parse().unwrap(),
        max_link_ttl_s: MAX_LINK_TTL_S,
        share_revoked: false,
        logo: LogoFact::None,
        print_profiles: Default::default(),
        forensic_key: None,
    }
}

const CLEO: &str = r#"{"user":"u-cleo"}"#;
const BEN: &str = r#"{"user":"u-ben"}"#;
const SHARE: &str = r#"{"share":"s-7","email":"buyer@example.com"}"#;

#[test]
fn a_restricted_role_gets_its_size_with_the_mark_built_for_it() {
    let plan = plan(&policy(), &job(CLEO, "image", r#""original""#, ""), &facts());
    let Make::Images(spec) = &plan.make else {
        panic!("{:?}", plan.make)
    };
    assert_eq!(spec.sizes, [Size::LongEdge(1024)]);
    let mark = spec.watermark.as_ref().expect("restricted: watermarked");
    assert!(mark.text.contains("u-cleo"), "{}", mark.text);
    assert_eq!(
        (plan.prefix.as_str(), plan.stem.as_str()),
        ("renditions/a-1", "launch-hero")
    );
    assert_eq!(plan.policy_version, 42);
}

#[test]
fn the_original_is_planned_whole_and_denials_make_nothing() {
    let admin = plan(
        &policy(),
        &job(r#"{"user":"u-anna"}"#, "image", r#""original""#, ""),
        &facts(),
    );
    assert_eq!(admin.make, Make::Original);
    let dan = plan(
        &policy(),
        &job(r#"{"user":"u-dan"}"#, "image", r#""original""#, ""),
        &facts(),
    );
    assert!(!dan.decision.allowed);
    assert_eq!(dan.make, Make::Nothing);
}

#[test]
fn a_revocation_marker_denies_the_share_before_the_resolver_is_asked() {
    let share_job = job(SHARE, "image", r#""original""#, "");
    assert!(plan(&policy(), &share_job, &facts()).decision.allowed);
    let revoked = Facts {
        share_revoked: true,
        ..facts()
    };
    let denied = plan(&policy(), &share_job, &revoked);
    assert_eq!((denied.decision.allowed, denied.decision.rule), (false, Rule::Share));
    assert!(denied.decision.reason.contains("s-7 was revoked"));
    assert_eq!(denied.make, Make::Nothing);
    assert_eq!(denied.share.as_deref(), Some("s-7"));
    // The marker only speaks for shares.
    assert!(
        plan(&policy(), &job(BEN, "image", r#""original""#, ""), &revoked)
            .decision
            .allowed
    );
}

#[test]
fn a_missing_logo_fails_only_the_jobs_that_need_a_mark() {
    let missing = Facts {
        logo: LogoFact::Missing("originals/logo.png".into()),
        ..facts()
    };
    let cleo = plan(&policy(), &job(CLEO, "image", r#""original""#, ""), &missing);
    let Make::Fail(error) = &cleo.make else {
        panic!("{:?}", cleo.make)
    };
    assert_eq!(error.code(), "missing_source");
    let ben = plan(&policy(), &job(BEN, "image", r#""original""#, ""), &missing);
    assert!(matches!(ben.make, Make::Images(ref s) if s.watermark.is_none()));
}

#[test]
fn the_logo_and_the_recipient_change_the_key_and_nothing_else_does() {
    let source = layout::source_digest("originals/hero.jpg", "etag-1");
    let key = |plan: &Plan| {
        let Make::Images(spec) = &plan.make else { panic!() };
        plan.image_key(spec, &source, spec.sizes[0], OutputFormat::Jpeg)
    };
    let plain = plan(&policy(), &job(CLEO, "image", r#""original""#, ""), &facts());
    let again = plan(
        &policy(),
        &job(CLEO, "image", r#""original""#, r#","link_ttl_s":60"#),
        &facts(),
    );
    assert_eq!(key(&plain), key(&again), "the link lifetime is not part of the key");
    let logo = Logo::new(image::RgbaImage::from_pixel(4, 4, image::Rgba([255, 0, 0, 255])));
    let with_logo = Facts {
        logo: LogoFact::Found(logo),
        ..facts()
    };
    let marked = plan(&policy(), &job(CLEO, "image", r#""original""#, ""), &with_logo);
    assert_ne!(key(&plain), key(&marked), "the logo is part of the key");
    assert!(key(&plain).starts_with("renditions/a-1/") && key(&plain).ends_with(".jpg"));
}

#[test]
fn videos_get_a_proxy_at_the_allowed_height_and_posters_the_image_rules() {
    let mut video = job(CLEO, "video", r#""original""#, "");
    video.asset.source = "originals/clip.mp4".into();
    let proxy = plan(&policy(), &video, &facts());
    let Make::Proxy(spec) = &proxy.make else {
        panic!("{:?}", proxy.make)
    };
    assert_eq!(spec.max_height, Some(540));
    assert!(spec.watermark.is_some());
    let poster = plan(&policy(), &job(CLEO, "video", r#""poster""#, ""), &facts());
    assert!(matches!(poster.make, Make::Poster(ref s) if s.watermark.is_some()));
}

#[test]
fn links_live_as_asked_within_both_caps_and_only_publish_jobs_publish() {
    let long = job(BEN, "image", r#""original""#, r#","link_ttl_s":999999999"#);
    let capped = Facts {
        max_link_ttl_s: 3600,
        ..facts()
    };
    assert_eq!(
        plan(&policy(), &long, &capped).expires_at,
        facts().now + Duration::seconds(3600)
    );
    assert_eq!(
        plan(&policy(), &long, &facts()).expires_at,
        facts().now + Duration::seconds(MAX_LINK_TTL_S as i64)
    );
    let download = job(BEN, "image", r#""original""#, "");
    assert_eq!(plan(&policy(), &download, &facts()).publish, None);
}

#[test]
fn a_print_preset_separates_with_the_profile_it_names_or_fails_without_it() {
    let print = job(BEN, "image", r#"{"preset":"print"}"#, "");
    let plan_without = plan(&policy(), &print, &facts());
    let Make::Fail(e) = &plan_without.make else {
        panic!("{:?}", plan_without.make)
    };
    assert_eq!(e.code(), ErrorCode::InvalidPolicy);
    assert!(e.to_string().contains("press"), "{e}");
    let press = PrintProfile {
        name: "press".into(),
        icc: vec![1, 2, 3],
    };
    let with = Facts {
        print_profiles: std::sync::Arc::new([("press".to_string(), press.clone())].into()),
        forensic_key: None,
        ..facts()
    };
    let plan_with = plan(&policy(), &print, &with);
    let Make::Images(spec) = &plan_with.make else {
        panic!("{:?}", plan_with.make)
    };
    assert_eq!((spec.colour.clone(), spec.dpi), (Colour::Cmyk(press), Some(300)));
    assert_eq!(spec.metadata.profile, MetadataProfile::Rights);
    // Other presets of the same worker stay sRGB.
    let web = plan(&policy(), &job(BEN, "image", r#"{"preset":"web"}"#, ""), &with);
    assert!(matches!(&web.make, Make::Images(s) if s.colour == Colour::Srgb && s.dpi.is_none()));
}

#[test]
fn a_preset_never_raises_a_profile_and_a_watermark_caps_it() {
    let archive = |who: &str| plan(&policy(), &job(who, "image", r#"{"preset":"archive"}"#, ""), &facts());
    // u-ben's role sets no profile: `rights`, whatever the preset says.
    assert_eq!(archive(BEN).decision.metadata, MetadataProfile::Rights);
    // Staff get all of it.
    assert_eq!(archive(r#"{"user":"u-anna"}"#).decision.metadata, MetadataProfile::All);
    // u-cleo's role requires a watermark: never the source's thumbnails.
    let cleo = plan(&policy(), &job(CLEO, "image", r#""original""#, ""), &facts());
    assert!(cleo.decision.watermark && cleo.decision.metadata <= MetadataProfile::Public);
}
