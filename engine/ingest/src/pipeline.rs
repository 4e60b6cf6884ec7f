//! The consuming loop: Kafka → tenant → detection → segments → store → commit.
//!
//! One thread polls the consumer and does the CPU work (decode, detect,
//! append to Arrow builders); a Tokio runtime encodes Parquet and talks to
//! the object store. See [`crate::segment`] for the exactly-once protocol.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use object_store::{ObjectStore, ObjectStoreExt};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use warden_archive::batch::{AlertRow, Origin};
use warden_archive::layout::Hour;
use warden_archive::{TenantId, Topic, alert_id};
use warden_detect::event::{FieldPaths, Tape};

use crate::config::{Config, Mismatch, TenantSource};
use crate::metrics::Metrics;
use crate::segment::{Counts, FlushJob, Intent, Segment, load_intents};
use crate::tenants::{DetectScratch, Tenants};
use crate::{Error, Result};

/// Where the tenants come from.
#[derive(Debug)]
pub enum Tenancy {
    /// Compiled once, from a configuration.
    Static(Tenants),
    /// The control plane in the pipeline's own store: read at start, then
    /// watched; changes apply without a restart, between two records.
    Control {
        /// Rule packs named by policies are `packs/<name>`.
        packs: PathBuf,
        /// How often the control log is re-read.
        every: Duration,
    },
}

impl From<Tenants> for Tenancy {
    fn from(t: Tenants) -> Self {
        Tenancy::Static(t)
    }
}

pub use warden_control::CONTROL_VERSION_HEADER;

/// How `run` ends.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Exit once every assigned partition has been at its end this long.
    pub until_idle: Option<Duration>,
    /// Set to stop: open segments are flushed and committed first.
    pub shutdown: Arc<AtomicBool>,
}

/// Totals of one run (records this process archived and committed).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub records: u64,
    pub events: u64,
    pub alerts: u64,
    pub deadletters: u64,
    pub segments: u64,
    pub files: u64,
    /// When the first non-empty assignment arrived (fetching starts there).
    #[serde(skip)]
    pub first_assigned: Option<Instant>,
    /// When the first record was polled.
    #[serde(skip)]
    pub first_record: Option<Instant>,
    /// When the last record was polled.
    #[serde(skip)]
    pub last_record: Option<Instant>,
    /// When `until_idle` last found every partition at its end and began
    /// the final flush.
    #[serde(skip)]
    pub idle_at: Option<Instant>,
    /// When the last successful offset commit returned.
    #[serde(skip)]
    pub last_commit: Option<Instant>,
}

impl Summary {
    /// Records per second from the first assignment (else the first record
    /// polled) to the last offset commit: the sustained rate, without group
    /// join, start-up and the idle wait of `until_idle`. Counting from the
    /// assignment includes what librdkafka prefetched before the first
    /// record was handed over.
    pub fn sustained_rate(&self) -> Option<f64> {
        let start = self.first_assigned.or(self.first_record)?;
        let mut busy = self.last_commit?.duration_since(start);
        if let (Some(last), Some(idle)) = (self.last_record, self.idle_at) {
            busy = busy.saturating_sub(idle.saturating_duration_since(last));
        }
        let secs = busy.as_secs_f64();
        (secs > 0.0).then(|| self.records as f64 / secs)
    }
}

struct Pending {
    first_offset: i64,
    next_offset: i64,
    bytes: usize,
    done: Option<Done>,
}

struct Done {
    topic: String,
    partition: i32,
    generation: u64,
    first_offset: i64,
    files: usize,
    object_bytes: usize,
    counts: BTreeMap<Option<TenantId>, Counts>,
    dead_reasons: BTreeMap<&'static str, u64>,
    records: usize,
    latency: Duration,
}

struct Part {
    topic: Topic,
    partition: i32,
    generation: u64,
    intents: BTreeMap<i64, Intent>,
    seg: Option<Segment>,
    /// What the last segment's tenants held (reserved in the next one).
    hints: BTreeMap<TenantId, warden_archive::batch::Capacity>,
    pending: VecDeque<Pending>,
    /// A broker re-delivered an offset already read (warned once).
    redelivery_seen: bool,
    /// Next offset to read (after the last record seen), once known.
    next_offset: Option<i64>,
    /// The committed offset, once known.
    committed: Option<i64>,
    cleaned: bool,
    cancel: Arc<AtomicBool>,
}

struct Work {
    tenants: Arc<Tenants>,
    det: DetectScratch,
    /// Alert ids raised for the current event (a rule or indicator in two
    /// layers raises one alert).
    raised: Vec<String>,
    /// The JSON parser's buffers, reused from record to record.
    tape: Tape,
    /// The wall clock (ms) of the current batch: alerts' detection time.
    now_ms: i64,
}

struct State {
    parts: HashMap<(String, i32), Part>,
    inflight: usize,
    generation: u64,
    work: Work,
    summary: Summary,
    /// Durable segments awaiting their offset commit: (topic, partition,
    /// first offset, the assignment generation that wrote them).
    to_commit: Vec<(String, i32, i64, u64)>,
    assigned_once: bool,
    /// The last revoke or assignment: `until_idle` counts from here too.
    rebalanced_at: Instant,
    /// Partitions are paused for memory.
    paused: bool,
}

struct Shared {
    cfg: Config,
    control: Option<Control>,
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Handle,
    metrics: Arc<Metrics>,
    topic_re: Option<regex_automata::meta::Regex>,
    /// The `routing.field` path (the tenant field; an array is no tenant).
    tenant_field: FieldPaths,
    state: Mutex<State>,
    done_tx: Sender<Done>,
    done_rx: Mutex<Receiver<Done>>,
    /// Per partition, from librdkafka's statistics: (high watermark, committed, low watermark).
    watermarks: Mutex<HashMap<(String, i32), Marks>>,
}

