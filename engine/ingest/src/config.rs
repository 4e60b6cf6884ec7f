//! `warden run` configuration (TOML). Every key is documented in
//! `deploy/config/warden.example.toml`; unknown keys are rejected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub routing: RoutingConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub pipeline: PipelineConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub control: ControlConfig,
    /// Static tenants (`[[tenant]]` tables).
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated.
    pub brokers: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Consumer group id.
    pub group: String,
    /// Group session timeout; revoked partitions are drained within half of it.
    pub session_timeout_ms: u32,
    /// Extra librdkafka properties (security.protocol, sasl.*, ssl.*, ...).
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            topics: vec!["warden-events".into()],
            group: "warden".into(),
            session_timeout_ms: 10_000,
            properties: BTreeMap::new(),
        }
    }
}

/// Where a message's tenant comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantSource {
    /// The Kafka message key.
    Key,
    /// A top-level (or dotted) JSON field of the event (`routing.field`).
    Field,
    /// A capture of `routing.topic_pattern` on the topic name.
    Topic,
}

/// What to do with an event whose own `org_id` differs from its resolved tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mismatch {
    /// Archive it under the resolved tenant (the payload's claim is never
    /// trusted) and count it in `warden_org_id_mismatch_total`.
    Archive,
    /// Send it to the dead letters.
    Deadletter,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    pub tenant_from: TenantSource,
    /// The event field naming the tenant, for `tenant_from = "field"`; also
    /// the field checked against the resolved tenant (`org_id_mismatch`).
    pub field: String,
    /// Regex with a `tenant` capture group, for `tenant_from = "topic"`.
    pub topic_pattern: Option<String>,
    pub org_id_mismatch: Mismatch,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            tenant_from: TenantSource::Key,
            field: "org_id".into(),
            topic_pattern: None,
            org_id_mismatch: Mismatch::Archive,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `file://DIR`, a directory, `s3://BUCKET/PREFIX` or `memory://`.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "file://./data".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Larger events go to the dead letters.
    pub max_event_bytes: usize,
    /// Cap on event bytes buffered or being written; above it partitions are paused.
    pub max_inflight_bytes: usize,
    /// A partition's open segment is flushed at this many bytes ...
    pub flush_bytes: usize,
    /// ... or this many records ...
    pub flush_records: usize,
    /// ... or when its oldest record has waited this long (seconds).
    pub flush_interval_secs: f64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_event_bytes: 1 << 20,
            max_inflight_bytes: 512 << 20,
            flush_bytes: 64 << 20,
            flush_records: 250_000,
            flush_interval_secs: 10.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address of `/metrics`, `/healthz` and `/readyz`; empty to disable.
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

/// Tenants from the control plane (used when no `[[tenant]]` is configured).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Directory of the rule packs policies name (`<packs>/<name>/`);
    /// relative to the config file; by default `rules/packs` in the
    /// working directory.
    pub packs: Option<PathBuf>,
    /// Seconds between two reads of the control log.
    pub refresh_secs: f64,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            packs: None,
            refresh_secs: 2.0,
        }
    }
}

impl ControlConfig {
    pub fn packs_dir(&self) -> PathBuf {
        self.packs
            .clone()
            .unwrap_or_else(|| PathBuf::from("rules/packs"))
    }
}

/// One tenant: which rules, indicators and mapping apply to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: String,
    /// Rule files or directories (read recursively).
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// Indicator files (CSV, plain lists, STIX 2.1, MISP).
    #[serde(default)]
    pub indicators: Vec<PathBuf>,
    /// `windows`, `ecs`, or a mapping file; none: rule fields address the event directly.
    #[serde(default)]
    pub mapping: Option<String>,
    /// Placeholder file for the `expand` modifier.
    #[serde(default)]
    pub placeholders: Option<PathBuf>,
}

/// A tenants file: `[[tenant]]` tables, the same shape as the config's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantsFile {
    #[serde(default)]
    tenant: Vec<TenantConfig>,
}

fn read(path: &Path) -> Result<String> {
    warden_detect::text::read_text(path).map_err(|e| Error::Config(e.to_string()))
}

fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> Error {
    let at = e
        .span()
        .map(|s| {
            let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
            format!(":{line}")
        })
        .unwrap_or_default();
    Error::Config(format!("{}{at}: {}", path.display(), e.message()))
}

/// Makes relative paths in tenant entries relative to the file that holds them.
fn anchor(tenants: &mut [TenantConfig], file: &Path) {
    let base = file.parent().unwrap_or(Path::new("."));
    let fix = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    for t in tenants {
        t.rules.iter_mut().for_each(fix);
        t.indicators.iter_mut().for_each(fix);
        if let Some(p) = &mut t.placeholders {
            fix(p);
        }
        if let Some(m) = &mut t.mapping
            && (m.ends_with(".yml") || m.ends_with(".yaml"))
            && Path::new(m.as_str()).is_relative()
        {
            *m = base.join(m.as_str()).display().to_string();
        }
    }
}

