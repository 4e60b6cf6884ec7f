//! Tenants and their compiled detectors.
//!
//! Tenants whose rules, indicators, mapping and placeholders are the same
//! share one compiled detector: a hundred tenants on the same pack cost one
//! compiled rule set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use warden_archive::TenantId;
use warden_archive::schema::PROMOTED;
use warden_detect::event::{Doc, FieldPaths};
use warden_detect::gather::{Gather, Gathered};
use warden_detect::indicators::{
    IndicatorHit, IndicatorMatcher, IndicatorScratch, IndicatorSet, load_path, parse_plain,
};
use warden_detect::{Engine, Mapping, RuleHit, Scratch};

use crate::config::TenantConfig;
use crate::{Error, Result};

/// One compiled policy layer: a rule set with its indicators, compiled once
/// and shared by every tenant it applies to.
#[derive(Debug)]
pub struct Layer {
    /// What it was compiled from (equal keys, equal layers).
    pub key: String,
    pub engine: Engine,
    pub indicators: Option<IndicatorMatcher>,
    /// Rules rejected while compiling, plus the problems below.
    pub rejected: usize,
    /// What could not be read or parsed at all (a missing pack, a YAML
    /// error), each naming where.
    pub problems: Vec<String>,
}

/// What a tenant runs: its layers, and where its promoted columns and time
/// are found (from its mapping).
#[derive(Debug)]
pub struct Detector {
    /// Indices into [`Tenants::layers`].
    pub layers: Vec<usize>,
    /// The promoted columns, in [`PROMOTED`] order, then the event time.
    fields: FieldPaths,
    /// Every path the detector reads, walked once per event. Readers: 0
    /// the fields, then each layer's rules, then each layer's indicators.
    gather: Gather,
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

/// Where one layer's rules and indicators come from.
#[derive(Default)]
struct LayerSpec {
    /// Names the layer in logs: a tenant of the config, or a policy.
    who: String,
    key: String,
    mapping: Option<Mapping>,
    placeholders: Option<warden_detect::compile::Placeholders>,
    rule_paths: Vec<PathBuf>,
    /// Inline YAML documents, with the label they are reported under.
    yaml: Vec<(String, PathBuf)>,
    indicator_paths: Vec<PathBuf>,
    /// Inline indicator lists, with their source name.
    indicator_text: Vec<(String, String)>,
    /// Found while gathering the above.
    problems: Vec<String>,
}

impl Layer {
    /// Compiles a layer. `strict`: a missing rule or indicator file fails
    /// (a static config); otherwise it is logged and the rest compiles (a
    /// control-plane policy must never stop the stream).
    fn build(spec: LayerSpec, strict: bool) -> Result<Layer> {
        let who = spec.who.clone();
        let mut problems = spec.problems;
        let mut fail = |m: String| -> Result<()> {
            if strict {
                Err(Error::Tenant {
                    tenant: who.clone(),
                    message: m,
                })
            } else {
                tracing::error!(layer = %who, "{m}");
                problems.push(m);
                Ok(())
            }
        };
        let mut b = Engine::builder();
        if let Some(m) = &spec.mapping {
            b = b.mapping(m.clone());
        }
        if let Some(p) = spec.placeholders {
            b = b.placeholders(p);
        }
        for p in &spec.rule_paths {
            if let Err(e) = b.add_path(p) {
                fail(e.to_string())?;
            }
        }
        for (text, label) in &spec.yaml {
            if let Err(e) = b.add_yaml(text, label) {
                fail(e.to_string())?;
            }
        }
        let engine = b.build();
        let mut all = Vec::new();
        for p in &spec.indicator_paths {
            match load_path(p) {
                Ok(loaded) => {
                    for r in &loaded.rejected {
                        tracing::warn!(layer = %who, "indicator rejected: {r}");
                    }
                    all.extend(loaded.indicators);
                }
                Err(e) => fail(e.to_string())?,
            }
        }
        for (text, source) in &spec.indicator_text {
            let loaded = parse_plain(text, source, source);
            for r in &loaded.rejected {
                tracing::warn!(layer = %who, "indicator rejected: {r}");
            }
            all.extend(loaded.indicators);
        }
        let indicators = (!all.is_empty()).then(|| {
            IndicatorMatcher::new(
                IndicatorSet::build(all),
                spec.mapping.as_ref().map(|m| &m.indicators),
            )
        });
        for r in engine.rejections() {
            // A shared pack holds rules for other platforms; those are expected.
            if r.reason.contains("is not covered by mapping") {
                tracing::debug!(layer = %who, file = %r.file.display(), "rule skipped: {}", r.reason);
                continue;
            }
            tracing::warn!(
                layer = %who,
                file = %r.file.display(),
                rule = r.rule_id.as_deref().unwrap_or("-"),
                "rule rejected: {}",
                r.reason
            );
        }
        tracing::info!(
            layer = %who,
            rules = engine.rules().len(),
            rejected = engine.rejections().len(),
            memory_bytes = engine.memory_usage(),
            "compiled layer"
        );
        Ok(Layer {
            key: spec.key,
            rejected: engine.rejections().len() + problems.len(),
            problems,
            engine,
            indicators,
        })
    }
}

impl Detector {
    fn new(layers: Vec<usize>, all: &[Arc<Layer>], mapping: Option<&str>) -> Detector {
        let mut fields: Vec<Vec<&str>> = promote_paths(mapping)
            .iter()
            .map(|cands| cands.to_vec())
            .collect();
        fields.push(TIME_PATHS.to_vec());
        let fields = FieldPaths::new(&fields, true);
        let mut readers = vec![fields.paths()];
        readers.extend(layers.iter().map(|&l| all[l].engine.paths()));
        readers.extend(layers.iter().map(|&l| {
            all[l]
                .indicators
                .as_ref()
                .map(|m| m.paths())
                .unwrap_or_default()
        }));
        Detector {
            gather: Gather::new(&readers),
            layers,
            fields,
        }
    }
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

/// How a tenant id resolves.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Served by this detector.
    Serve(usize),
    /// Known but suspended: its events go to the dead letters.
    Suspended,
}

/// The tenants this engine serves, and their compiled layers.
#[derive(Debug, Default)]
pub struct Tenants {
    by_id: HashMap<TenantId, Slot>,
    detectors: Vec<Detector>,
    layers: Vec<Arc<Layer>>,
    /// The control-plane version these were built from (none: a static config).
    version: Option<u64>,
}

/// Per-thread working memory for [`Tenants::detect`], and its results.
#[derive(Debug, Default)]
pub struct DetectScratch {
    /// Per layer, created on first use.
    scratch: Vec<Option<Scratch>>,
    ind: IndicatorScratch,
    layer_hits: Vec<RuleHit>,
    layer_ind: Vec<IndicatorHit>,
    gathered: Gathered,
    /// The promoted columns of the last event, in [`PROMOTED`] order.
    pub promoted: [Option<String>; PROMOTED.len()],
    /// The last event's own time (ms since the epoch), if readable.
    pub event_time: Option<i64>,
    /// The rules that matched the last event, each rule id once.
    pub hits: Vec<RuleHit>,
    /// The indicators that matched it, with the layer whose list holds them.
    pub ind_hits: Vec<(usize, IndicatorHit)>,
}

fn rule_key(h: &RuleHit) -> &str {
    h.rule
        .meta
        .id
        .as_deref()
        .unwrap_or(h.rule.meta.title.as_str())
}

impl Tenants {
    /// Compiles every configured tenant's detector, sharing identical ones.
    pub fn build(cfgs: &[TenantConfig]) -> Result<Tenants> {
        let mut t = Tenants::default();
        let mut layer_of: HashMap<String, usize> = HashMap::new();
        for c in cfgs {
            let id = TenantId::new(&c.id).map_err(|e| Error::Config(format!("tenant: {e}")))?;
            let key = format!(
                "{:?}",
                (&c.rules, &c.indicators, &c.mapping, &c.placeholders)
            );
            let idx = match layer_of.get(&key) {
                Some(&i) => i,
                None => {
                    let who = |m: String| Error::Tenant {
                        tenant: c.id.clone(),
                        message: m,
                    };
                    let mapping = c
                        .mapping
                        .as_deref()
                        .map(Mapping::resolve)
                        .transpose()
                        .map_err(|e| who(e.to_string()))?;
                    let placeholders = c
                        .placeholders
                        .as_deref()
                        .map(warden_detect::placeholders::load)
                        .transpose()
                        .map_err(|e| who(e.to_string()))?;
                    let family = mapping.as_ref().map(|m| m.name.clone());
                    let layer = Layer::build(
                        LayerSpec {
                            who: c.id.clone(),
                            key: key.clone(),
                            mapping,
                            placeholders,
                            rule_paths: c.rules.clone(),
                            indicator_paths: c.indicators.clone(),
                            ..LayerSpec::default()
                        },
                        true,
                    )?;
                    t.layers.push(Arc::new(layer));
                    t.detectors.push(Detector::new(
                        vec![t.layers.len() - 1],
                        &t.layers,
                        family.as_deref(),
                    ));
                    layer_of.insert(key, t.detectors.len() - 1);
                    t.detectors.len() - 1
                }
            };
            if t.by_id.insert(id, Slot::Serve(idx)).is_some() {
                return Err(Error::Config(format!("tenant {:?} is listed twice", c.id)));
            }
        }
        Ok(t)
    }

