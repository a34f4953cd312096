//! Colour to sRGB with Little CMS: embedded RGB profiles (Adobe RGB, …)
//! and CMYK JPEGs. Outputs carry no profile, so they must be sRGB.

use lcms2::{Intent, PixelFormat, Profile, Transform};

use super::RenderError;

/// Is this profile sRGB already (nothing to convert)?
fn is_srgb(profile: &Profile) -> bool {
    profile
        .info(lcms2::InfoType::Description, lcms2::Locale::none())
        .is_some_and(|d| d.to_ascii_lowercase().contains("srgb"))
}

/// Converts 8-bit RGB or RGBA pixels in place from `icc` to sRGB. A profile
/// that does not parse, is not RGB, or is sRGB leaves the pixels as they are.
pub fn rgb_to_srgb(pixels: &mut [u8], channels: usize, icc: &[u8]) {
    let Ok(profile) = Profile::new_icc(icc) else { return };
    if profile.color_space() != lcms2::ColorSpaceSignature::RgbData || is_srgb(&profile) {
        return;
    }
    let srgb = Profile::new_srgb();
    if channels == 4 {
        let Ok(t) = Transform::<[u8; 4], [u8; 4]>::new(
            &profile,
            PixelFormat::RGBA_8,
            &srgb,
            PixelFormat::RGBA_8,
            Intent::Perceptual,
        ) else {
            return;
        };
        t.transform_in_place(bytemuck::cast_slice_mut(pixels));
    } else {
        let Ok(t) = Transform::<[u8; 3], [u8; 3]>::new(
            &profile,
            PixelFormat::RGB_8,
            &srgb,
            PixelFormat::RGB_8,
            Intent::Perceptual,
        ) else {
            return;
        };
        t.transform_in_place(bytemuck::cast_slice_mut(pixels));
    }
}

/// CMYK pixels (as libjpeg-turbo decodes them) to sRGB RGB. Photoshop
/// (Adobe APP14) stores inverted values. With no usable CMYK profile a
/// plain conversion is used: colours are plausible, not exact.
pub fn cmyk_to_srgb(cmyk: &[u8], icc: Option<&[u8]>, inverted: bool) -> Result<Vec<u8>, RenderError> {
    if !cmyk.len().is_multiple_of(4) {
        return Err(RenderError::CorruptInput("CMYK buffer of odd length".into()));
    }
    Ok(CmykToSrgb::new(icc, inverted)?.convert(cmyk))
}

/// A CMYK to sRGB conversion made once and used row after row.
pub struct CmykToSrgb {
    transform: Option<Transform<[u8; 4], [u8; 3]>>,
    inverted: bool,
}

impl CmykToSrgb {
    /// From the file's CMYK profile when it has a usable one.
    pub fn new(icc: Option<&[u8]>, inverted: bool) -> Result<CmykToSrgb, RenderError> {
        let profile = icc
            .and_then(|icc| Profile::new_icc(icc).ok())
            .filter(|p| p.color_space() == lcms2::ColorSpaceSignature::CmykData);
        let transform = match profile {
            Some(profile) => Some(
                Transform::new(
                    &profile,
                    if inverted {
                        PixelFormat::CMYK_8_REV
                    } else {
                        PixelFormat::CMYK_8
                    },
                    &Profile::new_srgb(),
                    PixelFormat::RGB_8,
                    Intent::Perceptual,
                )
                .map_err(RenderError::corrupt)?,
            ),
            None => None,
        };
        Ok(CmykToSrgb { transform, inverted })
    }

    /// 4 samples per pixel in, 3 out (a trailing partial pixel is dropped).
    pub fn convert(&self, cmyk: &[u8]) -> Vec<u8> {
        let cmyk = &cmyk[..cmyk.len() / 4 * 4];
        let mut rgb = vec![0u8; cmyk.len() / 4 * 3];
        if let Some(t) = &self.transform {
            t.transform_pixels(bytemuck::cast_slice(cmyk), bytemuck::cast_slice_mut(&mut rgb));
            return rgb;
        }
        for (px, out) in cmyk.chunks_exact(4).zip(rgb.chunks_exact_mut(3)) {
            // Ink amounts: inverted files store 255 for no ink.
            let ink = |v: u8| {
                if self.inverted {
                    255 - u32::from(v)
                } else {
                    u32::from(v)
                }
            };
            let k = ink(px[3]);
            for c in 0..3 {
                out[c] = ((255 - ink(px[c])) * (255 - k) / 255) as u8;
            }
        }
        rgb
    }
}
