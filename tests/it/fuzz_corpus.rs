//! Replays the committed fuzz corpus and every past crasher (fuzz/corpus,
//! fuzz/regressions) through the fuzz targets' own entry points, on stable:
//! a finding once fixed stays fixed without nightly or cargo-fuzz.

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = files(&fuzz.join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target} is empty: restore it or run scripts/fuzz seed"
    );
    for path in corpus.iter().chain(&files(&fuzz.join("regressions").join(target))) {
        let bytes = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| run(&bytes)).is_err() {
            panic!("{} fails the {target} target", path.display());
        }
    }
}

#[test]
fn job_corpus() {
    replay("job", rendition::fuzzing::job);
}

#[test]
fn policy_corpus() {
    replay("policy", rendition::fuzzing::policy);
}

#[test]
fn image_corpus() {
    replay("image", rendition::fuzzing::image);
}

#[test]
fn video_probe_corpus() {
    replay("video_probe", rendition::fuzzing::video_probe);
}

#[test]
fn svg_corpus() {
    replay("svg", rendition::rendition::fuzz::svg);
}

#[test]
fn probe_corpus() {
    replay("probe", rendition::rendition::fuzz::probe);
}
