//! Decoding to upright sRGB pixels, by the decoders the format's table
//! entry names in its order ([`super::formats`]): JPEG shrunk on load,
//! PNG and TIFF box-shrunk as their rows are read ([`super::rows`]), vector
//! pages drawn at the output's size, the rest decoded whole.

use super::format::Decoding;
use super::input::Input;
use super::source::Header;
use super::{EngineLimits, RenderError, formats};

pub use super::jpeg::shrink_on_load;
pub use super::source::{Metadata, Picture};

/// Decodes `input`; `largest` is the biggest long edge any output needs
/// (`None`: full size), which lets JPEG decode at a reduced scale and PNG
/// and TIFF shrink row by row as they are read.
pub fn decode(
    input: Input<'_>,
    header: &Header,
    largest: Option<u32>,
    limits: &EngineLimits,
) -> Result<Picture, RenderError> {
    let format = formats::of(header.format);
    let decoding = Decoding {
        input,
        header,
        largest,
        limits,
    };
    Ok((format.decode)(format, &decoding)?.finish(header))
}
