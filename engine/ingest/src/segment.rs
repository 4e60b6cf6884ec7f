//! Segments: the unit of archiving and of offset commits.
//!
//! A segment holds consecutive records of one Kafka partition. When it is
//! closed (by size, record count, age, rebalance or shutdown) it becomes a
//! [`FlushJob`]: one Parquet file per (tenant, hour) for events and for
//! alerts, and one per hour for dead letters, each named after the first
//! offset it holds. The job first writes an *intent* naming the segment's
//! offset range and files, then the files; only when every file of this
//! segment and of every earlier segment of the partition is durable is
//! the offset after the segment committed to Kafka.
//!
//! After a crash, consumption resumes at the committed offset, which is
//! always the first offset of a segment. If that segment's intent exists,
//! the replayed segment is cut at exactly the intent's last offset, so it
//! produces the same objects under the same names (overwriting any that
//! were written) and deletes files the intent listed that the replay no
//! longer produces. Every (topic, partition, offset) is therefore archived
//! exactly once, and so is each of its alerts (alert ids are a hash of the
//! record's coordinates and the rule). A write abandoned on a revoke stops
//! before its files unless its intent was durable before the revoke, so
//! the next owner always sees the intent of any file a former owner writes
//! (see [`FlushJob::write`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use warden_archive::batch::{AlertsBuilder, Capacity, DeadLettersBuilder, EventsBuilder};
use warden_archive::layout::{self, Hour, Table};
use warden_archive::{TenantId, Topic};

use crate::{Error, Result};

/// What a segment will write, stored before its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub files: Vec<String>,
}

/// One tenant's records for one hour within a segment.
#[derive(Debug, Default)]
pub struct TenantHour {
    pub first_offset: i64,
    pub events: EventsBuilder,
    pub alerts: AlertsBuilder,
}

/// Per-tenant counts of a segment, added to the metrics once it is durable.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub events: u64,
    pub bytes: u64,
    pub alerts: u64,
    pub deadletters: u64,
    pub mismatches: u64,
}

/// An open segment of one partition.
#[derive(Debug)]
pub struct Segment {
    pub first_offset: i64,
    pub last_offset: i64,
    pub records: usize,
    pub bytes: usize,
    pub opened: Instant,
    /// Set when replaying a segment whose intent exists: it must end here.
    pub end: Option<i64>,
    /// Files the intent listed (replays delete those no longer produced).
    pub previous_files: Vec<String>,
    /// Keyed by tenant, then hour: a known tenant is found with its `&str`,
    /// so a record costs no id allocation.
    pub tenants: BTreeMap<TenantId, BTreeMap<Hour, TenantHour>>,
    pub dead: BTreeMap<Hour, (i64, DeadLettersBuilder)>,
    /// Counts per tenant.
    counts: BTreeMap<TenantId, Counts>,
    /// Counts of dead letters without a known tenant.
    unknown: Counts,
    /// Dead letters per reason class.
    pub dead_reasons: BTreeMap<&'static str, u64>,
    /// Room to reserve for each tenant's events: what the partition's
    /// previous segment held.
    hints: BTreeMap<TenantId, Capacity>,
}

impl Segment {
    pub fn new(
        first_offset: i64,
        intent: Option<&Intent>,
        hints: BTreeMap<TenantId, Capacity>,
    ) -> Segment {
        Segment {
            first_offset,
            last_offset: first_offset - 1,
            records: 0,
            bytes: 0,
            opened: Instant::now(),
            end: intent.map(|i| i.last_offset),
            previous_files: intent.map(|i| i.files.clone()).unwrap_or_default(),
            tenants: BTreeMap::new(),
            dead: BTreeMap::new(),
            counts: BTreeMap::new(),
            unknown: Counts::default(),
            dead_reasons: BTreeMap::new(),
            hints,
        }
    }

