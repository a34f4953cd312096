//! What marks a role, share or preset asks for (docs/forensic.md#policy):
//! `watermark: false | true | "forensic" | "both"`. `true` is the visible
//! mark, as before; `"forensic"` the invisible per-recipient one.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Marks {
    #[default]
    None,
    Visible,
    Forensic,
    Both,
}

impl Marks {
    pub fn visible(self) -> bool {
        matches!(self, Marks::Visible | Marks::Both)
    }

    pub fn forensic(self) -> bool {
        matches!(self, Marks::Forensic | Marks::Both)
    }

    pub fn is_none(&self) -> bool {
        *self == Marks::None
    }

    /// Whether going from `self` to `to` drops a mark.
    pub fn drops_any(self, to: Marks) -> bool {
        (self.visible() && !to.visible()) || (self.forensic() && !to.forensic())
    }
}

impl std::fmt::Display for Marks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Marks::None => "false",
            Marks::Visible => "true",
            Marks::Forensic => "forensic",
            Marks::Both => "both",
        })
    }
}

impl From<bool> for Marks {
    fn from(visible: bool) -> Marks {
        if visible { Marks::Visible } else { Marks::None }
    }
}

impl Serialize for Marks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Marks::None => s.serialize_bool(false),
            Marks::Visible => s.serialize_bool(true),
            Marks::Forensic => s.serialize_str("forensic"),
            Marks::Both => s.serialize_str("both"),
        }
    }
}

impl<'de> Deserialize<'de> for Marks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Marks, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Flag(visible) => Ok(visible.into()),
            Raw::Name(name) => match name.as_str() {
                "forensic" => Ok(Marks::Forensic),
                "both" => Ok(Marks::Both),
                other => Err(serde::de::Error::custom(format!(
                    "watermark is true, false, \"forensic\" or \"both\", not {other:?}"
                ))),
            },
        }
    }
}

/// The policy-wide forensic settings (docs/forensic.md#policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForensicPolicy {
    /// The library's own e-mail domains: a share to an address outside
    /// them is external.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// Marks every image shared to an external recipient (default: on).
    #[serde(default = "yes")]
    pub external_shares: bool,
}

fn yes() -> bool {
    true
}

impl Default for ForensicPolicy {
    fn default() -> Self {
        ForensicPolicy {
            domains: Vec::new(),
            external_shares: true,
        }
    }
}

impl ForensicPolicy {
    pub fn is_default(&self) -> bool {
        *self == ForensicPolicy::default()
    }

    /// Whether `email` is outside the library's domains (compared without
    /// case; a subdomain of one is inside).
    pub fn is_external(&self, email: &str) -> bool {
        let domain = email.rsplit_once('@').map_or("", |(_, d)| d).to_ascii_lowercase();
        !self.domains.iter().any(|d| {
            let d = d.to_ascii_lowercase();
            domain == d || domain.ends_with(&format!(".{d}"))
        })
    }
}
