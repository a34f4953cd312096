//! IPTC-IIM: the datasets JPEG (in Photoshop's APP13 resources), TIFF and
//! PSD carry, read and written. Record 2 holds the application fields;
//! 1:90 says the text is UTF-8 (without it, Latin-1 is assumed).

use super::fields::{Fields, clean};

const BY_LINE: u8 = 80;
const CREDIT: u8 = 110;
const COPYRIGHT: u8 = 116;
const OBJECT_NAME: u8 = 5;
const CAPTION: u8 = 120;
const KEYWORDS: u8 = 25;
const DATE_CREATED: u8 = 55;
/// 1:90 Coded Character Set: `ESC % G` is UTF-8.
const UTF8: &[u8] = b"\x1b%G";

/// The datasets in order, as (record, dataset, value); stops at the first
/// malformed one (extended lengths are not used by any field read here).
fn datasets(iim: &[u8]) -> impl Iterator<Item = (u8, u8, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let head = iim.get(at..at + 5)?;
        if head[0] != 0x1C || head[3] & 0x80 != 0 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([head[3], head[4]]));
        let value = iim.get(at + 5..at + 5 + len)?;
        at += 5 + len;
        Some((head[1], head[2], value))
    })
}

pub(super) fn read(iim: &[u8]) -> Fields {
    let utf8 = datasets(iim).any(|(r, d, v)| (r, d) == (1, 90) && v == UTF8);
    let text = |v: &[u8]| match std::str::from_utf8(v) {
        Ok(s) if utf8 || s.is_ascii() => clean(s),
        _ => clean(&v.iter().map(|&b| char::from(b)).collect::<String>()),
    };
    let all = |id: u8| -> Vec<String> {
        datasets(iim)
            .filter(|&(r, d, _)| r == 2 && d == id)
            .filter_map(|(_, _, v)| text(v))
            .collect()
    };
    let first = |id: u8| all(id).into_iter().next();
    Fields {
        creators: all(BY_LINE),
        copyright: first(COPYRIGHT),
        credit: first(CREDIT),
        title: first(OBJECT_NAME),
        description: first(CAPTION),
        keywords: all(KEYWORDS),
        date_created: first(DATE_CREATED).filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit())),
        ..Fields::default()
    }
}

/// The datasets for `fields` (UTF-8), or `None` when there is nothing to
/// say. Values are cut to IIM's lengths (By-line 32 bytes, Copyright 128,
/// Caption 2000, …) at a character boundary.
pub(super) fn write(fields: &Fields) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut put = |record: u8, dataset: u8, value: &[u8], max: usize| {
        let mut end = value.len().min(max);
        while std::str::from_utf8(&value[..end]).is_err() {
            end -= 1;
        }
        out.extend_from_slice(&[0x1C, record, dataset]);
        out.extend_from_slice(&(end as u16).to_be_bytes());
        out.extend_from_slice(&value[..end]);
    };
    put(1, 90, UTF8, 3);
    put(2, 0, &[0, 4], 2);
    let before = 15;
    for creator in &fields.creators {
        put(2, BY_LINE, creator.as_bytes(), 32);
    }
    for (id, value, max) in [
        (OBJECT_NAME, &fields.title, 64),
        (CREDIT, &fields.credit, 32),
        (COPYRIGHT, &fields.copyright, 128),
        (CAPTION, &fields.description, 2000),
    ] {
        if let Some(v) = value {
            put(2, id, v.as_bytes(), max);
        }
    }
    for keyword in &fields.keywords {
        put(2, KEYWORDS, keyword.as_bytes(), 64);
    }
    if let Some(date) = fields.date_created.as_deref().and_then(iim_date) {
        put(2, DATE_CREATED, date.as_bytes(), 8);
    }
    (out.len() > before).then_some(out)
}

/// `CCYYMMDD` from an XMP or IIM date (`2026-12-07T…` or `20261207`).
fn iim_date(date: &str) -> Option<String> {
    let digits: String = date.chars().take(10).filter(char::is_ascii_digit).collect();
    (digits.len() == 8).then_some(digits)
}

/// The data of resource `id` among Photoshop image resources (`8BIM`
/// blocks: a JPEG's APP13 after `Photoshop 3.0\0`, a PSD's resource
/// section): 0x0404 is IPTC-IIM, 0x0422 EXIF, 0x0424 XMP.
pub(crate) fn irb_resource(irb: &[u8], id: u16) -> Option<&[u8]> {
    let mut at = 0;
    while let Some(head) = irb.get(at..at + 7) {
        if &head[..4] != b"8BIM" {
            return None;
        }
        let this = u16::from_be_bytes([head[4], head[5]]);
        // A Pascal name padded to an even length, then the size and data.
        let name = usize::from(head[6]);
        let size_at = at + 6 + name + 1 + (name + 1) % 2;
        let size = u32::from_be_bytes(irb.get(size_at..size_at + 4)?.try_into().ok()?) as usize;
        let data = irb.get(size_at + 4..(size_at + 4).checked_add(size)?)?;
        if this == id {
            return Some(data);
        }
        at = size_at + 4 + size + size % 2;
    }
    None
}

/// One `8BIM` resource 0x0404 holding `iim`: a JPEG APP13's body.
pub(super) fn irb(iim: &[u8]) -> Vec<u8> {
    let mut out = b"Photoshop 3.0\0".to_vec();
    out.extend_from_slice(b"8BIM\x04\x04\0\0");
    out.extend_from_slice(&(iim.len() as u32).to_be_bytes());
    out.extend_from_slice(iim);
    if iim.len() % 2 == 1 {
        out.push(0);
    }
    out
}
