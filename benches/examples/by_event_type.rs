//! Where detection time goes by Windows event type: parse and detect cost
//! per EventID over the bench workload, with SigmaHQ's rules and the
//! windows mapping (`cargo run --release -p warden-benches --example
//! by_event_type [EVENTS] [REPS]`; needs ../shared/sigma).

use std::collections::BTreeMap;
use std::time::Instant;

use warden_benches::{sigmahq_windows_engine, windows_events};
use warden_detect::event::Tape;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let engine = sigmahq_windows_engine().expect("needs ../shared/sigma");
    let events = windows_events(n, 42);
    let mut sc = engine.scratch();
    let mut hits = Vec::new();
    let mut tape = Tape::new();
    // EventID -> (events, parse ns, detect ns, alerts)
    let mut by: BTreeMap<u32, (u64, u128, u128, usize)> = BTreeMap::new();
    for rep in 0..=reps {
        for e in &events {
            let t0 = Instant::now();
            let doc = tape.parse(e.as_bytes()).expect("valid");
            let t1 = Instant::now();
            engine.detect(&doc, &mut sc, &mut hits);
            let t2 = Instant::now();
            if rep == 0 {
                continue; // warm-up
            }
            let id = e
                .split("\"EventID\":")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let x = by.entry(id).or_default();
            x.0 += 1;
            x.1 += (t1 - t0).as_nanos();
            x.2 += (t2 - t1).as_nanos();
            x.3 += hits.len();
        }
    }
    let total: u128 = by.values().map(|v| v.1 + v.2).sum();
    let count: u64 = by.values().map(|v| v.0).sum();
    println!(
        "{count} events, {} ns each on average (parse + detect)",
        total / u128::from(count.max(1))
    );
    for (id, (c, p, d, a)) in &by {
        let c128 = u128::from(*c);
        println!(
            "EventID {id:5}: {:5.1}% of events, parse {:5} ns, detect {:5} ns, {:5.2} alerts/event, {:4.1}% of the time",
            *c as f64 * 100.0 / count as f64,
            p / c128,
            d / c128,
            *a as f64 / *c as f64,
            (p + d) as f64 * 100.0 / total as f64
        );
    }
}