/// The control plane the tenants come from, when they do.
struct Control {
    plane: warden_control::ControlPlane,
    packs: PathBuf,
    every: Duration,
    /// Serialises reloads (the watcher and a record ahead of us).
    reload: Mutex<()>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// (high watermark, committed offset, low watermark) of one partition.
type Marks = (i64, i64, i64);

struct Ctx {
    shared: Arc<Shared>,
}

impl ClientContext for Ctx {
    /// librdkafka's statistics (every 500 ms) carry each partition's high
    /// watermark as last fetched: lag and end-of-partition checks read it
    /// here instead of asking the broker.
    fn stats(&self, stats: rdkafka::statistics::Statistics) {
        let mut w = self
            .shared
            .watermarks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (topic, t) in &stats.topics {
            for p in t.partitions.values() {
                if p.partition >= 0 && p.hi_offset >= 0 {
                    w.insert(
                        (topic.clone(), p.partition),
                        (p.hi_offset, p.committed_offset, p.lo_offset),
                    );
                }
            }
        }
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = r {
            let parts: Vec<(String, i32)> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect();
            tracing::info!(partitions = parts.len(), "partitions revoked: draining");
            let timeout =
                Duration::from_millis(u64::from(self.shared.cfg.kafka.session_timeout_ms) / 2);
            drain(&self.shared, consumer, &parts, timeout);
            self.shared.lock().rebalanced_at = Instant::now();
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        match r {
            Rebalance::Assign(tpl) => {
                let sh = &self.shared;
                // librdkafka keeps a partition's pause across a revoke and a
                // re-assignment: start every assignment resumed; the main loop
                // pauses again if memory is still over the cap.
                let _ = consumer.resume(tpl);
                sh.lock().paused = false;
                sh.metrics.paused.set(0);
                for e in tpl.elements() {
                    let Ok(topic) = Topic::new(e.topic()) else {
                        tracing::error!(
                            topic = e.topic(),
                            "assigned a topic with an unusable name"
                        );
                        continue;
                    };
                    let intents = loop {
                        match sh
                            .rt
                            .block_on(load_intents(sh.store.as_ref(), &topic, e.partition()))
                        {
                            Ok(i) => break i,
                            Err(err) => {
                                tracing::warn!(topic = %topic, partition = e.partition(), "reading segment intents failed, retrying: {err}");
                                std::thread::sleep(Duration::from_secs(1));
                            }
                        }
                    };
                    let mut st = sh.lock();
                    st.generation += 1;
                    let generation = st.generation;
                    st.parts
                        .entry((e.topic().to_owned(), e.partition()))
                        .or_insert_with(|| Part {
                            topic,
                            partition: e.partition(),
                            generation,
                            intents,
                            seg: None,
                            hints: BTreeMap::new(),
                            pending: VecDeque::new(),
                            next_offset: None,
                            committed: None,
                            cleaned: false,
                            redelivery_seen: false,
                            cancel: Arc::new(AtomicBool::new(false)),
                        });
                }
                let mut st = sh.lock();
                st.assigned_once = true;
                st.rebalanced_at = Instant::now();
                if tpl.count() > 0 {
                    st.summary.first_assigned.get_or_insert_with(Instant::now);
                }
                sh.metrics.assigned.set(st.parts.len() as i64);
                sh.metrics.set_ready(true);
                tracing::info!(partitions = st.parts.len(), "partitions assigned");
            }
            Rebalance::Revoke(_) => {
                let st = self.shared.lock();
                self.shared.metrics.assigned.set(st.parts.len() as i64);
            }
            Rebalance::Error(e) => tracing::warn!("rebalance error: {e}"),
        }
    }
}

/// Records taken from librdkafka's queue per clock reading and housekeeping.
const POLL_BATCH: usize = 256;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs the pipeline until shutdown or idle.
pub fn run(cfg: Config, tenants: impl Into<Tenancy>, opts: RunOptions) -> Result<Summary> {
    cfg.validate()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("warden-io")
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            what: "tokio runtime".into(),
            source: e,
        })?;
    let store = warden_archive::store::open(&cfg.store.url)?;
    // Fail early on an unreachable or read-only store.
    let probe = object_store::path::Path::from("_state/probe");
    rt.block_on(async {
        store.put(&probe, "ok".into()).await?;
        store.delete(&probe).await
    })
    .map_err(|e| Error::Other(format!("store {}: not writable: {e}", cfg.store.url)))?;
    let metrics = Arc::new(Metrics::new());
    let _http = if cfg.http.listen.is_empty() {
        None
    } else {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(&cfg.http.listen))
            .map_err(|e| Error::Io {
                what: format!("http.listen {}", cfg.http.listen),
                source: e,
            })?;
        tracing::info!(addr = %cfg.http.listen, "serving /metrics, /healthz, /readyz");
        let app = crate::metrics::router(metrics.clone());
        Some(rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        }))
    };
    {
        let stop = opts.shutdown.clone();
        rt.spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            stop.store(true, Ordering::SeqCst);
        });
    }
    let topic_re = match &cfg.routing.topic_pattern {
        Some(p) => Some(
            regex_automata::meta::Regex::new(p)
                .map_err(|e| Error::Config(format!("routing.topic_pattern: {e}")))?,
        ),
        None => None,
    };
    let tenant_field = FieldPaths::new(&[vec![cfg.routing.field.as_str()]], false);
    let (tenants, control) = match tenants.into() {
        Tenancy::Static(t) => (t, None),
        Tenancy::Control { packs, every } => {
            let plane = rt
                .block_on(warden_control::ControlPlane::open(store.clone()))
                .map_err(|e| Error::Other(format!("control plane in {}: {e}", cfg.store.url)))?;
            let t = Tenants::from_control(&plane.state(), &packs, None);
            let c = Control {
                plane,
                packs,
                every,
                reload: Mutex::new(()),
            };
            (t, Some(c))
        }
    };
    let (done_tx, done_rx) = channel();
    let shared = Arc::new(Shared {
        store,
        rt: rt.handle().clone(),
        metrics,
        topic_re,
        tenant_field,
        control,
        state: Mutex::new(State {
            parts: HashMap::new(),
            inflight: 0,
            generation: 0,
            work: Work {
                tenants: Arc::new(tenants),
                det: DetectScratch::default(),
                raised: Vec::new(),
                tape: Tape::new(),
                now_ms: 0,
            },
            summary: Summary::default(),
            to_commit: Vec::new(),
            assigned_once: false,
            rebalanced_at: Instant::now(),
            paused: false,
        }),
        done_tx,
        done_rx: Mutex::new(done_rx),
        watermarks: Mutex::new(HashMap::new()),
        cfg,
    });
    let consumer = consumer(&shared)?;
    let topics: Vec<&str> = shared.cfg.kafka.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    tracing::info!(
        brokers = %shared.cfg.kafka.brokers,
        topics = ?topics,
        group = %shared.cfg.kafka.group,
        tenants = shared.lock().work.tenants.len(),
        store = %shared.cfg.store.url,
        "consuming"
    );
    let watcher = shared.control.as_ref().map(|c| {
        let (sh, stop, every) = (shared.clone(), opts.shutdown.clone(), c.every);
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let h = std::thread::Builder::new()
            .name("warden-control".into())
            .spawn(move || {
                let mut last = Instant::now();
                while !stop.load(Ordering::SeqCst) && !d.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                    if last.elapsed() >= every {
                        last = Instant::now();
                        reload(&sh, None);
                    }
                }
            });
        (done, h)
    });
    let result = main_loop(&shared, &consumer, &opts);
    if let Some((done, h)) = watcher {
        done.store(true, Ordering::SeqCst);
        if let Ok(h) = h {
            let _ = h.join();
        }
    }
    // Flush and commit everything still assigned, then leave the group.
    let parts: Vec<(String, i32)> = shared.lock().parts.keys().cloned().collect();
    drain(&shared, &consumer, &parts, Duration::from_secs(60));
    consumer.unsubscribe();
    drop(consumer);
    let summary = shared.lock().summary.clone();
    rt.shutdown_timeout(Duration::from_secs(2));
    result.map(|()| summary)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn consumer(shared: &Arc<Shared>) -> Result<BaseConsumer<Ctx>> {
    let k = &shared.cfg.kafka;
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &k.brokers)
        .set("group.id", &k.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", k.session_timeout_ms.to_string())
        .set("queued.max.messages.kbytes", "65536")
        .set("statistics.interval.ms", "500")
        .set("client.id", "warden");
    for (key, v) in &k.properties {
        cc.set(key, v);
    }
    Ok(cc.create_with_context(Ctx {
        shared: shared.clone(),
    })?)
}

