//! Memory: PNG and TIFF shrunk as they are read (same pixels as a full
//! decode, a fraction of the peak), and the memory budget held by a real
//! `rendition render` process, measured by GNU time (the kernel's
//! high-water mark of its resident set).

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::Command;

use image::{DynamicImage, GrayImage, ImageEncoder, Rgb, RgbImage, RgbaImage};
use rendition::rendition::resize::fit;
use rendition::rendition::{EngineLimits, OutputFormat, Size, Spec, render_file};

use crate::common::fixture;

#[path = "../../workers/pss.rs"]
#[allow(dead_code, reason = "the benchmarks use the rest")]
mod pss;
use pss::tree_pss_kib;

/// A picture with detail at every scale: gradients, rings and stripes.
fn picture(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let ring = (((fx - 0.5).hypot(fy - 0.5) * 40.0).sin() * 0.5 + 0.5) * 255.0;
        Rgb([
            (fx * 255.0) as u8,
            ring as u8,
            if (x / 16 + y / 16) % 2 == 0 { 40 } else { 210 },
        ])
    })
}

/// The engine's own resize (Lanczos3, alpha-weighted) from the full-size
/// pixels: what a shrunk decode must come close to.
fn reference(full: &DynamicImage, w: u32, h: u32) -> RgbaImage {
    use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
    let src = DynamicImage::ImageRgba8(full.to_rgba8());
    let mut dst = DynamicImage::new_rgba8(w, h);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new().resize(&src, &mut dst, &options).unwrap();
    dst.to_rgba8()
}

