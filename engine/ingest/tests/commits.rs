//! Offset commits that fail around a rebalance: a segment written under an
//! offset the broker never accepted keeps its intent, so whoever owns the
//! partition next cuts it the same way (no record archived twice under two
//! file names). librdkafka's mock cluster injects the failures.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use warden_ingest::broker::DevBroker;
use warden_ingest::config::{Config, TenantConfig};
use warden_ingest::pipeline::{RunOptions, run};
use warden_ingest::tenants::Tenants;

const TOPIC: &str = "commits";
const GROUP: &str = "warden-commits";

fn produce(brokers: &str, partition: i32, from: u64, n: u64) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for i in from..from + n {
        let payload = format!("{{\"seq\":{i},\"msg\":\"event {i} on {partition}\"}}");
        p.send(
            BaseRecord::to(TOPIC)
                .partition(partition)
                .key("acme")
                .payload(&payload),
        )
        .expect("send");
    }
    p.flush(Duration::from_secs(10)).expect("flush");
}

/// The group's committed offset per partition (-1: none).
fn committed(brokers: &str) -> [i64; 2] {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", GROUP)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(TOPIC, 0);
    tpl.add_partition(TOPIC, 1);
    let mut out = [-1, -1];
    if let Ok(list) = c.committed_offsets(tpl, Duration::from_secs(5)) {
        for e in list.elements() {
            if let Offset::Offset(o) = e.offset() {
                out[e.partition() as usize] = o;
            }
        }
    }
    out
}

/// First offsets of the events files of `partition`.
fn files(store: &Path, partition: i32) -> BTreeSet<i64> {
    let prefix = format!("{TOPIC}-{partition}-");
    let mut out = BTreeSet::new();
    let mut stack = vec![store.join("tenants")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains("/events/")
                && let Some(first) = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix(&prefix))
                    .and_then(|n| n.strip_suffix(".parquet"))
                    .and_then(|n| n.parse().ok())
            {
                out.insert(first);
            }
        }
    }
    out
}

/// First offsets of the segment intents of `partition`.
fn intents(store: &Path, partition: i32) -> BTreeSet<i64> {
    let dir = store.join(format!("_state/ingest/{TOPIC}/{partition}"));
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json")?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn wait(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_revoked_partitions_uncommitted_segments_keep_their_intents() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let broker = DevBroker::start(None, rt.handle()).expect("dev broker");
    broker.create_topic(TOPIC, 2).expect("topic");
    let brokers = broker.bootstrap_servers().to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).expect("store dir");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");

    let mut cfg = Config::default();
    cfg.kafka.brokers = brokers.clone();
    cfg.kafka.topics = vec![TOPIC.into()];
    cfg.kafka.group = GROUP.into();
    cfg.kafka.session_timeout_ms = 6000;
    cfg.store.url = store.display().to_string();
    cfg.http.listen = String::new();
    cfg.pipeline.flush_records = 20;
    cfg.pipeline.flush_interval_secs = 0.2;
    let tcfg = vec![TenantConfig {
        id: "acme".into(),
        rules: vec![rules],
        indicators: vec![],
        mapping: None,
        placeholders: None,
    }];
    cfg.tenants = tcfg.clone();
    let tenants = Tenants::build(&tcfg).expect("tenants");
    let shutdown = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        until_idle: None,
        shutdown: shutdown.clone(),
    };
    let pipeline = std::thread::spawn(move || run(cfg, tenants, opts));

    // Phase 1: everything archived and committed.
    produce(&brokers, 0, 0, 50);
    produce(&brokers, 1, 0, 50);
    wait("the first commits", Duration::from_secs(60), || {
        committed(&brokers) == [50, 50]
    });

    // Phase 2: the broker refuses every commit; segments become durable
    // (files and intents) but their offsets are never committed.
    let refuse = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE; 5000];
    broker
        .fail_requests(RDKafkaApiKey::OffsetCommit, &refuse)
        .expect("inject");
    produce(&brokers, 0, 50, 50);
    produce(&brokers, 1, 50, 50);
    wait(
        "uncommitted segments on disk",
        Duration::from_secs(60),
        || (0..2).all(|p| files(&store, p).range(50..).count() >= 2),
    );

    // A second member joins: the pipeline drains its partitions (the
    // commits fail) and keeps one of them.
    let stop = Arc::new(AtomicBool::new(false));
    let assigned = Arc::new(std::sync::Mutex::new(Vec::<i32>::new()));
    let thief = {
        let (brokers, stop, assigned) = (brokers.clone(), stop.clone(), assigned.clone());
        std::thread::spawn(move || {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", GROUP)
                .set("enable.auto.commit", "false")
                .set("session.timeout.ms", "6000")
                .create()
                .expect("consumer");
            c.subscribe(&[TOPIC]).expect("subscribe");
            while !stop.load(Ordering::SeqCst) {
                // Reads without committing: only holding the partition matters.
                let _ = c.poll(Duration::from_millis(100));
                if let Ok(a) = c.assignment() {
                    *assigned.lock().expect("lock") =
                        a.elements().iter().map(|e| e.partition()).collect();
                }
            }
            c.unsubscribe();
        })
    };
    wait("the rebalance", Duration::from_secs(60), || {
        assigned.lock().expect("lock").len() == 1
    });
    let taken = assigned.lock().expect("lock")[0];
    let kept = 1 - taken;
    // Let the pipeline settle into its new assignment, then let commits through.
    std::thread::sleep(Duration::from_secs(2));
    let uncommitted: BTreeSet<i64> = files(&store, taken).range(50..).copied().collect();
    broker
        .clear_failures(RDKafkaApiKey::OffsetCommit)
        .expect("clear");

    // The kept partition moves on and commits.
    produce(&brokers, kept, 100, 30);
    wait(
        "the kept partition's commit",
        Duration::from_secs(60),
        || committed(&brokers)[kept as usize] == 130,
    );
    std::thread::sleep(Duration::from_millis(500));

    // The taken partition's offsets after 50 were never committed: its next
    // owner replays them from 50, and needs every intent to cut them as the
    // files already written were cut.
    assert_eq!(committed(&brokers)[taken as usize], 50);
    let left = intents(&store, taken);
    for first in &uncommitted {
        assert!(
            left.contains(first),
            "partition {taken}: the segment at {first} has a file but lost its intent \
             (intents left: {left:?}, files: {uncommitted:?})"
        );
    }

    stop.store(true, Ordering::SeqCst);
    thief.join().expect("thief");
    shutdown.store(true, Ordering::SeqCst);
    pipeline.join().expect("pipeline").expect("run");
}