fn main_loop(sh: &Arc<Shared>, consumer: &BaseConsumer<Ctx>, opts: &RunOptions) -> Result<()> {
    let p = &sh.cfg.pipeline;
    let max_age = Duration::from_secs_f64(p.flush_interval_secs);
    let mut last_record = Instant::now();
    let mut last_tick = Instant::now();
    let mut last_lag = Instant::now();
    let mut last_group_check = Instant::now();
    loop {
        if opts.shutdown.load(Ordering::SeqCst) {
            return Ok(());
        }
        drop(settle(sh, consumer));
        // Memory: pause everything above the cap, resume below half of it.
        let (inflight, paused) = {
            let st = sh.lock();
            (st.inflight, st.paused)
        };
        sh.metrics.inflight_bytes.set(inflight as i64);
        if !paused && inflight > p.max_inflight_bytes {
            // Close the open segments so their bytes start draining.
            close_all(sh, |_| true);
            // A replayed segment must reach its intent's end before it can
            // be written, so its partition keeps going (its size is bounded
            // by the original segment's); every other partition pauses.
            let replaying: Vec<(String, i32)> = sh
                .lock()
                .parts
                .iter()
                .filter(|(_, p)| p.seg.as_ref().is_some_and(|s| s.end.is_some()))
                .map(|(k, _)| k.clone())
                .collect();
            if let Ok(a) = consumer.assignment() {
                let mut tpl = TopicPartitionList::new();
                for e in a.elements() {
                    if !replaying.contains(&(e.topic().to_owned(), e.partition())) {
                        let _ = tpl.add_partition(e.topic(), e.partition());
                    }
                }
                let _ = consumer.pause(&tpl);
            }
            sh.lock().paused = true;
            sh.metrics.paused.set(1);
            tracing::debug!(inflight, "paused: in-flight bytes over the cap");
        } else if paused && inflight <= p.max_inflight_bytes / 2 {
            if let Ok(a) = consumer.assignment() {
                let _ = consumer.resume(&a);
            }
            sh.lock().paused = false;
            sh.metrics.paused.set(0);
        }
        // A batch: the first record waits up to 50 ms, the rest are taken
        // while librdkafka has them queued, with one clock reading. The
        // state lock is released around every poll: librdkafka runs the
        // rebalance callbacks (which drain, and lock) inside `poll`.
        let mut polled = consumer.poll(Duration::from_millis(50));
        if matches!(polled, Some(Ok(_))) {
            last_record = Instant::now();
            let batch_ms = now_ms();
            {
                let mut st = sh.lock();
                st.summary.first_record.get_or_insert(last_record);
                st.summary.last_record = Some(last_record);
            }
            let mut n = 0;
            loop {
                match polled {
                    Some(Ok(msg)) => {
                        if sh.control.is_some()
                            && let Some(v) = control_version(&msg)
                        {
                            // Not in the condition: its guard would live through the reload.
                            let have = sh.lock().work.tenants.version();
                            if have.is_some_and(|have| have < v) {
                                reload(sh, Some(v));
                            }
                        }
                        let mut st = sh.lock();
                        st.work.now_ms = batch_ms;
                        record(sh, &mut st, &msg);
                        if st.inflight > p.max_inflight_bytes {
                            break;
                        }
                    }
                    Some(Err(KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e)) => tracing::warn!("kafka: {e}"),
                    None => break,
                }
                n += 1;
                if n == POLL_BATCH {
                    break;
                }
                polled = consumer.poll(Duration::ZERO);
            }
        } else {
            match polled {
                Some(Err(KafkaError::PartitionEOF(_))) | None => {}
                Some(Err(e)) => tracing::warn!("kafka: {e}"),
                Some(Ok(_)) => unreachable!("handled above"),
            }
        }
        if last_tick.elapsed() >= Duration::from_millis(200) {
            last_tick = Instant::now();
            close_all(sh, |s| s.due(p.flush_bytes, p.flush_records, max_age));
        }
        if last_lag.elapsed() >= Duration::from_secs(1) {
            last_lag = Instant::now();
            update_lag(sh);
        }
        if let Some(idle) = opts.until_idle
            && last_record.elapsed() >= idle
            && settled_for(sh, idle)
            && all_at_end(sh, consumer)
            && share_done(sh, consumer, idle, &mut last_group_check)
        {
            // Flush what is open, wait for it, and check once more that
            // nothing arrived meanwhile.
            sh.lock().summary.idle_at = Some(Instant::now());
            close_all(sh, |_| true);
            wait_pending(sh, consumer, Duration::from_secs(120));
            if all_at_end(sh, consumer) && sh.lock().parts.values().all(|p| p.seg.is_none()) {
                tracing::info!("every partition is at its end: exiting (--until-idle)");
                return Ok(());
            }
            last_record = Instant::now();
        }
    }
}

