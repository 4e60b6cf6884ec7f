//! Warden's archive: what lands in the object store and where.
//!
//! - [`TenantId`] and [`Topic`]: validated identifiers; the only way a tenant
//!   id or a topic name reaches an object path.
//! - [`layout`]: the one place that builds object paths (hive-style
//!   `tenants/org_id=<id>/events/dt=YYYY-MM-DD/hour=HH/...`).
//! - [`schema`]: the Arrow schemas of the events, alerts and dead-letter
//!   tables, mirrored in `schemas/*.json`.
//! - [`batch`]: column builders for each table, and Parquet (zstd) encoding.
//! - [`store`]: opening the object store from a URL (`file://`, a plain path,
//!   or `s3://bucket/prefix` with the usual AWS environment).
//!
//! This crate has no Kafka and no query engine in it: the ingest pipeline
//! writes through it and the query layer reads what it describes.

pub mod batch;
mod error;
mod id;
pub mod layout;
pub mod schema;
pub mod store;

pub use error::{Error, Result};
pub use id::{AlertId, TenantId, Topic};

/// A deterministic alert id: the same event and rule always give the same id,
/// so a replay after a crash rewrites the same alert, never a second one.
pub fn alert_id(topic: &Topic, partition: i32, offset: i64, rule_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(topic.as_str().as_bytes());
    h.update([0]);
    h.update(partition.to_be_bytes());
    h.update(offset.to_be_bytes());
    h.update(rule_id.as_bytes());
    let d = h.finalize();
    hex::encode(&d[..16])
}
