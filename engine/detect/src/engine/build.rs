//! Compiling rules into an [`Engine`]: each rule is compiled into every
//! bucket its logsource routes to; predicates are interned per slot; each
//! slot's predicates become one field index; each rule gets its trigger
//! sets and an evaluation order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::flat::{Program, Triggers};
use super::keywords;
use super::route::build_router;
use super::{
    Bucket, CompiledRule, Derived, Engine, FieldRef, PathData, Pred, Rejection, RuleInfo, Slot,
    set_bit, words,
};
use crate::compile::{FieldRefSpec, Placeholders, RefMode, Sink, compile_detection};
use crate::event::{PathTrie, segmentations};
use crate::index::FieldMatcher;
use crate::mapping::{DERIVED_PREFIX, Mapping};
use crate::predicate::{Expr, Test};
use crate::sigma::{LogSource, ParsedDocument, RuleMeta, SigmaFilter, SigmaRule, parse_documents};

#[derive(Debug, Default)]
pub struct EngineBuilder {
    mapping: Option<Mapping>,
    placeholders: Placeholders,
    rules: Vec<(SigmaRule, PathBuf)>,
    filters: Vec<(SigmaFilter, PathBuf)>,
    rejections: Vec<Rejection>,
}

impl EngineBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses a field mapping (logsource routing and field paths).
    pub fn mapping(mut self, mapping: Mapping) -> Self {
        self.mapping = Some(mapping);
        self
    }

    /// Sets the values of `%placeholders%` for `|expand`.
    pub fn placeholders(mut self, ph: Placeholders) -> Self {
        self.placeholders = ph;
        self
    }

    /// Adds rules from YAML text; `file` names them in reports.
    pub fn add_yaml(&mut self, text: &str, file: &Path) -> crate::Result<()> {
        for doc in parse_documents(text, file)? {
            match doc {
                ParsedDocument::Rule(r) => self.rules.push((r, file.to_path_buf())),
                ParsedDocument::Filter(f) => self.filters.push((f, file.to_path_buf())),
                ParsedDocument::Rejected {
                    id, title, reason, ..
                } => self.rejections.push(Rejection {
                    file: file.to_path_buf(),
                    rule_id: id,
                    title,
                    reason,
                }),
            }
        }
        Ok(())
    }

    /// Adds a rule file, or every `.yml`/`.yaml` file under a directory
    /// (recursively, in sorted order). A YAML syntax error in one file is
    /// recorded as a rejection naming the file and line; the rest still loads.
    pub fn add_path(&mut self, path: &Path) -> crate::Result<()> {
        let meta = std::fs::metadata(path).map_err(|e| crate::Error::io(path, e))?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| crate::Error::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for p in entries {
                let is_yaml = p
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e == "yml" || e == "yaml");
                if p.is_dir() || is_yaml {
                    self.add_path(&p)?;
                }
            }
            return Ok(());
        }
        let bytes = std::fs::read(path).map_err(|e| crate::Error::io(path, e))?;
        // A file that cannot be read as text, or is not YAML, is rejected
        // whole with its reason; the rest of the rule set still loads.
        let reason = match crate::text::decode(bytes) {
            Err(what) => format!("{}: {what}", path.display()),
            Ok(text) => match self.add_yaml(&text, path) {
                Ok(()) => return Ok(()),
                Err(e @ crate::Error::Yaml { .. }) => e.to_string(),
                Err(e) => return Err(e),
            },
        };
        self.rejections.push(Rejection {
            file: path.to_path_buf(),
            rule_id: None,
            title: None,
            reason,
        });
        Ok(())
    }

    /// Compiles everything added so far.
    pub fn build(self) -> Engine {
        Compiler::new(self.mapping, self.placeholders).run(
            self.rules,
            self.filters,
            self.rejections,
        )
    }
}

/// Inserts a path into the trie and returns its node's data.
fn trie_insert<'a>(
    trie: &mut PathTrie,
    data: &'a mut Vec<PathData>,
    segs: &[String],
) -> &'a mut PathData {
    let node = trie.insert(segs) as usize;
    if data.len() < trie.len() {
        data.resize_with(trie.len(), PathData::default);
    }
    &mut data[node]
}

