//! `warden rules check` and the shared rule loading.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use warden_detect::{Engine, Mapping};

use crate::{Format, RuleOptions};

/// Loads and compiles rules from paths with the given options.
pub fn load_engine(paths: &[PathBuf], opts: &RuleOptions) -> Result<(Engine, Option<Mapping>)> {
    let mut builder = Engine::builder();
    let mapping = opts.mapping.as_deref().map(Mapping::resolve).transpose()?;
    if let Some(m) = &mapping {
        builder = builder.mapping(m.clone());
    }
    if let Some(p) = &opts.placeholders {
        builder = builder.placeholders(load_placeholders(p)?);
    }
    for p in paths {
        builder.add_path(p)?;
    }
    Ok((builder.build(), mapping))
}

fn load_placeholders(path: &Path) -> Result<HashMap<String, Vec<String>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let raw: HashMap<String, serde_yaml_ng::Value> = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("{}: invalid placeholder file", path.display()))?;
    let mut out = HashMap::new();
    for (k, v) in raw {
        let values = match v {
            serde_yaml_ng::Value::Sequence(s) => s
                .into_iter()
                .map(|x| scalar(&x))
                .collect::<Option<Vec<_>>>(),
            other => scalar(&other).map(|s| vec![s]),
        }
        .with_context(|| {
            format!(
                "{}: placeholder '{k}' must be a string or a list of strings",
                path.display()
            )
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

#[derive(serde::Serialize)]
struct Report<'a> {
    loaded: usize,
    rejected: usize,
    rejections: Vec<ReportRejection<'a>>,
}

#[derive(serde::Serialize)]
struct ReportRejection<'a> {
    file: String,
    rule_id: Option<&'a str>,
    title: Option<&'a str>,
    reason: &'a str,
}

pub fn check(
    paths: &[PathBuf],
    strict: bool,
    format: Format,
    opts: &RuleOptions,
) -> Result<ExitCode> {
    let (engine, _) = load_engine(paths, opts)?;
    let rej = engine.rejections();
    match format {
        Format::Json => {
            let report = Report {
                loaded: engine.rules().len(),
                rejected: rej.len(),
                rejections: rej
                    .iter()
                    .map(|r| ReportRejection {
                        file: r.file.display().to_string(),
                        rule_id: r.rule_id.as_deref(),
                        title: r.title.as_deref(),
                        reason: &r.reason,
                    })
                    .collect(),
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Format::Text => {
            for r in rej {
                println!(
                    "rejected {} [{}]: {}",
                    r.file.display(),
                    r.rule_id.as_deref().unwrap_or("-"),
                    r.reason
                );
            }
            println!(
                "loaded {} rules, rejected {}; {} predicates, {} KiB compiled{}",
                engine.rules().len(),
                rej.len(),
                engine.predicate_count(),
                engine.memory_usage() / 1024,
                engine
                    .mapping_name()
                    .map(|m| format!(", mapping {m}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(if strict && !rej.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
