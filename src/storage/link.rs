//! Signed links for the filesystem store: `BASE/KEY?exp=UNIX&sig=HEX`, the
//! signature an HMAC-SHA256 of the key and the expiry.

use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Why a link was refused (both answer 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link has expired")]
    Expired,
    #[error("the link's signature does not match")]
    BadSignature,
}

#[derive(Clone)]
pub struct LinkSigner {
    secret: Vec<u8>,
    base_url: String,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("secret", &"<redacted>")
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl LinkSigner {
    pub fn new(secret: impl Into<Vec<u8>>, base_url: &str) -> LinkSigner {
        LinkSigner {
            secret: secret.into(),
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }

    fn mac(&self, key: &str, exp: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(exp.to_string().as_bytes());
        mac
    }

    pub fn sign(&self, key: &str, expires_at: DateTime<Utc>) -> String {
        let exp = expires_at.timestamp();
        let sig = hex::encode(self.mac(key, exp).finalize().into_bytes());
        format!("{}/{key}?exp={exp}&sig={sig}", self.base_url)
    }

    /// Checks a link's parts in constant time; expiry is judged at `now`.
    pub fn verify(&self, key: &str, exp: i64, sig: &str, now: DateTime<Utc>) -> Result<(), LinkError> {
        let sig = hex::decode(sig).map_err(|_| LinkError::BadSignature)?;
        self.mac(key, exp)
            .verify_slice(&sig)
            .map_err(|_| LinkError::BadSignature)?;
        match Utc.timestamp_opt(exp, 0).single() {
            Some(at) if at > now => Ok(()),
            _ => Err(LinkError::Expired),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (String, i64, String) {
        let (path, query) = url.split_once('?').unwrap();
        let key = path.trim_start_matches("http://h").trim_start_matches('/').to_string();
        let mut exp = 0;
        let mut sig = String::new();
        for kv in query.split('&') {
            match kv.split_once('=').unwrap() {
                ("exp", v) => exp = v.parse().unwrap(),
                ("sig", v) => sig = v.to_string(),
                _ => {}
            }
        }
        (key, exp, sig)
    }

    #[test]
    fn links_verify_until_they_expire_and_not_when_changed() {
        let signer = LinkSigner::new("s3cret", "http://h/");
        let now = Utc::now();
        let url = signer.sign("renditions/a/x.jpg", now + chrono::Duration::seconds(60));
        let (key, exp, sig) = parts(&url);
        assert_eq!(signer.verify(&key, exp, &sig, now), Ok(()));
        assert_eq!(
            signer.verify(&key, exp, &sig, now + chrono::Duration::seconds(61)),
            Err(LinkError::Expired)
        );
        assert_eq!(
            signer.verify("renditions/a/y.jpg", exp, &sig, now),
            Err(LinkError::BadSignature)
        );
        assert_eq!(signer.verify(&key, exp + 3600, &sig, now), Err(LinkError::BadSignature));
        assert_eq!(signer.verify(&key, exp, "zz", now), Err(LinkError::BadSignature));
        let other = LinkSigner::new("other", "http://h");
        assert_eq!(other.verify(&key, exp, &sig, now), Err(LinkError::BadSignature));
    }
}