/// Handles one Kafka record.
fn record(sh: &Shared, st: &mut State, msg: &BorrowedMessage<'_>) {
    let State {
        parts,
        work,
        inflight,
        ..
    } = st;
    // A scan, not a keyed lookup: the key would need an owned topic string
    // per record, and an instance holds few partitions.
    let (topic, partition) = (msg.topic(), msg.partition());
    let Some(part) = parts
        .iter_mut()
        .find(|((t, p), _)| *p == partition && t == topic)
        .map(|(_, part)| part)
    else {
        // Not (or no longer) ours: librdkafka can deliver a prefetched
        // record around a rebalance. It will be read again by its owner.
        return;
    };
    let offset = msg.offset();
    // Kafka never hands a consumer an offset below its position; a broker
    // that does (seen with tansu 0.6 at a partition's end) would have the
    // record archived twice. Within an assignment, offsets only go up.
    if part.next_offset.is_some_and(|next| offset < next) {
        sh.metrics.redelivered.inc();
        if !std::mem::replace(&mut part.redelivery_seen, true) {
            tracing::warn!(topic = %part.topic, partition, offset, "the broker delivered an offset already read: skipped (counted in warden_redelivered_records_total)");
        }
        return;
    }
    if !part.cleaned {
        part.cleaned = true;
        // Intents below the first offset we are given are of committed segments.
        let old: Vec<i64> = part.intents.range(..offset).map(|(k, _)| *k).collect();
        for k in old {
            part.intents.remove(&k);
            let path = warden_archive::layout::intent_object(&part.topic, part.partition, k);
            let store = sh.store.clone();
            sh.rt.spawn(async move {
                let _ = store.delete(&path).await;
            });
        }
    }
    // A replayed segment ends at its intent's last offset; a record past it
    // (the last one was compacted away) closes it first.
    if part
        .seg
        .as_ref()
        .is_some_and(|s| s.end.is_some_and(|e| offset > e))
    {
        close(sh, part);
    }
    let seg = part.seg.get_or_insert_with(|| {
        let intent = part.intents.get(&offset);
        Segment::new(offset, intent, std::mem::take(&mut part.hints))
    });
    let payload = msg.payload().unwrap_or(&[]);
    let ingest_time = msg.timestamp().to_millis().unwrap_or_else(now_ms);
    let origin = Origin {
        topic: &part.topic,
        partition: part.partition,
        offset,
        ingest_time,
    };
    seg.records += 1;
    seg.last_offset = offset;
    seg.bytes += payload.len() + 64;
    *inflight += payload.len() + 64;
    part.next_offset = Some(offset + 1);
    decode(sh, work, seg, origin, msg.key(), payload);
    // Age is checked by the main loop's tick, sparing a clock per record.
    let p = &sh.cfg.pipeline;
    if seg.full(p.flush_bytes, p.flush_records) {
        close(sh, part);
    }
}

