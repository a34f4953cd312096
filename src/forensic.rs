//! Forensic keys, delivery ids and tracing (docs/forensic.md): the worker's
//! half of the mark. The engine draws a pattern from a seed and a payload
//! ([`crate::rendition::forensic`]); this module makes both from a secret
//! key the engine never sees, and checks a payload read back from a
//! suspect image under each configured key.
//!
//! A payload is a 40-bit delivery id and a 24-bit tag, both HMAC-SHA256 of
//! the key: the id of (principal, asset), so one recipient's renditions of
//! one asset share a cache entry and an id; the tag of the id, so noise or
//! a forger without the key names no one (one chance in 16.7 million per
//! payload the decoder settles on, and the id must still be in the trail).

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use image::DynamicImage;
use image::imageops::FilterType;
use sha2::Sha256;

use crate::job::Principal;
use crate::rendition::forensic::{ForensicSpec, delivery_id, read};

/// The shortest forensic key accepted: 256 bits, as HMAC-SHA256 wants.
pub const MIN_KEY_BYTES: usize = 32;

/// One secret key. `Debug` never prints it.
#[derive(Clone)]
pub struct ForensicKey {
    secret: Arc<[u8]>,
}

impl std::fmt::Debug for ForensicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForensicKey(<redacted>)")
    }
}

impl ForensicKey {
    pub fn new(secret: &[u8]) -> ForensicKey {
        ForensicKey { secret: secret.into() }
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        for part in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The seed the engine draws this key's tile from.
    pub fn seed(&self) -> [u8; 32] {
        self.mac(&[b"rendition/forensic/seed/v1"])
    }

    /// The 40-bit delivery id of `principal`'s renditions of `asset`.
    pub fn delivery_id(&self, principal: &Principal, asset: &str) -> u64 {
        let who = match principal {
            Principal::User(id) => format!("user:{id}"),
            Principal::Share { share, email } => format!("share:{share}:{}", email.to_lowercase()),
            Principal::Password { collection } => format!("password:{collection}"),
            Principal::Anonymous => "anonymous".into(),
        };
        let mac = self.mac(&[b"rendition/forensic/id/v1", who.as_bytes(), asset.as_bytes()]);
        u64::from_be_bytes([0, 0, 0, mac[0], mac[1], mac[2], mac[3], mac[4]])
    }

    fn tag(&self, id: u64) -> u64 {
        let mac = self.mac(&[b"rendition/forensic/tag/v1", &id.to_be_bytes()]);
        u64::from_be_bytes([0, 0, 0, 0, 0, mac[0], mac[1], mac[2]])
    }

    /// What the engine marks `principal`'s rendition of `asset` with.
    pub fn mark(&self, principal: &Principal, asset: &str) -> ForensicSpec {
        let id = self.delivery_id(principal, asset);
        ForensicSpec {
            payload: (id << 24) | self.tag(id),
            seed: self.seed(),
        }
    }

    /// The delivery id of `payload` when its tag is this key's.
    pub fn verify(&self, payload: u64) -> Option<u64> {
        let id = payload >> 24;
        (self.tag(id) == payload & 0xff_ffff).then_some(id)
    }
}

/// The configured keys: the first marks, every one is tried when tracing
/// (so a key can be rotated out over the life of what it marked).
#[derive(Debug, Clone, Default)]
pub struct ForensicKeys(pub Vec<ForensicKey>);

impl ForensicKeys {
    pub fn marking(&self) -> Option<&ForensicKey> {
        self.0.first()
    }
}

/// A mark found and verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Traced {
    /// The delivery id, as audit records name it.
    pub delivery_id: String,
    /// Which configured key it verified under (0: the marking key).
    pub key: usize,
    /// The size the suspect was scaled back to, when it was.
    pub rescaled_to: Option<(u32, u32)>,
    /// How clearly the tiles were found, in standard deviations.
    pub pilot_z: f32,
}

/// The first verified mark in `image`: read as it is, then scaled back to
/// each of `delivered` sizes of its shape (the sizes the audit trail says
/// were handed out: scaling is undone, not searched for). `None`: no mark
/// any key verifies.
pub fn trace(image: &DynamicImage, keys: &ForensicKeys, delivered: &[(u32, u32)]) -> Option<Traced> {
    let seeds: Vec<[u8; 32]> = keys.0.iter().map(ForensicKey::seed).collect();
    let luma = image.to_luma8();
    let (w, h) = luma.dimensions();
    let mut sizes: Vec<Option<(u32, u32)>> = vec![None];
    sizes.extend(rescalings(w, h, delivered).into_iter().map(Some));
    for size in sizes {
        let plane = match size {
            None => std::borrow::Cow::Borrowed(&luma),
            Some((tw, th)) => std::borrow::Cow::Owned(image::imageops::resize(&luma, tw, th, FilterType::Lanczos3)),
        };
        let (pw, ph) = plane.dimensions();
        for (index, (key, seed)) in keys.0.iter().zip(&seeds).enumerate() {
            for reading in read::read(plane.as_raw(), pw as usize, ph as usize, seed) {
                if let Some(id) = key.verify(reading.payload) {
                    return Some(Traced {
                        delivery_id: delivery_id(id << 24),
                        key: index,
                        rescaled_to: size,
                        pilot_z: reading.pilot_z,
                    });
                }
            }
        }
    }
    None
}

/// The delivered sizes of the suspect's shape (within 1 %), other than its
/// own, largest first, at most 16.
fn rescalings(w: u32, h: u32, delivered: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let shape = f64::from(w) / f64::from(h.max(1));
    let mut out: Vec<(u32, u32)> = delivered
        .iter()
        .copied()
        .filter(|&(dw, dh)| dw > 0 && dh > 0 && (dw, dh) != (w, h))
        .filter(|&(dw, dh)| ((f64::from(dw) / f64::from(dh)) / shape - 1.0).abs() < 0.01)
        .collect();
    out.sort_by(|a, b| b.cmp(a));
    out.dedup();
    out.truncate(16);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> ForensicKey {
        ForensicKey::new(&[byte; 32])
    }

    #[test]
    fn ids_are_per_recipient_and_asset_and_tags_need_the_key() {
        let ben = Principal::User("u-ben".into());
        let ann = Principal::User("u-ann".into());
        let (a, b) = (key(1), key(2));
        assert_ne!(a.delivery_id(&ben, "x"), a.delivery_id(&ann, "x"));
        assert_ne!(a.delivery_id(&ben, "x"), a.delivery_id(&ben, "y"));
        assert_ne!(a.delivery_id(&ben, "x"), b.delivery_id(&ben, "x"));
        assert!(a.delivery_id(&ben, "x") < 1 << 40);
        let mark = a.mark(&ben, "x");
        assert_eq!(a.verify(mark.payload), Some(a.delivery_id(&ben, "x")));
        assert_eq!(b.verify(mark.payload), None);
        assert_eq!(a.verify(mark.payload ^ 1), None);
        assert_ne!(a.seed(), b.seed());
    }

    #[test]
    fn the_key_never_prints() {
        assert!(!format!("{:?}", ForensicKeys(vec![key(b'k')])).contains("kkkk"));
        assert!(!format!("{:?}", key(1).mark(&Principal::Anonymous, "a")).contains("0101"));
    }

    #[test]
    fn only_sizes_of_the_suspects_shape_are_tried() {
        let sizes = rescalings(
            1000,
            500,
            &[(2000, 1000), (1000, 500), (1000, 1000), (2002, 1000), (2000, 1000)],
        );
        assert_eq!(sizes, vec![(2002, 1000), (2000, 1000)]);
    }
}
