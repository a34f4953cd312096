//! EXIF blocks (TIFF structures): the rights fields read, a block written
//! for a profile through kamadak-exif's writer, a source's block set
//! upright for `all`.

use std::io::Cursor;

use exif::experimental::Writer;
use exif::{Field, In, Tag, Value};

use super::Profile;
use super::fields::{Fields, clean};

/// What `public` keeps of a source's EXIF besides the rights and the
/// description (which come from [`Fields`]): how the picture was taken.
/// Not here, so never written: GPS, serial numbers (body, lens), the
/// owner's name, the unique image id, user comments, maker notes, the
/// thumbnail (IFD1) and every tag no one named.
const PUBLIC: [Tag; 20] = [
    Tag::Make,
    Tag::Model,
    Tag::Software,
    Tag::DateTime,
    Tag::ExposureTime,
    Tag::FNumber,
    Tag::ExposureProgram,
    Tag::PhotographicSensitivity,
    Tag::DateTimeOriginal,
    Tag::DateTimeDigitized,
    Tag::ExposureBiasValue,
    Tag::MaxApertureValue,
    Tag::MeteringMode,
    Tag::Flash,
    Tag::FocalLength,
    Tag::FocalLengthIn35mmFilm,
    Tag::WhiteBalance,
    Tag::LensMake,
    Tag::LensModel,
    Tag::LensSpecification,
];

/// The fields `tags` of IFD0 (and the EXIF IFD), each looked up on its
/// own: only their values are read, so a block whose thousands of entries
/// all point at one large value costs what these few cost, not thousands
/// of copies of it.
fn primary(tiff: &[u8], tags: &[Tag]) -> Vec<Field> {
    match exif::Reader::new().read_raw(tiff.to_vec()) {
        Ok(exif) => tags
            .iter()
            .filter_map(|&tag| exif.get_field(tag, In::PRIMARY).cloned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn text(field: &Field) -> Option<String> {
    match &field.value {
        Value::Ascii(parts) => {
            let joined: Vec<String> = parts.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
            clean(joined.join(" ").trim_end_matches('\0'))
        }
        _ => None,
    }
}

pub(super) fn read(tiff: &[u8]) -> Fields {
    let fields = primary(tiff, &[Tag::Artist, Tag::Copyright, Tag::ImageDescription]);
    let find = |tag: Tag| fields.iter().find(|f| f.tag == tag).and_then(text);
    Fields {
        creators: find(Tag::Artist).into_iter().collect(),
        copyright: find(Tag::Copyright),
        description: find(Tag::ImageDescription),
        ..Fields::default()
    }
}

fn ascii(tag: Tag, value: String) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![value.into_bytes()]),
    }
}

/// The block an output carries under `profile` (`None` when empty).
pub(super) fn write(source: Option<&[u8]>, fields: &Fields, profile: Profile) -> Option<Vec<u8>> {
    let mut out: Vec<Field> = Vec::new();
    out.extend(fields.artist().map(|a| ascii(Tag::Artist, a)));
    out.extend(fields.copyright.clone().map(|c| ascii(Tag::Copyright, c)));
    if profile >= Profile::Public {
        out.extend(fields.description.clone().map(|d| ascii(Tag::ImageDescription, d)));
        out.extend(source.map(|tiff| primary(tiff, &PUBLIC)).unwrap_or_default());
    }
    block(&out)
}

/// A TIFF structure holding `fields` in IFD0 (and the EXIF IFD).
fn block(fields: &[Field]) -> Option<Vec<u8>> {
    if fields.is_empty() {
        return None;
    }
    let mut writer = Writer::new();
    for field in fields {
        writer.push_field(field);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, true).ok()?;
    Some(out.into_inner())
}

/// An EXIF block of IFD0 text tags (a TIFF source's Artist, Copyright,
/// ImageDescription, Make, Model), for sources whose EXIF is their own
/// header.
pub fn of_text_tags(tags: Vec<(u16, String)>) -> Option<Vec<u8>> {
    let fields: Vec<Field> = tags
        .into_iter()
        .filter_map(|(number, value)| Some(ascii(Tag(exif::Context::Tiff, number), clean(&value)?)))
        .collect();
    block(&fields)
}

/// A source's block with its Orientation (if any) set to 1: the pixels
/// were turned upright.
pub(super) fn upright(tiff: &[u8]) -> Vec<u8> {
    let mut out = tiff.to_vec();
    if let Some((at, little)) = crate::rendition::jpeg_meta::ifd0_short_at(tiff, 0x0112) {
        let one = if little { [1, 0] } else { [0, 1] };
        out[at..at + 2].copy_from_slice(&one);
    }
    out
}
