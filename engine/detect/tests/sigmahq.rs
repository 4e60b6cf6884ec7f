#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! Compatibility with SigmaHQ's public rule set and regression events.
//!
//! These tests use `../shared/sigma` beside the project when it exists and
//! are skipped (with a message) otherwise, so the suite passes without it.

use std::path::{Path, PathBuf};

use warden_detect::{Engine, Mapping, event};

mod flat;
use flat::flatten;

fn shared_sigma() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/sigma");
    if p.join("rules").is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: {} not found", p.display());
        None
    }
}

fn rule_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("rules"))
        })
        .collect();
    dirs.sort();
    dirs
}

fn load(root: &Path, mapping: Option<Mapping>) -> Engine {
    let mut b = Engine::builder();
    if let Some(m) = mapping {
        b = b.mapping(m);
    }
    for d in rule_dirs(root) {
        b.add_path(&d).unwrap();
    }
    b.build()
}

#[test]
fn sigmahq_rules_load() {
    let Some(root) = shared_sigma() else { return };
    let engine = load(&root, None);
    let loaded = engine.rules().len();
    let rejected = engine.rejections().len();
    let total = loaded + rejected;
    eprintln!("sigmahq: {loaded} of {total} loaded");
    for r in engine.rejections() {
        assert!(
            !r.reason.trim().is_empty(),
            "rejection without reason: {r:?}"
        );
    }
    assert!(
        total >= 3000,
        "expected the full rule set, found {total} documents"
    );
    assert!(
        loaded * 100 >= total * 99,
        "only {loaded} of {total} rules loaded; rejections: {:#?}",
        engine.rejections()
    );
}

/// Splits a file of JSON values written back to back (pretty-printed or not).
fn json_values(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    for v in de.by_ref() {
        out.push(v.expect("regression event is valid JSON").to_string());
    }
    out
}

fn find_files(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            find_files(&p, name, out);
        } else if p.file_name().and_then(|n| n.to_str()) == Some(name) {
            out.push(p);
        }
    }
}

#[test]
fn sigmahq_regression_events_raise_their_rule() {
    let Some(root) = shared_sigma() else { return };
    let mapping = Mapping::builtin("windows").unwrap().unwrap();
    let engine = load(&root, Some(mapping));
    let mut infos = Vec::new();
    find_files(&root.join("regression_data"), "info.yml", &mut infos);
    infos.sort();
    assert!(!infos.is_empty());
    let mut scratch = engine.scratch();
    let mut hits = Vec::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    for info_path in &infos {
        let info: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(info_path).unwrap()).unwrap();
        let rule_id = info["rule_metadata"][0]["id"].as_str().unwrap().to_string();
        let expected = info["regression_tests_info"][0]["match_count"].as_u64();
        let dir = info_path.parent().unwrap();
        let mut jsons: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
            .collect();
        jsons.sort();
        let mut matched = 0u64;
        let mut total = 0;
        for j in &jsons {
            for ev in json_values(&std::fs::read_to_string(j).unwrap()) {
                total += 1;
                let v = event::parse(ev.as_bytes()).unwrap();
                engine.detect(&v.doc(), &mut scratch, &mut hits);
                let raised = hits
                    .iter()
                    .any(|h| h.rule.meta.id.as_deref() == Some(rule_id.as_str()));
                if raised {
                    matched += 1;
                }
                // The same event flattened (System and EventData members at
                // the top level) must raise the same rule.
                let nested: serde_json::Value = serde_json::from_str(&ev).unwrap();
                let flat = flatten(&nested).to_string();
                let v = event::parse(flat.as_bytes()).unwrap();
                engine.detect(&v.doc(), &mut scratch, &mut hits);
                let flat_raised = hits
                    .iter()
                    .any(|h| h.rule.meta.id.as_deref() == Some(rule_id.as_str()));
                if flat_raised != raised {
                    failures.push(format!(
                        "{}: rule {rule_id} raised {raised} on the nested event but {flat_raised} on its flat form {flat}",
                        dir.strip_prefix(&root).unwrap().display()
                    ));
                }
            }
        }
        if total == 0 {
            // Non-JSON regression data (e.g. raw Cisco CLI logs) is not an evtx_dump event.
            eprintln!(
                "skipped {}: no JSON events",
                dir.strip_prefix(&root).unwrap().display()
            );
            continue;
        }
        checked += 1;
        // SigmaHQ's match_count undercounts some files (several events in
        // the evtx legitimately match); never matching fewer is what counts.
        let ok = matched >= 1 && expected.is_none_or(|n| matched >= n);
        if ok && expected.is_some_and(|n| matched > n) {
            eprintln!(
                "note {}: {matched} events match, info.yml says {}",
                dir.strip_prefix(&root).unwrap().display(),
                expected.unwrap_or_default()
            );
        }
        if !ok {
            failures.push(format!(
                "{}: rule {rule_id} matched {matched} of {total} events, expected {}",
                dir.strip_prefix(&root).unwrap().display(),
                expected.map_or("at least 1".to_string(), |n| n.to_string())
            ));
        }
    }
    eprintln!("regression: {checked} tests, {} failures", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
