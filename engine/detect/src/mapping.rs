//! Field mappings: which events a Sigma logsource means, and where a Sigma
//! field lives in an event.
//!
//! Mappings are YAML data files (see `rules/README.md`); the shipped ones
//! (`windows`, `ecs`) are compiled into the binary and can be copied and
//! extended.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::derive::{Derivation, RawDerivation};
use crate::error::{Error, Result};
use crate::sigma::LogSource;

const BUILTIN: &[(&str, &str)] = &[
    (
        "windows",
        include_str!("../../../rules/mappings/windows.yml"),
    ),
    ("ecs", include_str!("../../../rules/mappings/ecs.yml")),
];

/// One or several event paths.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// The accepted values of a condition (`value` or `[values]`), lowercased;
/// empty when any value is accepted (`'*'`). Route conditions and derived
/// values' `require`/`unless` read them alike.
pub(crate) fn condition_values(
    v: serde_yaml_ng::Value,
) -> std::result::Result<Vec<String>, String> {
    let scalars: Scalars = serde_yaml_ng::from_value(v).map_err(|e| e.to_string())?;
    let values: Vec<String> = match scalars {
        Scalars::One(s) => vec![s.text()],
        Scalars::Many(v) => v.into_iter().map(Scalar::text).collect(),
    };
    Ok(if values.iter().any(|v| v == "*") {
        Vec::new()
    } else {
        values.iter().map(|v| crate::glob::lowercase(v)).collect()
    })
}

