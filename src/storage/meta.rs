//! What a stored rendition says about itself, written with it and read back
//! (S3 user metadata or the filesystem sidecar: string pairs on the wire,
//! this one typed struct everywhere else).

use std::collections::BTreeMap;

use super::{ObjectInfo, PutOptions};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenditionMeta {
    pub bytes: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub watermarked: bool,
}

impl RenditionMeta {
    /// The metadata of an object, from what `head` (or `read`) saw; fields
    /// the object was not stored with fall back to what the store knows.
    pub fn of(info: &ObjectInfo) -> RenditionMeta {
        let meta = &info.meta;
        let number = |k: &str| meta.get(k).and_then(|v| v.parse().ok());
        RenditionMeta {
            bytes: number("bytes").unwrap_or(info.size),
            sha256: meta.get("sha256").cloned().unwrap_or_default(),
            width: number("width").map(|n: u64| n as u32),
            height: number("height").map(|n: u64| n as u32),
            watermarked: meta.get("watermarked").is_some_and(|v| v == "true"),
        }
    }

    fn to_pairs(&self) -> BTreeMap<String, String> {
        let mut pairs = BTreeMap::new();
        pairs.insert("sha256".into(), self.sha256.clone());
        pairs.insert("bytes".into(), self.bytes.to_string());
        pairs.insert("watermarked".into(), self.watermarked.to_string());
        if let (Some(w), Some(h)) = (self.width, self.height) {
            pairs.insert("width".into(), w.to_string());
            pairs.insert("height".into(), h.to_string());
        }
        pairs
    }

    /// How to store an object carrying this metadata.
    pub fn put_options(&self, content_type: &str, filename: &str) -> PutOptions {
        PutOptions {
            content_type: content_type.to_string(),
            filename: Some(filename.to_string()),
            meta: self.to_pairs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_survives_the_round_trip() {
        let meta = RenditionMeta {
            bytes: 1234,
            sha256: "ab".repeat(32),
            width: Some(2048),
            height: Some(1364),
            watermarked: true,
        };
        let options = meta.put_options("image/jpeg", "hero.jpg");
        let info = ObjectInfo {
            size: 1234,
            identity: "e".into(),
            meta: options.meta,
        };
        assert_eq!(RenditionMeta::of(&info), meta);
        let bare = ObjectInfo {
            size: 9,
            identity: String::new(),
            meta: BTreeMap::new(),
        };
        assert_eq!(
            RenditionMeta::of(&bare).bytes,
            9,
            "the store's size when none was written"
        );
        assert_eq!(RenditionMeta::of(&bare).width, None);
    }
}