    /// What each tenant's events took, for the next segment's reservations
    /// (a little more, so a slightly larger successor does not double).
    pub fn sizes(&self) -> BTreeMap<TenantId, Capacity> {
        self.tenants
            .iter()
            .map(|(t, hours)| {
                let mut c = Capacity::default();
                for th in hours.values() {
                    let u = th.events.capacity_used();
                    c.rows = c.rows.max(u.rows);
                    c.raw_bytes = c.raw_bytes.max(u.raw_bytes);
                }
                c.rows += c.rows / 8;
                c.raw_bytes += c.raw_bytes / 8;
                (t.clone(), c)
            })
            .collect()
    }

    pub fn tenant_hour(&mut self, tenant: &TenantId, hour: Hour, offset: i64) -> &mut TenantHour {
        if !self.tenants.contains_key(tenant.as_str()) {
            self.tenants.insert(tenant.clone(), BTreeMap::new());
        }
        let hint = self.hints.get(tenant.as_str()).copied().unwrap_or_default();
        self.tenants
            .get_mut(tenant.as_str())
            .expect("inserted above")
            .entry(hour)
            .or_insert_with(|| TenantHour {
                first_offset: offset,
                events: EventsBuilder::with_capacity(hint.rows, hint.raw_bytes),
                alerts: AlertsBuilder::default(),
            })
    }

    /// The counts of `tenant` (`None`: no known tenant).
    pub fn counts_mut(&mut self, tenant: Option<&TenantId>) -> &mut Counts {
        let Some(tenant) = tenant else {
            return &mut self.unknown;
        };
        if !self.counts.contains_key(tenant.as_str()) {
            self.counts.insert(tenant.clone(), Counts::default());
        }
        self.counts
            .get_mut(tenant.as_str())
            .expect("inserted above")
    }

    pub fn dead_hour(&mut self, hour: Hour, offset: i64) -> &mut DeadLettersBuilder {
        &mut self
            .dead
            .entry(hour)
            .or_insert_with(|| (offset, DeadLettersBuilder::default()))
            .1
    }

    /// [`Segment::due`] without the age (no clock read): after each record.
    pub fn full(&self, max_bytes: usize, max_records: usize) -> bool {
        match self.end {
            Some(end) => self.last_offset >= end,
            None => self.records > 0 && (self.bytes >= max_bytes || self.records >= max_records),
        }
    }

    /// Whether the segment should close now (before or after a record).
    pub fn due(&self, max_bytes: usize, max_records: usize, max_age: Duration) -> bool {
        match self.end {
            Some(end) => self.last_offset >= end,
            None => {
                self.records > 0
                    && (self.bytes >= max_bytes
                        || self.records >= max_records
                        || self.opened.elapsed() >= max_age)
            }
        }
    }

    /// Closes the segment into the files it must write.
    pub fn into_job(mut self, topic: &Topic, partition: i32) -> Result<FlushJob> {
        let mut files: Vec<(Path, RecordBatch)> = Vec::new();
        for (tenant, hours) in &mut self.tenants {
            for (hour, th) in hours {
                let name =
                    |t| layout::data_object(tenant, t, *hour, topic, partition, th.first_offset);
                if !th.events.is_empty() {
                    files.push((name(Table::Events), th.events.finish()?));
                }
                if !th.alerts.is_empty() {
                    files.push((name(Table::Alerts), th.alerts.finish()?));
                }
            }
        }
        for (hour, (first, b)) in &mut self.dead {
            files.push((
                layout::deadletter_object(*hour, topic, partition, *first),
                b.finish()?,
            ));
        }
        let new: BTreeSet<String> = files.iter().map(|(p, _)| p.to_string()).collect();
        let stale: Vec<Path> = self
            .previous_files
            .iter()
            .filter(|f| !new.contains(*f))
            .map(|f| Path::from(f.as_str()))
            .collect();
        // The intent lists stale files too, so a crash before they are
        // deleted leaves them to the next replay to delete.
        let listed: BTreeSet<String> = new
            .into_iter()
            .chain(stale.iter().map(|p| p.to_string()))
            .collect();
        Ok(FlushJob {
            intent: Intent {
                topic: topic.to_string(),
                partition,
                first_offset: self.first_offset,
                last_offset: self.last_offset,
                files: listed.into_iter().collect(),
            },
            intent_path: layout::intent_object(topic, partition, self.first_offset),
            files,
            stale,
            bytes: self.bytes,
            records: self.records,
            counts: self
                .counts
                .into_iter()
                .map(|(t, c)| (Some(t), c))
                .chain((self.unknown.deadletters > 0).then_some((None, self.unknown)))
                .collect(),
            dead_reasons: self.dead_reasons,
            opened: self.opened,
        })
    }
}