/// Sends a record to the dead letters.
#[allow(clippy::too_many_arguments)]
fn dead(
    seg: &mut Segment,
    origin: Origin<'_>,
    class: &'static str,
    reason: &str,
    tenant: Option<&TenantId>,
    claimed: Option<&str>,
    key: Option<&[u8]>,
    raw: &[u8],
) {
    let hour = Hour::of_millis(origin.ingest_time);
    let claimed: Option<String> = claimed.map(|c| c.chars().take(256).collect());
    seg.dead_hour(hour, origin.offset)
        .append(origin, reason, claimed.as_deref(), key, raw);
    seg.counts_mut(tenant).deadletters += 1;
    *seg.dead_reasons.entry(class).or_default() += 1;
}

/// Resolves, parses, detects and appends one record to the segment.
fn decode(
    sh: &Shared,
    work: &mut Work,
    seg: &mut Segment,
    origin: Origin<'_>,
    key: Option<&[u8]>,
    payload: &[u8],
) {
    let routing = &sh.cfg.routing;
    let max = sh.cfg.pipeline.max_event_bytes;
    if payload.is_empty() {
        return dead(
            seg,
            origin,
            "empty",
            "empty message",
            None,
            None,
            key,
            payload,
        );
    }
    if payload.len() > max {
        let reason = format!(
            "oversized event: {} bytes exceeds pipeline.max_event_bytes ({max})",
            payload.len()
        );
        return dead(seg, origin, "oversized", &reason, None, None, key, payload);
    }
    // The tenant from the key or topic is known before parsing.
    let pre: Option<std::result::Result<&str, String>> = match routing.tenant_from {
        TenantSource::Key => Some(match key {
            None => Err("no tenant: the message has no key (routing.tenant_from = \"key\")".into()),
            Some(k) => std::str::from_utf8(k)
                .map_err(|_| "no tenant: the message key is not UTF-8".to_owned()),
        }),
        TenantSource::Topic => Some(
            sh.topic_re
                .as_ref()
                .and_then(|re| {
                    let mut caps = re.create_captures();
                    re.captures(origin.topic.as_str(), &mut caps);
                    caps.get_group_by_name("tenant")
                        .map(|s| &origin.topic.as_str()[s.range()])
                })
                .ok_or_else(|| {
                    format!(
                        "no tenant: topic {:?} does not match routing.topic_pattern",
                        origin.topic.as_str()
                    )
                }),
        ),
        TenantSource::Field => None,
    };
    if let Some(Err(reason)) = &pre {
        return dead(seg, origin, "no_tenant", reason, None, None, key, payload);
    }
    let Work {
        tenants,
        det: dsc,
        raised,
        tape,
        now_ms: detection_time,
    } = work;
    let detection_time = *detection_time;
    let tenants: &Tenants = tenants;
    let check = |claimed: &str| tenants.resolve(claimed);
    let mut resolved = None;
    if let Some(Ok(claimed)) = &pre {
        match check(claimed) {
            Ok(t) => resolved = Some(t),
            Err((class, reason)) => {
                return dead(
                    seg,
                    origin,
                    class,
                    &reason,
                    None,
                    Some(claimed),
                    key,
                    payload,
                );
            }
        }
    }
    let ev = match tape.parse(payload) {
        Ok(v) if v.root().is_object() => v,
        Ok(_) => {
            let t = resolved.map(|(id, _)| id);
            return dead(
                seg,
                origin,
                "malformed",
                "malformed event: not a JSON object",
                t,
                None,
                key,
                payload,
            );
        }
        Err(e) => {
            let t = resolved.map(|(id, _)| id);
            let reason = if e.what() == "invalid UTF-8" {
                format!("malformed event: invalid UTF-8 at byte {}", e.offset())
            } else {
                format!("malformed JSON: {e}")
            };
            return dead(seg, origin, "malformed", &reason, t, None, key, payload);
        }
    };
    let text = ev.text();
    let field_value = sh.tenant_field.first(&ev);
    let (tenant, idx) = match resolved {
        Some(t) => t,
        None => {
            let Some(claimed) = field_value.as_deref() else {
                let reason = format!("no tenant: the event has no {:?} field", routing.field);
                return dead(seg, origin, "no_tenant", &reason, None, None, key, payload);
            };
            match check(claimed) {
                Ok(t) => t,
                Err((class, reason)) => {
                    return dead(
                        seg,
                        origin,
                        class,
                        &reason,
                        None,
                        Some(claimed),
                        key,
                        payload,
                    );
                }
            }
        }
    };
    if let Some(claimed) = field_value.as_deref()
        && claimed != tenant.as_str()
    {
        seg.counts_mut(Some(tenant)).mismatches += 1;
        if routing.org_id_mismatch == Mismatch::Deadletter {
            let reason = format!(
                "org_id mismatch: the event says {claimed:?}, the message belongs to {:?}",
                tenant.as_str()
            );
            return dead(
                seg,
                origin,
                "org_id_mismatch",
                &reason,
                Some(tenant),
                Some(claimed),
                key,
                payload,
            );
        }
    }
    tenants.detect(idx, &ev, dsc);
    let event_time = dsc.event_time.unwrap_or(origin.ingest_time);
    let hour = Hour::of_millis(origin.ingest_time);
    let refs: [Option<&str>; 8] = std::array::from_fn(|i| dsc.promoted[i].as_deref());
    let mut n_alerts = 0usize;
    raised.clear();
    let th = seg.tenant_hour(tenant, hour, origin.offset);
    th.events.append(tenant, origin, event_time, &refs, text);
    let mut alert =
        |rule_id: &str, title: &str, level: &str, tags: &[String], source: &str, matched: &str| {
            let id = alert_id(origin.topic, origin.partition, origin.offset, rule_id);
            if raised.contains(&id) {
                return;
            }
            n_alerts += 1;
            th.alerts.append(
                &AlertRow {
                    alert_id: &id,
                    org_id: tenant,
                    rule_id,
                    rule_title: title,
                    level,
                    tags,
                    source,
                    event_time,
                    detection_time,
                    matched,
                    host: refs[0],
                    user: refs[1],
                    raw: text,
                },
                origin,
            );
            raised.push(id);
        };
    for h in &dsc.hits {
        let meta = &h.rule.meta;
        let matched = serde_json::to_string(&h.matched).unwrap_or_default();
        alert(
            meta.id.as_deref().unwrap_or(meta.title.as_str()),
            &meta.title,
            meta.level.as_deref().unwrap_or("medium"),
            &meta.tags,
            "sigma",
            &matched,
        );
    }
    for (layer, h) in &dsc.ind_hits {
        if let Some(m) = &tenants.layer(*layer).indicators {
            let a = m.alert(h);
            let matched = serde_json::to_string(&a.matched).unwrap_or_default();
            alert(
                &a.rule_id,
                &a.title,
                a.level,
                &a.tags,
                "indicator",
                &matched,
            );
        }
    }
    let c = seg.counts_mut(Some(tenant));
    c.events += 1;
    c.bytes += payload.len() as u64;
    c.alerts += n_alerts as u64;
}

