//! Small helpers both programs (`rendition`, `rendition-bench`) use.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where `rendition thumbnail -o OUT` writes size `size` when given several.
pub fn sized(output: &Path, size: u32) -> PathBuf {
    let stem = output
        .file_stem()
        .map_or("out".into(), |s| s.to_string_lossy().into_owned());
    let ext = output
        .extension()
        .map_or("jpg".into(), |e| e.to_string_lossy().into_owned());
    output.with_file_name(format!("{stem}-{size}.{ext}"))
}

/// The `q` quantile of sorted latencies, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0
}
