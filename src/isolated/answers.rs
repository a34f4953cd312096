//! What an engine answers, checked before the worker believes it: a
//! header the format's limits allow, outputs the spec asked for (sizes,
//! shapes, formats, what the bytes themselves say), refusal codes an
//! engine may give, progress a person may read (docs/security.md#engine-processes).

use crate::error::ErrorCode;
use crate::rendition::metadata::MAX_BLOCK_BYTES;
use crate::rendition::probe::Header;
use crate::rendition::{Colour, EngineLimits, Fit, MetadataProfile, RenderError, Rendered, Size, Spec};

use super::wire;

/// The most bytes the outputs of `spec` may take: uncompressed RGBA of
/// each size, and a MiB of headers each.
pub(super) fn output_room(source_edge: u32, spec: &Spec) -> u64 {
    // What an output carries beside its pixels: the printer's profile, and
    // the metadata blocks a profile may copy (EXIF, XMP and IPTC, each held
    // to MAX_BLOCK_BYTES on the way in).
    let profile = match &spec.colour {
        Colour::Cmyk(printer) => printer.icc.len() as u64,
        Colour::Srgb => 0,
    };
    let metadata = match spec.metadata.profile {
        MetadataProfile::None => 0,
        _ => 3 * MAX_BLOCK_BYTES,
    };
    spec.sizes
        .iter()
        .map(|size| {
            let edge = u64::from(size.long_edge().unwrap_or(u32::MAX).min(source_edge));
            edge * edge * 4 + (1 << 20) + profile + metadata
        })
        .sum()
}

/// The codes an engine may answer with; anything else (a retried code, a
/// control-plane code) is its own failure.
pub(super) fn engine_code(code: ErrorCode) -> ErrorCode {
    match code {
        ErrorCode::UnsupportedFormat
        | ErrorCode::CorruptInput
        | ErrorCode::TooLarge
        | ErrorCode::NoSuchPage
        | ErrorCode::DeadlineExceeded => code,
        _ => ErrorCode::EngineError,
    }
}

/// Progress as a person may read it: a percentage from 0 to 100, a frame
/// rate that is a number.
pub(super) fn clamped(p: crate::video::Progress) -> crate::video::Progress {
    let finite = |v: f32, max: f32| if v.is_finite() { v.clamp(0.0, max) } else { 0.0 };
    crate::video::Progress {
        percent: finite(p.percent, 100.0),
        frames: p.frames,
        fps: finite(p.fps, 1e6),
    }
}

/// A header the engine could have read: the format's own limits hold
/// (the reservation is sized from it, so an engine may not inflate it).
pub(super) fn plausible(header: &Header, limits: &EngineLimits) -> bool {
    let pixels = u64::from(header.width) * u64::from(header.height);
    pixels > 0 && pixels <= limits.max_source_pixels && header.pixel_bytes <= 16
}

/// An engine is not trusted to keep to the spec: each size asked, in its
/// order, none larger than asked (nor than the source), in the format asked.
pub(super) fn within_spec(rendered: &[Rendered], source_edge: u32, spec: &Spec) -> Result<(), RenderError> {
    let asked: Vec<_> = spec.sizes.iter().collect();
    let made: Vec<_> = rendered.iter().map(|r| &r.size).collect();
    if asked != made {
        return Err(RenderError::CorruptInput(format!(
            "the engine made {made:?}, not {asked:?}"
        )));
    }
    for r in rendered {
        // The size the bytes themselves say (a header read by `image`, in
        // memory-safe Rust), where `image` reads the format back.
        let told = image::ImageReader::new(std::io::Cursor::new(&r.bytes))
            .with_guessed_format()
            .ok()
            .and_then(|reader| reader.into_dimensions().ok());
        // `image` reads back JPEG, PNG and WebP; AVIF's size is taken as said.
        let unread = told.is_none() && r.format != crate::rendition::OutputFormat::Avif;
        if unread || told.is_some_and(|told| told != (r.width, r.height)) {
            return Err(RenderError::CorruptInput(format!(
                "the engine said {}×{}, its bytes say {told:?}",
                r.width, r.height
            )));
        }
        if !keeps_the_frames_shape(r) {
            return Err(RenderError::CorruptInput(format!(
                "the engine made a {}×{} output for {:?}",
                r.width, r.height, r.size
            )));
        }
        let edge = r.size.long_edge().unwrap_or(u32::MAX).min(source_edge);
        let format_ok = spec.format == crate::rendition::OutputFormat::Auto || r.format == spec.format;
        if r.width.max(r.height) > edge || !format_ok {
            return Err(RenderError::CorruptInput(format!(
                "the engine made a {}×{} {:?} for {:?} {:?}",
                r.width, r.height, r.format, r.size, spec.format
            )));
        }
    }
    Ok(())
}

/// A `cover` or `pad` output has its frame's shape (to a pixel's rounding).
pub(super) fn keeps_the_frames_shape(r: &Rendered) -> bool {
    let Size::Frame(frame) = r.size else { return true };
    if frame.fit == Fit::Inside {
        return true;
    }
    let off = (u64::from(r.width) * u64::from(frame.height)).abs_diff(u64::from(r.height) * u64::from(frame.width));
    off <= u64::from(frame.width.max(frame.height))
}

/// The outputs as the engine described them, each with its bytes.
pub(super) fn split_outputs(outputs: Vec<wire::Output>, bytes: Vec<u8>) -> Result<Vec<Rendered>, RenderError> {
    if outputs.len() == 1 && outputs[0].bytes == bytes.len() as u64 {
        let o = &outputs[0];
        return Ok(vec![Rendered {
            size: o.size,
            bytes,
            width: o.width,
            height: o.height,
            format: o.format,
            watermarked: o.watermarked,
        }]);
    }
    let mut at = 0usize;
    let mut rendered = Vec::with_capacity(outputs.len());
    for o in outputs {
        let end = usize::try_from(o.bytes).ok().and_then(|n| at.checked_add(n));
        let Some(slice) = end.and_then(|end| bytes.get(at..end)) else {
            return Err(RenderError::CorruptInput(
                "the engine's outputs are shorter than it said".into(),
            ));
        };
        at += slice.len();
        rendered.push(Rendered {
            size: o.size,
            bytes: slice.to_vec(),
            width: o.width,
            height: o.height,
            format: o.format,
            watermarked: o.watermarked,
        });
    }
    Ok(rendered)
}
