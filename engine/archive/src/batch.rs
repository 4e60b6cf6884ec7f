//! Column builders for each archived table, and Parquet encoding.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, ListBuilder, RecordBatch,
    StringBuilder, TimestampMillisecondBuilder,
};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::schema::{self, PROMOTED};
use crate::{Error, Result, TenantId, Topic};

/// Where an archived record came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub topic: &'a Topic,
    pub partition: i32,
    pub offset: i64,
    /// Kafka record timestamp (ms).
    pub ingest_time: i64,
}

fn ts() -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::new().with_timezone("UTC")
}

/// Rows of the `events` table.
#[derive(Debug)]
pub struct EventsBuilder {
    org_id: StringBuilder,
    event_time: TimestampMillisecondBuilder,
    ingest_time: TimestampMillisecondBuilder,
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    promoted: Vec<StringBuilder>,
    raw: StringBuilder,
    bytes: usize,
}

impl Default for EventsBuilder {
    fn default() -> Self {
        EventsBuilder::with_capacity(0, 0)
    }
}

/// A size to reserve for a builder: rows and bytes of raw events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capacity {
    pub rows: usize,
    pub raw_bytes: usize,
}

impl EventsBuilder {
    /// A builder with room for `rows` events of `raw_bytes` in all, so that
    /// filling it copies nothing (growing by doubling copies every byte
    /// about twice and faults fresh pages each time).
    pub fn with_capacity(rows: usize, raw_bytes: usize) -> EventsBuilder {
        let s = |per_row: usize| StringBuilder::with_capacity(rows, rows * per_row);
        EventsBuilder {
            org_id: s(12),
            event_time: TimestampMillisecondBuilder::with_capacity(rows).with_timezone("UTC"),
            ingest_time: TimestampMillisecondBuilder::with_capacity(rows).with_timezone("UTC"),
            topic: s(8),
            partition: Int32Builder::with_capacity(rows),
            offset: Int64Builder::with_capacity(rows),
            promoted: PROMOTED.iter().map(|_| s(24)).collect(),
            raw: StringBuilder::with_capacity(rows, raw_bytes),
            bytes: 0,
        }
    }

    /// What this builder holds now: a good reservation for its successor.
    pub fn capacity_used(&self) -> Capacity {
        Capacity {
            rows: self.len(),
            raw_bytes: self.raw.values_slice().len(),
        }
    }

    /// Appends one event. `promoted` is in [`PROMOTED`] order.
    pub fn append(
        &mut self,
        org_id: &TenantId,
        origin: Origin<'_>,
        event_time: i64,
        promoted: &[Option<&str>; PROMOTED.len()],
        raw: &str,
    ) {
        self.org_id.append_value(org_id.as_str());
        self.event_time.append_value(event_time);
        self.ingest_time.append_value(origin.ingest_time);
        self.topic.append_value(origin.topic.as_str());
        self.partition.append_value(origin.partition);
        self.offset.append_value(origin.offset);
        for (b, v) in self.promoted.iter_mut().zip(promoted) {
            b.append_option(*v);
            self.bytes += v.map_or(0, str::len);
        }
        self.raw.append_value(raw);
        self.bytes += raw.len() + 64;
    }

    pub fn len(&self) -> usize {
        self.offset.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn finish(&mut self) -> Result<RecordBatch> {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.org_id.finish()),
            Arc::new(self.event_time.finish()),
            Arc::new(self.ingest_time.finish()),
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
        ];
        cols.extend(
            self.promoted
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        cols.push(Arc::new(self.raw.finish()));
        self.bytes = 0;
        RecordBatch::try_new(schema::events(), cols).map_err(|e| Error::encode("events batch", e))
    }
}

/// One alert row.
#[derive(Debug, Clone)]
pub struct AlertRow<'a> {
    pub alert_id: &'a str,
    pub org_id: &'a TenantId,
    pub rule_id: &'a str,
    pub rule_title: &'a str,
    pub level: &'a str,
    pub tags: &'a [String],
    /// `sigma` or `indicator`.
    pub source: &'a str,
    pub event_time: i64,
    pub detection_time: i64,
    /// JSON array of `{"field", "value"}`.
    pub matched: &'a str,
    pub host: Option<&'a str>,
    pub user: Option<&'a str>,
    pub raw: &'a str,
}

/// Rows of the `alerts` table.
#[derive(Debug)]
pub struct AlertsBuilder {
    alert_id: StringBuilder,
    org_id: StringBuilder,
    rule_id: StringBuilder,
    rule_title: StringBuilder,
    level: StringBuilder,
    tags: ListBuilder<StringBuilder>,
    source: StringBuilder,
    event_time: TimestampMillisecondBuilder,
    detection_time: TimestampMillisecondBuilder,
    matched: StringBuilder,
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    host: StringBuilder,
    user: StringBuilder,
    raw: StringBuilder,
    bytes: usize,
}

impl Default for AlertsBuilder {
    fn default() -> Self {
        AlertsBuilder {
            alert_id: StringBuilder::new(),
            org_id: StringBuilder::new(),
            rule_id: StringBuilder::new(),
            rule_title: StringBuilder::new(),
            level: StringBuilder::new(),
            tags: ListBuilder::new(StringBuilder::new()),
            source: StringBuilder::new(),
            event_time: ts(),
            detection_time: ts(),
            matched: StringBuilder::new(),
            topic: StringBuilder::new(),
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            host: StringBuilder::new(),
            user: StringBuilder::new(),
            raw: StringBuilder::new(),
            bytes: 0,
        }
    }
}

