//! Placeholder files for the `expand` modifier: a YAML map of placeholder
//! name to a value or a list of values.

use std::collections::HashMap;
use std::path::Path;

use crate::compile::Placeholders;
use crate::{Error, Result};

/// Loads a placeholder file.
pub fn load(path: &Path) -> Result<Placeholders> {
    let text = crate::text::read_text(path)?;
    let raw: HashMap<String, serde_yaml_ng::Value> =
        serde_yaml_ng::from_str(&text).map_err(|e| Error::yaml(path, &e))?;
    let mut out = HashMap::new();
    for (k, v) in raw {
        let values = match v {
            serde_yaml_ng::Value::Sequence(s) => s.iter().map(scalar).collect::<Option<Vec<_>>>(),
            other => scalar(&other).map(|s| vec![s]),
        }
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{}: placeholder '{k}' must be a string or a list of strings",
                path.display()
            ))
        })?;
        out.insert(k, values);
    }
    Ok(out)
}

fn scalar(v: &serde_yaml_ng::Value) -> Option<String> {
    match v {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
