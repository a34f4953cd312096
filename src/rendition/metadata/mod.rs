//! What metadata an output carries (docs/metadata.md): the blocks a decoder
//! found in the source ([`Metadata`]), held to a profile the resolver chose
//! ([`MetadataSpec`]), written into the output's container ([`Embedded`]).
//!
//! - [`fields`]: the rights and description fields, read from XMP, IPTC-IIM
//!   and EXIF in that order of authority.
//! - [`xmp`], [`iim`], [`exif_block`]: each standard, read and written.
//! - [`containers`]: JPEG segments, PNG chunks, WebP chunks.
//!
//! The profiles keep by allow-list, never by strip-list: a field no one has
//! named here is not written, so a maker's private tag cannot slip through
//! `public`. Only `all` copies blocks whole, for principals the policy lets
//! see everything (staff, and whoever it says).

mod containers;
mod exif_block;
mod fields;
mod iim;
mod xmp;

use serde::{Deserialize, Serialize};

pub use containers::{into_jpeg, into_png, into_webp};
pub use exif_block::of_text_tags as exif_of_text_tags;
pub use fields::Fields;
pub(crate) use iim::irb_resource;

/// The most one metadata block of a source may hold (rendition/caps.rs):
/// what an output may carry beside its pixels is reckoned from it.
pub const MAX_BLOCK_BYTES: u64 = super::caps::MAX_METADATA_BYTES;

/// How much of a source's metadata an output carries, least first: a
/// decision takes the least of every profile that applies to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Nothing: no EXIF, XMP or IPTC (colour profiles are pixels, not
    /// metadata, and stay where an output needs one).
    None,
    /// Who owns the picture and on what terms: creator, copyright notice,
    /// credit line, usage terms, web statement, licensor.
    #[default]
    Rights,
    /// `rights`, the description (title, caption, keywords, date created)
    /// and how it was taken (camera make and model, lens model, exposure);
    /// never where (GPS), serial numbers, owners' names, thumbnails or maker
    /// notes.
    Public,
    /// Every block the source carries, copied (its orientation set upright).
    All,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::None => "none",
            Profile::Rights => "rights",
            Profile::Public => "public",
            Profile::All => "all",
        }
    }
}

/// What the engine is told to write: a profile, and the usage terms the
/// policy writes for this recipient (they replace the source's).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct MetadataSpec {
    pub profile: Profile,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_terms: Option<String>,
}

/// The metadata blocks a decoder found, raw; each was held to the caps of
/// rendition/caps.rs on the way in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// EXIF as a TIFF structure (`II*\0…` or `MM\0*…`).
    pub exif: Option<Vec<u8>>,
    /// An XMP packet (UTF-8 XML).
    pub xmp: Option<Vec<u8>>,
    /// IPTC-IIM datasets (`0x1C record dataset length value…`).
    pub iim: Option<Vec<u8>>,
}

impl Metadata {
    /// A source whose only metadata is an EXIF block (or none).
    pub fn from_exif(exif: Option<&[u8]>) -> Metadata {
        Metadata {
            exif: exif.map(<[u8]>::to_vec),
            ..Metadata::default()
        }
    }

    /// Each block kept only if it is at most `max` bytes.
    pub fn capped(self, max: usize) -> Metadata {
        let keep = |b: Option<Vec<u8>>| b.filter(|b| b.len() <= max);
        Metadata {
            exif: keep(self.exif),
            xmp: keep(self.xmp),
            iim: keep(self.iim),
        }
    }
}

/// The blocks one output carries, ready for its container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Embedded {
    pub exif: Option<Vec<u8>>,
    pub xmp: Option<Vec<u8>>,
    pub iim: Option<Vec<u8>>,
    /// The fields written, for containers with tags of their own (TIFF).
    pub fields: Fields,
}

impl Fields {
    /// The fields of a source's XMP, then its IPTC-IIM, then its EXIF: XMP
    /// is where DAMs and Lightroom keep the current values (IPTC's own
    /// guidance), IIM and EXIF fill what it lacks.
    pub fn read(source: &Metadata) -> Fields {
        let from_xmp = source.xmp.as_deref().map(xmp::read).unwrap_or_default();
        let from_iim = source.iim.as_deref().map(iim::read).unwrap_or_default();
        let from_exif = source.exif.as_deref().map(exif_block::read).unwrap_or_default();
        from_xmp.or(from_iim).or(from_exif)
    }
}

/// The source's metadata held to `spec`'s profile.
pub fn embed(source: &Metadata, spec: &MetadataSpec) -> Embedded {
    if spec.profile == Profile::None {
        return Embedded::default();
    }
    let mut fields = Fields::read(source);
    if spec.profile == Profile::Rights {
        fields = fields.rights_only();
    }
    if let Some(terms) = &spec.usage_terms {
        fields.usage_terms = Some(terms.clone());
    }
    // `all`: the source's blocks as they are, upright (ours only where the
    // source has none); usage terms written for this recipient replace the
    // source's packet with ours.
    let all = spec.profile == Profile::All;
    let exif = match source.exif.as_deref() {
        Some(block) if all => Some(exif_block::upright(block)),
        block => exif_block::write(block, &fields, spec.profile),
    };
    let xmp = match (&source.xmp, &spec.usage_terms) {
        (Some(packet), None) if all => Some(xmp::upright(packet)),
        _ => xmp::write(&fields),
    };
    let iim = match &source.iim {
        Some(datasets) if all => Some(datasets.clone()),
        _ => iim::write(&fields),
    };
    Embedded { exif, xmp, iim, fields }
}

#[cfg(test)]
mod tests;