    /// The tenants of a control-plane state: each active tenant runs the
    /// policies it inherits, each policy compiled once per (mapping,
    /// exceptions) and shared by every tenant it applies to. Layers equal to
    /// one of `prev`'s are reused, not recompiled. Rule packs are read from
    /// `packs/<name>`. Problems in a policy are logged; they never fail the
    /// build.
    pub fn from_control(
        state: &warden_control::State,
        packs: &Path,
        prev: Option<&Tenants>,
    ) -> Tenants {
        let mut t = Tenants {
            version: Some(state.version),
            ..Tenants::default()
        };
        let reuse: HashMap<&str, &Arc<Layer>> = prev
            .map(|p| p.layers.iter().map(|l| (l.key.as_str(), l)).collect())
            .unwrap_or_default();
        let mut layer_of: HashMap<String, usize> = HashMap::new();
        let mut detector_of: HashMap<(Option<String>, Vec<usize>), usize> = HashMap::new();
        let mut mappings: HashMap<String, Option<Mapping>> = HashMap::new();
        let (mut compiled, mut reused) = (0usize, 0usize);
        for tenant in state.tenants.values() {
            if tenant.status != warden_control::Status::Active {
                t.by_id.insert(tenant.id.clone(), Slot::Suspended);
                continue;
            }
            let Some(eff) = state.effective(&tenant.id) else {
                continue;
            };
            let family = eff.mapping.as_ref().map(|(m, _)| m.clone());
            let mut layers = Vec::new();
            for a in eff.policies.iter().filter(|a| a.disabled_by.is_none()) {
                let mut key = format!(
                    "{}|{}@{}",
                    family.as_deref().unwrap_or("-"),
                    a.policy.id,
                    a.policy.version
                );
                for e in &a.exceptions {
                    key.push_str(&format!(
                        "+{}:{}",
                        e.tenant,
                        warden_control::keys::digest(&e.filter)
                    ));
                }
                if let Some(&i) = layer_of.get(&key) {
                    layers.push(i);
                    continue;
                }
                let layer = match reuse.get(key.as_str()) {
                    Some(&l) => {
                        reused += 1;
                        l.clone()
                    }
                    None => {
                        compiled += 1;
                        let mapping = mappings
                            .entry(family.clone().unwrap_or_default())
                            .or_insert_with(|| {
                                let m = family.as_deref().map(Mapping::resolve).transpose();
                                m.unwrap_or_else(|e| {
                                    tracing::error!(tenant = %tenant.id, "mapping: {e}");
                                    None
                                })
                            })
                            .clone();
                        Arc::new(policy_layer(a, key.clone(), mapping, packs))
                    }
                };
                t.layers.push(layer);
                layer_of.insert(key, t.layers.len() - 1);
                layers.push(t.layers.len() - 1);
            }
            let dkey = (family, layers);
            let d = match detector_of.get(&dkey) {
                Some(&d) => d,
                None => {
                    t.detectors
                        .push(Detector::new(dkey.1.clone(), &t.layers, dkey.0.as_deref()));
                    detector_of.insert(dkey, t.detectors.len() - 1);
                    t.detectors.len() - 1
                }
            };
            t.by_id.insert(tenant.id.clone(), Slot::Serve(d));
        }
        tracing::info!(
            version = state.version,
            tenants = t.by_id.len(),
            layers = t.layers.len(),
            compiled,
            reused,
            memory_bytes = t.memory_usage(),
            "tenants loaded from the control plane"
        );
        t
    }

