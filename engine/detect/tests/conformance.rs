#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! Data-driven Sigma conformance suite: `tests/conformance/*.yml`.
//!
//! Each case holds a rule (plus optional extra documents such as filters and
//! placeholder values) and either events with the expected verdict or the
//! expected rejection reason. All failures are reported together.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use warden_detect::{Engine, event};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Suite {
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    rule: String,
    #[serde(default)]
    extra: Option<String>,
    #[serde(default)]
    placeholders: HashMap<String, Vec<String>>,
    #[serde(default)]
    events: Vec<EventCase>,
    #[serde(default)]
    reject: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventCase {
    event: serde_yaml_ng::Value,
    #[serde(rename = "match")]
    matches: bool,
}

fn rule_id(rule: &str) -> Option<String> {
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(rule).ok()?;
    v.get("id")?.as_str().map(str::to_owned)
}

fn run_case(case: &Case) -> Vec<String> {
    let mut failures = Vec::new();
    let mut b = Engine::builder().placeholders(case.placeholders.clone());
    if let Err(e) = b.add_yaml(&case.rule, Path::new("rule.yml")) {
        if let Some(want) = &case.reject
            && e.to_string().to_lowercase().contains(&want.to_lowercase())
        {
            return failures;
        }
        return vec![format!("rule does not parse: {e}")];
    }
    if let Some(extra) = &case.extra
        && let Err(e) = b.add_yaml(extra, Path::new("extra.yml"))
    {
        return vec![format!("extra does not parse: {e}")];
    }
    let engine = b.build();
    let id = rule_id(&case.rule);
    if let Some(want) = &case.reject {
        let found = engine
            .rejections()
            .iter()
            .any(|r| r.reason.to_lowercase().contains(&want.to_lowercase()));
        if !found {
            failures.push(format!(
                "expected rejection containing '{want}', got {:?} (loaded {})",
                engine
                    .rejections()
                    .iter()
                    .map(|r| &r.reason)
                    .collect::<Vec<_>>(),
                engine.rules().len()
            ));
        }
        return failures;
    }
    if !engine.rejections().is_empty() {
        failures.push(format!("unexpected rejections: {:?}", engine.rejections()));
        return failures;
    }
    let mut scratch = engine.scratch();
    let mut hits = Vec::new();
    for (i, ev) in case.events.iter().enumerate() {
        let json = serde_json::to_string(&ev.event).expect("event converts to JSON");
        let v = event::parse(json.as_bytes()).expect("event parses");
        engine.detect(&v.doc(), &mut scratch, &mut hits);
        let got = hits.iter().any(|h| h.rule.meta.id == id);
        // The raw-line keyword prefilter must never change a verdict.
        engine.detect_exhaustive(&v.doc(), &mut scratch, &mut hits);
        let exact = hits.iter().any(|h| h.rule.meta.id == id);
        if exact != got {
            failures.push(format!(
                "event {i} {json}: without the keyword prefilter {exact}, with it {got}"
            ));
        }
        if got != ev.matches {
            failures.push(format!(
                "event {i} {json}: expected match={}, got {}",
                ev.matches, got
            ));
        }
    }
    failures
}

#[test]
fn conformance_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yml"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no conformance files in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    let mut cases = 0;
    let mut events = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let suite: Suite =
            serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for case in &suite.cases {
            cases += 1;
            events += case.events.len();
            for fail in run_case(case) {
                failures.push(format!(
                    "{} / {}: {fail}",
                    f.file_name().unwrap().to_string_lossy(),
                    case.name
                ));
            }
        }
    }
    eprintln!(
        "conformance: {cases} cases, {events} events, {} failures",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