/// The compiler's state while rules are added to buckets.
struct Compiler {
    mapping: Option<Mapping>,
    placeholders: Placeholders,
    buckets: Vec<Bucket>,
    /// (buckets using it, Sigma field, paths).
    slots: Vec<(Vec<u32>, String, Vec<String>)>,
    slot_ids: HashMap<(String, Vec<String>), u32>,
    keyword_slot: Option<u32>,
    preds: Vec<(u32, Test)>,
    pred_ids: HashMap<(u32, Test), u32>,
    fieldrefs: Vec<(u32, FieldRefSpec)>,
    fieldref_ids: HashMap<(u32, FieldRefSpec), u32>,
}

struct BucketSink<'a> {
    c: &'a mut Compiler,
    bucket: u32,
}

impl BucketSink<'_> {
    /// Records that this bucket has rules on slot `id`.
    fn use_slot(&mut self, id: u32) -> u32 {
        let users = &mut self.c.slots[id as usize].0;
        if !users.contains(&self.bucket) {
            users.push(self.bucket);
        }
        id
    }
}

impl Sink for BucketSink<'_> {
    fn field_slot(&mut self, field: &str) -> u32 {
        let paths = match &self.c.mapping {
            Some(m) => m.field_paths(self.bucket as usize, field),
            None => vec![field.to_string()],
        };
        let key = (field.to_string(), paths);
        let id = match self.c.slot_ids.get(&key) {
            Some(id) => *id,
            None => {
                let id = self.c.slots.len() as u32;
                self.c
                    .slots
                    .push((Vec::new(), key.0.clone(), key.1.clone()));
                self.c.slot_ids.insert(key, id);
                id
            }
        };
        self.use_slot(id)
    }

    fn keyword_slot(&mut self) -> u32 {
        let id = match self.c.keyword_slot {
            Some(id) => id,
            None => {
                let id = self.c.slots.len() as u32;
                self.c
                    .slots
                    .push((Vec::new(), "keywords".into(), Vec::new()));
                self.c.keyword_slot = Some(id);
                id
            }
        };
        self.use_slot(id)
    }

    fn pred(&mut self, slot: u32, test: Test) -> u32 {
        let key = (slot, test);
        if let Some(id) = self.c.pred_ids.get(&key) {
            return *id;
        }
        let id = self.c.preds.len() as u32;
        self.c.preds.push(key.clone());
        self.c.pred_ids.insert(key, id);
        id
    }

    fn fieldref(&mut self, spec: FieldRefSpec) -> u32 {
        let key = (self.bucket, spec);
        if let Some(id) = self.c.fieldref_ids.get(&key) {
            return *id;
        }
        let id = self.c.fieldrefs.len() as u32;
        self.c.fieldrefs.push(key.clone());
        self.c.fieldref_ids.insert(key, id);
        id
    }
}

fn filter_applies(filter: &SigmaFilter, rule: &RuleMeta) -> bool {
    let named = filter.rules.iter().any(|r| {
        r.eq_ignore_ascii_case("any")
            || rule.id.as_deref() == Some(r.as_str())
            || rule.name.as_deref() == Some(r.as_str())
    });
    let agrees = |f: &Option<String>, r: &Option<String>| match f {
        None => true,
        Some(f) => r.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(f)),
    };
    let (fl, rl) = (&filter.meta.logsource, &rule.logsource);
    named
        && agrees(&fl.category, &rl.category)
        && agrees(&fl.product, &rl.product)
        && agrees(&fl.service, &rl.service)
}

impl Compiler {
    fn new(mapping: Option<Mapping>, placeholders: Placeholders) -> Self {
        // One bucket per logsource entry; without a mapping, one for all.
        let nbuckets = mapping.as_ref().map_or(1, |m| m.logsources.len());
        let buckets = (0..nbuckets).map(|_| Bucket::default()).collect();
        Compiler {
            mapping,
            placeholders,
            buckets,
            slots: Vec::new(),
            slot_ids: HashMap::new(),
            keyword_slot: None,
            preds: Vec::new(),
            pred_ids: HashMap::new(),
            fieldrefs: Vec::new(),
            fieldref_ids: HashMap::new(),
        }
    }

    fn routes(&self, ls: &LogSource) -> Result<Vec<u32>, String> {
        match &self.mapping {
            None => Ok(vec![0]),
            Some(m) => {
                let r = m.routes_for(ls);
                if r.is_empty() {
                    Err(format!(
                        "logsource {ls} is not covered by mapping '{}'",
                        m.name
                    ))
                } else {
                    Ok(r.into_iter().map(|i| i as u32).collect())
                }
            }
        }
    }

