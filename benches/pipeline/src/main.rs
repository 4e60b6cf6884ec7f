//! End-to-end pipeline bench (`cargo bench -p warden-pipeline-bench`).
//!
//! One run, three rates over the same records in the same in-process broker:
//! 1. bare consumer: a consumer group polls every record (payload touched),
//!    timed from its assignment;
//! 2. detection only: parse + detect + indicators for each record's tenant,
//!    no Kafka and no archive;
//! 3. end to end: `warden run` from the broker to zstd Parquet on local disk
//!    with detection on, commits included.
//!
//! Each is repeated and the median reported with ratios to the bare
//! consumer, since these machines are noisy. Set WARDEN_BENCH_EVENTS to
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
const REPS: usize = 3;

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

    // WARDEN_BENCH_ONLY=e2e runs only the end-to-end pass (for profiling).
    let only_e2e = std::env::var("WARDEN_BENCH_ONLY").is_ok_and(|v| v == "e2e");
    let reps = if only_e2e { 0 } else { REPS };
    let mut bare = Vec::new();
    let mut records = Vec::new();
    for r in 0..reps {
        let (t, recs) = bare_consume(broker.bootstrap_servers(), &format!("bare-{r}"), n);
        bare.push(n as f64 / t.as_secs_f64());
        records = recs;
    }

    let mut detect = Vec::new();
    let mut sc = warden_ingest::tenants::DetectScratch::default();
    let mut alerts = 0usize;
    let mut tape = warden_detect::event::Tape::new();
    for _ in 0..reps {
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
            let _ = compiled.detector(idx).promoted(&ev);
            alerts += sc.hits.len() + sc.ind_hits.len();
        }
        detect.push(n as f64 / t.elapsed().as_secs_f64());
    }

    let mut e2e = Vec::new();
    let mut sustained = Vec::new();
    let idle = Duration::from_millis(500);
    for r in 0..REPS {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = Config::default();
        cfg.kafka.brokers = broker.bootstrap_servers().to_owned();
        cfg.kafka.topics = vec![TOPIC.into()];
        cfg.kafka.group = format!("e2e-{r}");
        cfg.kafka.session_timeout_ms = 6000;
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
        e2e.push(n as f64 / elapsed.as_secs_f64());
        sustained.push(s.sustained_rate().expect("records were committed"));
        if let (Some(f), Some(l), Some(i), Some(c)) =
            (s.first_record, s.last_record, s.idle_at, s.last_commit)
        {
            eprintln!(
                "  run {r}: assignment to first record {:?}, polling {:?}, idle wait {:?}, final flush and commit {:?}",
                s.first_assigned.map(|a| f.saturating_duration_since(a)),
                l - f,
                i - l,
                c - i
            );
        }
    }
    let (b, d, e) = (median(bare), median(detect), median(e2e));
    let su = median(sustained);
    println!("records: {n}, alerts per pass: {alerts}");
    println!("bare consumer (poll only):     {:>9.0} records/s", b);
    println!(
        "detection only (parse+detect): {:>9.0} records/s  ({:.2} x bare)",
        d,
        d / b
    );
    println!(
        "end to end (Kafka->Parquet):   {:>9.0} records/s  ({:.2} x bare, {:.2} x detection only)",
        e,
        e / b,
        e / d
    );
    println!(
        "end to end, first record polled to last commit: {:>9.0} records/s  ({:.2} x bare, {:.2} x detection only)",
        su,
        su / b,
        su / d
    );
}
