//! Tenants and their compiled detectors.
//!
//! Tenants whose rules, indicators, mapping and placeholders are the same
//! share one compiled detector: a hundred tenants on the same pack cost one
//! compiled rule set.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use sonic_rs::{JsonContainerTrait, Value};
use warden_archive::TenantId;
use warden_archive::schema::PROMOTED;
use warden_detect::indicators::{IndicatorMatcher, IndicatorSet, load_path};
use warden_detect::{Engine, Mapping, event};

use crate::config::TenantConfig;
use crate::{Error, Result};

/// One compiled rule set with its indicators, shared by the tenants that use it.
#[derive(Debug)]
pub struct Detector {
    pub engine: Engine,
    pub indicators: Option<IndicatorMatcher>,
    promote: Vec<Vec<Vec<String>>>,
    time: Vec<Vec<String>>,
    /// Rule files rejected while compiling (reported at start).
    pub rejected: usize,
}

/// Where the promoted columns are found, per mapping family. The first
/// candidate that holds a scalar wins.
fn promote_paths(mapping: Option<&str>) -> [&'static [&'static str]; PROMOTED.len()] {
    const WIN: [&[&str]; 8] = [
        &["Event.System.Computer"],
        &[
            "Event.EventData.User",
            "Event.EventData.TargetUserName",
            "Event.EventData.SubjectUserName",
        ],
        &["Event.System.EventID"],
        &["Event.System.Channel"],
        &[
            "Event.EventData.Image",
            "Event.EventData.NewProcessName",
            "Event.EventData.ProcessName",
        ],
        &["Event.EventData.CommandLine"],
        &["Event.EventData.SourceIp", "Event.EventData.IpAddress"],
        &["Event.EventData.DestinationIp"],
    ];
    const ECS: [&[&str]; 8] = [
        &["host.name", "host.hostname", "winlog.computer_name"],
        &["user.name", "winlog.event_data.User"],
        &["event.code", "winlog.event_id"],
        &["event.dataset", "event.module", "winlog.channel"],
        &["process.executable", "process.name"],
        &["process.command_line", "process.title"],
        &["source.ip", "client.ip"],
        &["destination.ip", "server.ip"],
    ];
    match mapping {
        Some(n) if n.starts_with("windows") => WIN,
        Some(n) if n.starts_with("ecs") => ECS,
        // Unknown shape: try ECS, then the evtx layout.
        _ => {
            let mut out = ECS;
            for (o, w) in out.iter_mut().zip(WIN) {
                *o = if o.is_empty() { w } else { o };
            }
            out
        }
    }
}

const TIME_PATHS: &[&str] = &[
    "@timestamp",
    "Event.System.TimeCreated.#attributes.SystemTime",
    "Event.System.TimeCreated.SystemTime",
    "timestamp",
    "event.created",
    "time",
    "EventTime",
];

impl Detector {
    fn build(cfg: &TenantConfig) -> Result<Detector> {
        let who = |m: String| Error::Tenant {
            tenant: cfg.id.clone(),
            message: m,
        };
        let mapping = cfg
            .mapping
            .as_deref()
            .map(Mapping::resolve)
            .transpose()
            .map_err(|e| who(e.to_string()))?;
        let mut b = Engine::builder();
        if let Some(m) = &mapping {
            b = b.mapping(m.clone());
        }
        if let Some(p) = &cfg.placeholders {
            b = b.placeholders(
                warden_detect::placeholders::load(p).map_err(|e| who(e.to_string()))?,
            );
        }
        for p in &cfg.rules {
            b.add_path(p).map_err(|e| who(e.to_string()))?;
        }
        let engine = b.build();
        let indicators = if cfg.indicators.is_empty() {
            None
        } else {
            let mut all = Vec::new();
            for p in &cfg.indicators {
                let loaded = load_path(p).map_err(|e| who(e.to_string()))?;
                for r in &loaded.rejected {
                    tracing::warn!(tenant = %cfg.id, "indicator rejected: {r}");
                }
                all.extend(loaded.indicators);
            }
            Some(IndicatorMatcher::new(
                IndicatorSet::build(all),
                mapping.as_ref().map(|m| &m.indicators),
            ))
        };
        let family = mapping.as_ref().map(|m| m.name.as_str());
        let promote = promote_paths(family)
            .iter()
            .map(|cands| cands.iter().flat_map(|p| event::segmentations(p)).collect())
            .collect();
        let time = TIME_PATHS
            .iter()
            .flat_map(|p| event::segmentations(p))
            .collect();
        for r in engine.rejections() {
            // A shared pack holds rules for other platforms; those are expected.
            if r.reason.contains("is not covered by mapping") {
                tracing::debug!(tenant = %cfg.id, file = %r.file.display(), "rule skipped: {}", r.reason);
                continue;
            }
            tracing::warn!(
                tenant = %cfg.id,
                file = %r.file.display(),
                rule = r.rule_id.as_deref().unwrap_or("-"),
                "rule rejected: {}",
                r.reason
            );
        }
        Ok(Detector {
            rejected: engine.rejections().len(),
            engine,
            indicators,
            promote,
            time,
        })
    }