    fn run(
        mut self,
        rules: Vec<(SigmaRule, PathBuf)>,
        filters: Vec<(SigmaFilter, PathBuf)>,
        mut rejections: Vec<Rejection>,
    ) -> Engine {
        let mut infos: Vec<Arc<RuleInfo>> = Vec::new();
        let mut compiled: Vec<(u32, u32, Expr)> = Vec::new(); // (bucket, rule, expr)
        let mut bad_filters: Vec<bool> = vec![false; filters.len()];
        for (rule, file) in rules {
            let reject = |reason: String| Rejection {
                file: file.clone(),
                rule_id: rule.meta.id.clone(),
                title: Some(rule.meta.title.clone()),
                reason,
            };
            let buckets = match self.routes(&rule.meta.logsource) {
                Ok(b) => b,
                Err(e) => {
                    rejections.push(reject(e));
                    continue;
                }
            };
            let applicable: Vec<usize> = filters
                .iter()
                .enumerate()
                .filter(|(_, (f, _))| filter_applies(f, &rule.meta))
                .map(|(i, _)| i)
                .collect();
            let rule_idx = infos.len() as u32;
            let mut exprs = Vec::new();
            let mut failed = None;
            for &b in &buckets {
                let placeholders = std::mem::take(&mut self.placeholders);
                let mut sink = BucketSink {
                    c: &mut self,
                    bucket: b,
                };
                let r = compile_detection(&rule.detection, &placeholders, &mut sink);
                let mut parts = Vec::new();
                match r {
                    Ok(e) => parts.push(e),
                    Err(e) => failed = Some(e),
                }
                for &fi in &applicable {
                    match compile_detection(&filters[fi].0.detection, &placeholders, &mut sink) {
                        Ok(e) => parts.push(e),
                        Err(e) => {
                            if !bad_filters[fi] {
                                bad_filters[fi] = true;
                                rejections.push(Rejection {
                                    file: filters[fi].1.clone(),
                                    rule_id: filters[fi].0.meta.id.clone(),
                                    title: Some(filters[fi].0.meta.title.clone()),
                                    reason: format!("filter: {e}"),
                                });
                            }
                        }
                    }
                }
                self.placeholders = placeholders;
                if failed.is_some() {
                    break;
                }
                exprs.push((b, Expr::and(parts)));
            }
            if let Some(e) = failed {
                rejections.push(reject(e));
                continue;
            }
            infos.push(Arc::new(RuleInfo {
                meta: rule.meta,
                file,
            }));
            for (b, e) in exprs {
                compiled.push((b, rule_idx, e));
            }
        }
        self.finish(infos, compiled, rejections)
    }

