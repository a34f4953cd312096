//! The permission resolver and the policy it reads.
//!
//! - [`document`]: the policy document's serde types (docs/contract.md#policy-document).
//! - [`Policy`]: a validated document with its collection tree.
//! - [`resolve`]: the pure decision function (the nine steps of docs/rules.md).
//! - [`diff`]: what a policy change does, and what one principal gets,
//!   asked of the resolver.

mod admit;
mod current;
mod decision;
mod deliver;
pub mod diff;
pub mod document;
#[cfg(feature = "fuzzing")]
pub mod invariants;
mod limit;
pub mod marks;
pub mod preset;
mod query;
mod resolve;
mod tree;
mod validate;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::error::{Coded, ErrorCode};

pub use current::{CurrentPolicy, Standing, Update};
pub use decision::{Decision, Delivery, Rule, Target};
pub use document::PolicyDocument;
pub use limit::{Cap, DownloadLimits, Limit};
pub use query::Query;
pub use resolve::resolve;
pub use tree::{Effective, NodeIdx, Tree};
pub use validate::Problem;

use document::{NodeKind, Role, Share, User};

/// How a policy document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocFormat {
    Json,
    Yaml,
}

impl DocFormat {
    /// By file extension: `.json`, or `.yaml`/`.yml`.
    pub fn from_path(path: &Path) -> Option<DocFormat> {
        match path.extension()?.to_str()? {
            "json" => Some(DocFormat::Json),
            "yaml" | "yml" => Some(DocFormat::Yaml),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {message}")]
    Unreadable { path: String, message: String },
    #[error("invalid policy: {place}: {message}")]
    Malformed { place: String, message: String },
    #[error("invalid policy: {}", list(.0))]
    Invalid(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| format!("\n  {p}")).collect();
    format!("{} problem(s):{}", problems.len(), lines.concat())
}

impl Coded for PolicyError {
    fn code(&self) -> ErrorCode {
        match self {
            PolicyError::Unreadable { .. } => ErrorCode::PolicyUnreadable,
            PolicyError::Malformed { .. } | PolicyError::Invalid(_) => ErrorCode::InvalidPolicy,
        }
    }
}

/// A validated policy document, ready for [`resolve`].
#[derive(Debug, Clone)]
pub struct Policy {
    doc: PolicyDocument,
    tree: Tree,
    index: HashMap<String, NodeIdx>,
    groups: BTreeSet<String>,
    warnings: Vec<Problem>,
}

impl Policy {
    /// Reads a JSON or YAML policy file (chosen by extension).
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let unreadable = |message: String| PolicyError::Unreadable {
            path: path.display().to_string(),
            message,
        };
        let format = DocFormat::from_path(path)
            .ok_or_else(|| unreadable("the file name must end in .json, .yaml or .yml".into()))?;
        let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
        Policy::parse(&text, format)
    }

    pub fn parse(text: &str, format: DocFormat) -> Result<Policy, PolicyError> {
        let malformed = |place: String, message: String| PolicyError::Malformed {
            place: if place == "." { "policy".into() } else { place },
            message,
        };
        let doc: PolicyDocument = match format {
            DocFormat::Json => {
                let de = &mut serde_json::Deserializer::from_str(text);
                serde_path_to_error::deserialize(de)
                    .map_err(|e| malformed(e.path().to_string(), e.into_inner().to_string()))?
            }
            DocFormat::Yaml => serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text))
                .map_err(|e| malformed(e.path().to_string(), e.into_inner().to_string()))?,
        };
        Policy::from_document(doc)
    }

    pub fn from_document(doc: PolicyDocument) -> Result<Policy, PolicyError> {
        let checked = validate::check(&doc).map_err(PolicyError::Invalid)?;
        Ok(Policy {
            doc,
            tree: checked.tree,
            index: checked.index,
            groups: checked.groups,
            warnings: checked.warnings,
        })
    }

    pub fn version(&self) -> u64 {
        self.doc.version
    }
    /// Where this policy stands in the order updates must follow.
    pub fn standing(&self) -> Standing {
        Standing {
            epoch: self.doc.epoch,
            version: self.doc.version,
        }
    }
    pub fn document(&self) -> &PolicyDocument {
        &self.doc
    }
    pub fn tree(&self) -> &Tree {
        &self.tree
    }
    pub fn groups(&self) -> &BTreeSet<String> {
        &self.groups
    }
    /// Settings the document makes that have no effect.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }
    pub fn node_idx(&self, id: &str) -> Option<NodeIdx> {
        self.index.get(id).copied()
    }
    pub fn user(&self, id: &str) -> Option<&User> {
        self.doc.users.get(id)
    }
    pub fn share(&self, id: &str) -> Option<&Share> {
        self.doc.shares.iter().find(|s| s.id == id)
    }
    pub fn proxy(&self) -> &document::ProxySize {
        &self.doc.proxy
    }

    /// A role by name, which validation guarantees exists.
    pub(crate) fn role_entry(&self, name: &str) -> (&str, &Role) {
        let (name, role) = self.doc.roles.get_key_value(name).expect("validated role reference");
        (name.as_str(), role)
    }

    /// "g-launch inherits visibility owner_only from c-brand", or
    /// "c-brand has visibility owner_only".
    pub(crate) fn phrase(&self, node: NodeIdx, source: NodeIdx, setting: &str) -> String {
        let (here, from) = (self.tree.id(node), self.tree.id(source));
        if node == source {
            format!("{here} has {setting}")
        } else {
            format!("{here} inherits {setting} from {from}")
        }
    }

    /// "collection c-brand {what} (inherited by g-launch)": a limit and
    /// the node that set it, seen from the asset's node.
    pub(crate) fn node_says(&self, node: NodeIdx, source: NodeIdx, what: &str) -> String {
        let kind = match self.tree.node(source).kind {
            NodeKind::Collection => "collection",
            NodeKind::Gallery => "gallery",
        };
        let inherited = if node == source {
            String::new()
        } else {
            format!(" (inherited by {})", self.tree.id(node))
        };
        format!("{kind} {} {what}{inherited}", self.tree.id(source))
    }
}