impl Config {
    /// Parses a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = read(path)?;
        let mut c: Config = toml::from_str(&text).map_err(|e| toml_error(path, &text, &e))?;
        anchor(&mut c.tenants, path);
        if let Some(p) = &mut c.control.packs
            && p.is_relative()
        {
            *p = path.parent().unwrap_or(Path::new(".")).join(&*p);
        }
        Ok(c)
    }

    /// Parses config text (paths are relative to the working directory).
    pub fn parse(text: &str) -> Result<Config> {
        toml::from_str(text).map_err(|e| toml_error(Path::new("<config>"), text, &e))
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.kafka.topics.is_empty() {
            return bad("kafka.topics: at least one topic is needed".into());
        }
        for t in &self.kafka.topics {
            warden_archive::Topic::new(t)
                .map_err(|e| Error::Config(format!("kafka.topics: {e}")))?;
        }
        if self.routing.tenant_from == TenantSource::Topic && self.routing.topic_pattern.is_none() {
            return bad(
                "routing.topic_pattern is required when routing.tenant_from = \"topic\"".into(),
            );
        }
        if self.control.refresh_secs.is_nan() || self.control.refresh_secs <= 0.0 {
            return bad("control.refresh_secs must be positive".into());
        }
        let p = &self.pipeline;
        if p.flush_bytes == 0 || p.flush_records == 0 || p.flush_interval_secs <= 0.0 {
            return bad(
                "pipeline.flush_bytes, flush_records and flush_interval_secs must be positive"
                    .into(),
            );
        }
        if p.max_inflight_bytes < p.max_event_bytes {
            return bad(
                "pipeline.max_inflight_bytes must be at least pipeline.max_event_bytes".into(),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for t in &self.tenants {
            warden_archive::TenantId::new(&t.id)
                .map_err(|e| Error::Config(format!("tenant: {e}")))?;
            if !seen.insert(&t.id) {
                return bad(format!("tenant {:?} is listed twice", t.id));
            }
        }
        Ok(())
    }
}

/// Reads a tenants file (`--tenants FILE`).
pub fn load_tenants(path: &Path) -> Result<Vec<TenantConfig>> {
    let text = read(path)?;
    let mut f: TenantsFile = toml::from_str(&text).map_err(|e| toml_error(path, &text, &e))?;
    anchor(&mut f.tenant, path);
    Ok(f.tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let c = Config::parse("").expect("empty config");
        assert_eq!(c.kafka.group, "warden");
        assert_eq!(c.store.url, "file://./data");
        let e = Config::parse("[kafka]\nbrokers = \"x\"\ngroupp = \"y\"\n").expect_err("typo");
        let m = e.to_string();
        assert!(m.contains("<config>:3") && m.contains("groupp"), "{m}");
        let e = Config::parse("[[tenant]]\nid = \"a\"\nrule = []\n").expect_err("typo");
        assert!(e.to_string().contains("rule"), "{e}");
    }

    #[test]
    fn validation() {
        let c = Config::parse("[[tenant]]\nid = \"../x\"\n").expect("parses");
        assert!(
            c.validate()
                .expect_err("bad id")
                .to_string()
                .contains("tenant id")
        );
        let c = Config::parse("[routing]\ntenant_from = \"topic\"\n").expect("parses");
        assert!(c.validate().is_err());
        let c = Config::parse("[[tenant]]\nid = \"a\"\n[[tenant]]\nid = \"a\"\n").expect("parses");
        assert!(c.validate().expect_err("dup").to_string().contains("twice"));
    }
}

#[cfg(test)]
mod example {
    use super::*;

    /// The shipped example parses, validates, and names every key the
    /// config structs have (so the documentation cannot fall behind).
    #[test]
    fn example_config_is_complete_and_valid() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/warden.example.toml");
        let c = Config::load(&path).expect("example parses");
        c.validate().expect("example validates");
        assert_eq!(c.tenants.len(), 2);
        assert!(c.tenants[0].rules[0].exists(), "{:?}", c.tenants[0].rules);
        let text = std::fs::read_to_string(&path).expect("read");
        for key in [
            "[kafka]",
            "brokers",
            "topics",
            "group",
            "session_timeout_ms",
            "[kafka.properties]",
            "[routing]",
            "tenant_from",
            "field",
            "topic_pattern",
            "org_id_mismatch",
            "[store]",
            "url",
            "[pipeline]",
            "max_event_bytes",
            "max_inflight_bytes",
            "flush_bytes",
            "flush_records",
            "flush_interval_secs",
            "[http]",
            "listen",
            "[control]",
            "packs",
            "refresh_secs",
            "[[tenant]]",
            "id",
            "rules",
            "indicators",
            "mapping",
            "placeholders",
        ] {
            assert!(text.contains(key), "example lacks {key}");
        }
        // Serde's view of the keys: a config naming each default key parses.
        let full = "[kafka]\nbrokers=\"b\"\ntopics=[\"t\"]\ngroup=\"g\"\nsession_timeout_ms=1\n[kafka.properties]\n\
            [routing]\ntenant_from=\"field\"\nfield=\"f\"\ntopic_pattern=\"x\"\norg_id_mismatch=\"deadletter\"\n\
            [store]\nurl=\"memory://\"\n[pipeline]\nmax_event_bytes=1\nmax_inflight_bytes=2\nflush_bytes=1\n\
            flush_records=1\nflush_interval_secs=1.0\n[http]\nlisten=\"\"\n\
            [control]\npacks=\"p\"\nrefresh_secs=1.0\n";
        Config::parse(full).expect("every documented key is a real key");
    }
}
