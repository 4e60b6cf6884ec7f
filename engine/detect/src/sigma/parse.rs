//! YAML → typed Sigma documents.

use std::path::Path;

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use super::{
    Condition, Detection, DetectionItem, LogSource, Modifier, RuleMeta, Search, SigmaFilter,
    SigmaRule, SigmaValue, parse_condition,
};
use crate::error::{Error, Result};

/// One YAML document of a rule file, after parsing.
#[derive(Debug, Clone)]
pub enum ParsedDocument {
    Rule(SigmaRule),
    Filter(SigmaFilter),
    /// A document that is not loaded, with the reason.
    Rejected {
        id: Option<String>,
        title: Option<String>,
        /// 1-based index of the document in its file.
        document: usize,
        reason: String,
    },
}

/// Parses every YAML document in `text` (read from `path`, used in errors).
///
/// A YAML syntax error fails the whole file (with its line and column); a
/// document that is valid YAML but not a valid rule is returned as
/// [`ParsedDocument::Rejected`] with its reason.
pub fn parse_documents(text: &str, path: &Path) -> Result<Vec<ParsedDocument>> {
    // A byte order mark is not content (text from an API or an editor).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut raw = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| Error::yaml(path, &e))?;
        raw.push(value);
    }
    let mut out = Vec::new();
    let mut global: Option<Mapping> = None;
    let mut previous: Option<Mapping> = None;
    for (i, value) in raw.into_iter().enumerate() {
        let document = i + 1;
        let map = match value {
            Value::Mapping(m) => m,
            Value::Null => continue,
            _ => {
                out.push(ParsedDocument::Rejected {
                    id: None,
                    title: None,
                    document,
                    reason: "document is not a mapping".into(),
                });
                continue;
            }
        };
        // Sigma v1 rule collections: `action: global|reset|repeat`.
        let map = match map.get("action").and_then(Value::as_str) {
            Some("global") => {
                let mut m = map;
                m.remove("action");
                global = Some(m);
                continue;
            }
            Some("reset") => {
                global = None;
                continue;
            }
            Some("repeat") => {
                let mut m = map;
                m.remove("action");
                match &previous {
                    Some(prev) => merge(prev.clone(), m),
                    None => m,
                }
            }
            _ => match &global {
                Some(g) => merge(g.clone(), map),
                None => map,
            },
        };
        previous = Some(map.clone());
        out.push(parse_document(&map, document));
    }
    Ok(out)
}

/// Deep-merges `over` into `base` (maps merge, everything else replaces).
fn merge(mut base: Mapping, over: Mapping) -> Mapping {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Mapping(b)), Value::Mapping(o)) => {
                let merged = merge(std::mem::take(b), o);
                *b = merged;
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
    base
}

