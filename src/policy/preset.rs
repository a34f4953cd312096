//! Named presets (docs/contract.md#presets): what a download called "Web"
//! or "Social square" is. A job asks `{"preset": "social-square"}`; the
//! resolver holds the preset's size to the principal's limit as it does a
//! size asked for, and a role or a share may be held to a list of presets.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::job::Format;
/// How an image fills a preset's frame: the engine's own words
/// (`inside`, `cover`, `pad`).
pub use crate::rendition::Fit;

/// One preset of the policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// An image whose long edge is at most this (its own shape), …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_edge: Option<u32>,
    /// … or a frame of exactly this width and height, filled as `fit` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default)]
    pub fit: Fit,
    /// Overrides the job's format and quality.
    #[serde(default)]
    pub format: Format,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// The most metadata this preset carries (never more than the
    /// principal's own profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<crate::rendition::MetadataProfile>,
    /// `srgb`, or `cmyk` through `print_profile` (JPEG and TIFF).
    #[serde(default, skip_serializing_if = "PresetColour::is_srgb")]
    pub colour: PresetColour,
    /// The operator's print profile (settings `print_profiles`) a `cmyk`
    /// preset separates with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_profile: Option<String>,
    /// Pixels per inch recorded in the file (JPEG, PNG, TIFF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpi: Option<u16>,
    /// Marks this preset adds (never removes): `true`, `"forensic"` or
    /// `"both"` (docs/forensic.md).
    #[serde(default, skip_serializing_if = "super::marks::Marks::is_none")]
    pub watermark: super::marks::Marks,
}

/// A preset's colour output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresetColour {
    #[default]
    Srgb,
    Cmyk,
}

impl PresetColour {
    fn is_srgb(&self) -> bool {
        *self == PresetColour::Srgb
    }
}

/// A preset's size: a long edge, or a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresetSize {
    MaxEdge(u32),
    Frame { width: u32, height: u32, fit: Fit },
}

impl Preset {
    /// Its size, or why it has none (a policy check).
    pub fn size(&self) -> Result<PresetSize, String> {
        match (self.max_edge, self.width, self.height) {
            (Some(n), None, None) if n > 0 => Ok(PresetSize::MaxEdge(n)),
            (None, Some(width), Some(height)) if width > 0 && height > 0 => Ok(PresetSize::Frame {
                width,
                height,
                fit: self.fit,
            }),
            _ => Err("a preset has either `max_edge`, or `width` and `height`, each at least 1 px".into()),
        }
    }

    /// Why the preset cannot be used as written, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if let Err(e) = self.size() {
            return Some(e);
        }
        if self.format == Format::Mp4 {
            return Some("a preset makes images: `mp4` is not an image format".into());
        }
        if let Some(q) = self.quality.filter(|q| !(1..=100).contains(q)) {
            return Some(format!("quality {q} is not between 1 and 100"));
        }
        if let Some(dpi) = self.dpi.filter(|d| !(1..=10_000).contains(d)) {
            return Some(format!("dpi {dpi} is not between 1 and 10000"));
        }
        match (self.colour, &self.print_profile, self.format) {
            (PresetColour::Cmyk, None, _) => Some("a `cmyk` preset names its `print_profile`".into()),
            (PresetColour::Cmyk, _, Format::Jpeg | Format::Tiff) => None,
            (PresetColour::Cmyk, _, _) => Some("`cmyk` is written as `jpeg` or `tiff` only".into()),
            (PresetColour::Srgb, Some(_), _) => Some("a `print_profile` is used with `colour: cmyk` only".into()),
            (PresetColour::Srgb, None, _) => None,
        }
    }
}

impl PresetSize {
    /// Brought within a long-edge limit of `max` px, shape kept; and
    /// whether it had to be.
    pub fn within(self, max: u32) -> (PresetSize, bool) {
        match self {
            PresetSize::MaxEdge(n) if n > max => (PresetSize::MaxEdge(max), true),
            PresetSize::Frame { width, height, fit } if width.max(height) > max => {
                let k = f64::from(max) / f64::from(width.max(height));
                let side = |v: u32| ((f64::from(v) * k).round() as u32).clamp(1, max);
                let frame = PresetSize::Frame {
                    width: side(width),
                    height: side(height),
                    fit,
                };
                (frame, true)
            }
            other => (other, false),
        }
    }
}

/// Places and messages, for the policy check.
pub(super) type Found = Vec<(String, String)>;

