//! The object layout, built in one place from validated identifiers.
//!
//! ```text
//! tenants/org_id=<id>/events/dt=YYYY-MM-DD/hour=HH/<topic>-<partition>-<first_offset>.parquet
//! tenants/org_id=<id>/alerts/dt=YYYY-MM-DD/hour=HH/<topic>-<partition>-<first_offset>.parquet
//! _deadletter/dt=YYYY-MM-DD/hour=HH/<topic>-<partition>-<first_offset>.parquet
//! _state/ingest/<topic>/<partition>/<first_offset>.json   segment intents (see warden-ingest)
//! tenants/org_id=<id>/triage/<alert_id>/<seq>.json         alert status history (append-only)
//! _control/log/<version>.json                              control plane log (see warden-control)
//! ```
//!
//! `dt` and `hour` come from the Kafka record timestamp, not the clock, so a
//! replay after a crash puts every record under the same name again. Offsets
//! in names are zero-padded to 20 digits so listings sort by offset.

use object_store::path::Path;

use crate::{AlertId, TenantId, Topic};

/// Top-level prefix of all tenant data.
pub const TENANTS: &str = "tenants";
/// Prefix of dead letters.
pub const DEADLETTER: &str = "_deadletter";
/// Prefix of the pipeline's own state (segment intents).
pub const STATE: &str = "_state";

/// Prefix of the control-plane log.
pub const CONTROL_LOG: &str = "_control/log";

/// The control-plane entry with this version (zero-padded so listings sort).
pub fn control_entry(version: u64) -> Path {
    Path::from(format!("{CONTROL_LOG}/{version:020}.json"))
}

/// The version of a control-plane entry's object name.
pub fn parse_control_version(p: &Path) -> Option<u64> {
    p.filename()?.strip_suffix(".json")?.parse().ok()
}

/// Prefix of one alert's triage history under its tenant.
pub fn triage_prefix(tenant: &TenantId, alert_id: &AlertId) -> Path {
    path(format!("{TENANTS}/org_id={tenant}/triage/{alert_id}"))
}

/// One triage record of an alert (zero-padded sequence, written with
/// create-if-absent so two analysts cannot both write the same step).
pub fn triage_object(tenant: &TenantId, alert_id: &AlertId, seq: u64) -> Path {
    path(format!(
        "{TENANTS}/org_id={tenant}/triage/{alert_id}/{seq:010}.json"
    ))
}

/// A per-tenant table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Events,
    Alerts,
}

impl Table {
    pub fn dir(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Alerts => "alerts",
        }
    }
}

/// The hour a record is filed under (UTC), from milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hour {
    /// Hours since the Unix epoch.
    pub epoch_hour: i64,
}

impl Hour {
    pub fn of_millis(ms: i64) -> Hour {
        Hour {
            epoch_hour: ms.div_euclid(3_600_000),
        }
    }

    /// `dt=YYYY-MM-DD/hour=HH`.
    pub fn dirs(self) -> String {
        let t = chrono::DateTime::from_timestamp(self.epoch_hour * 3600, 0).unwrap_or_default();
        t.format("dt=%Y-%m-%d/hour=%H").to_string()
    }
}

fn file_name(topic: &Topic, partition: i32, first_offset: i64) -> String {
    format!("{topic}-{partition}-{first_offset:020}.parquet")
}

fn path(s: String) -> Path {
    // Every part comes from a validated id, a number or a constant, so the
    // string is always a valid path; `from` would percent-encode otherwise.
    Path::from(s)
}

/// `tenants/org_id=<id>/` — everything one tenant owns.
pub fn tenant_prefix(tenant: &TenantId) -> Path {
    path(format!("{TENANTS}/org_id={tenant}"))
}

/// `tenants/org_id=<id>/<table>/` — one tenant's table.
pub fn table_prefix(tenant: &TenantId, table: Table) -> Path {
    path(format!("{TENANTS}/org_id={tenant}/{}", table.dir()))
}

/// A tenant's data file for one (topic, partition) segment and hour.
pub fn data_object(
    tenant: &TenantId,
    table: Table,
    hour: Hour,
    topic: &Topic,
    partition: i32,
    first_offset: i64,
) -> Path {
    path(format!(
        "{TENANTS}/org_id={tenant}/{}/{}/{}",
        table.dir(),
        hour.dirs(),
        file_name(topic, partition, first_offset)
    ))
}

/// A dead-letter file for one (topic, partition) segment and hour.
pub fn deadletter_object(hour: Hour, topic: &Topic, partition: i32, first_offset: i64) -> Path {
    path(format!(
        "{DEADLETTER}/{}/{}",
        hour.dirs(),
        file_name(topic, partition, first_offset)
    ))
}

/// Where a partition's segment intents live.
pub fn intent_prefix(topic: &Topic, partition: i32) -> Path {
    path(format!("{STATE}/ingest/{topic}/{partition}"))
}

/// The intent of the segment starting at `first_offset`.
pub fn intent_object(topic: &Topic, partition: i32, first_offset: i64) -> Path {
    path(format!(
        "{STATE}/ingest/{topic}/{partition}/{first_offset:020}.json"
    ))
}

/// The first offset an intent object is named after.
pub fn parse_intent_offset(p: &Path) -> Option<i64> {
    p.filename()?.strip_suffix(".json")?.parse().ok()
}

/// The tenant a `tenants/` child directory (`org_id=<id>`) belongs to;
/// anything else (including ids that fail validation) is `None`.
pub fn parse_tenant_dir(part: &str) -> Option<TenantId> {
    TenantId::new(part.strip_prefix("org_id=")?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let t = TenantId::new("acme").expect("id");
        let topic = Topic::new("siem.events").expect("topic");
        let h = Hour::of_millis(1_795_000_000_000);
        assert_eq!(h.dirs(), "dt=2026-11-18/hour=11");
        assert_eq!(
            data_object(&t, Table::Alerts, h, &topic, 3, 42).as_ref(),
            "tenants/org_id=acme/alerts/dt=2026-11-18/hour=11/siem.events-3-00000000000000000042.parquet"
        );
        assert_eq!(
            deadletter_object(h, &topic, 0, 7).as_ref(),
            "_deadletter/dt=2026-11-18/hour=11/siem.events-0-00000000000000000007.parquet"
        );
        let i = intent_object(&topic, 2, 99);
        assert_eq!(parse_intent_offset(&i), Some(99));
        assert_eq!(parse_tenant_dir("org_id=acme"), Some(t));
        assert_eq!(parse_tenant_dir("org_id=.."), None);
        assert_eq!(parse_tenant_dir("acme"), None);
        assert_eq!(Hour::of_millis(-1).dirs(), "dt=1969-12-31/hour=23");
    }
}