    /// A tenant named by untrusted input, without allocating on success:
    /// its id and detector index, or the dead-letter class and reason.
    pub fn resolve(&self, claimed: &str) -> Result<(&TenantId, usize), (&'static str, String)> {
        match self.by_id.get_key_value(claimed) {
            Some((id, Slot::Serve(idx))) => Ok((id, *idx)),
            Some((_, Slot::Suspended)) => Err((
                "suspended_tenant",
                format!("tenant {claimed:?} is suspended"),
            )),
            None => match TenantId::new(claimed) {
                Err(e) => Err(("invalid_tenant", format!("no tenant: {e}"))),
                Ok(_) => Err(("unknown_tenant", format!("unknown tenant {claimed:?}"))),
            },
        }
    }

    pub fn detector(&self, idx: usize) -> &Detector {
        &self.detectors[idx]
    }

    pub fn detectors(&self) -> &[Detector] {
        &self.detectors
    }

    /// Every distinct compiled layer.
    pub fn layers(&self) -> &[Arc<Layer>] {
        &self.layers
    }

    pub fn layer(&self, idx: usize) -> &Layer {
        &self.layers[idx]
    }

    /// The control-plane version these were built from.
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// Tenants served (suspended ones excluded).
    pub fn len(&self) -> usize {
        self.by_id
            .values()
            .filter(|s| matches!(s, Slot::Serve(_)))
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Served tenants.
    pub fn ids(&self) -> impl Iterator<Item = &TenantId> {
        self.by_id
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Serve(_)))
            .map(|(id, _)| id)
    }