/// A scalar in a route condition (numbers are compared as text).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Scalar {
    fn text(self) -> String {
        match self {
            Scalar::Str(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Scalars {
    One(Scalar),
    Many(Vec<Scalar>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    fields: HashMap<String, OneOrMany>,
    #[serde(default)]
    default_paths: Vec<String>,
    #[serde(default)]
    logsources: Vec<RawEntry>,
    #[serde(default)]
    indicators: RawIndicatorFields,
    /// Other layouts of the same events: path prefix -> replacements.
    #[serde(default)]
    aliases: serde_yaml_ng::Mapping,
    /// Values built from others (`derived:NAME` in a field's paths).
    #[serde(default)]
    derived: serde_yaml_ng::Mapping,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    logsource: RawLogSource,
    #[serde(default)]
    conditions: serde_yaml_ng::Mapping,
    #[serde(default)]
    fields: HashMap<String, OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogSource {
    category: Option<String>,
    product: Option<String>,
    service: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndicatorFields {
    #[serde(default)]
    ip: Vec<String>,
    #[serde(default)]
    domain: Vec<String>,
    #[serde(default)]
    url: Vec<String>,
    #[serde(default)]
    hash: Vec<String>,
}

/// A condition of a logsource entry: a value at one of `paths` (the path
/// written in the mapping, then its aliases) is one of `values`
/// (case-insensitive), or present at all when `values` is empty.
#[derive(Debug, Clone)]
pub struct RouteCondition {
    pub paths: Vec<String>,
    /// Lowercased accepted values; empty means "any value present".
    pub values: Vec<String>,
}

/// One logsource entry of a mapping.
#[derive(Debug, Clone)]
pub struct LogsourceEntry {
    pub name: String,
    pub logsource: LogSource,
    pub conditions: Vec<RouteCondition>,
    fields: HashMap<String, Vec<String>>,
}

/// Event paths checked for each indicator type.
#[derive(Debug, Clone, Default)]
pub struct IndicatorFields {
    pub ip: Vec<String>,
    pub domain: Vec<String>,
    pub url: Vec<String>,
    pub hash: Vec<String>,
}

/// A parsed mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub name: String,
    pub description: Option<String>,
    fields: HashMap<String, Vec<String>>,
    default_paths: Vec<String>,
    pub logsources: Vec<LogsourceEntry>,
    pub indicators: IndicatorFields,
    /// Derived values; a field path `derived:NAME` reads the one named NAME.
    pub derivations: Vec<Derivation>,
}

/// How a field's path list names a derived value.
pub const DERIVED_PREFIX: &str = "derived:";

impl Mapping {
    /// A shipped mapping by name (`windows`, `ecs`).
    pub fn builtin(name: &str) -> Option<Result<Mapping>> {
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Mapping::parse(text, Path::new(&format!("<builtin:{n}>"))))
    }

    /// Names of the shipped mappings.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(n, _)| *n)
    }

    /// A shipped mapping name, or a path to a mapping file.
    pub fn resolve(name_or_path: &str) -> Result<Mapping> {
        if let Some(m) = Mapping::builtin(name_or_path) {
            return m;
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            return Err(Error::Invalid(format!(
                "unknown mapping '{name_or_path}': not a shipped mapping ({}) and no such file",
                Mapping::builtin_names().collect::<Vec<_>>().join(", ")
            )));
        }
        Mapping::load(path)
    }

    /// Loads a mapping file.
    pub fn load(path: &Path) -> Result<Mapping> {
        let text = crate::text::read_text(path)?;
        Mapping::parse(&text, path)
    }

    /// Parses mapping YAML; `path` names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Mapping> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let raw: RawMapping = serde_yaml_ng::from_str(text).map_err(|e| Error::yaml(path, &e))?;
        let bad = |message: String| Error::Mapping {
            path: path.to_path_buf(),
            message,
        };
        for t in &raw.default_paths {
            if !t.contains("{field}") {
                return Err(bad(format!(
                    "default path '{t}' lacks the {{field}} placeholder"
                )));
            }
        }
        let aliases = Aliases::parse(raw.aliases).map_err(bad)?;
        let mut derivations = Vec::new();
        for (k, v) in raw.derived {
            let Some(name) = k.as_str() else {
                return Err(bad(format!("derived: key {k:?} is not a name")));
            };
            let rd: RawDerivation =
                serde_yaml_ng::from_value(v).map_err(|e| bad(format!("derived '{name}': {e}")))?;
            let expand = |p: &str| aliases.expand(&[p.to_string()]);
            let d = Derivation::compile(name, rd, &expand)
                .map_err(|e| bad(format!("derived '{name}': {e}")))?;
            derivations.push(d);
        }
        let check = |what: &str, paths: &[String]| -> Result<()> {
            for p in paths {
                if let Some(name) = p.strip_prefix(DERIVED_PREFIX)
                    && !derivations.iter().any(|d| d.name == name)
                {
                    return Err(bad(format!(
                        "{what}: '{p}' names no value of the 'derived' section"
                    )));
                }
            }
            Ok(())
        };
        let mut logsources = Vec::new();
        for e in raw.logsources {
            let mut conditions = Vec::new();
            for (k, v) in e.conditions {
                let Some(path_s) = k.as_str() else {
                    return Err(bad(format!(
                        "logsource '{}': condition key {k:?} is not a path",
                        e.name
                    )));
                };
                let values = condition_values(v).map_err(|err| {
                    bad(format!(
                        "logsource '{}': condition '{path_s}': {err}",
                        e.name
                    ))
                })?;
                conditions.push(RouteCondition {
                    paths: aliases.expand(&[path_s.to_string()]),
                    values,
                });
            }
            for c in &conditions {
                if c.paths.iter().any(|p| p.starts_with(DERIVED_PREFIX)) {
                    return Err(bad(format!(
                        "logsource '{}': a condition cannot read a derived value ({})",
                        e.name, c.paths[0]
                    )));
                }
            }
            for (f, paths) in &e.fields {
                check(
                    &format!("logsource '{}': field '{f}'", e.name),
                    &paths.clone().into_vec(),
                )?;
            }
            logsources.push(LogsourceEntry {
                name: e.name,
                logsource: LogSource {
                    category: e.logsource.category,
                    product: e.logsource.product,
                    service: e.logsource.service,
                },
                conditions,
                fields: e
                    .fields
                    .into_iter()
                    .map(|(k, v)| (k, aliases.expand(&v.into_vec())))
                    .collect(),
            });
        }
        for (f, paths) in &raw.fields {
            check(&format!("field '{f}'"), &paths.clone().into_vec())?;
        }
        let ind = &raw.indicators;
        for p in ind
            .ip
            .iter()
            .chain(&ind.domain)
            .chain(&ind.url)
            .chain(&ind.hash)
        {
            if p.starts_with(DERIVED_PREFIX) {
                return Err(bad(format!(
                    "indicators: '{p}': indicators are looked up at event paths, not derived values"
                )));
            }
        }
        for p in &raw.default_paths {
            if p.starts_with(DERIVED_PREFIX) {
                return Err(bad(format!(
                    "default path '{p}': a derived value cannot be a default path"
                )));
            }
        }
        Ok(Mapping {
            name: raw.name,
            description: raw.description,
            fields: raw
                .fields
                .into_iter()
                .map(|(k, v)| (k, aliases.expand(&v.into_vec())))
                .collect(),
            default_paths: aliases.expand(&raw.default_paths),
            logsources,
            indicators: IndicatorFields {
                ip: aliases.expand(&raw.indicators.ip),
                domain: aliases.expand(&raw.indicators.domain),
                url: aliases.expand(&raw.indicators.url),
                hash: aliases.expand(&raw.indicators.hash),
            },
            derivations,
        })
    }

    /// The entries a rule with logsource `ls` is routed to: those equal to it
    /// on (category, product, service); if none, those agreeing on every key
    /// the rule sets.
    pub fn routes_for(&self, ls: &LogSource) -> Vec<usize> {
        let exact: Vec<usize> = self
            .logsources
            .iter()
            .enumerate()
            .filter(|(_, e)| lower_eq(&e.logsource, ls))
            .map(|(i, _)| i)
            .collect();
        if !exact.is_empty() {
            return exact;
        }
        let agrees = |want: &Option<String>, have: &Option<String>| match want {
            None => true,
            Some(w) => have.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(w)),
        };
        self.logsources
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                agrees(&ls.category, &e.logsource.category)
                    && agrees(&ls.product, &e.logsource.product)
                    && agrees(&ls.service, &e.logsource.service)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// The derived value a field path names (`derived:NAME`), by index
    /// into [`Mapping::derivations`].
    pub fn derivation(&self, path: &str) -> Option<usize> {
        let name = path.strip_prefix(DERIVED_PREFIX)?;
        self.derivations.iter().position(|d| d.name == name)
    }

    /// The event paths of a Sigma field within logsource entry `entry`
    /// (`derived:NAME` for a derived value).
    pub fn field_paths(&self, entry: usize, field: &str) -> Vec<String> {
        if let Some(p) = self.logsources.get(entry).and_then(|e| e.fields.get(field)) {
            return p.clone();
        }
        if let Some(p) = self.fields.get(field) {
            return p.clone();
        }
        if self.default_paths.is_empty() {
            return vec![field.to_string()];
        }
        self.default_paths
            .iter()
            .map(|t| t.replace("{field}", field))
            .collect()
    }
}

/// Path aliases: a path that starts with a listed prefix is also read with
/// the prefix replaced by each of its replacements (the longest matching
/// prefix decides), so one mapping serves several layouts of the same
/// events (evtx_dump's nesting and the flat JSON of other forwarders).
#[derive(Debug, Default)]
struct Aliases(Vec<(String, Vec<String>)>);

impl Aliases {
    fn parse(raw: serde_yaml_ng::Mapping) -> std::result::Result<Aliases, String> {
        let mut out = Vec::new();
        for (k, v) in raw {
            let Some(prefix) = k.as_str() else {
                return Err(format!("alias key {k:?} is not a path prefix"));
            };
            if prefix.is_empty() {
                return Err("alias prefix is empty: every path would match it".into());
            }
            let with: OneOrMany = serde_yaml_ng::from_value(v).map_err(|e| {
                format!("alias '{prefix}': {e} (expected a path or a list of paths)")
            })?;
            out.push((prefix.to_string(), with.into_vec()));
        }
        out.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Ok(Aliases(out))
    }

    /// `paths`, each followed by its aliases, without repeats.
    fn expand(&self, paths: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |p: String| {
            if !p.is_empty() && !out.contains(&p) {
                out.push(p);
            }
        };
        for p in paths {
            push(p.clone());
            if p.starts_with(DERIVED_PREFIX) {
                continue;
            }
            if let Some((prefix, with)) = self.0.iter().find(|(x, _)| p.starts_with(x.as_str())) {
                for w in with {
                    push(format!("{w}{}", &p[prefix.len()..]));
                }
            }
        }
        out
    }
}

fn lower_eq(a: &LogSource, b: &LogSource) -> bool {
    let eq = |x: &Option<String>, y: &Option<String>| match (x, y) {
        (None, None) => true,
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    };
    eq(&a.category, &b.category) && eq(&a.product, &b.product) && eq(&a.service, &b.service)
}
