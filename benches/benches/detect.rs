//! Detection throughput: parse-only baseline vs. full detection, same events, same run.

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_benches::{
    events_from_env, generated_rules, paired, parse_only, parse_tape, sigmahq_rule_dirs,
};
use warden_detect::event::Tape;
use warden_detect::{Engine, Mapping};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: usize = 20_000;

fn engine() -> (Engine, &'static str) {
    let mapping = Mapping::builtin("windows")
        .expect("shipped")
        .expect("valid");
    let mut b = Engine::builder().mapping(mapping);
    // WARDEN_BENCH_RULES=generated measures the generated set even where
    // SigmaHQ's rules are available.
    let forced = std::env::var("WARDEN_BENCH_RULES").is_ok_and(|v| v == "generated");
    let source = match sigmahq_rule_dirs().filter(|_| !forced) {
        Some(dirs) => {
            for d in dirs {
                b.add_path(&d).expect("rules load");
            }
            "sigmahq"
        }
        None => {
            for (i, r) in generated_rules(3200, 7).iter().enumerate() {
                b.add_yaml(r, Path::new(&format!("generated-{i}.yml")))
                    .expect("generated rule parses");
            }
            "generated"
        }
    };
    (b.build(), source)
}

fn bench(c: &mut Criterion) {
    // WARDEN_BENCH_EVENTS=FILE: the first 20,000 JSON lines of FILE instead
    // of the generated mix.
    let events = events_from_env("WARDEN_BENCH_EVENTS", EVENTS);
    let events_count = events.len();
    let bytes: usize = events.iter().map(|e| e.len()).sum();
    let (engine, source) = engine();
    let mut scratch = engine.scratch();
    let mut hits = Vec::new();
    let mut alerts = 0usize;
    let mut tape = Tape::new();
    for e in &events {
        let doc = tape.parse(e.as_bytes()).expect("valid");
        engine.detect(&doc, &mut scratch, &mut hits);
        alerts += hits.len();
    }
    eprintln!(
        "workload: {events_count} events, {} bytes avg; rules: {} ({source}), {} rejected, {} predicates, {} KiB compiled; {alerts} alerts",
        bytes / events_count.max(1),
        engine.rules().len(),
        engine.rejections().len(),
        engine.predicate_count(),
        engine.memory_usage() / 1024
    );
    let mut g = c.benchmark_group("windows");
    g.throughput(Throughput::Elements(events_count as u64));
    g.sample_size(20);
    g.bench_function("parse_only", |b| b.iter(|| parse_only(&events)));
    g.bench_function("parse_tape", |b| b.iter(|| parse_tape(&events, &mut tape)));
    g.bench_function(format!("detect_{source}"), |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &events {
                let doc = tape.parse(e.as_bytes()).expect("valid");
                engine.detect(&doc, &mut scratch, &mut hits);
                n += hits.len();
            }
            n
        })
    });
    g.finish();
    // The ratios benches/README.md reports: measured in alternation.
    let detect = |tape: &mut Tape, scratch: &mut _, hits: &mut Vec<_>| {
        for e in &events {
            let doc = tape.parse(e.as_bytes()).expect("valid");
            engine.detect(&doc, scratch, hits);
        }
    };
    let mut tape2 = Tape::new();
    let r = paired(
        20,
        events_count,
        || {
            parse_only(&events);
        },
        || detect(&mut tape, &mut scratch, &mut hits),
    );
    eprintln!("paired: detect_{source} / parse_only (sonic-rs DOM): {r}");
    let r = paired(
        20,
        events_count,
        || {
            parse_tape(&events, &mut tape2);
        },
        || detect(&mut tape, &mut scratch, &mut hits),
    );
    eprintln!("paired: detect_{source} / parse_tape (Warden's parser): {r}");
}

criterion_group!(benches, bench);
criterion_main!(benches);
