//! Threat-indicator matching with 1,000,000 indicators loaded: parse-only
//! baseline vs. parse + indicator scan of the mapped fields, same events,
//! same run.

use std::net::{Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_benches::{Rng, paired, parse_only, windows_events};
use warden_detect::Mapping;
use warden_detect::event::Tape;
use warden_detect::indicators::{
    Indicator, IndicatorKind, IndicatorMatcher, IndicatorScratch, IndicatorSet,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: usize = 20_000;
const INDICATORS: usize = 1_000_000;

fn indicator(kind: IndicatorKind, value: String) -> Indicator {
    Indicator {
        kind,
        value,
        source: "bench".into(),
        description: None,
        id: None,
    }
}

/// 1M indicators: 30% IPs (some IPv6), 10% CIDRs, 30% domains, 30% hashes.
fn indicators(n: usize) -> Vec<Indicator> {
    let mut rng = Rng::new(7);
    let tlds = ["com", "net", "org", "ru", "io", "xyz"];
    (0..n)
        .map(|i| {
            let r = rng.next_u64();
            match i % 10 {
                0..=2 if r.is_multiple_of(10) => indicator(
                    IndicatorKind::Ip,
                    Ipv6Addr::from((0x2001_0db8u128 << 96) | u128::from(r)).to_string(),
                ),
                0..=2 => indicator(
                    IndicatorKind::Ip,
                    Ipv4Addr::from((r >> 16) as u32).to_string(),
                ),
                3 => {
                    let len = 16 + (r % 13) as u8;
                    let net =
                        u32::from(Ipv4Addr::from((r >> 16) as u32)) & (u32::MAX << (32 - len));
                    indicator(
                        IndicatorKind::Cidr,
                        format!("{}/{len}", Ipv4Addr::from(net)),
                    )
                }
                4..=6 => indicator(
                    IndicatorKind::Domain,
                    format!("x{:x}.{}", r >> 20, tlds[(r % 6) as usize]),
                ),
                7 => indicator(
                    IndicatorKind::Md5,
                    format!("{:016x}{:016x}", r, rng.next_u64()),
                ),
                8 => indicator(
                    IndicatorKind::Sha1,
                    format!(
                        "{:016x}{:016x}{:08x}",
                        r,
                        rng.next_u64(),
                        rng.next_u64() as u32
                    ),
                ),
                _ => indicator(
                    IndicatorKind::Sha256,
                    format!(
                        "{:016x}{:016x}{:016x}{:016x}",
                        r,
                        rng.next_u64(),
                        rng.next_u64(),
                        rng.next_u64()
                    ),
                ),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let events = windows_events(EVENTS, 42);
    let t = std::time::Instant::now();
    let set = IndicatorSet::build(indicators(INDICATORS));
    let build = t.elapsed();
    let mapping = Mapping::builtin("windows")
        .expect("shipped")
        .expect("valid");
    let matcher = IndicatorMatcher::new(set, Some(&mapping.indicators));
    eprintln!(
        "indicators: {} built in {build:?}, {} MiB",
        matcher.set().len(),
        matcher.set().memory_usage() >> 20
    );
    let mut sc = IndicatorScratch::default();
    let mut hits = Vec::new();
    let mut tape = Tape::new();
    let mut g = c.benchmark_group("indicators_1m");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(20);
    g.bench_function("parse_only", |b| b.iter(|| parse_only(&events)));
    g.bench_function("parse_and_scan", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &events {
                let doc = tape.parse(e.as_bytes()).expect("valid");
                matcher.scan(&doc, &mut sc, &mut hits);
                n += hits.len();
            }
            n
        })
    });
    g.finish();
    let r = paired(
        20,
        EVENTS,
        || {
            parse_only(&events);
        },
        || {
            for e in &events {
                let doc = tape.parse(e.as_bytes()).expect("valid");
                matcher.scan(&doc, &mut sc, &mut hits);
            }
        },
    );
    eprintln!("paired: parse_and_scan / parse_only (sonic-rs DOM): {r}");
}

criterion_group!(benches, bench);
criterion_main!(benches);
