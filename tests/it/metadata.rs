//! The metadata matrix (docs/metadata.md): sources of every format that
//! carries metadata, written by exiftool with rights, description, camera
//! and private fields; rendered to every output format under every
//! profile; read back by exiftool, an independent reader. Rights kept,
//! private fields gone, `none` empty, `all` upright.

use std::path::{Path, PathBuf};
use std::process::Command;

use rendition::rendition::{EngineLimits, MetadataProfile, MetadataSpec, OutputFormat, Size, render};
use serde_json::Value;

use crate::common::fixture;
use crate::engine::spec;

const COPYRIGHT: &str = "© Brand & Co 2026";
const CREATOR: &str = "Ada Lovelace";
const PRIVATE: [&str; 3] = ["SERIAL-0451", "Grace Hopper", "LENS-0452"];

/// Every field exiftool may write into a source; what a format cannot
/// hold is skipped by exiftool, what it can is there.
fn tagged(base: &str, dir: &Path) -> PathBuf {
    let name = Path::new(base).file_name().unwrap();
    let path = dir.join(name);
    std::fs::copy(fixture(&format!("originals/{base}")), &path).unwrap();
    let args = [
        format!("-XMP-dc:Creator={CREATOR}"),
        format!("-XMP-dc:Rights={COPYRIGHT}"),
        "-XMP-photoshop:Credit=Brand Photo Desk".into(),
        "-XMP-xmpRights:WebStatement=https://brand.example/licence".into(),
        "-XMP-dc:Subject=launch".into(),
        "-XMP-dc:Title=Spring campaign".into(),
        "-XMP-exifEX:SerialNumber=SERIAL-0451".into(),
        "-XMP-exif:GPSLatitude=48 51.5 N".into(),
        format!("-EXIF:Artist={CREATOR}"),
        format!("-EXIF:Copyright={COPYRIGHT}"),
        "-EXIF:Make=Canon".into(),
        "-EXIF:Model=EOS R5".into(),
        "-EXIF:SerialNumber=SERIAL-0451".into(),
        "-EXIF:OwnerName=Grace Hopper".into(),
        "-EXIF:LensSerialNumber=LENS-0452".into(),
        "-EXIF:GPSLatitude=48.8584".into(),
        "-EXIF:GPSLatitudeRef=N".into(),
        format!("-IPTC:By-line={CREATOR}"),
        format!("-IPTC:CopyrightNotice={COPYRIGHT}"),
        "-IPTC:Keywords=launch".into(),
        "-IPTC:CodedCharacterSet=UTF8".into(),
        "-overwrite_original".into(),
        "-q".into(),
        "-m".into(),
    ];
    let status = Command::new("exiftool")
        .args(&args)
        .arg(&path)
        .status()
        .expect("exiftool (scripts/install-deps installs it)");
    assert!(status.success(), "exiftool could not tag {base}");
    path
}

/// What exiftool reads from `files`: one map of `group:tag` → value each.
fn read_back(files: &[PathBuf]) -> Vec<serde_json::Map<String, Value>> {
    let out = Command::new("exiftool")
        .args(["-j", "-G1", "-a", "-struct"])
        .args(files)
        .output()
        .expect("exiftool runs");
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).expect("exiftool -j");
    all.into_iter()
        .map(|v| v.as_object().cloned().unwrap_or_default())
        .collect()
}

/// The tags that are metadata (not the file's own description: its size,
/// its ICC profile, its container).
fn metadata_tags(tags: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    let own = [
        "SourceFile",
        "ExifTool:",
        "System:",
        "File:",
        "Composite:",
        "ICC",
        "JFIF:",
        "PNG:",
        "RIFF:",
        "QuickTime:",
        "Meta:",
        "IFD0:ImageWidth",
        "IFD0:ImageHeight",
        "IFD0:BitsPerSample",
        "IFD0:Compression",
        "IFD0:PhotometricInterpretation",
        "IFD0:StripOffsets",
        "IFD0:SamplesPerPixel",
        "IFD0:RowsPerStrip",
        "IFD0:StripByteCounts",
        "IFD0:XResolution",
        "IFD0:YResolution",
        "IFD0:ResolutionUnit",
        "IFD0:PlanarConfiguration",
        "IFD0:Predictor",
        "IFD0:ExtraSamples",
        "IFD0:SampleFormat",
        "XMP-x:XMPToolkit",
        "Photoshop:",
        "IPTC:CodedCharacterSet",
        "IPTC:ApplicationRecordVersion",
        "IPTC:EnvelopeRecordVersion",
    ];
    tags.iter()
        .filter(|(k, _)| !own.iter().any(|o| k.starts_with(o)))
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect()
}