    /// The promoted columns of `ev`, in [`PROMOTED`] order.
    pub fn promoted(&self, ev: &Value) -> [Option<String>; PROMOTED.len()] {
        let mut out: [Option<String>; PROMOTED.len()] = Default::default();
        for (o, paths) in out.iter_mut().zip(&self.promote) {
            *o = first_text(ev, paths);
        }
        out
    }

    /// The event's own time (ms since the epoch), if it has a readable one.
    pub fn event_time(&self, ev: &Value) -> Option<i64> {
        let t = first_text(ev, &self.time)?;
        parse_time(&t)
    }
}

fn first_text(ev: &Value, paths: &[Vec<String>]) -> Option<String> {
    field_text(ev, paths, true)
}

/// The first scalar text found along `paths`, in order; with
/// `first_of_array`, an array's first element counts as its value.
pub fn field_text(ev: &Value, paths: &[Vec<String>], first_of_array: bool) -> Option<String> {
    let mut vals = Vec::new();
    let mut buf = String::new();
    for segs in paths {
        vals.clear();
        event::values_at(ev, segs, &mut vals);
        for v in &vals {
            if let Some(t) = event::scalar_text(v, &mut buf) {
                return Some(t.to_owned());
            }
            if first_of_array
                && let Some(first) = v.as_array().and_then(|a| a.first())
                && let Some(t) = event::scalar_text(first, &mut buf)
            {
                return Some(t.to_owned());
            }
        }
    }
    None
}

/// RFC 3339 (`2026-11-18T11:06:40.123Z`), the same with a space, or epoch
/// seconds / milliseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(n) = s.parse::<i64>() {
        // Seconds until the year 5138, milliseconds after.
        return Some(if n < 100_000_000_000 { n * 1000 } else { n });
    }
    None
}

/// The tenants this engine serves.
#[derive(Debug, Default)]
pub struct Tenants {
    by_id: HashMap<TenantId, usize>,
    detectors: Vec<Arc<Detector>>,
}

impl Tenants {
    /// Compiles every tenant's detector, sharing identical ones.
    pub fn build(cfgs: &[TenantConfig]) -> Result<Tenants> {
        type Key = (Vec<PathBuf>, Vec<PathBuf>, Option<String>, Option<PathBuf>);
        let mut shared: HashMap<Key, usize> = HashMap::new();
        let mut t = Tenants::default();
        for c in cfgs {
            let id = TenantId::new(&c.id).map_err(|e| Error::Config(format!("tenant: {e}")))?;
            let key = (
                c.rules.clone(),
                c.indicators.clone(),
                c.mapping.clone(),
                c.placeholders.clone(),
            );
            let idx = match shared.get(&key) {
                Some(&i) => i,
                None => {
                    let d = Detector::build(c)?;
                    tracing::info!(
                        tenant = %c.id,
                        rules = d.engine.rules().len(),
                        rejected = d.rejected,
                        memory_bytes = d.engine.memory_usage(),
                        "compiled detector"
                    );
                    t.detectors.push(Arc::new(d));
                    shared.insert(key, t.detectors.len() - 1);
                    t.detectors.len() - 1
                }
            };
            if t.by_id.insert(id, idx).is_some() {
                return Err(Error::Config(format!("tenant {:?} is listed twice", c.id)));
            }
        }
        Ok(t)
    }

    /// A tenant named by untrusted input, without allocating on success:
    /// its id and detector index, or the dead-letter class and reason.
    pub fn resolve(&self, claimed: &str) -> Result<(&TenantId, usize), (&'static str, String)> {
        if let Some((id, idx)) = self.by_id.get_key_value(claimed) {
            return Ok((id, *idx));
        }
        match TenantId::new(claimed) {
            Err(e) => Err(("invalid_tenant", format!("no tenant: {e}"))),
            Ok(_) => Err(("unknown_tenant", format!("unknown tenant {claimed:?}"))),
        }
    }

    pub fn detector(&self, idx: usize) -> &Arc<Detector> {
        &self.detectors[idx]
    }

    pub fn detectors(&self) -> &[Arc<Detector>] {
        &self.detectors
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = &TenantId> {
        self.by_id.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            parse_time("2026-11-18T11:06:40.123Z"),
            Some(1_795_000_000_123)
        );
        assert_eq!(
            parse_time("2026-11-18 11:06:40.123"),
            Some(1_795_000_000_123)
        );
        assert_eq!(parse_time("1795000000"), Some(1_795_000_000_000));
        assert_eq!(parse_time("yesterday"), None);
    }
}
