//! `warden detect`: offline detection over JSON lines.

use std::io::{BufRead, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;
use warden_detect::event::Tape;
use warden_detect::indicators::{IndicatorMatcher, IndicatorScratch, IndicatorSet, load_path};
use warden_detect::{Mapping, MatchedField};

use crate::DetectArgs;
use crate::rules::load_engine;

#[derive(Serialize)]
struct Alert<'a> {
    rule_id: &'a str,
    rule_title: &'a str,
    level: &'a str,
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    org_id: Option<&'a str>,
    matched: &'a [MatchedField],
    line: u64,
}

/// Writes one alert line: `alert`'s fields, then `"event"` with the input
/// line's JSON as it was (already validated by the parser).
fn write_alert(
    out: &mut impl Write,
    buf: &mut Vec<u8>,
    alert: &Alert<'_>,
    event: &str,
) -> Result<()> {
    buf.clear();
    serde_json::to_writer(&mut *buf, alert)?;
    // The struct serialises as an object: reopen it for the event.
    buf.pop();
    buf.extend_from_slice(b",\"event\":");
    buf.extend_from_slice(event.as_bytes());
    buf.extend_from_slice(b"}\n");
    out.write_all(buf)?;
    Ok(())
}

pub fn run(args: DetectArgs) -> Result<ExitCode> {
    let (engine, mapping) = load_engine(&args.rules, &args.opts)?;
    let indicators = load_indicators(&args.indicators, mapping.as_ref())?;
    let mut ind_scratch = IndicatorScratch::default();
    let mut ind_hits = Vec::new();
    for r in engine.rejections() {
        eprintln!(
            "warden: rule rejected: {} [{}]: {}",
            r.file.display(),
            r.rule_id.as_deref().unwrap_or("-"),
            r.reason
        );
    }
    let input: Box<dyn BufRead> = if args.input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(&args.input).with_context(|| args.input.clone())?,
        ))
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut scratch = engine.scratch();
    let mut hits = Vec::new();
    let (mut events, mut malformed, mut alerts) = (0u64, 0u64, 0u64);
    let mut line_no = 0u64;
    let mut buf = Vec::with_capacity(4096);
    let mut line_out = Vec::with_capacity(4096);
    let mut tape = Tape::new();
    let mut input = input;
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("{}: read error after line {line_no}", args.input))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let line = trim(&buf);
        if line.is_empty() {
            continue;
        }
        let ev = match tape.parse(line) {
            Ok(v) if v.root().is_object() => v,
            Ok(_) => {
                malformed += 1;
                eprintln!("warden: {}:{line_no}: not a JSON object", args.input);
                continue;
            }
            Err(e) => {
                malformed += 1;
                eprintln!("warden: {}:{line_no}: invalid JSON: {e}", args.input);
                continue;
            }
        };
        events += 1;
        engine.detect(&ev, &mut scratch, &mut hits);
        if let Some(m) = &indicators {
            m.scan(&ev, &mut ind_scratch, &mut ind_hits);
        }
        if hits.is_empty() && ind_hits.is_empty() {
            continue;
        }
        let root = ev.root();
        let org_id = root.get("org_id").and_then(|v| v.as_str());
        let raw = ev.text();
        for h in &hits {
            let meta = &h.rule.meta;
            let alert = Alert {
                rule_id: meta.id.as_deref().unwrap_or(meta.title.as_str()),
                rule_title: &meta.title,
                level: meta.level.as_deref().unwrap_or("medium"),
                tags: &meta.tags,
                org_id,
                matched: &h.matched,
                line: line_no,
            };
            write_alert(&mut out, &mut line_out, &alert, raw)?;
            alerts += 1;
        }
        if let Some(m) = &indicators {
            for h in &ind_hits {
                let a = m.alert(h);
                let alert = Alert {
                    rule_id: &a.rule_id,
                    rule_title: &a.title,
                    level: a.level,
                    tags: &a.tags,
                    org_id,
                    matched: &a.matched,
                    line: line_no,
                };
                write_alert(&mut out, &mut line_out, &alert, raw)?;
                alerts += 1;
            }
        }
    }
    out.flush()?;
    eprintln!(
        "warden: {events} events, {malformed} malformed lines, {alerts} alerts, {} rules loaded, {} rejected",
        engine.rules().len(),
        engine.rejections().len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Loads every indicator file; rejected entries are reported with file and line.
fn load_indicators(
    paths: &[std::path::PathBuf],
    mapping: Option<&Mapping>,
) -> Result<Option<IndicatorMatcher>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut all = Vec::new();
    for p in paths {
        let loaded = load_path(p)?;
        for r in &loaded.rejected {
            eprintln!("warden: indicator rejected: {r}");
        }
        eprintln!(
            "warden: {}: {} indicators, {} rejected, {} skipped",
            p.display(),
            loaded.indicators.len(),
            loaded.rejected.len(),
            loaded.skipped
        );
        all.extend(loaded.indicators);
    }
    let set = IndicatorSet::build(all);
    Ok(Some(IndicatorMatcher::new(
        set,
        mapping.map(|m| &m.indicators),
    )))
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}