/// The control-plane version a record's producer saw, if it says.
fn control_version(msg: &BorrowedMessage<'_>) -> Option<u64> {
    use rdkafka::message::Headers;
    let h = msg.headers()?;
    h.iter()
        .find(|h| h.key == CONTROL_VERSION_HEADER)
        .and_then(|h| std::str::from_utf8(h.value?).ok()?.parse().ok())
}

/// Re-reads the control log and, if it moved, installs the tenants it
/// describes (compiled outside the pipeline lock; unchanged layers are
/// reused). With `want`, returns once the tenants are at least that version
/// or the log has nothing newer.
fn reload(sh: &Shared, want: Option<u64>) {
    let Some(c) = &sh.control else { return };
    let _one = c.reload.lock().unwrap_or_else(|e| e.into_inner());
    let current = sh.lock().work.tenants.clone();
    if want.is_some_and(|v| current.version().is_some_and(|have| have >= v)) {
        return; // another reload got there first
    }
    if let Err(e) = sh.rt.block_on(c.plane.refresh()) {
        tracing::warn!("control plane refresh: {e}");
        sh.metrics.control_errors.inc();
    }
    let state = c.plane.state();
    if current.version() == Some(state.version) {
        return;
    }
    let started = Instant::now();
    let next = Arc::new(Tenants::from_control(&state, &c.packs, Some(&current)));
    let mut st = sh.lock();
    let Work { tenants, det, .. } = &mut st.work;
    next.carry_scratch(tenants, det);
    st.work.tenants = next;
    drop(st);
    sh.metrics.control_version.set(state.version as i64);
    tracing::info!(
        version = state.version,
        took_ms = started.elapsed().as_millis() as u64,
        "control plane change applied"
    );
}

/// Closes a partition's open segment and starts writing it.
fn close(sh: &Shared, part: &mut Part) {
    let Some(seg) = part.seg.take() else { return };
    if seg.records == 0 {
        return;
    }
    let first_offset = seg.first_offset;
    let next_offset = seg.last_offset + 1;
    let bytes = seg.bytes;
    part.hints = seg.sizes();
    let job = match seg.into_job(&part.topic, part.partition) {
        Ok(j) => j,
        Err(e) => {
            // Building Arrow arrays from builders of the declared types
            // cannot fail; if it does, stop rather than lose records.
            tracing::error!(
                "cannot build segment {}-{}-{first_offset}: {e}",
                part.topic,
                part.partition
            );
            std::process::abort();
        }
    };
    part.intents.remove(&first_offset);
    part.pending.push_back(Pending {
        first_offset,
        next_offset,
        bytes,
        done: None,
    });
    let store = sh.store.clone();
    let tx = sh.done_tx.clone();
    let metrics = sh.metrics.clone();
    let cancel = part.cancel.clone();
    let generation = part.generation;
    sh.rt
        .spawn(async move { write_job(store, job, generation, cancel, metrics, tx).await });
}