impl AlertsBuilder {
    pub fn append(&mut self, a: &AlertRow<'_>, origin: Origin<'_>) {
        self.alert_id.append_value(a.alert_id);
        self.org_id.append_value(a.org_id.as_str());
        self.rule_id.append_value(a.rule_id);
        self.rule_title.append_value(a.rule_title);
        self.level.append_value(a.level);
        for t in a.tags {
            self.tags.values().append_value(t);
        }
        self.tags.append(true);
        self.source.append_value(a.source);
        self.event_time.append_value(a.event_time);
        self.detection_time.append_value(a.detection_time);
        self.matched.append_value(a.matched);
        self.topic.append_value(origin.topic.as_str());
        self.partition.append_value(origin.partition);
        self.offset.append_value(origin.offset);
        self.host.append_option(a.host);
        self.user.append_option(a.user);
        self.raw.append_value(a.raw);
        self.bytes += a.raw.len() + a.matched.len() + a.rule_title.len() + 128;
    }

    pub fn len(&self) -> usize {
        self.offset.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn finish(&mut self) -> Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.alert_id.finish()),
            Arc::new(self.org_id.finish()),
            Arc::new(self.rule_id.finish()),
            Arc::new(self.rule_title.finish()),
            Arc::new(self.level.finish()),
            Arc::new(self.tags.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.event_time.finish()),
            Arc::new(self.detection_time.finish()),
            Arc::new(self.matched.finish()),
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.raw.finish()),
        ];
        self.bytes = 0;
        RecordBatch::try_new(schema::alerts(), cols).map_err(|e| Error::encode("alerts batch", e))
    }
}

/// Rows of the dead-letter table.
#[derive(Debug)]
pub struct DeadLettersBuilder {
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    ingest_time: TimestampMillisecondBuilder,
    reason: StringBuilder,
    claimed_org_id: StringBuilder,
    key: BinaryBuilder,
    raw: BinaryBuilder,
    bytes: usize,
}

impl Default for DeadLettersBuilder {
    fn default() -> Self {
        DeadLettersBuilder {
            topic: StringBuilder::new(),
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            ingest_time: ts(),
            reason: StringBuilder::new(),
            claimed_org_id: StringBuilder::new(),
            key: BinaryBuilder::new(),
            raw: BinaryBuilder::new(),
            bytes: 0,
        }
    }
}

impl DeadLettersBuilder {
    pub fn append(
        &mut self,
        origin: Origin<'_>,
        reason: &str,
        claimed_org_id: Option<&str>,
        key: Option<&[u8]>,
        raw: &[u8],
    ) {
        self.topic.append_value(origin.topic.as_str());
        self.partition.append_value(origin.partition);
        self.offset.append_value(origin.offset);
        self.ingest_time.append_value(origin.ingest_time);
        self.reason.append_value(reason);
        self.claimed_org_id.append_option(claimed_org_id);
        self.key.append_option(key);
        self.raw.append_value(raw);
        self.bytes += raw.len() + reason.len() + 64;
    }

    pub fn len(&self) -> usize {
        self.offset.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn finish(&mut self) -> Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.ingest_time.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.claimed_org_id.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.raw.finish()),
        ];
        self.bytes = 0;
        RecordBatch::try_new(schema::deadletters(), cols)
            .map_err(|e| Error::encode("dead-letter batch", e))
    }
}

/// zstd level of archive files: level 1 compresses JSON events about as
/// well as 3 here, at a fraction of the CPU.
const ZSTD_LEVEL: i32 = 1;

/// Encodes a batch as one Parquet file, the schema version in the
/// key-value metadata.
///
/// The columns holding whole events or near-unique text (`raw`, `matched`,
/// `command_line`, `alert_id`) are zstd-compressed and skip dictionary
/// encoding and min/max statistics, since a dictionary would be tried and
/// abandoned for every page and no query prunes row groups on a whole
/// event. Every other column encodes to little on its own: short repeated
/// strings (tenant, topic, host, user, rule...) as a dictionary and runs,
/// offsets and times delta-encoded (consecutive offsets take no bits per
/// row), so they are left uncompressed, addresses excepted. parquet creates
/// a zstd context for each compressed column chunk, and the pipeline writes
/// one file per tenant and hour of each segment, so this spares most of the
/// per-file cost of small files (measured in `benches/README.md`).
pub fn to_parquet(batch: &RecordBatch) -> Result<Bytes> {
    use parquet::basic::Encoding;
    use parquet::file::properties::EnabledStatistics;
    use parquet::schema::types::ColumnPath;
    let zstd =
        Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).map_err(|e| Error::encode("parquet", e))?);
    let mut props = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            "warden.schema_version".into(),
            schema::SCHEMA_VERSION.to_string(),
        )]));
    let schema = batch.schema();
    let has = |col: &str| schema.column_with_name(col).is_some();
    for col in ["raw", "matched", "command_line", "alert_id"] {
        if has(col) {
            let path = ColumnPath::from(col);
            props = props
                .set_column_compression(path.clone(), zstd)
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_statistics_enabled(path, EnabledStatistics::None);
        }
    }
    // Addresses can take more distinct values than a dictionary page holds
    // (parquet then falls back to plain values): compressed too.
    for col in ["src_ip", "dst_ip"] {
        if has(col) {
            props = props.set_column_compression(ColumnPath::from(col), zstd);
        }
    }
    for col in ["offset", "event_time", "ingest_time", "detection_time"] {
        if has(col) {
            let path = ColumnPath::from(col);
            props = props
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
        }
    }
    let props = props.build();
    let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 3 + 1024);
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))
        .map_err(|e| Error::encode("parquet", e))?;
    w.write(batch).map_err(|e| Error::encode("parquet", e))?;
    w.close().map_err(|e| Error::encode("parquet", e))?;
    Ok(Bytes::from(buf))
}
