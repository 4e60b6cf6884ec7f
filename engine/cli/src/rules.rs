//! `warden rules check` and the shared rule loading.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
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
        builder = builder.placeholders(warden_detect::placeholders::load(p)?);
    }
    for p in paths {
        builder.add_path(p)?;
    }
    Ok((builder.build(), mapping))
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