    /// Approximate heap bytes: the compiled layers, plus each tenant's entry.
    pub fn memory_usage(&self) -> usize {
        let layers: usize = self.layers.iter().map(|l| l.engine.memory_usage()).sum();
        let tenants = self.by_id.capacity() * (std::mem::size_of::<(TenantId, Slot)>() + 8)
            + self.by_id.keys().map(|k| k.as_str().len()).sum::<usize>();
        let detectors: usize = self
            .detectors
            .iter()
            .map(|d| {
                std::mem::size_of::<Detector>()
                    + d.layers.len() * 8
                    + d.fields.memory_usage()
                    + d.gather.memory_usage()
            })
            .sum();
        layers + tenants + detectors
    }

    /// Runs detector `det` on one event: its promoted columns and time
    /// (in `sc`), and every layer's rules and indicators; a rule present in
    /// two layers fires once. The event is walked once for all of them.
    pub fn detect(&self, det: usize, ev: &Doc<'_>, sc: &mut DetectScratch) {
        sc.hits.clear();
        sc.ind_hits.clear();
        if sc.scratch.len() < self.layers.len() {
            sc.scratch.resize_with(self.layers.len(), || None);
        }
        let d = &self.detectors[det];
        d.gather.gather(ev, &mut sc.gathered);
        let mut all: [Option<String>; PROMOTED.len() + 1] = Default::default();
        d.fields.texts_hits(ev, sc.gathered.of(0), &mut all);
        sc.event_time = all[PROMOTED.len()].take().and_then(|t| parse_time(&t));
        for (o, a) in sc.promoted.iter_mut().zip(all) {
            *o = a;
        }
        let single = d.layers.len() == 1;
        let n = d.layers.len();
        for (i, &l) in d.layers.iter().enumerate() {
            let layer = &self.layers[l];
            if !layer.engine.rules().is_empty() {
                let s = sc.scratch[l].get_or_insert_with(|| layer.engine.scratch());
                let hits = sc.gathered.of(1 + i);
                if single {
                    layer.engine.detect_hits(ev, hits, s, &mut sc.hits);
                } else {
                    layer.engine.detect_hits(ev, hits, s, &mut sc.layer_hits);
                    for h in sc.layer_hits.drain(..) {
                        if !sc.hits.iter().any(|x| rule_key(x) == rule_key(&h)) {
                            sc.hits.push(h);
                        }
                    }
                }
            }
            if let Some(m) = &layer.indicators {
                m.scan_hits(
                    ev,
                    sc.gathered.of(1 + n + i),
                    &mut sc.ind,
                    &mut sc.layer_ind,
                );
                sc.ind_hits.extend(sc.layer_ind.drain(..).map(|h| (l, h)));
            }
        }
    }