    fn finish(
        self,
        rules: Vec<Arc<RuleInfo>>,
        compiled: Vec<(u32, u32, Expr)>,
        rejections: Vec<Rejection>,
    ) -> Engine {
        let Compiler {
            mapping,
            mut buckets,
            slots: raw_slots,
            keyword_slot,
            preds: raw_preds,
            fieldrefs: raw_frefs,
            ..
        } = self;
        let preds: Vec<Pred> = raw_preds
            .into_iter()
            .map(|(slot, test)| Pred {
                slot,
                describe: test.describe().into(),
                check: std::sync::OnceLock::new(),
                test,
            })
            .collect();
        let mut compiled_rules = Vec::with_capacity(compiled.len());
        let mut program = Program::default();
        // Per predicate: (bucket, rule << 2 | trigger set << 1 | needs both sets).
        let mut pending: Vec<Vec<(u32, u32)>> = vec![Vec::new(); preds.len()];
        // Per compiled rule: every predicate its condition reads, in order.
        let mut rule_preds: Vec<Vec<u32>> = Vec::with_capacity(compiled.len());
        for (i, (b, rule, expr)) in compiled.into_iter().enumerate() {
            let ci = i as u32;
            let cost = |p: u32| likelihood(&preds[p as usize].test);
            let expr = order_for_eval(expr, &cost);
            // A rule becomes a candidate when every one of its (up to two)
            // trigger sets has a fired predicate; rules without one (pure
            // negations, field references) are checked on every event of
            // the bucket.
            // The necessary sets to choose triggers from, cheapest first by
            // the static estimate: the first two trigger until a thread's
            // own stream says which fire least ([`super::adapt`]).
            let alts = trigger_sets(&expr, &cost, MAX_ALTS);
            if alts.is_empty() {
                buckets[b as usize].always.push(ci);
            }
            let sets = &alts[..alts.len().min(2)];
            let two = u32::from(sets.len() == 2);
            for (k, (set, _)) in sets.iter().enumerate() {
                for &p in set {
                    pending[p as usize].push((b, ci << 2 | (k as u32) << 1 | two));
                }
            }
            // What a match is explained by: the predicates and field
            // references the condition uses positively.
            let mut used = Vec::new();
            let (mut positive, mut positive_refs) = (Vec::new(), Vec::new());
            expr.visit_leaves(true, &mut |leaf, pos| match *leaf {
                Expr::Pred(p) => {
                    used.push(p);
                    if pos {
                        positive.push(p);
                    }
                }
                Expr::FieldRef(f) if pos => positive_refs.push(f),
                _ => {}
            });
            for list in [&mut positive, &mut positive_refs] {
                list.sort_unstable();
                list.dedup();
            }
            compiled_rules.push(CompiledRule {
                rule,
                bucket: b,
                code: program.push(&expr),
                positive: positive.into(),
                positive_refs: positive_refs.into(),
                alts: alts.into_iter().map(|(set, _)| set.into()).collect(),
            });
            rule_preds.push(used);
        }
        let triggers = Triggers::build(pending);
        // Field indexes.
        let mut by_slot: Vec<Vec<(u32, &Test)>> = vec![Vec::new(); raw_slots.len()];
        for (i, p) in preds.iter().enumerate() {
            by_slot[p.slot as usize].push((i as u32, &p.test));
        }
        let mut slots = Vec::with_capacity(raw_slots.len());
        let nb = buckets.len();
        let mut derived_ids = DerivedIds::default();
        for (i, (users, field, paths)) in raw_slots.into_iter().enumerate() {
            let matcher = FieldMatcher::build(&by_slot[i]).unwrap_or_else(|e| {
                // Every regex was compiled alone before; a set failing is a size limit.
                panic!("field index for '{field}' failed to build: {e}")
            });
            // Derived values (`derived:NAME`) are read from their own nodes.
            let derived = paths
                .iter()
                .filter_map(|p| mapping.as_ref()?.derivation(p))
                .map(|d| derived_ids.id(d))
                .collect();
            let paths = paths
                .iter()
                .filter(|p| !p.starts_with(DERIVED_PREFIX))
                .flat_map(|p| segmentations(p))
                .collect();
            let mut bits = vec![0u64; words(nb)];
            for b in users {
                set_bit(&mut bits, b);
            }
            slots.push(Slot {
                buckets: bits,
                field: field.into(),
                paths,
                derived,
                matcher,
            });
        }
        drop(by_slot);
        let bucket_keywords = keywords::bucket_keywords(
            buckets.len(),
            compiled_rules.iter().zip(&rule_preds).map(|(c, used)| {
                let tests = used
                    .iter()
                    .map(|&p| &preds[p as usize])
                    .filter(|pred| Some(pred.slot) == keyword_slot)
                    .map(|pred| &pred.test)
                    .collect::<Vec<_>>();
                (c.bucket, tests)
            }),
            keyword_slot.is_some_and(|k| slots[k as usize].matcher.joinable()),
        );
        // Path trie: field slots, routing paths and field-reference operands.
        let router = build_router(mapping.as_ref(), buckets.len());
        let mut trie = PathTrie::new();
        let mut path_data = vec![PathData::default()];
        for (i, s) in slots.iter().enumerate() {
            for segs in &s.paths {
                let d = trie_insert(&mut trie, &mut path_data, segs);
                if !d.slots.contains(&(i as u32)) {
                    d.slots.push(i as u32);
                }
            }
        }
        for (r, paths) in router.paths.iter().enumerate() {
            for segs in paths {
                trie_insert(&mut trie, &mut path_data, segs)
                    .routes
                    .push(r as u32);
            }
        }
        let mut operands: HashMap<Vec<String>, u32> = HashMap::new();
        // Per derived value: the operands reading it.
        let mut derived_refs: Vec<(usize, u32)> = Vec::new();
        let mut operand =
            |trie: &mut PathTrie, data: &mut Vec<PathData>, paths: Vec<String>| -> u32 {
                let next = operands.len() as u32;
                let id = *operands.entry(paths.clone()).or_insert(next);
                if id == next {
                    for p in &paths {
                        if let Some(d) = mapping.as_ref().and_then(|m| m.derivation(p)) {
                            derived_refs.push((derived_ids.id(d) as usize, id));
                            continue;
                        }
                        for segs in segmentations(p) {
                            trie_insert(trie, data, &segs).refs.push(id);
                        }
                    }
                }
                id
            };
        let fieldrefs = raw_frefs
            .into_iter()
            .map(|(b, spec)| {
                let paths = |f: &str| match &mapping {
                    Some(m) => m.field_paths(b as usize, f),
                    None => vec![f.to_string()],
                };
                let mode = match spec.mode {
                    RefMode::Eq => "",
                    RefMode::Contains => "contains ",
                    RefMode::StartsWith => "startswith ",
                    RefMode::EndsWith => "endswith ",
                };
                let cased = if spec.cased { " (cased)" } else { "" };
                FieldRef {
                    a: operand(&mut trie, &mut path_data, paths(&spec.field)),
                    b: operand(&mut trie, &mut path_data, paths(&spec.other)),
                    describe: format!("{mode}fieldref:{}{cased}", spec.other).into(),
                    spec,
                }
            })
            .collect();
        // Derived values: their inputs in the trie, then a node each past
        // the trie's nodes, never walked, holding the slots and operands
        // that read it.
        let mut derived = Vec::new();
        let mut next_input = 0u32;
        for &d in &derived_ids.order {
            let derivation = mapping
                .as_ref()
                .expect("derived values come from a mapping")
                .derivations[d]
                .clone();
            for (i, paths) in derivation.inputs.iter().enumerate() {
                let objects = if derivation.each == Some(i) {
                    super::OBJECTS_INPUT
                } else {
                    0
                };
                for segs in paths.iter().flat_map(|p| segmentations(p)) {
                    trie_insert(&mut trie, &mut path_data, &segs)
                        .inputs
                        .push((next_input + i as u32) | objects);
                }
            }
            let n = derivation.inputs.len() as u32;
            derived.push(Derived {
                derivation,
                node: 0,
                input_base: next_input,
            });
            next_input += n;
        }
        for (k, d) in derived.iter_mut().enumerate() {
            d.node = path_data.len() as u32;
            let mut data = PathData::default();
            for (i, s) in slots.iter().enumerate() {
                if s.derived.contains(&(k as u32)) {
                    data.slots.push(i as u32);
                }
            }
            data.refs = derived_refs
                .iter()
                .filter(|(x, _)| *x == k)
                .map(|(_, id)| *id)
                .collect();
            path_data.push(data);
        }
        for d in &mut path_data {
            d.target = !(d.slots.is_empty()
                && d.routes.is_empty()
                && d.refs.is_empty()
                && d.inputs.is_empty());
        }
        for d in &derived {
            // Walks only visit trie nodes.
            path_data[d.node as usize].target = false;
        }
        Engine {
            id: super::next_engine_id(),
            rules,
            rejections,
            buckets,
            bucket_keywords,
            slots,
            keyword_slot,
            preds,
            triggers,
            compiled: compiled_rules,
            program,
            fieldrefs,
            trie,
            path_data,
            derived,
            router,
            mapping_name: mapping.map(|m| m.name),
        }
    }
}

