//! End-to-end pipeline bench (`cargo bench -p warden-pipeline-bench`).
//!
//! One run, three rates over the same records in the same in-process broker:
//! 1. bare consumer: a consumer group polls every record (payload touched),
//!    timed from its assignment;
//! 2. detection only: parse + detect + indicators + promoted columns for
//!    each record's tenant, no Kafka and no archive;
//! 3. end to end: `warden run` from the broker to zstd Parquet on local disk
//!    with detection on, commits included.
//!
//! These machines are shared and their speed drifts within seconds, so
//! the three are measured in alternation, round after round, and each
//! ratio reported is the median of the per-round ratios (rates measured
//! minutes apart would compare poorly). Set WARDEN_BENCH_EVENTS to
//! change the record count and WARDEN_BENCH_RULES=sigmahq to give Windows
//! tenants SigmaHQ's full rule set (needs ../shared/sigma).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use warden_gen::{StreamSpec, tenant_id, tenant_kind};
use warden_ingest::broker::DevBroker;
use warden_ingest::config::{Config, TenantConfig};
use warden_ingest::pipeline::{RunOptions, run};
use warden_ingest::tenants::Tenants;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOPIC: &str = "bench";
/// Rounds of (bare, detection only, end to end).
const REPS: usize = 7;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tenants(n: usize, sigmahq: bool) -> Vec<TenantConfig> {
    let starter = repo().join("rules/packs/warden-starter");
    let ind = repo().join("rules/indicators/demo.csv");
    let shared = repo().join("../shared/sigma");
    (0..n)
        .map(|i| {
            let kind = tenant_kind(i);
            let mut rules = vec![starter.clone()];
            if sigmahq && kind.mapping() == "windows" {
                for d in ["rules", "rules-threat-hunting", "rules-emerging-threats"] {
                    if shared.join(d).is_dir() {
                        rules.push(shared.join(d));
                    }
                }
            }
            TenantConfig {
                id: tenant_id(i),
                rules,
                indicators: vec![ind.clone()],
                mapping: Some(kind.mapping().to_owned()),
                placeholders: None,
            }
        })
        .collect()
}