/// A closed segment on its way to the store.
#[derive(Debug)]
pub struct FlushJob {
    pub intent: Intent,
    pub intent_path: Path,
    pub files: Vec<(Path, RecordBatch)>,
    pub stale: Vec<Path>,
    pub bytes: usize,
    pub records: usize,
    pub counts: BTreeMap<Option<TenantId>, Counts>,
    pub dead_reasons: BTreeMap<&'static str, u64>,
    pub opened: Instant,
}

impl FlushJob {
    /// Encodes and writes the job: intent first, then the files (in
    /// parallel), then removes stale files of an earlier attempt. Returns
    /// the number of files and bytes written.
    /// Encodes and writes the segment: its intent, then its files.
    /// Returns `None`, having written no file, when `abandoned` is set
    /// before the files start: the partition has gone to another owner.
    ///
    /// `abandoned` is set in the revoke callback, before the next owner can
    /// be assigned and list the intents. Checking it after encoding and
    /// again once the intent is durable means that files are written only
    /// under an intent the next owner sees, and a replay cut at that
    /// intent's end then writes the very same names: an abandoned write
    /// that is still encoding or storing its intent never adds a second
    /// copy of records under differently named files.
    pub async fn write(
        &self,
        store: &dyn ObjectStore,
        abandoned: &AtomicBool,
    ) -> Result<Option<(usize, usize)>> {
        let files: Vec<(Path, RecordBatch)> = self.files.clone();
        let encoded: Vec<(Path, Bytes)> = tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .map(|(p, b)| Ok((p, warden_archive::batch::to_parquet(&b)?)))
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map_err(|e| Error::Other(format!("parquet encoder task: {e}")))??;
        if abandoned.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let intent = serde_json::to_vec(&self.intent).map_err(|e| Error::Other(e.to_string()))?;
        store
            .put(&self.intent_path, PutPayload::from(intent))
            .await?;
        if abandoned.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let bytes: usize = encoded.iter().map(|(_, b)| b.len()).sum();
        let n = encoded.len();
        let mut puts = futures::stream::iter(
            encoded
                .into_iter()
                .map(|(p, b)| async move { store.put(&p, PutPayload::from(b)).await.map(|_| ()) }),
        )
        .buffer_unordered(8);
        while let Some(r) = puts.next().await {
            r?;
        }
        for p in &self.stale {
            match store.delete(p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some((n, bytes)))
    }
}

/// Reads a partition's segment intents.
pub async fn load_intents(
    store: &dyn ObjectStore,
    topic: &Topic,
    partition: i32,
) -> Result<BTreeMap<i64, Intent>> {
    let prefix = layout::intent_prefix(topic, partition);
    let mut out = BTreeMap::new();
    let mut list = store.list(Some(&prefix));
    while let Some(meta) = list.next().await {
        let meta = meta?;
        let Some(off) = layout::parse_intent_offset(&meta.location) else {
            continue;
        };
        let body = store.get(&meta.location).await?.bytes().await?;
        match serde_json::from_slice::<Intent>(&body) {
            Ok(i) if i.first_offset == off && i.partition == partition => {
                out.insert(off, i);
            }
            Ok(_) | Err(_) => {
                tracing::warn!(path = %meta.location, "ignoring an unreadable segment intent");
            }
        }
    }
    Ok(out)
}