/// Derived values some slot or field reference reads, numbered in the
/// order first read.
#[derive(Default)]
struct DerivedIds {
    /// Index into the mapping's derivations, per id.
    order: Vec<usize>,
}

impl DerivedIds {
    fn id(&mut self, derivation: usize) -> u32 {
        match self.order.iter().position(|&d| d == derivation) {
            Some(i) => i as u32,
            None => {
                self.order.push(derivation);
                (self.order.len() - 1) as u32
            }
        }
    }
}

/// Text most Windows events carry in their image, path and command-line
/// fields: a literal inside one of these is no rarer for being long.
const COMMON_TEXT: &[&str] = &[
    "c:\\windows\\system32\\",
    "c:\\windows\\syswow64\\",
    "c:\\windows\\winsxs\\",
    "c:\\program files (x86)\\",
    "c:\\program files\\",
    "c:\\programdata\\",
    "c:\\users\\",
    "\\appdata\\local\\",
    "\\appdata\\roaming\\",
    "\\microsoft\\windows\\",
    ".exe",
    ".dll",
];

/// Estimated per-mille of values a test holds for: orders conjunctions and
/// picks trigger sets (never changes a verdict).
fn likelihood(t: &Test) -> u32 {
    use crate::glob::Shape;
    // Roughly: per mille of values a literal of this length occurs in.
    let by_len = |len: usize| match len {
        0 => 1000,
        1 => 600,
        2 => 300,
        3 => 150,
        4 => 80,
        5 | 6 => 40,
        7..=9 => 20,
        _ => 10,
    };
    // Whatever the length, a piece of the paths most Windows events carry
    // is in most values of the fields that hold them.
    let common = |l: &[u8]| {
        if l.len() < 3 {
            return false;
        }
        let l = crate::glob::lowercase_bytes(l);
        COMMON_TEXT
            .iter()
            .any(|c| memchr::memmem::find(c.as_bytes(), &l).is_some())
    };
    let by_lit = |l: &[u8]| if common(l) { 500 } else { by_len(l.len()) };
    match t {
        Test::Present | Test::NonNull => 900,
        Test::Str { pat, .. } => match pat.shape() {
            Shape::Any => 1000,
            Shape::Exact(l) => by_len(l.len()).min(50),
            Shape::Contains(l) | Shape::Prefix(l) | Shape::Suffix(l) => by_lit(l),
            Shape::General => pat.longest_literal().map_or(1000, by_lit),
        },
        Test::Regex(_) => 50,
        Test::Num(..) | Test::Time(..) => 300,
        Test::Cidr(_) => 200,
    }
}