/// A numeric setting from the environment, or its default.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Polls every record of the topic as a fresh group; returns the records' (key, payload).
fn bare_consume(brokers: &str, group: &str, n: usize) -> (Duration, Vec<(String, Vec<u8>)>) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    c.subscribe(&[TOPIC]).expect("subscribe");
    let mut out = Vec::with_capacity(n);
    let mut started = None;
    let mut last = Instant::now();
    while out.len() < n {
        if last.elapsed() > Duration::from_secs(30) {
            panic!(
                "bare consumer stalled at {} of {n} records (the mock broker keeps ~5 MiB per partition: lower WARDEN_BENCH_EVENTS)",
                out.len()
            );
        }
        let polled = c.poll(Duration::from_millis(100));
        // Timed from the assignment, as the pipeline's sustained rate is:
        // librdkafka starts fetching there, and from the first record on
        // the clock would miss whatever it prefetched meanwhile (which made
        // this rate swing between ~0.2M and ~0.8M records/s).
        if started.is_none() && c.assignment().is_ok_and(|a| a.count() > 0) {
            started = Some(Instant::now());
        }
        if let Some(Ok(m)) = polled {
            if out.is_empty()
                && let Some(s) = started
            {
                eprintln!("  bare: assignment to first record {:?}", s.elapsed());
            }
            started.get_or_insert_with(Instant::now);
            last = Instant::now();
            let key = m
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default();
            out.push((key, m.payload().unwrap_or(&[]).to_vec()));
        }
    }
    let elapsed = started.map(|s| s.elapsed()).unwrap_or_default();
    (elapsed, out)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let events: u64 = env_or("WARDEN_BENCH_EVENTS", 40_000);
    let sigmahq = std::env::var("WARDEN_BENCH_RULES").is_ok_and(|v| v == "sigmahq");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let broker = DevBroker::start(None, rt.handle()).expect("dev broker");
    let tenants: usize = env_or("WARDEN_BENCH_TENANTS", 12);
    let partitions: i32 = env_or("WARDEN_BENCH_PARTITIONS", 8);
    broker.create_topic(TOPIC, partitions).expect("topic");
    let spec = StreamSpec {
        tenants,
        seed: 3,
        ..StreamSpec::default()
    };
    let produced =
        warden_ingest::produce::produce(broker.bootstrap_servers(), TOPIC, spec, events, None, &[])
            .expect("produce");
    let n = produced.events as usize;
    let cfgs = self::tenants(tenants, sigmahq);
    let compiled = Tenants::build(&cfgs).expect("tenants");
    eprintln!(
        "bench: {n} records in {partitions} partitions, {tenants} tenants, rules: {}",
        if sigmahq {
            "starter + SigmaHQ (Windows tenants)"
        } else {
            "starter pack"
        }
    );

    // WARDEN_BENCH_ONLY=e2e runs only the end-to-end passes (for profiling).
    let only_e2e = std::env::var("WARDEN_BENCH_ONLY").is_ok_and(|v| v == "e2e");
    let reps: usize = env_or("WARDEN_BENCH_REPS", REPS);
    let mut bare = Vec::new();
    let mut detect = Vec::new();
    let mut e2e = Vec::new();
    let mut sustained = Vec::new();
    let (mut r_detect, mut r_e2e, mut r_sustained) = (Vec::new(), Vec::new(), Vec::new());
    let mut sc = warden_ingest::tenants::DetectScratch::default();
    let mut alerts = 0usize;
    let mut tape = warden_detect::event::Tape::new();
    let idle = Duration::from_millis(500);
    for r in 0..reps {
        let mut b = f64::NAN;
        let mut d = f64::NAN;
        if !only_e2e {
            let (t, records) = bare_consume(broker.bootstrap_servers(), &format!("bare-{r}"), n);
            b = n as f64 / t.as_secs_f64();
            bare.push(b);
            alerts = 0;
            let t = Instant::now();
            for (key, payload) in &records {
                let Ok((_, idx)) = compiled.resolve(key) else {
                    continue;
                };
                let Ok(ev) = tape.parse(payload) else {
                    continue;
                };
                compiled.detect(idx, &ev, &mut sc);
                alerts += sc.hits.len() + sc.ind_hits.len();
            }
            d = n as f64 / t.elapsed().as_secs_f64();
            detect.push(d);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = Config::default();
        cfg.kafka.brokers = broker.bootstrap_servers().to_owned();
        cfg.kafka.topics = vec![TOPIC.into()];
        cfg.kafka.group = format!("e2e-{r}");
        cfg.kafka.session_timeout_ms = env_or("WARDEN_BENCH_SESSION_MS", 6000);
        cfg.store.url = dir.path().display().to_string();
        cfg.http.listen = String::new();
        // Segments of ~2 MiB, so encoding overlaps with consuming as in a
        // long-running stream (the 64 MiB default would hold this whole
        // 40 MB run in memory until the final flush).
        cfg.pipeline.flush_bytes = env_or::<usize>("WARDEN_BENCH_SEGMENT_MIB", 2) << 20;
        cfg.tenants = cfgs.clone();
        let tenants = Tenants::build(&cfgs).expect("tenants");
        let t = Instant::now();
        let s = run(
            cfg,
            tenants,
            RunOptions {
                until_idle: Some(idle),
                shutdown: Arc::new(AtomicBool::new(false)),
            },
        )
        .expect("run");
        let elapsed = t.elapsed().saturating_sub(idle);
        assert_eq!(s.records as usize, n, "every record archived");
        let e = n as f64 / elapsed.as_secs_f64();
        let su = s.sustained_rate().expect("records were committed");
        e2e.push(e);
        sustained.push(su);
        r_detect.push(d / b);
        r_e2e.push(e / b);
        r_sustained.push(su / b);
        if let (Some(f), Some(l), Some(i), Some(c)) =
            (s.first_record, s.last_record, s.idle_at, s.last_commit)
        {
            eprintln!(
                "  round {r}: bare {b:.0}/s, detection {d:.0}/s, sustained {su:.0}/s ({:.2} x bare); assignment to first record {:?}, polling {:?}, idle wait {:?}, final flush and commit {:?}",
                su / b,
                s.first_assigned.map(|a| f.saturating_duration_since(a)),
                l - f,
                i - l,
                c - i
            );
        }
    }
    let (b, d, e, su) = (median(bare), median(detect), median(e2e), median(sustained));
    println!("records: {n}, alerts per pass: {alerts}, rounds: {reps}");
    println!("medians of the rates, and of the per-round ratios to the bare consumer:");
    println!("bare consumer (poll only):     {b:>9.0} records/s");
    println!(
        "detection only (parse+detect): {d:>9.0} records/s  ({:.2} x bare)",
        median(r_detect)
    );
    println!(
        "end to end, whole run:         {e:>9.0} records/s  ({:.2} x bare)",
        median(r_e2e)
    );
    println!(
        "end to end, sustained (assignment to last commit): {su:>9.0} records/s  ({:.2} x bare)",
        median(r_sustained)
    );
}
