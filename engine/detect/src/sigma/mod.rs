//! The Sigma rule language: documents, detections, modifiers and conditions.
//!
//! This module turns YAML text into a typed model and checks everything that
//! can be checked without a mapping. It knows nothing of events or matching;
//! [`crate::compile`] turns the model into predicates.

mod condition;
mod modifier;
mod parse;

pub use condition::{Condition, OfQuantifier, parse_condition};
pub use modifier::Modifier;
pub use parse::{ParsedDocument, parse_documents};

/// One value of a detection item, as written in the rule.
#[derive(Debug, Clone, PartialEq)]
pub enum SigmaValue {
    /// A string (wildcards and escapes not yet interpreted).
    Str(String),
    /// A number, kept as written.
    Num(String),
    /// A boolean.
    Bool(bool),
    /// `null`.
    Null,
}

impl SigmaValue {
    /// The value as the string an event value is compared with.
    pub fn as_text(&self) -> Option<String> {
        match self {
            SigmaValue::Str(s) | SigmaValue::Num(s) => Some(s.clone()),
            SigmaValue::Bool(b) => Some(b.to_string()),
            SigmaValue::Null => None,
        }
    }
}

/// A field (or keyword) test: `Field|mod1|mod2: values`.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionItem {
    /// The Sigma field name; `None` for keywords.
    pub field: Option<String>,
    pub modifiers: Vec<Modifier>,
    pub values: Vec<SigmaValue>,
}

/// The body of one search identifier.
#[derive(Debug, Clone, PartialEq)]
pub enum Search {
    /// OR over groups; each group is an AND of items (a map, or a list of maps).
    Groups(Vec<Vec<DetectionItem>>),
    /// A keyword list: one item without a field, OR over its values (or AND with `|all`).
    Keywords(DetectionItem),
}

/// The `detection` section of a rule or filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Search identifiers in the order written.
    pub searches: Vec<(String, Search)>,
    /// The condition(s); several are ORed.
    pub conditions: Vec<Condition>,
}

impl Detection {
    /// The identifiers selected by `1 of`/`all of`: `them` (None) is every
    /// identifier not starting with `_`; a pattern skips `_` identifiers
    /// unless it starts with `_` itself.
    pub fn select(&self, pattern: Option<&str>) -> Vec<&str> {
        self.searches
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| match pattern {
                None => !n.starts_with('_'),
                Some(p) => {
                    (p.starts_with('_') || !n.starts_with('_')) && crate::glob::ident_matches(p, n)
                }
            })
            .collect()
    }

    /// Looks up a search identifier by name.
    pub fn search(&self, name: &str) -> Option<&Search> {
        self.searches
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }
}

/// The rule's `logsource`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct LogSource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl std::fmt::Display for LogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (k, v) in [
            ("product", &self.product),
            ("category", &self.category),
            ("service", &self.service),
        ] {
            if let Some(v) = v {
                if !first {
                    f.write_str("/")?;
                }
                write!(f, "{k}={v}")?;
                first = false;
            }
        }
        if first {
            f.write_str("(any)")?;
        }
        Ok(())
    }
}

/// Rule metadata kept for alerts and reports.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RuleMeta {
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub falsepositives: Vec<String>,
    pub fields: Vec<String>,
    pub logsource: LogSource,
}

/// A detection rule.
#[derive(Debug, Clone, PartialEq)]
pub struct SigmaRule {
    pub meta: RuleMeta,
    pub detection: Detection,
}

/// A Sigma filter (`filter:` document): applied as AND NOT to the rules it names.
#[derive(Debug, Clone, PartialEq)]
pub struct SigmaFilter {
    pub meta: RuleMeta,
    /// Ids or names of the rules the filter applies to.
    pub rules: Vec<String>,
    pub detection: Detection,
}
