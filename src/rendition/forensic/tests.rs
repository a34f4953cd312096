//! Mark → attack → read round trips on the fixture photograph, with the
//! attacks made by the `image` crate (the benchmark's are Pillow's:
//! scripts/bench-trace). The payload must come back exactly; unmarked
//! pictures and other seeds must give nothing.

use image::{DynamicImage, GenericImageView, ImageFormat, imageops::FilterType};

use super::read::read;
use super::{ForensicSpec, embed};

const SEED: [u8; 32] = [7; 32];
const PAYLOAD: u64 = 0x0123_4567_89ab_cdef;

fn photo() -> DynamicImage {
    image::open(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/originals/photo.jpg")).expect("fixture")
}

fn marked() -> DynamicImage {
    let mut img = photo();
    embed(
        &mut img,
        &ForensicSpec {
            payload: PAYLOAD,
            seed: SEED,
        },
    );
    img
}

fn jpeg(img: &DynamicImage, quality: u8) -> DynamicImage {
    let mut bytes = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality);
    img.to_rgb8().write_with_encoder(encoder).expect("encode");
    image::load_from_memory_with_format(&bytes, ImageFormat::Jpeg).expect("decode")
}

fn payloads(img: &DynamicImage, seed: &[u8; 32]) -> Vec<u64> {
    let luma = img.to_luma8();
    let (w, h) = luma.dimensions();
    read(luma.as_raw(), w as usize, h as usize, seed)
        .iter()
        .map(|r| r.payload)
        .collect()
}

fn traced(img: &DynamicImage) -> bool {
    payloads(img, &SEED).first() == Some(&PAYLOAD)
}

#[test]
fn a_marked_picture_reads_back_as_is_and_through_png() {
    let img = marked();
    assert!(traced(&img));
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    assert!(traced(&image::load_from_memory(&png).unwrap()));
}

#[test]
fn the_mark_survives_jpeg_down_to_quality_50() {
    for q in [50, 75, 95] {
        assert!(traced(&jpeg(&marked(), q)), "lost at quality {q}");
    }
}

#[test]
fn the_mark_survives_halving_then_jpeg_once_the_size_is_restored() {
    let img = marked();
    let (w, h) = img.dimensions();
    for (percent, filter) in [
        (50, FilterType::Lanczos3),
        (70, FilterType::Triangle),
        (90, FilterType::CatmullRom),
    ] {
        let small = img.resize_exact(w * percent / 100, h * percent / 100, filter);
        let back = jpeg(&small, 75).resize_exact(w, h, FilterType::Lanczos3);
        assert!(traced(&back), "lost at {percent} %");
    }
}

#[test]
fn the_mark_survives_a_crop_at_unknown_offsets() {
    let img = marked();
    let (w, h) = img.dimensions();
    for (left, top, right, bottom) in [(0.1, 0.1, 0.1, 0.1), (0.03, 0.07, 0.0, 0.09), (0.0, 0.0, 0.1, 0.05)] {
        let (x, y) = ((w as f32 * left) as u32, (h as f32 * top) as u32);
        let cw = w - x - (w as f32 * right) as u32;
        let ch = h - y - (h as f32 * bottom) as u32;
        assert!(
            traced(&jpeg(&img.crop_imm(x, y, cw, ch), 85)),
            "lost cropped at {x},{y}"
        );
    }
}

#[test]
fn the_mark_survives_greyscale_brightness_and_contrast() {
    let img = marked();
    assert!(
        traced(&jpeg(&DynamicImage::ImageLuma8(img.to_luma8()), 90)),
        "greyscale"
    );
    for (bright, contrast) in [(25, 0.0), (-25, 0.0), (0, 20.0), (0, -20.0)] {
        let changed = img.brighten(bright).adjust_contrast(contrast);
        assert!(traced(&jpeg(&changed, 90)), "brightness {bright}, contrast {contrast}");
    }
}

#[test]
fn unmarked_pictures_and_other_seeds_read_nothing() {
    assert_eq!(payloads(&photo(), &SEED), Vec::<u64>::new());
    assert_eq!(payloads(&jpeg(&photo(), 60), &SEED), Vec::<u64>::new());
    assert_eq!(payloads(&marked(), &[8; 32]), Vec::<u64>::new());
}

#[test]
fn marking_is_deterministic_and_small() {
    let (a, b) = (marked(), marked());
    assert_eq!(a.as_bytes(), b.as_bytes());
    let (p, m) = (photo().to_luma8(), a.to_luma8());
    let mse = p
        .as_raw()
        .iter()
        .zip(m.as_raw())
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / p.as_raw().len() as f64;
    let psnr = 10.0 * (255.0f64 * 255.0 / mse).log10();
    assert!(psnr >= 42.0, "PSNR {psnr:.1} dB");
}
