//! Arrow schemas of the archived tables. `schemas/*.schema.json` in the
//! repository mirror these (a test keeps them in step).
//!
//! `org_id` is stored in every file as well as in the hive path, so a file
//! copied out of its directory still says whose it is; the query layer reads
//! it from the file and registers each table only over permitted prefixes.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version written into each Parquet file's key-value metadata.
pub const SCHEMA_VERSION: &str = "1";

/// Common fields promoted from the raw event to their own columns (the
/// mapping says where each is found), so SQL can filter without JSON.
pub const PROMOTED: [&str; 8] = [
    "host",
    "user",
    "event_code",
    "event_source",
    "process",
    "command_line",
    "src_ip",
    "dst_ip",
];

fn ts(name: &str, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        nullable,
    )
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// `events`: one row per archived event.
pub fn events() -> SchemaRef {
    static S: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields = vec![
            utf8("org_id", false),
            ts("event_time", false),
            ts("ingest_time", false),
            utf8("topic", false),
            Field::new("partition", DataType::Int32, false),
            Field::new("offset", DataType::Int64, false),
        ];
        fields.extend(PROMOTED.iter().map(|n| utf8(n, true)));
        fields.push(utf8("raw", false));
        Arc::new(Schema::new(fields))
    });
    S.clone()
}

/// `alerts`: one row per (event, rule or indicator) match.
pub fn alerts() -> SchemaRef {
    static S: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            utf8("alert_id", false),
            utf8("org_id", false),
            utf8("rule_id", false),
            utf8("rule_title", false),
            utf8("level", false),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                false,
            ),
            utf8("source", false),
            ts("event_time", false),
            ts("detection_time", false),
            utf8("matched", false),
            utf8("topic", false),
            Field::new("partition", DataType::Int32, false),
            Field::new("offset", DataType::Int64, false),
            utf8("host", true),
            utf8("user", true),
            utf8("raw", false),
        ]))
    });
    S.clone()
}

/// `_deadletter`: what could not be archived under a tenant, with why.
pub fn deadletters() -> SchemaRef {
    static S: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            utf8("topic", false),
            Field::new("partition", DataType::Int32, false),
            Field::new("offset", DataType::Int64, false),
            ts("ingest_time", false),
            utf8("reason", false),
            utf8("claimed_org_id", true),
            Field::new("key", DataType::Binary, true),
            Field::new("raw", DataType::Binary, false),
        ]))
    });
    S.clone()
}

/// A schema as the JSON document kept in `schemas/`: column names, Arrow
/// types and nullability, in order.
pub fn describe(name: &str, schema: &Schema, doc: &[(&str, &str)]) -> serde_json::Value {
    let cols: Vec<serde_json::Value> = schema
        .fields()
        .iter()
        .map(|f| {
            let about = doc
                .iter()
                .find(|(n, _)| *n == f.name())
                .map(|(_, d)| *d)
                .unwrap_or("");
            serde_json::json!({
                "name": f.name(),
                "type": f.data_type().to_string(),
                "nullable": f.is_nullable(),
                "description": about,
            })
        })
        .collect();
    serde_json::json!({ "table": name, "format": "parquet (zstd)", "schema_version": SCHEMA_VERSION, "columns": cols })
}

/// Column descriptions written into `schemas/archive/*.json`.
pub const DOCS: &[(&str, &str)] = &[
    (
        "org_id",
        "tenant id; also the hive partition directory org_id=<id>",
    ),
    (
        "event_time",
        "the event's own time (@timestamp, evtx TimeCreated, ...) or, when it has none, the Kafka record time",
    ),
    (
        "ingest_time",
        "Kafka record timestamp; dt= and hour= directories derive from it",
    ),
    ("topic", "Kafka topic of the record"),
    ("partition", "Kafka partition of the record"),
    (
        "offset",
        "Kafka offset of the record: (topic, partition, offset) is unique in the archive",
    ),
    (
        "host",
        "promoted: host name (Event.System.Computer, host.name, ...)",
    ),
    ("user", "promoted: user name"),
    ("event_code", "promoted: event id / code"),
    ("event_source", "promoted: channel / dataset"),
    ("process", "promoted: process image / executable"),
    ("command_line", "promoted: process command line"),
    ("src_ip", "promoted: source IP"),
    ("dst_ip", "promoted: destination IP"),
    ("raw", "the event exactly as received"),
    (
        "alert_id",
        "deterministic: hash of (topic, partition, offset, rule_id); a replay rewrites the same id",
    ),
    ("rule_id", "Sigma rule id, or indicator:<source>:<value>"),
    ("rule_title", "Sigma title or indicator description"),
    ("level", "informational, low, medium, high, critical"),
    ("tags", "Sigma tags (attack.*), or indicator tags"),
    ("source", "sigma or indicator"),
    ("detection_time", "when the engine raised the alert"),
    (
        "matched",
        "JSON array of {field, value, test}: what matched",
    ),
    (
        "reason",
        "why the record could not be archived under a tenant",
    ),
    (
        "claimed_org_id",
        "the tenant the record claimed (key, field or topic), untrusted",
    ),
    ("key", "the Kafka message key, as bytes"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// `schemas/archive/*.json` describe exactly these schemas. Regenerate
    /// with `WARDEN_BLESS=1 cargo test -p warden-archive`.
    #[test]
    fn schema_files_match() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/archive");
        for (name, schema) in [
            ("events", events()),
            ("alerts", alerts()),
            ("deadletters", deadletters()),
        ] {
            let want =
                serde_json::to_string_pretty(&describe(name, &schema, DOCS)).expect("json") + "\n";
            let path = dir.join(format!("{name}.json"));
            if std::env::var_os("WARDEN_BLESS").is_some() {
                std::fs::create_dir_all(&dir).expect("mkdir");
                std::fs::write(&path, &want).expect("write");
            }
            let got = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                got,
                want,
                "{} is out of date (WARDEN_BLESS=1 regenerates it)",
                path.display()
            );
        }
    }
}
