//! Benchmark workloads: a realistic, mostly benign Windows event mix in the
//! evtx_dump JSON layout, and a generated rule set for machines without
//! SigmaHQ's rules.
//!
//! Everything is deterministic from a seed so runs are comparable.

use std::path::{Path, PathBuf};

use sonic_rs::JsonValueTrait;
pub use warden_gen::{Rng, generated_rules, windows_event, windows_events};

/// The baseline every bench compares against: parse each event to a DOM
/// with sonic-rs, the fastest general-purpose JSON parser for Rust we know
/// (SIMD). Detection itself parses with Warden's own tape parser
/// ([`parse_tape`]), which is faster still; the ratio against this fixed
/// yardstick is what `benches/README.md` reports. Returns the number of
/// objects parsed.
pub fn parse_only(events: &[String]) -> usize {
    events
        .iter()
        .filter(|e| {
            sonic_rs::from_slice::<sonic_rs::Value>(e.as_bytes())
                .map(|v| v.is_object())
                .unwrap_or(false)
        })
        .count()
}

/// Parse-only with Warden's tape parser (what detection starts with).
pub fn parse_tape(events: &[String], tape: &mut warden_detect::event::Tape) -> usize {
    events
        .iter()
        .filter(|e| {
            tape.parse(e.as_bytes())
                .map(|d| d.root().is_object())
                .unwrap_or(false)
        })
        .count()
}

/// The events a bench measures: the first `n` non-empty JSON lines of the
/// file named by environment variable `var` (real forwarded logs, read
/// with the windows mapping) when it is set, else `n` generated events.
pub fn events_from_env(var: &str, n: usize) -> Vec<String> {
    match std::env::var(var) {
        Ok(path) => std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{var}={path}: {e}"))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(n)
            .map(str::to_owned)
            .collect(),
        Err(_) => windows_events(n, 42),
    }
}

/// Two workloads measured in alternation (see [`paired`]).
#[derive(Debug, Clone, Copy)]
pub struct Paired {
    /// Median items/s of the baseline.
    pub base: f64,
    /// Median items/s of the other workload.
    pub other: f64,
    /// Median of the per-round ratios other / base.
    pub ratio: f64,
    /// Lowest and highest per-round ratio.
    pub spread: (f64, f64),
    pub rounds: usize,
}

impl std::fmt::Display for Paired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0}/s vs {:.0}/s: ratio {:.3} (median of {} paired rounds, {:.3}..{:.3})",
            self.other, self.base, self.ratio, self.rounds, self.spread.0, self.spread.1
        )
    }
}

/// Runs `base` and `other` (each handling `items` items) in alternation,
/// `rounds` times, swapping which goes first every round. These machines
/// are shared and their speed drifts within seconds, so rates measured one
/// after the other (as criterion does) can differ by a third for nothing;
/// a ratio taken within each round, where both ran within a second of each
/// other, is what stays steady.
pub fn paired(
    rounds: usize,
    items: usize,
    mut base: impl FnMut(),
    mut other: impl FnMut(),
) -> Paired {
    let time = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let (mut b, mut o, mut r) = (Vec::new(), Vec::new(), Vec::new());
    // One untimed round each to warm caches and allocators.
    base();
    other();
    for i in 0..rounds {
        let (tb, to) = if i % 2 == 0 {
            let tb = time(&mut base);
            (tb, time(&mut other))
        } else {
            let to = time(&mut other);
            (time(&mut base), to)
        };
        b.push(items as f64 / tb);
        o.push(items as f64 / to);
        r.push(tb / to);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = r.iter().copied().fold(0.0, f64::max);
    Paired {
        base: median(b),
        other: median(o),
        ratio: median(r),
        spread: (lo, hi),
        rounds,
    }
}

/// SigmaHQ's rule folders under `../shared/sigma`, if present.
pub fn sigmahq_rule_dirs() -> Option<Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/sigma");
    let root = if root.is_dir() {
        root
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/sigma")
    };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("rules"))
        })
        .collect();
    dirs.sort();
    (!dirs.is_empty()).then_some(dirs)
}

/// SigmaHQ's rules under `--mapping windows`, compiled, if `../shared` has them.
pub fn sigmahq_windows_engine() -> Option<warden_detect::Engine> {
    let dirs = sigmahq_rule_dirs()?;
    let mut b = warden_detect::Engine::builder().mapping(
        warden_detect::Mapping::builtin("windows")
            .expect("shipped")
            .expect("valid"),
    );
    for d in dirs {
        b.add_path(&d).expect("rules load");
    }
    Some(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_detect::{Engine, Mapping};

    #[test]
    fn generated_rules_all_load_and_events_parse() {
        let mut b = Engine::builder().mapping(Mapping::builtin("windows").unwrap().unwrap());
        for (i, r) in generated_rules(3200, 7).iter().enumerate() {
            b.add_yaml(r, Path::new(&format!("generated-{i}.yml")))
                .unwrap();
        }
        let e = b.build();
        assert!(e.rejections().is_empty(), "{:?}", &e.rejections()[..1]);
        assert_eq!(e.rules().len(), 3200);
        let events = windows_events(500, 1);
        assert_eq!(parse_only(&events), 500);
        let mut tape = warden_detect::event::Tape::new();
        assert_eq!(parse_tape(&events, &mut tape), 500);
        let mut sc = e.scratch();
        let mut hits = Vec::new();
        for ev in &events {
            let doc = tape.parse(ev.as_bytes()).unwrap();
            e.detect(&doc, &mut sc, &mut hits);
        }
    }
}