fn check(source: &str, format: OutputFormat, profile: MetadataProfile, tags: &serde_json::Map<String, Value>) {
    let what = format!("{source} → {format:?} under {}", profile.name());
    let found = metadata_tags(tags);
    let text: String = found.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let has = |needle: &str| text.contains(needle);
    if profile == MetadataProfile::None {
        assert!(found.is_empty(), "{what} carries metadata:\n{text}");
        return;
    }
    assert!(has("Brand & Co 2026"), "{what} lost the copyright notice:\n{text}");
    assert!(has(CREATOR), "{what} lost the creator:\n{text}");
    if profile == MetadataProfile::All {
        let upright = tags
            .iter()
            .filter(|(k, _)| k.ends_with(":Orientation"))
            .all(|(_, v)| v.as_str().is_some_and(|s| s.starts_with("Horizontal")));
        assert!(upright, "{what} is not marked upright:\n{text}");
        return;
    }
    for private in PRIVATE {
        assert!(!has(private), "{what} leaked {private}:\n{text}");
    }
    assert!(!text.contains("GPS"), "{what} leaked a position:\n{text}");
    let described = has("launch") || has("Spring campaign");
    assert_eq!(
        described,
        profile == MetadataProfile::Public,
        "{what}: the description is public's alone:\n{text}"
    );
}

const OUTPUTS: [OutputFormat; 5] = [
    OutputFormat::Jpeg,
    OutputFormat::Png,
    OutputFormat::Webp,
    OutputFormat::Avif,
    OutputFormat::Tiff,
];
const PROFILES: [MetadataProfile; 4] = [
    MetadataProfile::None,
    MetadataProfile::Rights,
    MetadataProfile::Public,
    MetadataProfile::All,
];

fn matrix(base: &str) {
    let dir = tempfile::tempdir().unwrap();
    let tagged = tagged(base, dir.path());
    // The source does carry what must not leak: the checks below could fail.
    let own = read_back(std::slice::from_ref(&tagged)).remove(0);
    let own: String = metadata_tags(&own).iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    assert!(
        own.contains("SERIAL-0451") && own.contains("GPS") && own.contains(COPYRIGHT),
        "{base} was not tagged:\n{own}"
    );
    let source = std::fs::read(&tagged).unwrap();
    let mut made = Vec::new();
    for format in OUTPUTS {
        for profile in PROFILES {
            let mut spec = spec(&[Size::LongEdge(96)], format, None);
            spec.metadata = MetadataSpec {
                profile,
                usage_terms: None,
            };
            let out = render(&source, &spec, &EngineLimits::default()).unwrap_or_else(|e| panic!("{base}: {e}"));
            let path = dir
                .path()
                .join(format!("{}-{}.{}", profile.name(), made.len(), format.extension()));
            std::fs::write(&path, &out[0].bytes).unwrap();
            made.push((format, profile, path));
        }
    }
    let files: Vec<PathBuf> = made.iter().map(|(.., p)| p.clone()).collect();
    for ((format, profile, _), tags) in made.iter().zip(read_back(&files)) {
        check(base, *format, *profile, &tags);
    }
}

#[test]
fn jpeg_sources_keep_what_each_profile_keeps_in_every_output() {
    matrix("orient-6.jpg");
}

#[test]
fn tiff_sources_keep_what_each_profile_keeps_in_every_output() {
    matrix("photo.tiff");
}

#[test]
fn png_sources_keep_what_each_profile_keeps_in_every_output() {
    matrix("srgb-600.png");
}

#[test]
fn webp_sources_keep_what_each_profile_keeps_in_every_output() {
    matrix("photo.webp");
}

#[test]
fn heif_sources_keep_what_each_profile_keeps_in_every_output() {
    matrix("formats/photo.heic");
}

#[test]
fn psd_sources_keep_what_each_profile_keeps_in_every_output() {
    matrix("formats/adobergb.psd");
}

#[test]
fn jpeg_2000_sources_keep_what_each_profile_keeps_in_every_output() {
    matrix("formats/photo.jp2");
}

#[test]
fn per_recipient_usage_terms_reach_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read(tagged("photo.jpg", dir.path())).unwrap();
    let terms = "Licensed to ann@example.com until 2027-01-31";
    let mut files = Vec::new();
    for format in OUTPUTS {
        let mut spec = spec(&[Size::LongEdge(64)], format, None);
        spec.metadata = MetadataSpec {
            profile: MetadataProfile::Rights,
            usage_terms: Some(terms.into()),
        };
        let out = render(&source, &spec, &EngineLimits::default()).unwrap();
        let path = dir.path().join(format!("terms.{}", format.extension()));
        std::fs::write(&path, &out[0].bytes).unwrap();
        files.push(path);
    }
    for (path, tags) in files.iter().zip(read_back(&files)) {
        let terms_read = tags.get("XMP-xmpRights:UsageTerms").and_then(Value::as_str);
        assert_eq!(terms_read, Some(terms), "{}", path.display());
    }
}