    /// Moves `sc`'s per-layer scratch from `old`'s layer numbering to
    /// this one's, keeping it for layers both share.
    pub fn carry_scratch(&self, old: &Tenants, sc: &mut DetectScratch) {
        let mut next: Vec<Option<Scratch>> = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let kept = old
                .layers
                .iter()
                .position(|o| Arc::ptr_eq(o, l))
                .and_then(|i| sc.scratch.get_mut(i).and_then(Option::take));
            next.push(kept);
        }
        sc.scratch = next;
    }
}

/// Compiles one policy as it applies below `a.from`: its packs, inline
/// rules and indicators, and the exceptions of the tenants between.
fn policy_layer(
    a: &warden_control::state::Applied,
    key: String,
    mapping: Option<Mapping>,
    packs: &Path,
) -> Layer {
    let p = &a.policy;
    let mut spec = LayerSpec {
        who: format!("policy {} (tenant {})", p.id, p.tenant),
        key,
        mapping,
        ..LayerSpec::default()
    };
    for name in &p.rule_packs {
        // Names are checked on commit (a fixed alphabet, no separators).
        let dir = packs.join(name);
        if dir.is_dir() {
            spec.rule_paths.push(dir);
        } else {
            let m = format!(
                "rule pack {name:?} not found: no directory {}",
                dir.display()
            );
            tracing::error!(policy = %p.id, "{m}");
            spec.problems.push(m);
        }
    }
    for (i, r) in p.rules.iter().enumerate() {
        spec.yaml.push((
            r.clone(),
            PathBuf::from(format!("policy:{}/rules[{i}]", p.id)),
        ));
    }
    for (i, e) in a.exceptions.iter().enumerate() {
        spec.yaml.push((
            e.filter.clone(),
            PathBuf::from(format!("override:{}/{}/exceptions[{i}]", e.tenant, p.id)),
        ));
    }
    if !p.indicators.is_empty() {
        spec.indicator_text
            .push((p.indicators.join("\n"), format!("policy:{}", p.id)));
    }
    let key = spec.key.clone();
    Layer::build(spec, false).unwrap_or_else(|e| {
        // Not strict: only a bug gets here; serve the policy empty.
        tracing::error!(policy = %p.id, "{e}");
        Layer {
            key,
            engine: Engine::builder().build(),
            indicators: None,
            rejected: 1,
            problems: vec![e.to_string()],
        }
    })
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