fn mean_difference(a: &RgbaImage, b: &RgbaImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

/// A tiled, uncompressed, chunky 8-bit RGB TIFF with an optional EXIF
/// orientation (the encoder in `image` writes only strips).
fn tiled_tiff(img: &RgbImage, tile: u32, orientation: Option<u16>) -> Vec<u8> {
    let (w, h) = img.dimensions();
    let (across, down) = (w.div_ceil(tile), h.div_ceil(tile));
    let tiles = across * down;
    let tile_bytes = tile * tile * 3;
    let mut tags: Vec<(u16, u16, u32, u32)> = vec![
        (256, 4, 1, w),
        (257, 4, 1, h),
        (258, 3, 3, 0), // BitsPerSample: offset patched below
        (259, 3, 1, 1),
        (262, 3, 1, 2),
        (277, 3, 1, 3),
        (284, 3, 1, 1),
        (322, 4, 1, tile),
        (323, 4, 1, tile),
        (324, 4, tiles, 0), // TileOffsets
        (325, 4, tiles, 0), // TileByteCounts
    ];
    if let Some(o) = orientation {
        tags.push((274, 3, 1, u32::from(o)));
    }
    tags.sort_by_key(|t| t.0);
    let ifd_len = 2 + tags.len() as u32 * 12 + 4;
    let bits_at = 8 + ifd_len;
    let offsets_at = bits_at + 6;
    let counts_at = offsets_at + 4 * tiles;
    let data_at = counts_at + 4 * tiles;
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(tags.len() as u16).to_le_bytes());
    for (tag, kind, count, value) in tags {
        let value = match tag {
            258 => bits_at,
            324 => offsets_at,
            325 => counts_at,
            _ => value,
        };
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        if kind == 3 && count == 1 {
            out.extend_from_slice(&(value as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    for _ in 0..3 {
        out.extend_from_slice(&8u16.to_le_bytes());
    }
    for i in 0..tiles {
        out.extend_from_slice(&(data_at + i * tile_bytes).to_le_bytes());
    }
    for _ in 0..tiles {
        out.extend_from_slice(&tile_bytes.to_le_bytes());
    }
    for ty in 0..down {
        for tx in 0..across {
            for y in ty * tile..(ty + 1) * tile {
                for x in tx * tile..(tx + 1) * tile {
                    let p = if x < w && y < h { img.get_pixel(x, y).0 } else { [0; 3] };
                    out.extend_from_slice(&p);
                }
            }
        }
    }
    out
}

fn encode_png(img: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
        .unwrap();
    out
}

fn encode_tiff(img: &DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_with_encoder(image::codecs::tiff::TiffEncoder::new(&mut out))
        .unwrap();
    out.into_inner()
}

#[test]
fn png_and_tiff_shrunk_as_they_are_read_match_a_full_decode() {
    let base = picture(1900, 1300);
    let mut with_alpha = DynamicImage::ImageRgb8(base.clone()).to_rgba8();
    for (x, _, p) in with_alpha.enumerate_pixels_mut() {
        p[3] = (x % 256) as u8;
    }
    let grey16 = DynamicImage::ImageLuma16(DynamicImage::ImageRgb8(base.clone()).to_luma16());
    let rgb = DynamicImage::ImageRgb8(base.clone());
    let turned = DynamicImage::ImageRgb8(image::imageops::rotate90(&base));
    let cases: Vec<(&str, Vec<u8>, DynamicImage)> = vec![
        ("png rgb", encode_png(&rgb), rgb.clone()),
        ("png rgba", encode_png(&with_alpha.clone().into()), with_alpha.into()),
        ("png grey 16-bit", encode_png(&grey16), grey16.clone()),
        ("tiff rgb strips", encode_tiff(&rgb), rgb.clone()),
        (
            "tiff rgb 16-bit",
            encode_tiff(&DynamicImage::ImageRgb16(rgb.to_rgb16())),
            rgb.clone(),
        ),
        (
            "tiff grey",
            encode_tiff(&grey16.to_luma8().into()),
            grey16.to_luma8().into(),
        ),
        ("tiff tiles", tiled_tiff(&base, 128, None), rgb.clone()),
        // Orientation 6: stored as is, shown turned 90° clockwise.
        ("tiff tiles turned", tiled_tiff(&base, 64, Some(6)), turned),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, full) in cases {
        let path = dir.path().join(name.replace(' ', "-"));
        std::fs::write(&path, &bytes).unwrap();
        let spec = Spec {
            sizes: vec![Size::LongEdge(400), Size::LongEdge(900)],
            format: OutputFormat::Png,
            quality: 90,
            watermark: None,
            page: 1,
            metadata: Default::default(),
            colour: Default::default(),
            dpi: None,
            forensic: None,
        };
        let out = render_file(&path, &spec, &EngineLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (rendered, size) in out.iter().zip(&spec.sizes) {
            let (w, h) = fit(full.width(), full.height(), *size);
            assert_eq!((rendered.width, rendered.height), (w, h), "{name} {size:?}");
            let decoded = image::load_from_memory(&rendered.bytes).unwrap();
            assert_eq!(decoded.color().has_alpha(), full.color().has_alpha(), "{name}");
            let diff = mean_difference(&decoded.to_rgba8(), &reference(&full, w, h));
            assert!(
                diff < 2.5,
                "{name} {size:?}: mean difference {diff:.2} from a full decode"
            );
        }
    }
}

#[test]
fn hostile_streamed_sources_fail_with_stable_codes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec {
        sizes: vec![Size::LongEdge(100)],
        format: OutputFormat::Jpeg,
        quality: 80,
        watermark: None,
        page: 1,
        metadata: Default::default(),
        colour: Default::default(),
        dpi: None,
        forensic: None,
    };
    let rgb = DynamicImage::ImageRgb8(picture(600, 400));
    let tiles = tiled_tiff(&picture(600, 400), 64, None);
    for (name, bytes) in [
        ("truncated png", encode_png(&rgb)[..5000].to_vec()),
        ("truncated tiff", encode_tiff(&rgb)[..20_000].to_vec()),
        ("truncated tiles", tiles[..tiles.len() / 2].to_vec()),
        ("empty", Vec::new()),
    ] {
        let path = dir.path().join(name.replace(' ', "-"));
        std::fs::write(&path, &bytes).unwrap();
        let err = render_file(&path, &spec, &EngineLimits::default()).unwrap_err();
        let code = rendition::error::Coded::code(&err).as_str();
        assert!(
            ["corrupt_input", "unsupported_format"].contains(&code),
            "{name}: {code} {err}"
        );
    }
}

fn os(args: &[&OsStr]) -> Vec<OsString> {
    args.iter().map(|a| a.to_os_string()).collect()
}

/// Runs `rendition ARGS` under GNU time: (peak RSS in KiB, stdout).
/// Runs `rendition` with `args` and returns the peak of the summed PSS of
/// its process tree (the program and its engine processes, sampled every
/// 10 ms from `/proc/<pid>/smaps_rollup`), in KiB, and its stdout.
pub fn peak_kib(args: &[OsString], env: &[(&str, String)]) -> (u64, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rendition"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
        out
    });
    let mut peak = 0;
    let status = loop {
        peak = peak.max(tree_pss_kib(child.id()));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let stdout = reader.join().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stdout}{stderr}");
    (peak, stdout)
}

#[test]
fn a_big_png_costs_memory_in_proportion_to_the_output_not_the_source() {
    // 6000×4500 RGB is 77 MiB of pixels; shrunk as read, to 800 px, the
    // peak may not grow by a third of that over a 600×450 one.
    let dir = tempfile::tempdir().unwrap();
    let thumbnail = |w: u32, h: u32| {
        let path = dir.path().join(format!("{w}.png"));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let img = picture(w, h);
        image::codecs::png::PngEncoder::new_with_quality(
            &mut file,
            image::codecs::png::CompressionType::Fast,
            image::codecs::png::FilterType::Sub,
        )
        .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
        drop(file);
        let out = dir.path().join(format!("{w}.jpg"));
        let args = os(&[
            "thumbnail".as_ref(),
            path.as_ref(),
            "--size".as_ref(),
            "800".as_ref(),
            "-o".as_ref(),
            out.as_ref(),
        ]);
        peak_kib(&args, &[]).0
    };
    let (small, big) = (thumbnail(600, 450), thumbnail(6000, 4500));
    let pixels_kib = 6000 * 4500 * 3 / 1024;
    assert!(
        big.saturating_sub(small) < pixels_kib / 3,
        "peak {small} KiB → {big} KiB for {pixels_kib} KiB of pixels"
    );
}

/// `count` 6000×4000 BMP originals (72 MB each: staged to disk and
/// decoded whole), each a job for a 2048 px download.
fn big_jobs(dir: &Path, count: usize) -> Vec<std::path::PathBuf> {
    std::fs::create_dir_all(dir.join("o")).unwrap();
    let img = DynamicImage::ImageRgb8(picture(6000, 4000));
    let mut jobs = Vec::new();
    for i in 0..count {
        let source = format!("big-{i}.bmp");
        img.save(dir.join("o").join(&source)).unwrap();
        let job = serde_json::json!({
            "schema": "rendition.job/v1", "job_id": format!("big-{i}"), "purpose": "download",
            "principal": {"user": "u-ben"},
            "asset": {"id": format!("a-big-{i}"), "collection": "g-launch", "media": "image", "source": source},
            "request": {"rendition": "original", "format": "jpeg", "on_exceed": "clamp"},
        });
        let path = dir.join(format!("job-{i}.json"));
        std::fs::write(&path, serde_json::to_vec(&job).unwrap()).unwrap();
        jobs.push(path);
    }
    jobs
}

fn render_under_budget(dir: &Path, jobs: &[std::path::PathBuf], budget: u64, store: &str) -> (u64, String) {
    let policy = fixture("policy.yaml");
    // The store beside the originals, never inside them.
    let (originals, store) = (dir.join("o"), dir.join(store));
    let mut args = os(&[
        "render".as_ref(),
        "--policy".as_ref(),
        policy.as_ref(),
        "--originals".as_ref(),
        originals.as_ref(),
        "--store".as_ref(),
        store.as_ref(),
        "--concurrency".as_ref(),
        "4".as_ref(),
        "--job".as_ref(),
    ]);
    args.extend(jobs.iter().map(|j| j.clone().into_os_string()));
    peak_kib(&args, &[("RENDITION_MEMORY_BUDGET", budget.to_string())])
}

#[test]
fn the_memory_budget_holds_a_render_process_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = big_jobs(dir.path(), 4);
    // Room for one of these renders at a time (about 116 MiB estimated,
    // 100 measured), not two.
    let budget: u64 = 192 << 20;
    // What the allocator holds beyond what the budget counts.
    let slack_kib = 16 * 1024;
    let (held, out) = render_under_budget(dir.path(), &jobs, budget, "held");
    assert_eq!(out.matches("\"status\":\"done\"").count(), 4, "{out}");
    assert!(
        held <= budget / 1024 + slack_kib,
        "peak {held} KiB under a budget of {} KiB",
        budget / 1024
    );
    // The same jobs with room for all: two renders at once (one per core)
    // go over that figure, which is what the budget prevented.
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        let (free, out) = render_under_budget(dir.path(), &jobs, 8 << 30, "free");
        assert_eq!(out.matches("\"status\":\"done\"").count(), 4, "{out}");
        eprintln!("peak {held} KiB under the budget, {free} KiB without it");
        assert!(
            free > budget / 1024 + slack_kib,
            "{free} KiB without the budget, {held} KiB with it"
        );
    }
    // A budget too small for even one: too_large, naming the figures.
    let (_, out) = render_under_budget(dir.path(), &jobs[..1], 128 << 20, "small");
    assert!(out.contains("\"code\":\"too_large\""), "{out}");
    assert!(out.contains("RENDITION_MEMORY_BUDGET"), "{out}");
}

