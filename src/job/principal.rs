//! Who asks (docs/contract.md#job, `principal`): exactly one of four forms.

use serde::{Deserialize, Serialize};

/// The principal of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPrincipal", into = "RawPrincipal")]
pub enum Principal {
    /// A known user: staff or member.
    User(String),
    /// A share recipient, identified by the share and the e-mail it went to.
    Share { share: String, email: String },
    /// Someone the upstream app checked the collection password for.
    Password { collection: String },
    /// An anonymous portal visitor.
    Anonymous,
}

impl Principal {
    /// The name a watermark's `{recipient}` is filled with.
    pub fn recipient(&self) -> &str {
        match self {
            Principal::User(id) => id,
            Principal::Share { email, .. } => email,
            Principal::Password { .. } => "password holder",
            Principal::Anonymous => "portal visitor",
        }
    }
}

/// The wire form: every field optional, then checked for exactly one shape.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrincipal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    share: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    collection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    anonymous: Option<bool>,
}

const SHAPES: &str = r#"expected exactly one of {"user": ID}, {"share": ID, "email": E}, {"password": true, "collection": ID}, {"anonymous": true}"#;

impl TryFrom<RawPrincipal> for Principal {
    type Error = String;

    fn try_from(raw: RawPrincipal) -> Result<Self, String> {
        let non_empty = |s: String| (!s.trim().is_empty()).then_some(s);
        match raw {
            RawPrincipal {
                user: Some(u),
                share: None,
                email: None,
                password: None,
                collection: None,
                anonymous: None,
            } => non_empty(u)
                .map(Principal::User)
                .ok_or_else(|| "principal.user is empty".into()),
            RawPrincipal {
                user: None,
                share: Some(s),
                email: Some(e),
                password: None,
                collection: None,
                anonymous: None,
            } => match (non_empty(s), non_empty(e)) {
                (Some(share), Some(email)) => Ok(Principal::Share { share, email }),
                _ => Err("principal.share and principal.email must not be empty".into()),
            },
            RawPrincipal {
                user: None,
                share: None,
                email: None,
                password: Some(true),
                collection: Some(c),
                anonymous: None,
            } => non_empty(c)
                .map(|collection| Principal::Password { collection })
                .ok_or_else(|| "principal.collection is empty".into()),
            RawPrincipal {
                user: None,
                share: None,
                email: None,
                password: None,
                collection: None,
                anonymous: Some(true),
            } => Ok(Principal::Anonymous),
            _ => Err(SHAPES.into()),
        }
    }
}

impl From<Principal> for RawPrincipal {
    fn from(p: Principal) -> Self {
        match p {
            Principal::User(u) => RawPrincipal {
                user: Some(u),
                ..Default::default()
            },
            Principal::Share { share, email } => RawPrincipal {
                share: Some(share),
                email: Some(email),
                ..Default::default()
            },
            Principal::Password { collection } => RawPrincipal {
                password: Some(true),
                collection: Some(collection),
                ..Default::default()
            },
            Principal::Anonymous => RawPrincipal {
                anonymous: Some(true),
                ..Default::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Principal, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn each_shape_parses() {
        assert_eq!(parse(r#"{"user":"u-ben"}"#).unwrap(), Principal::User("u-ben".into()));
        assert_eq!(
            parse(r#"{"share":"s-7","email":"b@x.com"}"#).unwrap(),
            Principal::Share {
                share: "s-7".into(),
                email: "b@x.com".into()
            }
        );
        assert_eq!(
            parse(r#"{"password":true,"collection":"c-1"}"#).unwrap(),
            Principal::Password {
                collection: "c-1".into()
            }
        );
        assert_eq!(parse(r#"{"anonymous":true}"#).unwrap(), Principal::Anonymous);
    }

    #[test]
    fn mixed_or_partial_shapes_are_refused() {
        for bad in [
            r#"{"user":"u-ben","anonymous":true}"#,
            r#"{"share":"s-7"}"#,
            r#"{"password":false,"collection":"c-1"}"#,
            r#"{"anonymous":false}"#,
            r#"{"user":""}"#,
            r#"{"user":"u","role":"admin"}"#,
            r#"{}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn round_trips() {
        for p in [
            Principal::User("u".into()),
            Principal::Share {
                share: "s".into(),
                email: "e@x".into(),
            },
            Principal::Password { collection: "c".into() },
            Principal::Anonymous,
        ] {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(parse(&json).unwrap(), p);
        }
    }
}