fn get_str(map: &Mapping, key: &str) -> Option<String> {
    match map.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn get_str_list(map: &Mapping, key: &str) -> Vec<String> {
    match map.get(key) {
        Some(Value::Sequence(seq)) => seq
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn parse_meta(map: &Mapping) -> RuleMeta {
    let logsource = match map.get("logsource") {
        Some(Value::Mapping(ls)) => LogSource {
            category: get_str(ls, "category"),
            product: get_str(ls, "product"),
            service: get_str(ls, "service"),
        },
        _ => LogSource::default(),
    };
    RuleMeta {
        title: get_str(map, "title").unwrap_or_default(),
        id: get_str(map, "id"),
        name: get_str(map, "name"),
        status: get_str(map, "status"),
        level: get_str(map, "level"),
        description: get_str(map, "description"),
        author: get_str(map, "author"),
        tags: get_str_list(map, "tags"),
        references: get_str_list(map, "references"),
        falsepositives: get_str_list(map, "falsepositives"),
        fields: get_str_list(map, "fields"),
        logsource,
    }
}

fn parse_document(map: &Mapping, document: usize) -> ParsedDocument {
    let meta = parse_meta(map);
    let reject = |reason: String| ParsedDocument::Rejected {
        id: meta.id.clone(),
        title: Some(meta.title.clone()).filter(|t| !t.is_empty()),
        document,
        reason,
    };
    if map.contains_key("correlation") {
        return reject("correlation not yet supported".into());
    }
    if let Some(filter) = map.get("filter") {
        let Value::Mapping(filter) = filter else {
            return reject("'filter' must be a mapping".into());
        };
        let rules = get_str_list(filter, "rules");
        if rules.is_empty() {
            return reject("filter names no rules ('filter.rules' is empty or missing)".into());
        }
        let mut body = filter.clone();
        body.remove("rules");
        return match parse_detection(&body) {
            Ok(detection) => ParsedDocument::Filter(SigmaFilter {
                meta,
                rules,
                detection,
            }),
            Err(e) => reject(format!("filter: {e}")),
        };
    }
    if meta.title.is_empty() && map.get("detection").is_none() {
        return reject("not a sigma rule: no 'title' and no 'detection'".into());
    }
    let Some(detection) = map.get("detection") else {
        return reject("missing 'detection'".into());
    };
    let Value::Mapping(detection) = detection else {
        return reject("'detection' must be a mapping".into());
    };
    match parse_detection(detection) {
        Ok(detection) => ParsedDocument::Rule(SigmaRule { meta, detection }),
        Err(e) => reject(e),
    }
}

fn parse_detection(map: &Mapping) -> Result<Detection, String> {
    let mut searches = Vec::new();
    let mut conditions = Vec::new();
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            return Err(format!("detection key {k:?} is not a string"));
        };
        match key {
            "condition" => {
                let texts: Vec<String> = match v {
                    Value::String(s) => vec![s.clone()],
                    Value::Sequence(seq) => seq
                        .iter()
                        .map(|c| {
                            c.as_str()
                                .map(str::to_owned)
                                .ok_or_else(|| "condition list items must be strings".to_string())
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err("'condition' must be a string or a list of strings".into()),
                };
                for t in texts {
                    conditions
                        .push(parse_condition(&t).map_err(|e| format!("condition '{t}': {e}"))?);
                }
            }
            "timeframe" => {} // only meaningful with (unsupported) aggregations
            name => {
                let search = parse_search(v).map_err(|e| format!("search '{name}': {e}"))?;
                searches.push((name.to_string(), search));
            }
        }
    }
    if conditions.is_empty() {
        return Err("missing 'detection.condition'".into());
    }
    let detection = Detection {
        searches,
        conditions,
    };
    for c in &detection.conditions {
        check_identifiers(c, &detection)?;
    }
    Ok(detection)
}

fn check_identifiers(c: &Condition, d: &Detection) -> Result<(), String> {
    match c {
        Condition::Ident(name) => {
            if d.search(name).is_none() {
                return Err(format!("condition references unknown identifier '{name}'"));
            }
        }
        Condition::Not(inner) => check_identifiers(inner, d)?,
        Condition::And(items) | Condition::Or(items) => {
            for i in items {
                check_identifiers(i, d)?;
            }
        }
        Condition::Of(_, Some(pattern)) => {
            if d.select(Some(pattern)).is_empty() {
                return Err(format!(
                    "condition pattern '{pattern}' matches no identifier"
                ));
            }
        }
        Condition::Of(_, None) => {}
    }
    Ok(())
}

fn parse_scalar(v: &Value) -> Result<SigmaValue, String> {
    Ok(match v {
        Value::String(s) => SigmaValue::Str(s.clone()),
        Value::Number(n) => SigmaValue::Num(n.to_string()),
        Value::Bool(b) => SigmaValue::Bool(*b),
        Value::Null => SigmaValue::Null,
        Value::Tagged(t) => parse_scalar(&t.value)?,
        Value::Sequence(_) => return Err("nested lists are not allowed as values".into()),
        Value::Mapping(_) => return Err("a mapping is not allowed as a value".into()),
    })
}

fn parse_values(v: &Value) -> Result<Vec<SigmaValue>, String> {
    match v {
        Value::Sequence(seq) => seq.iter().map(parse_scalar).collect(),
        other => Ok(vec![parse_scalar(other)?]),
    }
}

fn parse_key(key: &str) -> Result<(Option<String>, Vec<Modifier>), String> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or_default();
    let modifiers = parts
        .map(|m| m.parse::<Modifier>())
        .collect::<Result<Vec<_>, _>>()?;
    let field = if field.is_empty() {
        None
    } else {
        Some(field.to_string())
    };
    Ok((field, modifiers))
}

fn parse_group(map: &Mapping) -> Result<Vec<DetectionItem>, String> {
    let mut items = Vec::new();
    for (k, v) in map {
        let key = match k {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(format!("field name {k:?} is not a string")),
        };
        let (field, modifiers) = parse_key(&key)?;
        let values = parse_values(v)?;
        if values.is_empty() {
            return Err(format!("'{key}' has an empty value list"));
        }
        items.push(DetectionItem {
            field,
            modifiers,
            values,
        });
    }
    if items.is_empty() {
        return Err("empty mapping".into());
    }
    Ok(items)
}

fn parse_search(v: &Value) -> Result<Search, String> {
    match v {
        Value::Mapping(m) => Ok(Search::Groups(vec![parse_group(m)?])),
        Value::Sequence(seq) => {
            if seq.is_empty() {
                return Err("empty list".into());
            }
            if seq.iter().all(|x| matches!(x, Value::Mapping(_))) {
                let groups = seq
                    .iter()
                    .map(|x| match x {
                        Value::Mapping(m) => parse_group(m),
                        _ => unreachable!("checked above"),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Search::Groups(groups))
            } else if seq.iter().any(|x| matches!(x, Value::Mapping(_))) {
                // Mixed list: the maps are OR-ed with the plain values as keywords.
                let mut groups = Vec::new();
                let mut keywords = Vec::new();
                for x in seq {
                    match x {
                        Value::Mapping(m) => groups.push(parse_group(m)?),
                        other => keywords.push(parse_scalar(other)?),
                    }
                }
                groups.push(vec![DetectionItem {
                    field: None,
                    modifiers: Vec::new(),
                    values: keywords,
                }]);
                Ok(Search::Groups(groups))
            } else {
                Ok(Search::Keywords(DetectionItem {
                    field: None,
                    modifiers: Vec::new(),
                    values: parse_values(v)?,
                }))
            }
        }
        Value::Null => Err("empty search".into()),
        other => Ok(Search::Keywords(DetectionItem {
            field: None,
            modifiers: Vec::new(),
            values: vec![parse_scalar(other)?],
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> ParsedDocument {
        let mut docs = parse_documents(text, Path::new("t.yml")).unwrap();
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    #[test]
    fn parses_rule_with_modifiers() {
        let doc = one(
            "title: t\nid: x\nlevel: high\ntags: [attack.t1059]\nlogsource: {product: windows, category: process_creation}\ndetection:\n  sel:\n    CommandLine|contains|all: [a, b]\n  condition: sel\n",
        );
        let ParsedDocument::Rule(rule) = doc else {
            panic!("{doc:?}")
        };
        assert_eq!(rule.meta.level.as_deref(), Some("high"));
        assert_eq!(rule.meta.logsource.product.as_deref(), Some("windows"));
        let Search::Groups(groups) = rule.detection.search("sel").unwrap() else {
            panic!()
        };
        assert_eq!(
            groups[0][0].modifiers,
            vec![Modifier::Contains, Modifier::All]
        );
    }

    #[test]
    fn rejects_with_reason() {
        let doc = one("title: t\ndetection:\n  sel:\n    a|nope: x\n  condition: sel\n");
        let ParsedDocument::Rejected { reason, .. } = doc else {
            panic!()
        };
        assert!(reason.contains("unknown modifier 'nope'"), "{reason}");
        let doc = one("title: t\ndetection:\n  sel:\n    a: x\n  condition: sel and other\n");
        let ParsedDocument::Rejected { reason, .. } = doc else {
            panic!()
        };
        assert!(reason.contains("unknown identifier 'other'"), "{reason}");
    }

    #[test]
    fn yaml_error_names_line() {
        let err = parse_documents("title: t\ndetection:\n  sel: [a\n", Path::new("bad.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bad.yml:"), "{err}");
    }

    #[test]
    fn correlation_rejected() {
        let doc = one("title: c\ncorrelation:\n  type: event_count\n");
        let ParsedDocument::Rejected { reason, .. } = doc else {
            panic!()
        };
        assert_eq!(reason, "correlation not yet supported");
    }
}
