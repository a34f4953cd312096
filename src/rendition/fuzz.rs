//! The bodies of the engine's own fuzz targets (fuzz/fuzz_targets/svg.rs
//! and probe.rs, run by `scripts/fuzz`), kept in the library so that
//! tests/it/fuzz_corpus.rs replays their corpora and past crashers on
//! stable through the same code, as `crate::fuzzing` does for the others.

use std::time::Duration;

use super::{EngineLimits, OutputFormat, Size, Spec, probe};

/// Bytes as an SVG document (anything else is skipped), drawn to two small
/// sizes under a short deadline: a drawing either renders at the size
/// asked or fails with a code, and never takes the fuzzer down with it.
pub fn svg(bytes: &[u8]) {
    if !super::svg::sniff(&bytes[..bytes.len().min(4096)]) {
        return;
    }
    let limits = EngineLimits {
        document_deadline: Duration::from_secs(5),
        ..EngineLimits::default()
    };
    let spec = Spec {
        sizes: vec![Size::LongEdge(64), Size::LongEdge(17)],
        format: OutputFormat::Png,
        quality: 80,
        watermark: None,
        page: 1,
        metadata: Default::default(),
        colour: Default::default(),
        dpi: None,
        forensic: None,
    };
    let Ok(out) = super::render(bytes, &spec, &limits) else {
        return;
    };
    for (r, size) in out.iter().zip(&spec.sizes) {
        let edge = size.long_edge().expect("sized outputs");
        assert!(r.width >= 1 && r.height >= 1 && r.width.max(r.height) <= edge);
    }
}

/// Bytes through the header probe alone, which runs before any memory is
/// reserved (seeded with a small file of every format it reads): a header
/// it accepts is within the limits. Its allocations are what the fuzzer's
/// `-malloc_limit_mb` watches.
pub fn probe(bytes: &[u8]) {
    let limits = EngineLimits {
        document_deadline: Duration::from_secs(5),
        ..EngineLimits::default()
    };
    let Ok(header) = probe::probe(bytes, &limits) else {
        return;
    };
    assert!(header.width >= 1 && header.height >= 1);
    assert!(u64::from(header.width) * u64::from(header.height) <= limits.max_source_pixels);
}