#[test]
fn grey_and_small_images_still_render_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.png");
    DynamicImage::ImageLuma8(GrayImage::from_fn(300, 200, |x, _| image::Luma([x as u8])))
        .save(&path)
        .unwrap();
    let spec = Spec {
        sizes: vec![Size::Full, Size::LongEdge(1000)],
        format: OutputFormat::Jpeg,
        quality: 80,
        watermark: None,
        page: 1,
        metadata: Default::default(),
        colour: Default::default(),
        dpi: None,
        forensic: None,
    };
    let out = render_file(&path, &spec, &EngineLimits::default()).unwrap();
    assert!(out.iter().all(|o| (o.width, o.height) == (300, 200)));
}

/// A publish of an original too large to hold passes through local disk:
/// the copy keeps its bytes, and the job's directory is gone afterwards.
#[test]
fn a_large_original_is_published_through_disk_intact() {
    use rendition::pipeline::{Arrival, Pipeline, PipelineConfig};
    use rendition::storage::fs::FsStore;
    use rendition::work::Work;
    let dir = tempfile::tempdir().unwrap();
    let (originals, store, temp) = (dir.path().join("o"), dir.path().join("r"), dir.path().join("t"));
    for d in [&originals, &store, &temp] {
        std::fs::create_dir_all(d).unwrap();
    }
    // 42 MB: above the 32 MiB from which originals are not held.
    DynamicImage::ImageRgb8(picture(4000, 3500))
        .save(originals.join("master.bmp"))
        .unwrap();
    let bytes = std::fs::read(originals.join("master.bmp")).unwrap();
    let config = PipelineConfig {
        render_threads: 1,
        temp_dir: Some(temp.clone()),
        publish: rendition::destinations::PublishDestinations::parse("press-out", &[]).unwrap(),
        ..PipelineConfig::default()
    };
    let p = Pipeline::new(
        FsStore::new(&originals, None),
        FsStore::new(&store, Some(rendition::storage::link::LinkSigner::new("s", "http://h"))),
        config,
    );
    let job = serde_json::json!({
        "schema": "rendition.job/v1", "job_id": "pub-big", "purpose": "publish",
        "principal": {"user": "u-anna"},
        "asset": {"id": "a-big", "collection": "g-launch", "media": "image", "source": "master.bmp", "filename": "master.bmp"},
        "request": {"rendition": "original"},
        "destination": {"bucket": "press-out", "prefix": "launch/"},
    });
    let policy = crate::common::load_policy("policy.yaml");
    let work = Work::parse(&serde_json::to_vec(&job).unwrap(), false);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(p.run(&policy, &work, Arrival::now(), None)).result;
    assert_eq!(result.status, rendition::result::Status::Done, "{:?}", result.error);
    let published = result.renditions[0].published.clone().expect("published");
    let key = published.strip_prefix("s3://press-out/").unwrap();
    let copy = std::fs::read(store.join("published/press-out").join(key)).unwrap();
    assert!(copy == bytes, "{} bytes published of {}", copy.len(), bytes.len());
    drop(p);
    assert_eq!(
        std::fs::read_dir(&temp).unwrap().count(),
        0,
        "temporary directories left"
    );
}

/// A JPEG file's header is read from its first bytes with libjpeg-turbo,
/// as in memory: the same outputs either way, CMYK included.
#[test]
fn jpeg_files_render_as_jpeg_bytes_do() {
    for name in ["photo.jpg", "cmyk.jpg", "orient-6.jpg"] {
        let path = fixture(&format!("originals/{name}"));
        let spec = Spec {
            sizes: vec![Size::LongEdge(300)],
            format: OutputFormat::Png,
            quality: 80,
            watermark: None,
            page: 1,
            metadata: Default::default(),
            colour: Default::default(),
            dpi: None,
            forensic: None,
        };
        let from_file = render_file(&path, &spec, &EngineLimits::default()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let from_bytes = rendition::rendition::render(&bytes, &spec, &EngineLimits::default()).unwrap();
        assert_eq!(from_file[0].bytes, from_bytes[0].bytes, "{name}");
    }
}