/// The presets checked against the lists that name them (`lists`: place,
/// list): errors (a preset without one size, a list naming a preset the
/// policy lacks) and warnings (a preset listed nowhere when `all_held`,
/// every role being held to a list: no one may ask for it).
pub(super) fn problems(
    presets: &BTreeMap<String, Preset>,
    lists: &[(String, Option<&Vec<String>>)],
    all_held: bool,
) -> (Found, Found) {
    let mut errors: Found = presets
        .iter()
        .filter_map(|(name, preset)| preset.problem().map(|why| (format!("presets.{name}"), why)))
        .collect();
    for (place, list) in lists {
        for name in list.iter().flat_map(|l| l.iter()) {
            if !presets.contains_key(name) {
                errors.push((place.clone(), format!("there is no preset {name}")));
            }
        }
    }
    let listed = |name: &String| lists.iter().any(|(_, list)| list.is_some_and(|l| l.contains(name)));
    let warnings = presets
        .keys()
        .filter(|name| all_held && !listed(name))
        .map(|name| {
            let why = "no role or share may ask for it: every role is held to a list of presets without it";
            (format!("presets.{name}"), why.to_string())
        })
        .collect();
    (errors, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_brought_within_a_limit_keeps_its_shape() {
        let frame = PresetSize::Frame {
            width: 1920,
            height: 1080,
            fit: Fit::Cover,
        };
        let (within, clamped) = frame.within(1024);
        assert!(clamped);
        assert_eq!(
            within,
            PresetSize::Frame {
                width: 1024,
                height: 576,
                fit: Fit::Cover
            }
        );
        assert_eq!(frame.within(4096), (frame, false));
        assert_eq!(
            PresetSize::MaxEdge(2048).within(1024),
            (PresetSize::MaxEdge(1024), true)
        );
    }

    #[test]
    fn the_policy_check_refuses_bad_presets_and_warns_of_unusable_ones() {
        use crate::policy::{DocFormat, Policy};
        let base = "version: 1\nroles: { viewer: { download: { image: 2048 }, presets: [web] } }\n";
        let good = format!(
            "{base}presets: {{ web: {{ max_edge: 2048 }}, square: {{ width: 10, height: 10, fit: cover }} }}\n"
        );
        let policy = Policy::parse(&good, DocFormat::Yaml).unwrap();
        let warned: Vec<_> = policy.warnings().iter().map(|w| w.place.clone()).collect();
        assert_eq!(warned, ["presets.square"], "no role may ask for it");
        let unknown = format!("{base}presets: {{ square: {{ width: 10, height: 10 }} }}\n");
        let err = Policy::parse(&unknown, DocFormat::Yaml).unwrap_err().to_string();
        assert!(
            err.contains("roles.viewer.presets") && err.contains("no preset web"),
            "{err}"
        );
        let two_sizes = format!("{base}presets: {{ web: {{ max_edge: 10, width: 10, height: 10 }} }}\n");
        let err = Policy::parse(&two_sizes, DocFormat::Yaml).unwrap_err().to_string();
        assert!(err.contains("presets.web"), "{err}");
    }

    #[test]
    fn a_preset_has_one_size() {
        let preset = |text: &str| serde_yaml::from_str::<Preset>(text).unwrap();
        assert!(preset("{ max_edge: 2048 }").problem().is_none());
        assert!(preset("{ width: 1080, height: 1080, fit: cover }").problem().is_none());
        assert!(preset("{ max_edge: 2048, width: 10, height: 10 }").problem().is_some());
        assert!(preset("{ width: 1080 }").problem().is_some());
        assert!(preset("{ max_edge: 0 }").problem().is_some());
        assert!(preset("{ max_edge: 10, format: mp4 }").problem().is_some());
        assert!(preset("{ max_edge: 10, quality: 0 }").problem().is_some());
        assert!(serde_yaml::from_str::<Preset>("{ max_edge: 10, crop: yes }").is_err());
        assert!(
            preset("{ max_edge: 10, colour: cmyk, print_profile: fogra39, format: tiff, dpi: 300 }")
                .problem()
                .is_none()
        );
        assert!(
            preset("{ max_edge: 10, colour: cmyk, format: tiff }")
                .problem()
                .is_some()
        );
        assert!(
            preset("{ max_edge: 10, colour: cmyk, print_profile: fogra39, format: webp }")
                .problem()
                .is_some()
        );
        assert!(preset("{ max_edge: 10, print_profile: fogra39 }").problem().is_some());
        assert!(preset("{ max_edge: 10, dpi: 0 }").problem().is_some());
    }
}