/// Estimated chance (0..=1000) that `e` is true on an ordinary event.
fn chance(e: &Expr, cost: &impl Fn(u32) -> u32) -> u32 {
    match e {
        Expr::Const(true) => 1000,
        Expr::Const(false) => 0,
        Expr::Pred(p) => cost(*p).min(1000),
        Expr::FieldRef(_) => 100,
        Expr::Not(inner) => 1000 - chance(inner, cost),
        Expr::And(es) => es.iter().map(|e| chance(e, cost)).min().unwrap_or(1000),
        Expr::Or(es) => es.iter().map(|e| chance(e, cost)).sum::<u32>().min(1000),
    }
}

/// Reorders conjunctions so the conjunct most likely false is tried first
/// (a candidate rule usually fails, and `and` stops at the first false),
/// and disjunctions so single predicates come before sub-expressions.
fn order_for_eval(e: Expr, cost: &impl Fn(u32) -> u32) -> Expr {
    match e {
        Expr::And(es) => {
            let mut es: Vec<Expr> = es.into_iter().map(|e| order_for_eval(e, cost)).collect();
            es.sort_by_cached_key(|e| (chance(e, cost), expr_size(e)));
            Expr::And(es)
        }
        Expr::Or(es) => {
            let mut es: Vec<Expr> = es.into_iter().map(|e| order_for_eval(e, cost)).collect();
            es.sort_by_cached_key(|e| {
                (
                    !matches!(e, Expr::Pred(_)),
                    std::cmp::Reverse(chance(e, cost)),
                )
            });
            Expr::Or(es)
        }
        Expr::Not(inner) => Expr::Not(Box::new(order_for_eval(*inner, cost))),
        e => e,
    }
}

/// Necessary alternatives to trigger a rule by.
const MAX_ALTS: usize = 6;

/// Up to `max` sets of predicates such that, for `e` to be true, each set
/// must have a fired predicate, cheapest (least likely to fire, by the
/// static estimate) first. Empty when `e` can hold without any predicate
/// (negations, field references).
fn trigger_sets(e: &Expr, cost: &impl Fn(u32) -> u32, max: usize) -> Vec<(Vec<u32>, u32)> {
    match e {
        Expr::Pred(p) => vec![(vec![*p], cost(*p))],
        Expr::Const(false) => vec![(Vec::new(), 0)],
        Expr::Const(true) | Expr::Not(_) | Expr::FieldRef(_) => Vec::new(),
        Expr::Or(es) => {
            // If every branch has k sets, the unions of their k-th sets are
            // each necessary.
            let branches: Vec<_> = es.iter().map(|e| trigger_sets(e, cost, max)).collect();
            let k = branches.iter().map(Vec::len).min().unwrap_or(0);
            (0..k)
                .map(|i| {
                    let mut all = Vec::new();
                    let mut total = 0u32;
                    for b in &branches {
                        all.extend_from_slice(&b[i].0);
                        total = total.saturating_add(b[i].1);
                    }
                    all.sort_unstable();
                    all.dedup();
                    (all, total.min(1000))
                })
                .collect()
        }
        Expr::And(es) => {
            let mut all: Vec<_> = es.iter().flat_map(|e| trigger_sets(e, cost, max)).collect();
            all.sort_by_key(|(_, c)| *c);
            all.truncate(max);
            all
        }
    }
}

pub(super) fn expr_size(e: &Expr) -> usize {
    match e {
        Expr::And(es) | Expr::Or(es) => 24 + es.iter().map(expr_size).sum::<usize>(),
        Expr::Not(e) => 16 + expr_size(e),
        _ => 16,
    }
}
