//! Archiving cost: parse-only baseline vs. appending events to the Arrow
//! builders and encoding them as one zstd Parquet file (what the pipeline's
//! second core does per segment), same events, same run.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_archive::batch::{EventsBuilder, Origin, to_parquet};
use warden_archive::schema::PROMOTED;
use warden_archive::{TenantId, Topic};
use warden_benches::{paired, parse_only, windows_events};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: usize = 20_000;
/// Events per file when a 2 MiB segment is split across 12 tenants, as in
/// the pipeline bench: many small files, each with every column chunk.
const SMALL_FILE: usize = 150;

fn build(events: &[String], tenant: &TenantId, topic: &Topic) -> EventsBuilder {
    let mut b = EventsBuilder::default();
    // Promoted columns as the pipeline fills them: short, repetitive values.
    let promoted: [Option<&str>; PROMOTED.len()] =
        std::array::from_fn(|i| (i % 2 == 0).then_some("WIN-HOST-01.corp.example"));
    for (i, e) in events.iter().enumerate() {
        let origin = Origin {
            topic,
            partition: 0,
            offset: i as i64,
            ingest_time: 1_700_000_000_000 + i as i64,
        };
        b.append(tenant, origin, 1_700_000_000_000, &promoted, e);
    }
    b
}

/// Encodes the events as files of [`SMALL_FILE`] events; total bytes.
fn small_files(events: &[String], tenant: &TenantId, topic: &Topic) -> usize {
    events
        .chunks(SMALL_FILE)
        .map(|chunk| {
            let batch = build(chunk, tenant, topic).finish().expect("batch");
            to_parquet(&batch).expect("parquet").len()
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    let events = windows_events(EVENTS, 42);
    let bytes: usize = events.iter().map(String::len).sum();
    let tenant = TenantId::new("tenant-000").expect("tenant id");
    let topic = Topic::new("events").expect("topic");
    let mut g = c.benchmark_group("archive");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(10);
    g.bench_function("parse_only", |b| b.iter(|| parse_only(&events)));
    g.bench_function("append", |b| {
        b.iter(|| build(&events, &tenant, &topic).len())
    });
    g.bench_function("append_and_encode", |b| {
        b.iter(|| {
            let batch = build(&events, &tenant, &topic).finish().expect("batch");
            to_parquet(&batch).expect("parquet").len()
        })
    });
    g.bench_function("append_and_encode_small_files", |b| {
        b.iter(|| small_files(&events, &tenant, &topic))
    });
    g.finish();
    for (name, small) in [
        ("append_and_encode", false),
        ("append_and_encode_small_files", true),
    ] {
        let r = paired(
            10,
            EVENTS,
            || {
                parse_only(&events);
            },
            || {
                if small {
                    small_files(&events, &tenant, &topic);
                } else {
                    let batch = build(&events, &tenant, &topic).finish().expect("batch");
                    to_parquet(&batch).expect("parquet");
                }
            },
        );
        eprintln!("paired: {name} / parse_only (sonic-rs DOM): {r}");
    }
    let batch = build(&events, &tenant, &topic).finish().expect("batch");
    let file = to_parquet(&batch).expect("parquet").len();
    eprintln!(
        "archive: {EVENTS} events, {bytes} bytes of JSON -> {file} bytes of Parquet ({:.1}x)",
        bytes as f64 / file as f64
    );
    let small = small_files(&events, &tenant, &topic);
    eprintln!(
        "archive: the same in files of {SMALL_FILE} events -> {small} bytes ({:.1}x)",
        bytes as f64 / small as f64
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
