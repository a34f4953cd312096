//! The rendition engine on the fixture images: sizes, orientation, colour,
//! alpha, watermark, credits, and a stable code for every bad input.

use image::{DynamicImage, GenericImageView, RgbImage};
use rendition::error::Coded;
use rendition::rendition::{EngineLimits, OutputFormat, Position, Rendered, Size, Spec, WatermarkSpec, render};

use crate::common::{fixture, mean_diff};

pub fn original(name: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("originals/{name}"))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn spec(sizes: &[Size], format: OutputFormat, watermark: Option<Position>) -> Spec {
    Spec {
        sizes: sizes.to_vec(),
        format,
        quality: 85,
        watermark: watermark.map(|position| WatermarkSpec {
            text: "© Brand — u-cleo".into(),
            opacity: 0.5,
            position,
            logo: None,
        }),
        page: 1,
        metadata: Default::default(),
        colour: Default::default(),
        dpi: None,
        forensic: None,
    }
}

fn one(name: &str, size: Size, format: OutputFormat, watermark: Option<Position>) -> Rendered {
    let mut out = render(
        &original(name),
        &spec(&[size], format, watermark),
        &EngineLimits::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    out.remove(0)
}

fn decoded(r: &Rendered) -> DynamicImage {
    image::load_from_memory(&r.bytes).expect("outputs decode")
}

#[test]
fn every_readable_fixture_fits_every_limit() {
    let sources = [
        "hero.jpg",
        "photo.jpg",
        "progressive.jpg",
        "cmyk.jpg",
        "adobergb.jpg",
        "alpha.png",
        "deep16.png",
        "palette.png",
        "photo.webp",
        "photo.tiff",
        "photo.bmp",
        "animated.gif",
        "orient-6.jpg",
    ];
    for name in sources {
        let source = original(name);
        let sizes = [
            Size::LongEdge(2048),
            Size::LongEdge(1024),
            Size::LongEdge(320),
            Size::LongEdge(50),
        ];
        for format in [
            OutputFormat::Jpeg,
            OutputFormat::Webp,
            OutputFormat::Png,
            OutputFormat::Auto,
        ] {
            let out = render(&source, &spec(&sizes, format, None), &EngineLimits::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(out.len(), sizes.len());
            for (r, size) in out.iter().zip(sizes) {
                let img = decoded(r);
                let limit = size.long_edge().unwrap();
                assert!(
                    img.width().max(img.height()) <= limit,
                    "{name} {format:?} {size:?}: {}x{}",
                    img.width(),
                    img.height()
                );
                assert_eq!(
                    (img.width(), img.height()),
                    (r.width, r.height),
                    "{name}: reported size"
                );
            }
        }
    }
}

#[test]
fn large_sources_are_clamped_exactly_and_small_ones_never_upscaled() {
    let r = one("hero.jpg", Size::LongEdge(2048), OutputFormat::Jpeg, None);
    assert_eq!((r.width, r.height), (2048, 1364));
    let r = one("photo.jpg", Size::LongEdge(2048), OutputFormat::Jpeg, None);
    assert_eq!((r.width, r.height), (1200, 799), "never upscaled");
    let r = one("hero.jpg", Size::Full, OutputFormat::Jpeg, None);
    assert_eq!((r.width, r.height), (2400, 1598));
}

#[test]
fn all_eight_orientations_come_out_upright() {
    // The card, upright: red | green over blue | white, 96 wide, 64 high.
    let want = [
        ((24, 16), [255, 0, 0]),
        ((72, 16), [0, 255, 0]),
        ((24, 48), [0, 0, 255]),
        ((72, 48), [255, 255, 255]),
    ];
    for n in 1..=8 {
        let r = one(&format!("orient-{n}.jpg"), Size::Full, OutputFormat::Png, None);
        let img = decoded(&r).to_rgb8();
        assert_eq!(img.dimensions(), (96, 64), "orientation {n}");
        for ((x, y), rgb) in want {
            let got = img.get_pixel(x, y).0;
            let close = got.iter().zip(rgb).all(|(g, w)| g.abs_diff(w) < 40);
            assert!(close, "orientation {n}: at ({x},{y}) got {got:?}, want {rgb:?}");
        }
    }
}

#[test]
fn adobe_rgb_is_converted_to_srgb() {
    let reference = image::load_from_memory(&original("srgb-600.png")).unwrap().to_rgb8();
    let managed = decoded(&one("adobergb.jpg", Size::Full, OutputFormat::Png, None)).to_rgb8();
    // The same pixels read as if they were sRGB: what a viewer without colour management shows.
    let unmanaged = image::load_from_memory(&original("adobergb.jpg")).unwrap().to_rgb8();
    let (good, bad) = (mean_diff(&managed, &reference), mean_diff(&unmanaged, &reference));
    assert!(good < 4.0, "converted Adobe RGB is {good:.2} off the sRGB original");
    assert!(bad > good * 1.5, "the conversion did something: {bad:.2} vs {good:.2}");
}

#[test]
fn cmyk_comes_out_as_plausible_srgb() {
    let cmyk = decoded(&one("cmyk.jpg", Size::Full, OutputFormat::Png, None)).to_rgb8();
    let reference = image::load_from_memory(&original("srgb-600.png")).unwrap().to_rgb8();
    let diff = mean_diff(&cmyk, &reference);
    assert!(
        diff < 25.0,
        "CMYK decode is {diff:.1} off the sRGB original (inverted or garbled?)"
    );
}

#[test]
fn alpha_is_kept_in_png_and_webp_and_flattened_in_jpeg() {
    for format in [OutputFormat::Png, OutputFormat::Webp, OutputFormat::Auto] {
        let r = one("alpha.png", Size::LongEdge(200), format, None);
        assert_ne!(r.format, OutputFormat::Jpeg, "{format:?}");
        let img = decoded(&r);
        assert!(img.color().has_alpha(), "{format:?} lost alpha");
        let alphas: Vec<u8> = img.to_rgba8().pixels().map(|p| p[3]).collect();
        assert!(
            alphas.iter().any(|&a| a < 50) && alphas.iter().any(|&a| a > 200),
            "{format:?}: alpha range lost"
        );
    }
    assert_eq!(
        one("photo.jpg", Size::LongEdge(200), OutputFormat::Auto, None).format,
        OutputFormat::Jpeg
    );
    let flat = one("alpha.png", Size::LongEdge(200), OutputFormat::Jpeg, None);
    assert!(!decoded(&flat).color().has_alpha());
}

#[test]
fn a_watermark_changes_the_pixels_at_every_size_and_position() {
    for position in [Position::Tiled, Position::Center, Position::BottomRight] {
        for edge in [2048, 1024, 320] {
            let size = Size::LongEdge(edge);
            let plain = decoded(&one("hero.jpg", size, OutputFormat::Png, None)).to_rgb8();
            let marked_r = one("hero.jpg", size, OutputFormat::Png, Some(position));
            assert!(marked_r.watermarked);
            let marked = decoded(&marked_r).to_rgb8();
            let changed = plain
                .pixels()
                .zip(marked.pixels())
                .filter(|(a, b)| a.0.iter().zip(b.0).any(|(x, y)| x.abs_diff(y) > 30))
                .count();
            let share = changed as f64 / f64::from(plain.width() * plain.height());
            let least = if position == Position::Tiled { 0.02 } else { 0.001 };
            assert!(
                share > least,
                "{position:?} at {edge}: only {:.3}% of pixels marked",
                share * 100.0
            );
        }
    }
}

#[test]
fn a_transparent_output_cannot_hide_the_watermark() {
    let r = one("alpha.png", Size::Full, OutputFormat::Png, Some(Position::Tiled));
    let img = decoded(&r).to_rgba8();
    let plain = decoded(&one("alpha.png", Size::Full, OutputFormat::Png, None)).to_rgba8();
    let raised = img
        .pixels()
        .zip(plain.pixels())
        .filter(|(m, p)| m[3] > p[3].saturating_add(40))
        .count();
    assert!(
        raised > 100,
        "the mark should be opaque where the picture is not ({raised} pixels)"
    );
}

#[test]
fn credits_are_kept_and_other_metadata_dropped() {
    let r = one("photo.jpg", Size::LongEdge(320), OutputFormat::Jpeg, None);
    let text = String::from_utf8_lossy(&r.bytes);
    assert!(
        text.contains("Aitzol Berasategi") && text.contains("CC-BY-4.0"),
        "credits lost"
    );
    // The orientation tag is applied and dropped: a re-read is not turned again.
    let o = one("orient-6.jpg", Size::Full, OutputFormat::Jpeg, None);
    let img = decoded(&o);
    assert_eq!((img.width(), img.height()), (96, 64));
    assert!(!o.bytes.windows(2).any(|w| w == [0x12, 0x01]) || !String::from_utf8_lossy(&o.bytes).contains("Exif"));
}

#[test]
fn a_download_set_comes_from_one_decode_in_every_size() {
    let sizes = [Size::LongEdge(2048), Size::LongEdge(1024), Size::LongEdge(320)];
    let out = render(
        &original("hero.jpg"),
        &spec(&sizes, OutputFormat::Jpeg, Some(Position::Tiled)),
        &EngineLimits::default(),
    )
    .unwrap();
    let dims: Vec<(u32, u32)> = out.iter().map(|r| (r.width, r.height)).collect();
    assert_eq!(dims, vec![(2048, 1364), (1024, 682), (320, 213)]);
    assert!(out.iter().all(|r| r.watermarked));
}

#[test]
fn shrink_on_load_picks_the_smallest_scale_that_still_covers_the_target() {
    use rendition::rendition::decode::shrink_on_load;
    let denom = |long, target| shrink_on_load(long, target).denom();
    assert_eq!(denom(6000, Some(320)), 8);
    assert_eq!(denom(6000, Some(1024)), 4);
    assert_eq!(denom(6000, Some(2048)), 2);
    assert_eq!(denom(6000, Some(3500)), 1);
    assert_eq!(denom(6000, None), 1);
}

#[test]
fn bad_inputs_fail_with_stable_codes() {
    let cases = [
        ("truncated.jpg", "corrupt_input"),
        ("bomb.png", "too_large"),
        ("corrupt.png", "corrupt_input"),
        ("not-an-image.jpg", "unsupported_format"),
    ];
    for (name, code) in cases {
        let err = render(
            &original(name),
            &spec(&[Size::LongEdge(320)], OutputFormat::Jpeg, None),
            &EngineLimits::default(),
        )
        .expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err}");
    }
    let byte_cap = EngineLimits {
        max_source_bytes: 1000,
        ..EngineLimits::default()
    };
    let pixel_cap = EngineLimits {
        max_source_pixels: 500_000,
        ..EngineLimits::default()
    };
    for tight in [byte_cap, pixel_cap] {
        let outcome = render(
            &original("photo.jpg"),
            &spec(&[Size::Full], OutputFormat::Jpeg, None),
            &tight,
        );
        assert_eq!(outcome.map(|_| ()).unwrap_err().code(), "too_large", "{tight:?}");
    }
}

#[test]
fn an_unwatermarked_output_is_identical_across_runs() {
    let a = one("photo.jpg", Size::LongEdge(320), OutputFormat::Png, None);
    let b = one("photo.jpg", Size::LongEdge(320), OutputFormat::Png, None);
    assert_eq!(a.bytes, b.bytes);
    assert_eq!(decoded(&a).dimensions(), (320, 213));
}

/// Pixels much redder than they are green or blue.
fn red_pixels(img: &RgbImage) -> usize {
    img.pixels().filter(|p| p[0] > 150 && p[1] < 90 && p[2] < 90).count()
}

#[test]
fn a_logo_is_drawn_with_the_text_in_every_position() {
    let logo = rendition::rendition::Logo::new(image::load_from_memory(&original("logo.png")).unwrap().to_rgba8());
    for position in [Position::Tiled, Position::Center, Position::BottomRight] {
        let mut with_logo = spec(&[Size::LongEdge(1024)], OutputFormat::Png, Some(position));
        with_logo.watermark.as_mut().unwrap().logo = Some(logo.clone());
        with_logo.watermark.as_mut().unwrap().opacity = 1.0;
        let marked = render(&original("hero.jpg"), &with_logo, &EngineLimits::default())
            .unwrap()
            .remove(0);
        let plain = one("hero.jpg", Size::LongEdge(1024), OutputFormat::Png, Some(position));
        let (a, b) = (
            red_pixels(&decoded(&marked).to_rgb8()),
            red_pixels(&decoded(&plain).to_rgb8()),
        );
        assert!(a > b + 200, "{position:?}: {a} red pixels with the logo, {b} without");
        let mut other = with_logo.clone();
        other.watermark.as_mut().unwrap().logo = None;
        assert_ne!(
            other.digest("s", Size::Full, OutputFormat::Png),
            with_logo.digest("s", Size::Full, OutputFormat::Png)
        );
    }
}

#[test]
fn a_print_tiff_is_deflated_at_300_ppi_with_its_profile() {
    let r = one(
        "hero.jpg",
        Size::LongEdge(800),
        OutputFormat::Tiff,
        Some(Position::Tiled),
    );
    assert_eq!((r.width, r.height), (800, 533));
    assert_eq!(decoded(&r).dimensions(), (800, 533), "`image` reads it back");
    // Read by another reader (ImageMagick, from Debian).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("print.tif");
    std::fs::write(&path, &r.bytes).unwrap();
    let out = std::process::Command::new("identify")
        .arg("-verbose")
        .arg(&path)
        .output()
        .unwrap();
    let told = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for said in [
        "Compression: Zip",
        "Resolution: 300x300",
        "Units: PixelsPerInch",
        "Profile-icc",
    ] {
        assert!(told.contains(said), "{said} in {told}");
    }
}