async fn write_job(
    store: Arc<dyn ObjectStore>,
    job: FlushJob,
    generation: u64,
    cancel: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    tx: Sender<Done>,
) {
    let mut backoff = Duration::from_millis(100);
    let started = Instant::now();
    loop {
        if cancel.load(Ordering::SeqCst) {
            return;
        }
        match job.write(store.as_ref(), &cancel).await {
            // Abandoned: the next owner replays the segment.
            Ok(None) => return,
            Ok(Some((files, object_bytes))) => {
                metrics
                    .flush_seconds
                    .with_label_values(&["write"])
                    .observe(started.elapsed().as_secs_f64());
                let _ = tx.send(Done {
                    topic: job.intent.topic.clone(),
                    partition: job.intent.partition,
                    generation,
                    first_offset: job.intent.first_offset,
                    files,
                    object_bytes,
                    counts: job.counts.clone(),
                    dead_reasons: job.dead_reasons.clone(),
                    records: job.records,
                    latency: job.opened.elapsed(),
                });
                return;
            }
            Err(e) => {
                metrics.flush_errors.inc();
                tracing::warn!(
                    topic = %job.intent.topic,
                    partition = job.intent.partition,
                    first_offset = job.intent.first_offset,
                    "writing segment failed, retrying in {backoff:?}: {e}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Applies finished writes and commits each partition up to the end of its
/// leading run of durable segments (retrying a commit that failed before).
/// Returns the state, locked, for the caller's next check.
fn settle<'a, C: ConsumerContext>(
    sh: &'a Shared,
    consumer: &BaseConsumer<C>,
) -> MutexGuard<'a, State> {
    let rx = sh.done_rx.lock().unwrap_or_else(|e| e.into_inner());
    let mut st = sh.lock();
    while let Ok(d) = rx.try_recv() {
        accept_done(sh, &mut st, d);
    }
    drop(rx);
    commit(sh, &mut st, consumer);
    st
}

fn accept_done(sh: &Shared, st: &mut State, d: Done) {
    let State {
        parts,
        to_commit,
        inflight,
        summary,
        ..
    } = st;
    let Some(part) = parts.get_mut(&(d.topic.clone(), d.partition)) else {
        return;
    };
    if part.generation != d.generation {
        return;
    }
    let first = d.first_offset;
    if let Some(p) = part.pending.iter_mut().find(|p| p.first_offset == first) {
        p.done = Some(d);
    }
    let mut commit_to = None;
    while part.pending.front().is_some_and(|p| p.done.is_some()) {
        let Some(p) = part.pending.pop_front() else {
            break;
        };
        *inflight = inflight.saturating_sub(p.bytes);
        commit_to = Some(p.next_offset);
        if let Some(d) = p.done {
            for (t, c) in &d.counts {
                sh.metrics.add_counts(t.as_ref().map(TenantId::as_str), c);
                summary.events += c.events;
                summary.alerts += c.alerts;
                summary.deadletters += c.deadletters;
            }
            for (r, n) in &d.dead_reasons {
                sh.metrics
                    .deadletter_reasons
                    .with_label_values(&[r])
                    .inc_by(*n);
            }
            summary.records += d.records as u64;
            summary.segments += 1;
            summary.files += d.files as u64;
            sh.metrics
                .files
                .with_label_values(&["all"])
                .inc_by(d.files as u64);
            sh.metrics.object_bytes.inc_by(d.object_bytes as u64);
            sh.metrics
                .flush_seconds
                .with_label_values(&["latency"])
                .observe(d.latency.as_secs_f64());
            to_commit.push((d.topic.clone(), d.partition, p.first_offset, d.generation));
        }
    }
    if let Some(next) = commit_to {
        part.committed = Some(next);
    }
}

/// Commits what `accept_done` made durable, then deletes those segments' intents.
///
/// Only a segment whose partition is still ours, in the assignment that
/// wrote it, and whose offset was in a commit the broker accepted loses its
/// intent. A segment of a partition revoked before its commit went through
/// keeps its intent: the next owner starts at the last commit that did
/// succeed and must replay that segment exactly as it was cut (it deletes
/// the intents below where it starts).
fn commit<C: ConsumerContext>(sh: &Shared, st: &mut State, consumer: &BaseConsumer<C>) {
    let State {
        parts, to_commit, ..
    } = st;
    to_commit.retain(|(t, p, _, g)| {
        parts
            .get(&(t.clone(), *p))
            .is_some_and(|part| part.generation == *g)
    });
    if to_commit.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    let mut offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (t, p, _, _) in to_commit.iter() {
        if let Some(c) = parts.get(&(t.clone(), *p)).and_then(|part| part.committed) {
            offsets.insert((t.clone(), *p), c);
        }
    }
    for ((t, p), o) in &offsets {
        let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
    }
    match consumer.commit(&tpl, CommitMode::Sync) {
        Ok(()) => {
            sh.metrics.commits.inc();
            st.summary.last_commit = Some(Instant::now());
            // The segments are committed: their intents are no longer needed.
            for (t, p, first, _) in st.to_commit.drain(..) {
                if let Ok(topic) = Topic::new(&t) {
                    let path = warden_archive::layout::intent_object(&topic, p, first);
                    let store = sh.store.clone();
                    sh.rt.spawn(async move {
                        let _ = store.delete(&path).await;
                    });
                }
            }
        }
        Err(e) => {
            // Keep the intents: a replay needs them. The next commit retries.
            tracing::warn!("offset commit failed (will retry): {e}");
        }
    }
}

fn close_all(sh: &Shared, due: impl Fn(&Segment) -> bool) {
    let mut st = sh.lock();
    for part in st.parts.values_mut() {
        if part.seg.as_ref().is_some_and(|s| s.end.is_none() && due(s)) {
            close(sh, part);
        }
    }
}

fn wait_pending<C: ConsumerContext>(sh: &Shared, consumer: &BaseConsumer<C>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let st = settle(sh, consumer);
        if st.parts.values().all(|p| p.pending.is_empty()) || Instant::now() >= deadline {
            return;
        }
        drop(st);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Flushes and commits the given partitions, waiting at most `timeout`;
/// whatever is not durable by then is abandoned (the next owner replays
/// it from the committed offset). Replayed segments that have not reached
/// their intent's end are abandoned too, so the next owner cuts them the
/// same way. The partitions are then forgotten.
fn drain<C: ConsumerContext>(
    sh: &Shared,
    consumer: &BaseConsumer<C>,
    parts: &[(String, i32)],
    timeout: Duration,
) {
    {
        let mut st = sh.lock();
        let State {
            parts: all,
            inflight,
            ..
        } = &mut *st;
        for k in parts {
            if let Some(part) = all.get_mut(k) {
                match &part.seg {
                    Some(s) if s.end.is_some_and(|e| s.last_offset < e) => {
                        *inflight = inflight.saturating_sub(s.bytes);
                        part.seg = None;
                    }
                    _ => close(sh, part),
                }
            }
        }
    }
    let deadline = Instant::now() + timeout;
    loop {
        let mut st = settle(sh, consumer);
        let busy = parts
            .iter()
            .any(|k| st.parts.get(k).is_some_and(|p| !p.pending.is_empty()));
        if !busy || Instant::now() >= deadline {
            for k in parts {
                if let Some(p) = st.parts.remove(k) {
                    p.cancel.store(true, Ordering::SeqCst);
                    let left: usize = p.pending.iter().map(|x| x.bytes).sum();
                    st.inflight = st.inflight.saturating_sub(left);
                    if !p.pending.is_empty() {
                        tracing::warn!(
                            topic = %p.topic,
                            partition = p.partition,
                            segments = p.pending.len(),
                            "abandoning segments not yet durable: the next owner replays them"
                        );
                    }
                }
            }
            return;
        }
        drop(st);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `until_idle`: an assignment has been received and has held still for
/// `idle` (a revoke or a new assignment restarts the count).
fn settled_for(sh: &Shared, idle: Duration) -> bool {
    let st = sh.lock();
    st.assigned_once && st.rebalanced_at.elapsed() >= idle
}

/// `until_idle`, once this instance's partitions are at their end: an
/// instance holding none is done only once the whole group is (checked at
/// most every `idle`), or a rebalance could still hand it a backlog.
fn share_done(
    sh: &Shared,
    consumer: &BaseConsumer<Ctx>,
    idle: Duration,
    last_check: &mut Instant,
) -> bool {
    let holds = !sh.lock().parts.is_empty();
    if holds {
        return true;
    }
    if last_check.elapsed() < idle {
        return false;
    }
    *last_check = Instant::now();
    if group_caught_up(sh, consumer) {
        return true;
    }
    // Still nothing while the group has a backlog: some brokers (tansu 0.6)
    // rebalance only on a join, so join again.
    if two_sessions_since_rebalance(sh) {
        let topics: Vec<&str> = sh.cfg.kafka.topics.iter().map(String::as_str).collect();
        tracing::info!("holding no partitions while the group has unread records: rejoining");
        consumer.unsubscribe();
        if let Err(e) = consumer.subscribe(&topics) {
            tracing::warn!("rejoining the group failed: {e}");
        }
        sh.lock().rebalanced_at = Instant::now();
    }
    false
}

/// Two session timeouts since the last revoke or assignment: by then a
/// dead member's partitions should have been handed out.
fn two_sessions_since_rebalance(sh: &Shared) -> bool {
    let session = Duration::from_millis(u64::from(sh.cfg.kafka.session_timeout_ms));
    sh.lock().rebalanced_at.elapsed() >= 2 * session
}

/// For an instance that holds no partitions: whether the whole group has
/// read everything (committed offsets at every partition's end). A member
/// that died holding partitions keeps them until its session expires, and
/// some brokers hand a newcomer nothing until then: exiting on an empty
/// assignment would leave that backlog unread. A topic pattern (`^...`)
/// cannot be listed here; such an instance waits two session timeouts.
fn group_caught_up(sh: &Shared, consumer: &BaseConsumer<Ctx>) -> bool {
    let timeout = Duration::from_secs(5);
    let topics = &sh.cfg.kafka.topics;
    if topics.iter().any(|t| t.starts_with('^')) {
        return two_sessions_since_rebalance(sh);
    }
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        let Ok(md) = consumer.fetch_metadata(Some(t), timeout) else {
            return false;
        };
        for topic in md.topics() {
            for p in topic.partitions() {
                tpl.add_partition(topic.name(), p.id());
            }
        }
    }
    // The list is dropped before anything else is asked of the consumer.
    let committed: Vec<(String, i32, i64)> = match consumer.committed_offsets(tpl, timeout) {
        Ok(list) => list
            .elements()
            .iter()
            .map(|e| {
                let c = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => -1,
                };
                (e.topic().to_owned(), e.partition(), c)
            })
            .collect(),
        Err(_) => return false,
    };
    committed.iter().all(|(t, p, c)| {
        consumer
            .fetch_watermarks(t, *p, timeout)
            .is_ok_and(|(low, high)| (if *c >= 0 { *c } else { low }) >= high)
    })
}

/// Every assigned partition has been read to its end and nothing waits to be written.
fn all_at_end(sh: &Shared, consumer: &BaseConsumer<Ctx>) -> bool {
    let st = sh.lock();
    if st.parts.values().any(|p| !p.pending.is_empty()) {
        // Writes in flight: not idle yet, but let them land.
        drop(st);
        drop(settle(sh, consumer));
        return false;
    }
    let w = sh.watermarks.lock().unwrap_or_else(|e| e.into_inner());
    st.parts.iter().all(|(k, part)| {
        let Some(&(high, committed, low)) = w.get(k) else {
            return false;
        };
        // Where reading stands: our own position, else the group's
        // committed offset, else (nothing committed) the partition's start.
        let start = if committed >= 0 {
            committed
        } else {
            low.max(0)
        };
        let read = part.next_offset.or(part.committed).unwrap_or(start);
        read >= high
    })
}

fn update_lag(sh: &Shared) {
    let st = sh.lock();
    let w = sh.watermarks.lock().unwrap_or_else(|e| e.into_inner());
    for (k, part) in &st.parts {
        if let Some(&(high, committed, _)) = w.get(k) {
            let c = part.committed.unwrap_or(committed.max(0));
            sh.metrics
                .lag
                .with_label_values(&[&k.0, &k.1.to_string()])
                .set((high - c).max(0));
        }
    }
}
