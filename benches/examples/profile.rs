//! Runs detection over the bench workload in a loop (for profilers), and
//! prints which rules fire most on the benign mix.

use std::collections::HashMap;

use warden_benches::{events_from_env, sigmahq_windows_engine};
use warden_detect::event::Tape;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let engine = sigmahq_windows_engine().expect("needs ../shared/sigma");
    eprintln!(
        "compiled set: {} rules, {:.1} MiB",
        engine.rules().len(),
        engine.memory_usage() as f64 / (1 << 20) as f64
    );
    // WARDEN_EVENTS=FILE: the first `n` JSON lines of FILE instead of the
    // generated mix.
    let mut events = events_from_env("WARDEN_EVENTS", n);
    // WARDEN_EVENTID=1 profiles one event type only.
    if let Ok(id) = std::env::var("WARDEN_EVENTID") {
        let needle = format!("\"EventID\":{id},");
        events.retain(|e| e.contains(&needle));
    }
    let n = events.len();
    let mut sc = engine.scratch();
    let mut hits = Vec::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let reps: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let mut tape = Tape::new();
    // WARDEN_PARSE_ONLY=1: the parse alone, as many times.
    if std::env::var_os("WARDEN_PARSE_ONLY").is_some() {
        let t = std::time::Instant::now();
        let mut toks = 0usize;
        for _ in 0..reps {
            for e in &events {
                toks += tape.parse(e.as_bytes()).expect("valid").text().len();
            }
        }
        let el = t.elapsed();
        println!(
            "parse only: {:.0} events/s ({toks} bytes)",
            (events.len() * reps) as f64 / el.as_secs_f64()
        );
        return;
    }
    let t = std::time::Instant::now();
    for _ in 1..reps {
        for e in &events {
            let doc = tape.parse(e.as_bytes()).expect("valid");
            engine.detect(&doc, &mut sc, &mut hits);
        }
    }
    if reps > 1 {
        let el = t.elapsed();
        println!(
            "parse + detect: {:.0} events/s",
            (n * (reps - 1)) as f64 / el.as_secs_f64()
        );
    }
    let t = std::time::Instant::now();
    for e in &events {
        let doc = tape.parse(e.as_bytes()).expect("valid");
        engine.detect(&doc, &mut sc, &mut hits);
        for h in &hits {
            *counts.entry(h.rule.meta.title.clone()).or_default() += 1;
        }
    }
    let el = t.elapsed();
    println!(
        "{n} events in {el:?}: {:.0} events/s",
        n as f64 / el.as_secs_f64()
    );
    let mut c: Vec<_> = counts.into_iter().collect();
    c.sort_by_key(|e| std::cmp::Reverse(e.1));
    for (t, n) in c.iter().take(15) {
        println!("{n:6} {t}");
    }
}
