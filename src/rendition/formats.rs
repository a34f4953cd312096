//! The format table: every source format the engine reads, in the order
//! their sniffs are asked (formats with a magic number of their own first,
//! then `image`'s, then those told by a plausible header, then text).
//! `probe` and `decode` loop over it; docs/formats.md lists what each reads.

use super::format::{Format, Layout, Probing, Sniffing};
use super::source::SourceFormat;
use super::{RenderError, heif, image_crate, jp2, jpeg, magick, pdf, png_file, psd, raw, svg, tiff_file};

const FORMATS: &[&Format] = &[
    &heif::FORMAT,
    &psd::FORMAT,
    &jp2::FORMAT,
    // Before TIFF: a camera's RAW file is often TIFF-shaped.
    &raw::FORMAT,
    &tiff_file::FORMAT,
    &jpeg::FORMAT,
    &png_file::FORMAT,
    &image_crate::WEBP,
    &image_crate::GIF,
    &image_crate::BMP,
    &image_crate::ICO,
    &image_crate::PNM,
    &image_crate::DDS,
    &magick::SGI,
    &magick::PCX,
    &magick::XPM,
    &magick::SUN_RASTER,
    &magick::FITS,
    &magick::XBM,
    &magick::PFM,
    &magick::DCX,
    &image_crate::TGA,
    &svg::FORMAT,
    &pdf::FORMAT,
];

/// The entry of a format.
pub(super) fn of(kind: SourceFormat) -> &'static Format {
    FORMATS
        .iter()
        .copied()
        .find(|f| f.kind == kind)
        .expect("every SourceFormat has an entry (a unit test checks)")
}

/// The source's format, told by content (never by a file's name), and its
/// header's layout: the first format whose sniff says yes and whose header
/// reader takes the file (its metadata caps are walked first); then
/// whether it has the page asked for.
pub(super) fn identify(p: &Probing<'_>) -> Result<(&'static Format, Layout), RenderError> {
    let head = p.input.head()?;
    let sniffing = Sniffing {
        head: &head,
        input: p.input,
    };
    for &format in FORMATS {
        if !(format.sniff)(format, &sniffing)? {
            continue;
        }
        (format.caps)(p.input, p.page)?;
        let Some(layout) = (format.header)(format, p)? else {
            continue;
        };
        if p.page != 1 && !format.paged {
            return Err(RenderError::NoSuchPage { page: p.page, pages: 1 });
        }
        return Ok((format, layout));
    }
    Err(RenderError::UnsupportedFormat(match image::guess_format(&head) {
        Ok(other) => format!("{other:?} sources are not read"),
        Err(_) => "not an image this engine reads".into(),
    }))
}

impl SourceFormat {
    /// Decoded from the whole file in memory (its compressed bytes count
    /// in the render's reservation), not read a block at a time.
    pub fn decoded_in_memory(self) -> bool {
        of(self).in_memory
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_has_one_entry() {
        for (i, a) in FORMATS.iter().enumerate() {
            assert_eq!(of(a.kind).kind, a.kind);
            assert!(FORMATS[i + 1..].iter().all(|b| b.kind != a.kind), "{:?} twice", a.kind);
        }
        use SourceFormat as F;
        let variants = [
            F::Jpeg,
            F::Png,
            F::Webp,
            F::Tiff,
            F::Gif,
            F::Bmp,
            F::Ico,
            F::Pnm,
            F::Tga,
            F::Dds,
            F::Heif,
            F::Psd,
            F::Jp2,
            F::Svg,
            F::Pdf,
            F::Sgi,
            F::Pcx,
            F::Xpm,
            F::SunRaster,
            F::Fits,
            F::Xbm,
            F::Pfm,
            F::Dcx,
            F::Raw,
        ];
        assert!(variants.iter().all(|&v| FORMATS.iter().any(|f| f.kind == v)));
        assert_eq!(FORMATS.len(), variants.len());
    }
}
