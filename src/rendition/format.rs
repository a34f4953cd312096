//! One source format as the engine sees it: how it is told from its first
//! bytes, how its header is read, its decoders in order, and its memory
//! model. Each format's own file defines its [`Format`] entry (`FORMAT`);
//! [`super::formats`] lists them, and `probe` and `decode` loop over that
//! list. Adding a format is its file, its [`SourceFormat`] variant and one
//! line in the list (docs/development.md#adding-a-format).

use std::borrow::Cow;

use image::ImageFormat;

use super::input::Input;
use super::source::{Decoded, Header, SourceFormat};
use super::{EngineLimits, RenderError, Size, resize};

/// What a header says of the pixels, before any is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    pub(super) width: u32,
    pub(super) height: u32,
    /// Bytes per pixel as the decoder makes them (16-bit RGBA: 8; CMYK: 4).
    pub(super) pixel_bytes: u8,
    /// The decoder makes 8-bit RGB or RGBA: no converted copy is needed.
    pub(super) rgb8: bool,
}

impl Layout {
    pub(super) const fn new(width: u32, height: u32, pixel_bytes: u8, rgb8: bool) -> Layout {
        Layout {
            width,
            height,
            pixel_bytes,
            rgb8,
        }
    }
}

/// The first bytes of a source, and a longer look where a format needs one.
pub(super) struct Sniffing<'a> {
    pub(super) head: &'a [u8],
    pub(super) input: Input<'a>,
}

impl<'a> Sniffing<'a> {
    pub(super) fn prefix(&self, n: usize) -> Result<Cow<'a, [u8]>, RenderError> {
        self.input.prefix(n)
    }

    /// `image` takes the first bytes for none of its formats: formats
    /// without a magic number of their own are asked only then.
    pub(super) fn unknown_to_image(&self) -> bool {
        image::guess_format(self.head).is_err()
    }
}

/// A header to read: which page, under which limits.
#[derive(Clone, Copy)]
pub(super) struct Probing<'a> {
    pub(super) input: Input<'a>,
    pub(super) page: u32,
    pub(super) limits: &'a EngineLimits,
}

/// A decode to make of a probed source.
#[derive(Clone, Copy)]
pub(super) struct Decoding<'a> {
    pub(super) input: Input<'a>,
    pub(super) header: &'a Header,
    /// The long edge of the largest output (`None`: full size).
    pub(super) largest: Option<u32>,
    pub(super) limits: &'a EngineLimits,
}

impl Decoding<'_> {
    pub(super) fn size(&self) -> (u32, u32) {
        (self.header.width, self.header.height)
    }
}

/// How big the decoded picture is, for the estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Drawn {
    /// At full size (or shrunk as read, where the header gave band rows).
    Decoded,
    /// Scaled by libjpeg's DCT scaling to the largest output.
    DctScaled,
    /// Drawn at the largest output's size (vector pages).
    AtOutputSize,
}

/// One source format: the table entry `probe` and `decode` loop over.
pub(super) struct Format {
    pub(super) kind: SourceFormat,
    /// Whether the first bytes are this format's. Formats are asked in the
    /// table's order; the first yes wins.
    pub(super) sniff: fn(&Format, &Sniffing<'_>) -> Result<bool, RenderError>,
    /// Pages after the first can be asked for.
    pub(super) paged: bool,
    /// The metadata caps walked before anything is decoded (caps.rs).
    pub(super) caps: fn(Input<'_>, u32) -> Result<(), RenderError>,
    /// Size and pixel layout; `Ok(None)`: not this format after all (the
    /// next format whose sniff says yes is asked).
    pub(super) header: fn(&Format, &Probing<'_>) -> Result<Option<Layout>, RenderError>,
    /// Rows decoded at a time when the decoder shrinks as it reads.
    pub(super) band_rows: fn(&Probing<'_>) -> Result<Option<u32>, RenderError>,
    /// Its decoders, tried in the order this function says.
    pub(super) decode: fn(&Format, &Decoding<'_>) -> Result<Decoded, RenderError>,
    /// Decoded from the whole file in memory, not read a block at a time.
    pub(super) in_memory: bool,
    /// The `image` crate's name for it, where `image` decodes it.
    pub(super) image: Option<ImageFormat>,
    /// ImageMagick's coder, where ImageMagick reads it (or what `image`
    /// cannot read of it).
    pub(super) magick: Option<&'static str>,
    pub(super) drawn: Drawn,
    /// What a child process drawing it holds at its peak:
    /// (header, largest output's edge, bytes of it held in memory).
    pub(super) child_peak: fn(&Header, Option<u32>, u64) -> u64,
}

impl Format {
    /// An entry with the common answers: one page, no caps walked here,
    /// decoded whole in this process, read a block at a time.
    pub(super) const fn new(
        kind: SourceFormat,
        sniff: fn(&Format, &Sniffing<'_>) -> Result<bool, RenderError>,
        header: fn(&Format, &Probing<'_>) -> Result<Option<Layout>, RenderError>,
        decode: fn(&Format, &Decoding<'_>) -> Result<Decoded, RenderError>,
    ) -> Format {
        Format {
            kind,
            sniff,
            paged: false,
            caps: no_caps,
            header,
            band_rows: whole,
            decode,
            in_memory: false,
            image: None,
            magick: None,
            drawn: Drawn::Decoded,
            child_peak: no_child,
        }
    }
    pub(super) const fn paged(self) -> Format {
        Format { paged: true, ..self }
    }
    pub(super) const fn caps(self, caps: fn(Input<'_>, u32) -> Result<(), RenderError>) -> Format {
        Format { caps, ..self }
    }
    pub(super) const fn band_rows(self, band_rows: fn(&Probing<'_>) -> Result<Option<u32>, RenderError>) -> Format {
        Format { band_rows, ..self }
    }
    pub(super) const fn in_memory(self) -> Format {
        Format {
            in_memory: true,
            ..self
        }
    }
    pub(super) const fn image(self, image: ImageFormat) -> Format {
        Format {
            image: Some(image),
            ..self
        }
    }
    pub(super) const fn magick(self, coder: &'static str) -> Format {
        Format {
            magick: Some(coder),
            ..self
        }
    }
    pub(super) const fn drawn(self, drawn: Drawn) -> Format {
        Format { drawn, ..self }
    }
    pub(super) const fn child_peak(self, child_peak: fn(&Header, Option<u32>, u64) -> u64) -> Format {
        Format { child_peak, ..self }
    }
}

fn no_caps(_: Input<'_>, _: u32) -> Result<(), RenderError> {
    Ok(())
}

fn whole(_: &Probing<'_>) -> Result<Option<u32>, RenderError> {
    Ok(None)
}

fn no_child(_: &Header, _: Option<u32>, _: u64) -> u64 {
    0
}

/// What a child process costs before its pixels: the tool, its libraries
/// and heap.
pub(super) const CHILD_BASE: u64 = 32 << 20;

/// The size a vector page is drawn at: the largest output's, its own at most.
pub(super) fn drawn_size(header: &Header, largest: Option<u32>) -> (u32, u32) {
    let size = largest.map_or(Size::Full, Size::LongEdge);
    resize::fit(header.width, header.height, size)
}
