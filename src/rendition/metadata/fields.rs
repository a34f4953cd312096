//! The fields the `rights` and `public` profiles write (gathered by
//! [`super::Fields::read`]), a leaf the readers and writers of each
//! standard share.

/// The rights and description fields (IPTC Photo Metadata names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// Creator (XMP dc:creator, IIM By-line, EXIF Artist).
    pub creators: Vec<String>,
    /// Copyright notice (dc:rights, IIM 2:116, EXIF Copyright).
    pub copyright: Option<String>,
    /// Credit line (photoshop:Credit, IIM 2:110).
    pub credit: Option<String>,
    /// Rights usage terms (xmpRights:UsageTerms).
    pub usage_terms: Option<String>,
    /// Copyright info URL (xmpRights:WebStatement).
    pub web_statement: Option<String>,
    /// Licensor names (PLUS plus:Licensor/plus:LicensorName).
    pub licensors: Vec<String>,
    /// Title (dc:title, IIM 2:05 Object Name): `public` only, as below.
    pub title: Option<String>,
    /// Description (dc:description, IIM 2:120, EXIF ImageDescription).
    pub description: Option<String>,
    /// Keywords (dc:subject, IIM 2:25).
    pub keywords: Vec<String>,
    /// Date created (photoshop:DateCreated, IIM 2:55).
    pub date_created: Option<String>,
}

impl Fields {
    /// Each field this one lacks, taken from `other`.
    pub(super) fn or(self, other: Fields) -> Fields {
        let list = |a: Vec<String>, b: Vec<String>| if a.is_empty() { b } else { a };
        Fields {
            creators: list(self.creators, other.creators),
            copyright: self.copyright.or(other.copyright),
            credit: self.credit.or(other.credit),
            usage_terms: self.usage_terms.or(other.usage_terms),
            web_statement: self.web_statement.or(other.web_statement),
            licensors: list(self.licensors, other.licensors),
            title: self.title.or(other.title),
            description: self.description.or(other.description),
            keywords: list(self.keywords, other.keywords),
            date_created: self.date_created.or(other.date_created),
        }
    }

    /// The rights fields only: the description is the `public` profile's.
    pub fn rights_only(self) -> Fields {
        Fields {
            title: None,
            description: None,
            keywords: Vec::new(),
            date_created: None,
            ..self
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Fields::default()
    }

    /// The creators as one line (EXIF Artist, TIFF Artist).
    pub fn artist(&self) -> Option<String> {
        (!self.creators.is_empty()).then(|| self.creators.join("; "))
    }
}

/// A text value worth keeping: trimmed, not empty, at most 8 KiB, no
/// control characters (a field is a line or a paragraph, not a payload).
pub(super) fn clean(text: &str) -> Option<String> {
    let text: String = text
        .trim()
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(8192)
        .collect();
    (!text.is_empty()).then_some(text)
}
