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
