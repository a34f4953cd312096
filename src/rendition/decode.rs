//! Decoding to upright sRGB pixels. JPEG goes through libjpeg-turbo and is
//! shrunk on load (DCT scaling by 1/2, 1/4 or 1/8) whenever the largest
//! output still fits, as libvips does; the rest goes through `image`.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use turbojpeg::{Colorspace, Decompressor, PixelFormat, ScalingFactor};

use super::probe::{Header, SourceFormat};
use super::{RenderError, color, jpeg_meta};

/// Who made the picture: the only metadata kept on outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credits {
    pub artist: Option<String>,
    pub copyright: Option<String>,
}

impl Credits {
    fn from_exif(exif: Option<&[u8]>) -> Credits {
        let Some(tiff) = exif else { return Credits::default() };
        Credits {
            artist: jpeg_meta::ascii(tiff, 0x013B),
            copyright: jpeg_meta::ascii(tiff, 0x8298),
        }
    }
}

/// Decoded, upright, sRGB, 8 bits per channel (RGB, or RGBA with alpha).
pub struct Picture {
    pub image: DynamicImage,
    pub credits: Credits,
}

impl Picture {
    pub fn width(&self) -> u32 {
        self.image.width()
    }
    pub fn height(&self) -> u32 {
        self.image.height()
    }
    pub fn has_alpha(&self) -> bool {
        self.image.color().has_alpha()
    }
}

/// Decodes `source`; `largest` is the biggest long edge any output needs
/// (`None`: full size), which lets JPEG decode at a reduced scale.
pub fn decode(source: &[u8], header: &Header, largest: Option<u32>) -> Result<Picture, RenderError> {
    let (image, exif) = match header.format {
        SourceFormat::Jpeg => decode_jpeg(source, header, largest)?,
        _ => decode_other(source, header)?,
    };
    Ok(Picture {
        image,
        credits: Credits::from_exif(exif.as_deref()),
    })
}

/// The smallest DCT scale whose long edge still covers `largest`.
pub fn shrink_on_load(long_edge: u32, largest: Option<u32>) -> ScalingFactor {
    let Some(target) = largest else {
        return ScalingFactor::ONE;
    };
    [
        ScalingFactor::ONE_EIGHTH,
        ScalingFactor::ONE_QUARTER,
        ScalingFactor::ONE_HALF,
    ]
    .into_iter()
    .find(|f| f.scale(long_edge as usize) >= target as usize)
    .unwrap_or(ScalingFactor::ONE)
}

fn decode_jpeg(
    source: &[u8],
    header: &Header,
    largest: Option<u32>,
) -> Result<(DynamicImage, Option<Vec<u8>>), RenderError> {
    let meta = jpeg_meta::read(source);
    let mut tj = Decompressor::new().map_err(RenderError::corrupt)?;
    let h = tj.read_header(source).map_err(RenderError::corrupt)?;
    let factor = shrink_on_load(header.long_edge(), largest);
    tj.set_scaling_factor(factor).map_err(RenderError::corrupt)?;
    let scaled = h.scaled(factor);
    let cmyk = matches!(h.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let format = if cmyk { PixelFormat::CMYK } else { PixelFormat::RGB };
    let pitch = scaled.width * format.size();
    let mut pixels = vec![0u8; pitch * scaled.height];
    let out = turbojpeg::Image {
        pixels: pixels.as_mut_slice(),
        width: scaled.width,
        pitch,
        height: scaled.height,
        format,
    };
    // libjpeg-turbo reports a truncated file as an error (a warning made fatal).
    tj.decompress(source, out).map_err(RenderError::corrupt)?;
    let mut rgb = if cmyk {
        color::cmyk_to_srgb(&pixels, meta.icc.as_deref(), meta.adobe)?
    } else {
        pixels
    };
    if !cmyk && let Some(icc) = &meta.icc {
        color::rgb_to_srgb(&mut rgb, 3, icc);
    }
    let image = RgbImage::from_raw(scaled.width as u32, scaled.height as u32, rgb)
        .ok_or_else(|| RenderError::CorruptInput("decoded size mismatch".into()))?;
    let orientation = meta
        .exif
        .as_deref()
        .and_then(jpeg_meta::orientation)
        .and_then(Orientation::from_exif);
    let mut image = DynamicImage::ImageRgb8(image);
    image.apply_orientation(orientation.unwrap_or(Orientation::NoTransforms));
    Ok((image, meta.exif))
}

fn decode_other(source: &[u8], header: &Header) -> Result<(DynamicImage, Option<Vec<u8>>), RenderError> {
    let mut reader = ImageReader::with_format(Cursor::new(source), header.format.image_format());
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(header.width);
    limits.max_image_height = Some(header.height);
    // 16-bit RGBA, plus the 8-bit copy made below.
    limits.max_alloc = Some(u64::from(header.width) * u64::from(header.height) * 12 + (64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(RenderError::corrupt)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let exif = decoder.exif_metadata().ok().flatten();
    let decoded = DynamicImage::from_decoder(decoder).map_err(RenderError::corrupt)?;
    let mut image = if decoded.color().has_alpha() {
        DynamicImage::ImageRgba8(decoded.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(decoded.into_rgb8())
    };
    if let Some(icc) = &icc {
        let channels = usize::from(image.color().channel_count());
        let pixels: &mut [u8] = match &mut image {
            DynamicImage::ImageRgba8(i) => i,
            DynamicImage::ImageRgb8(i) => i,
            _ => unreachable!("converted above"),
        };
        color::rgb_to_srgb(pixels, channels, icc);
    }
    image.apply_orientation(orientation);
    Ok((image, exif))
}
