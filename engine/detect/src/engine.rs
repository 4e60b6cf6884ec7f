//! The compiled rule set and the per-event matcher.
//!
//! Build once with [`EngineBuilder`], share the [`Engine`] behind an `Arc`,
//! and give every thread its own [`Scratch`]. Per event:
//!
//! 1. routing: the mapping's logsource conditions pick the active buckets
//!    (one bucket per logsource entry; without a mapping, one bucket);
//! 2. one walk over the event, guided by a trie of every path any rule
//!    uses, feeds each value to the field index of the active buckets'
//!    slots, which fire predicates;
//! 3. only rules with a fired predicate (plus the few whose condition can
//!    hold with none) have their condition evaluated.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::compile::{FieldRefSpec, Placeholders, RefMode, Sink, compile_detection};
use crate::event::{Doc, Kind, PathTrie, for_each_text, segmentations, walk};
use crate::index::{FeedScratch, FieldMatcher};
use crate::mapping::Mapping;
use crate::predicate::{Expr, Test};
use crate::sigma::{LogSource, ParsedDocument, RuleMeta, SigmaFilter, SigmaRule, parse_documents};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A rule or filter that was not loaded, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejection {
    pub file: PathBuf,
    pub rule_id: Option<String>,
    pub title: Option<String>,
    pub reason: String,
}

/// A loaded rule.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    pub meta: RuleMeta,
    pub file: PathBuf,
}

/// One field and value that contributed to a match.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MatchedField {
    /// The Sigma field name (`keywords` for keyword searches).
    pub field: String,
    /// The event value that matched.
    pub value: String,
    /// What it was tested against.
    pub test: String,
}

/// A rule that matched an event.
#[derive(Debug, Clone)]
pub struct RuleHit {
    pub rule: Arc<RuleInfo>,
    pub matched: Vec<MatchedField>,
}

/// Collects rules, filters and options, then compiles them.
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
        let text = std::fs::read_to_string(path).map_err(|e| crate::Error::io(path, e))?;
        match self.add_yaml(&text, path) {
            Ok(()) => Ok(()),
            Err(e @ crate::Error::Yaml { .. }) => {
                self.rejections.push(Rejection {
                    file: path.to_path_buf(),
                    rule_id: None,
                    title: None,
                    reason: e.to_string(),
                });
                Ok(())
            }
            Err(e) => Err(e),
        }
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

/// A Sigma field resolved to event paths, shared by every bucket that
/// resolves it the same way, so each value is scanned once per field.
#[derive(Debug)]
struct Slot {
    /// Buckets with rules on this slot (bitset).
    buckets: Vec<u64>,
    field: String,
    paths: Vec<Vec<String>>,
    matcher: FieldMatcher,
}

#[derive(Debug)]
struct PredInfo {
    slot: u32,
    test: Test,
    /// Compiled rules this predicate triggers, grouped by bucket; each entry
    /// is `rule << 2 | trigger set << 1 | needs both sets`.
    rules: Vec<u32>,
    /// (bucket, end index into `rules`) per group, in order.
    rule_groups: Vec<(u32, u32)>,
    /// Compiled once for explaining regex matches.
    regex: Option<regex_automata::meta::Regex>,
}

#[derive(Debug)]
struct CompiledRule {
    rule: u32,
    bucket: u32,
    expr: Expr,
}

#[derive(Debug)]
struct FieldRef {
    spec: FieldRefSpec,
    /// Operand ids (trie `refs`) of the field and the referenced field.
    a: u32,
    b: u32,
}

#[derive(Debug, Default)]
struct Bucket {
    /// Whether rules of this bucket search keywords.
    keywords: bool,
    /// Compiled rules whose condition can be true with no predicate fired.
    always: Vec<u32>,
}

/// What rules read at one node of the path trie.
#[derive(Debug, Default)]
struct PathData {
    /// Field slots read at this path.
    slots: Vec<u32>,
    /// Routing condition paths read here.
    routes: Vec<u32>,
    /// Field-reference operands read here.
    refs: Vec<u32>,
}

impl PathData {
    fn is_target(&self) -> bool {
        !(self.slots.is_empty() && self.routes.is_empty() && self.refs.is_empty())
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

/// Logsource routing: which buckets an event belongs to.
#[derive(Debug, Default)]
struct Router {
    /// Distinct condition paths (all segmentations each).
    paths: Vec<Vec<Vec<String>>>,
    /// Per bucket: (path index, accepted lowercase values; empty = present).
    conditions: Vec<Vec<(usize, Vec<String>)>>,
    /// Buckets without conditions.
    unconditional: Vec<u32>,
    /// Paths that are the first condition of some entry.
    first_paths: Vec<usize>,
    /// Per path, as a first condition: value → the buckets it selects.
    by_first: Vec<FastMap<String, Vec<u32>>>,
    /// Per path, as a first condition: the buckets that only need it present.
    present: Vec<Vec<u32>>,
}

/// A compiled, immutable rule set.
#[derive(Debug)]
pub struct Engine {
    rules: Vec<Arc<RuleInfo>>,
    rejections: Vec<Rejection>,
    buckets: Vec<Bucket>,
    slots: Vec<Slot>,
    keyword_slot: Option<u32>,
    /// Automaton over the JSON-escaped (lowercase) keyword literals, run on
    /// ASCII-lowercased raw lines; `None` when some keyword cannot be
    /// checked that way.
    /// Per bucket: an automaton over the JSON-escaped (lowercase) literals
    /// of that bucket's keyword searches, run on ASCII-lowercased raw lines;
    /// `None` when some keyword cannot be checked that way.
    keyword_prefilters: Vec<Option<KeywordPrefilter>>,
    preds: Vec<PredInfo>,
    compiled: Vec<CompiledRule>,
    fieldrefs: Vec<FieldRef>,
    trie: PathTrie,
    /// Per trie node.
    path_data: Vec<PathData>,
    router: Router,
    mapping_name: Option<String>,
}

/// Per-thread working memory for [`Engine::detect`].
#[derive(Debug, Default)]
pub struct Scratch {
    fired: Vec<u64>,
    touched: Vec<u32>,
    marked: Vec<u64>,
    marked2: Vec<u64>,
    partial: Vec<u32>,
    candidates: Vec<u32>,
    rule_seen: Vec<u64>,
    active: Vec<u64>,
    active_list: Vec<u32>,
    route_vals: Vec<String>,
    route_has: Vec<bool>,
    feed: FeedScratch,
    numbuf: String,
    joined: Vec<u8>,
    cache: ValueCache,
    route_key: String,
    route_cache: FastMap<String, Vec<u32>>,
    /// The per-event (trie node, value token) list.
    gathered: Vec<(u32, u32)>,
    /// Skip the keyword prefilter (see [`Engine::detect_exhaustive`]).
    exhaustive: bool,
}

/// Separates the several values of one routing path.
const ROUTE_SEP: char = '\u{1f}';

/// Distinct routing tuples remembered before starting over.
const ROUTE_CACHE_CAPACITY: usize = 4096;

/// Values longer than this are not cached (long values such as command
/// lines are mostly unique).
const CACHE_MAX_LEN: usize = 160;
/// Entries before the cache starts over.
const CACHE_CAPACITY: usize = 32 * 1024;

/// Per-thread memo of (slot, value) → the predicates that value fires.
/// Field values repeat heavily in real logs (images, users, integrity
/// levels, product names), and a slot's verdict on a value never changes.
#[derive(Debug, Default)]
struct ValueCache {
    map: FastMap<u64, CacheEntry>,
    preds: Vec<u32>,
    /// The cached values' texts, back to back (no allocation per entry).
    texts: String,
}

#[derive(Debug)]
struct CacheEntry {
    slot: u32,
    text_start: u32,
    text_len: u32,
    start: u32,
    len: u32,
}

impl ValueCache {
    fn key(slot: u32, text: &str) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(0x5741_5244_454e).hash_one((slot, text))
    }

    /// Fires the cached predicates of `(slot, text)`; false on a miss.
    #[inline]
    fn replay(&self, key: u64, slot: u32, text: &str, fire: &mut impl FnMut(u32)) -> bool {
        match self.map.get(&key) {
            Some(e)
                if e.slot == slot
                    && self
                        .texts
                        .get(e.text_start as usize..(e.text_start + e.text_len) as usize)
                        == Some(text) =>
            {
                let start = e.start as usize;
                self.preds[start..start + e.len as usize]
                    .iter()
                    .for_each(|p| fire(*p));
                true
            }
            _ => false,
        }
    }

    fn insert(&mut self, key: u64, slot: u32, text: &str, start: usize) {
        let len = (self.preds.len() - start) as u32;
        let text_start = self.texts.len() as u32;
        self.texts.push_str(text);
        self.map.insert(
            key,
            CacheEntry {
                slot,
                text_start,
                text_len: text.len() as u32,
                start: start as u32,
                len,
            },
        );
    }

    fn make_room(&mut self) {
        if self.map.len() >= CACHE_CAPACITY {
            self.map.clear();
            self.preds.clear();
            self.texts.clear();
        }
    }
}

fn set_bit(bits: &mut [u64], i: u32) -> bool {
    let (w, b) = ((i / 64) as usize, i % 64);
    let was = bits[w] & (1 << b) != 0;
    bits[w] |= 1 << b;
    !was
}

fn get_bit(bits: &[u64], i: u32) -> bool {
    bits[(i / 64) as usize] & (1 << (i % 64)) != 0
}

/// Finds whether any keyword literal occurs in a (lowercased) raw line:
/// the SIMD packed searcher when the literal set is small enough for it,
/// a DFA otherwise. Literals are lowercase and lines ASCII-lowercased, so
/// the search stays case-sensitive (which the packed searcher requires).
#[derive(Debug)]
enum KeywordPrefilter {
    Packed(aho_corasick::packed::Searcher),
    Dfa(aho_corasick::AhoCorasick),
}

impl KeywordPrefilter {
    fn new(lits: &[Vec<u8>]) -> Option<Self> {
        let mut packed = aho_corasick::packed::Config::new().builder();
        packed.extend(lits);
        if let Some(s) = packed.build() {
            return Some(KeywordPrefilter::Packed(s));
        }
        aho_corasick::AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(lits)
            .ok()
            .map(KeywordPrefilter::Dfa)
    }

    fn is_match(&self, hay: &[u8]) -> bool {
        match self {
            KeywordPrefilter::Packed(s) => s.find(hay).is_some(),
            KeywordPrefilter::Dfa(a) => a.is_match(hay),
        }
    }
}

/// Builds each bucket's keyword prefilter from the literals of the keyword
/// predicates its rules use.
fn keyword_prefilters(
    buckets: &[Bucket],
    compiled: &[CompiledRule],
    preds: &[PredInfo],
    slots: &[Slot],
    keyword_slot: Option<u32>,
) -> Vec<Option<KeywordPrefilter>> {
    let Some(k) = keyword_slot else {
        return buckets.iter().map(|_| None).collect();
    };
    if !slots[k as usize].matcher.joinable() {
        return buckets.iter().map(|_| None).collect();
    }
    let mut lits: Vec<Vec<Vec<u8>>> = vec![Vec::new(); buckets.len()];
    let mut usable = vec![true; buckets.len()];
    for c in compiled {
        c.expr.visit_preds(true, &mut |p, _| {
            let pred = &preds[p as usize];
            if pred.slot != k {
                return;
            }
            let b = c.bucket as usize;
            match &pred.test {
                Test::Str { pat, cased: false } => match pat.shape() {
                    crate::glob::Shape::Contains(l)
                        if !l.is_empty() && l.iter().all(|b| (0x20..0x7f).contains(b)) =>
                    {
                        // Printable ASCII has one JSON form, with `\` and `"` escaped.
                        let mut e = Vec::with_capacity(l.len());
                        for &ch in l {
                            if ch == b'\\' || ch == b'"' {
                                e.push(b'\\');
                            }
                            e.push(ch);
                        }
                        lits[b].push(e);
                    }
                    _ => usable[b] = false,
                },
                _ => usable[b] = false,
            }
        });
    }
    lits.into_iter()
        .zip(usable)
        .map(|(mut l, ok)| {
            if !ok || l.is_empty() {
                return None;
            }
            l.sort();
            l.dedup();
            KeywordPrefilter::new(&l)
        })
        .collect()
}

/// What the event walk carries along.
struct WalkCtx<'a> {
    active: &'a [u64],
    feed: &'a mut FeedScratch,
    numbuf: &'a mut String,
    cache: &'a mut ValueCache,
}

fn intersects(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

fn words(n: usize) -> usize {
    n.div_ceil(64).max(1)
}

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
        let mut preds: Vec<PredInfo> = raw_preds
            .into_iter()
            .map(|(slot, test)| PredInfo {
                slot,
                regex: match &test {
                    Test::Regex(r) => regex_automata::meta::Regex::new(r).ok(),
                    _ => None,
                },
                test,
                rules: Vec::new(),
                rule_groups: Vec::new(),
            })
            .collect();
        let mut compiled_rules = Vec::with_capacity(compiled.len());
        let mut pending: Vec<Vec<(u32, u32)>> = vec![Vec::new(); preds.len()];
        for (i, (b, rule, expr)) in compiled.into_iter().enumerate() {
            let ci = i as u32;
            let bucket = &mut buckets[b as usize];
            // A rule becomes a candidate only when a predicate of its most
            // selective necessary conjunct fires; rules without one (pure
            // negations, field references) are checked on every event of the bucket.
            let cost = |p: u32| likelihood(&preds[p as usize].test);
            let expr = order_for_eval(expr, &cost);
            // A rule becomes a candidate when every one of its (up to two)
            // trigger sets has a fired predicate.
            let sets = trigger_sets(&expr, &cost);
            if sets.is_empty() {
                bucket.always.push(ci);
            }
            let two = u32::from(sets.len() == 2);
            for (k, (set, _)) in sets.iter().enumerate() {
                for &p in set {
                    pending[p as usize].push((b, ci << 2 | (k as u32) << 1 | two));
                }
            }
            compiled_rules.push(CompiledRule {
                rule,
                bucket: b,
                expr,
            });
        }
        for (p, mut entries) in pending.into_iter().enumerate() {
            entries.sort_by_key(|(b, _)| *b);
            let pred = &mut preds[p];
            for (b, e) in entries {
                if pred.rule_groups.last().is_none_or(|(last, _)| *last != b) {
                    pred.rule_groups.push((b, pred.rules.len() as u32));
                }
                pred.rules.push(e);
                if let Some(g) = pred.rule_groups.last_mut() {
                    g.1 = pred.rules.len() as u32;
                }
            }
        }
        if let Some(k) = keyword_slot {
            for b in &raw_slots[k as usize].0 {
                buckets[*b as usize].keywords = true;
            }
        }
        // Field indexes.
        let mut by_slot: Vec<Vec<(u32, &Test)>> = vec![Vec::new(); raw_slots.len()];
        for (i, p) in preds.iter().enumerate() {
            by_slot[p.slot as usize].push((i as u32, &p.test));
        }
        let mut slots = Vec::with_capacity(raw_slots.len());
        let nb = buckets.len();
        for (i, (users, field, paths)) in raw_slots.into_iter().enumerate() {
            let matcher = FieldMatcher::build(&by_slot[i]).unwrap_or_else(|e| {
                // Every regex was compiled alone before; a set failing is a size limit.
                panic!("field index for '{field}' failed to build: {e}")
            });
            let paths = paths.iter().flat_map(|p| segmentations(p)).collect();
            let mut bits = vec![0u64; words(nb)];
            for b in users {
                set_bit(&mut bits, b);
            }
            slots.push(Slot {
                buckets: bits,
                field,
                paths,
                matcher,
            });
        }
        drop(by_slot);
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
        let mut operand =
            |trie: &mut PathTrie, data: &mut Vec<PathData>, paths: Vec<String>| -> u32 {
                let next = operands.len() as u32;
                let id = *operands.entry(paths.clone()).or_insert(next);
                if id == next {
                    for segs in paths.iter().flat_map(|p| segmentations(p)) {
                        trie_insert(trie, data, &segs).refs.push(id);
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
                FieldRef {
                    a: operand(&mut trie, &mut path_data, paths(&spec.field)),
                    b: operand(&mut trie, &mut path_data, paths(&spec.other)),
                    spec,
                }
            })
            .collect();
        let keyword_prefilters =
            keyword_prefilters(&buckets, &compiled_rules, &preds, &slots, keyword_slot);
        Engine {
            rules,
            rejections,
            buckets,
            slots,
            keyword_slot,
            keyword_prefilters,
            preds,
            compiled: compiled_rules,
            fieldrefs,
            trie,
            path_data,
            router,
            mapping_name: mapping.map(|m| m.name),
        }
    }
}

fn build_router(mapping: Option<&Mapping>, nbuckets: usize) -> Router {
    let mut r = Router::default();
    let Some(m) = mapping else {
        r.unconditional = (0..nbuckets as u32).collect();
        r.conditions = vec![Vec::new(); nbuckets];
        return r;
    };
    let mut path_ids: HashMap<String, usize> = HashMap::new();
    for e in &m.logsources {
        let mut conds = Vec::new();
        for c in &e.conditions {
            let id = *path_ids.entry(c.path.clone()).or_insert_with(|| {
                r.paths.push(segmentations(&c.path));
                r.paths.len() - 1
            });
            conds.push((id, c.values.clone()));
        }
        r.conditions.push(conds);
    }
    r.by_first = vec![FastMap::default(); r.paths.len()];
    r.present = vec![Vec::new(); r.paths.len()];
    for (b, conds) in r.conditions.iter().enumerate() {
        let b = b as u32;
        match conds.first() {
            None => r.unconditional.push(b),
            Some((p, vals)) => {
                if !r.first_paths.contains(p) {
                    r.first_paths.push(*p);
                }
                if vals.is_empty() {
                    r.present[*p].push(b);
                } else {
                    for v in vals {
                        r.by_first[*p].entry(v.clone()).or_default().push(b);
                    }
                }
            }
        }
    }
    r
}

impl Engine {
    /// Starts a builder.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::new()
    }

    /// Loaded rules.
    pub fn rules(&self) -> &[Arc<RuleInfo>] {
        &self.rules
    }

    /// Rules and filters that were not loaded.
    pub fn rejections(&self) -> &[Rejection] {
        &self.rejections
    }

    /// The mapping's name, if any.
    pub fn mapping_name(&self) -> Option<&str> {
        self.mapping_name.as_deref()
    }

    /// Number of distinct predicates after interning.
    pub fn predicate_count(&self) -> usize {
        self.preds.len()
    }

    /// Approximate heap bytes of the compiled set.
    pub fn memory_usage(&self) -> usize {
        let slots: usize = self
            .slots
            .iter()
            .map(|s| s.matcher.memory_usage() + s.field.len() + 64)
            .sum();
        let preds: usize = self.preds.iter().map(|p| 64 + p.rules.len() * 4).sum();
        let exprs: usize = self.compiled.iter().map(|c| 32 + expr_size(&c.expr)).sum();
        let trie: usize = self.trie.memory_usage()
            + self
                .path_data
                .iter()
                .map(|d| 72 + (d.slots.len() + d.routes.len() + d.refs.len()) * 4)
                .sum::<usize>();
        slots + preds + exprs + trie
    }

    /// A fresh scratch sized for this engine.
    pub fn scratch(&self) -> Scratch {
        Scratch {
            fired: vec![0; words(self.preds.len())],
            marked: vec![0; words(self.compiled.len())],
            marked2: vec![0; words(self.compiled.len())],
            rule_seen: vec![0; words(self.rules.len())],
            active: vec![0; words(self.buckets.len())],
            route_vals: vec![String::new(); self.router.paths.len()],
            route_has: vec![false; self.router.paths.len()],
            ..Scratch::default()
        }
    }

    /// Picks the active buckets from the routing values gathered by the walk.
    fn route(&self, doc: &Doc<'_>, hits: &[(u32, u32)], sc: &mut Scratch) {
        sc.active.iter_mut().for_each(|w| *w = 0);
        sc.active_list.clear();
        let r = &self.router;
        for b in &r.unconditional {
            if set_bit(&mut sc.active, *b) {
                sc.active_list.push(*b);
            }
        }
        if r.first_paths.is_empty() {
            return;
        }
        sc.route_has.iter_mut().for_each(|h| *h = false);
        // Every value at a routing path counts (arrays such as ECS
        // `event.type: ["info", "start"]`): they are kept lowercased and
        // separated by ROUTE_SEP.
        for &(node, tok) in hits {
            for &p in &self.path_data[node as usize].routes {
                let p = p as usize;
                if let Some(t) = doc.scalar_text(tok, &mut sc.numbuf) {
                    let buf = &mut sc.route_vals[p];
                    if sc.route_has[p] {
                        buf.push(ROUTE_SEP);
                    } else {
                        buf.clear();
                        sc.route_has[p] = true;
                    }
                    if t.is_ascii() {
                        buf.extend(t.chars().map(|c| c.to_ascii_lowercase()));
                    } else {
                        buf.extend(t.chars().flat_map(char::to_lowercase));
                    }
                }
            }
        }
        // The active buckets depend only on these values (channel, event
        // id, ...): remember the answer per distinct tuple.
        sc.route_key.clear();
        for p in 0..r.paths.len() {
            if sc.route_has[p] {
                let _ = write!(sc.route_key, "{p}=");
                sc.route_key.push_str(&sc.route_vals[p]);
                sc.route_key.push('\u{0}');
            }
        }
        if let Some(list) = sc.route_cache.get(sc.route_key.as_str()) {
            for &b in list {
                if set_bit(&mut sc.active, b) {
                    sc.active_list.push(b);
                }
            }
            return;
        }
        let ok = |b: u32, sc: &Scratch| {
            r.conditions[b as usize].iter().all(|(p, accepted)| {
                sc.route_has[*p]
                    && (accepted.is_empty()
                        || sc.route_vals[*p]
                            .split(ROUTE_SEP)
                            .any(|v| accepted.iter().any(|a| a == v)))
            })
        };
        let start = sc.active_list.len();
        for &fp in &r.first_paths {
            if !sc.route_has[fp] {
                continue;
            }
            let selected = sc.route_vals[fp]
                .split(ROUTE_SEP)
                .filter_map(|v| r.by_first[fp].get(v))
                .chain(std::iter::once(&r.present[fp]));
            for c in selected {
                for &b in c {
                    if ok(b, sc) && set_bit(&mut sc.active, b) {
                        sc.active_list.push(b);
                    }
                }
            }
        }
        if sc.route_cache.len() >= ROUTE_CACHE_CAPACITY {
            sc.route_cache.clear();
        }
        let conditional = sc.active_list[start..].to_vec();
        sc.route_cache.insert(sc.route_key.clone(), conditional);
    }

    /// Evaluates every rule against one parsed event; matches go to `out`
    /// (cleared first), each rule at most once.
    pub fn detect(&self, doc: &Doc<'_>, sc: &mut Scratch, out: &mut Vec<RuleHit>) {
        out.clear();
        if sc.fired.len() < words(self.preds.len()) {
            *sc = self.scratch();
        }
        // One walk gathers every value at a path some rule, route or field
        // reference reads; routing then decides which of them to feed.
        let mut hits = std::mem::take(&mut sc.gathered);
        hits.clear();
        walk(
            &self.trie,
            doc,
            0,
            0,
            &|n| self.path_data[n as usize].is_target(),
            &mut |n, t| hits.push((n, t)),
        );
        self.route(doc, &hits, sc);
        if !sc.active_list.is_empty() {
            self.matches(doc, &hits, sc, out);
        }
        sc.gathered = hits;
    }

    /// [`Engine::detect`] without the raw-line keyword prefilter: every
    /// keyword search takes the exact pass. The prefilter must never change
    /// a verdict; tests compare the two.
    #[doc(hidden)]
    pub fn detect_exhaustive(&self, doc: &Doc<'_>, sc: &mut Scratch, out: &mut Vec<RuleHit>) {
        sc.exhaustive = true;
        self.detect(doc, sc, out);
        sc.exhaustive = false;
    }

    fn matches(
        &self,
        doc: &Doc<'_>,
        hits: &[(u32, u32)],
        sc: &mut Scratch,
        out: &mut Vec<RuleHit>,
    ) {
        // Feed values.
        let Scratch {
            fired,
            touched,
            feed,
            numbuf,
            active,
            cache,
            ..
        } = sc;
        touched.clear();
        let mut fire = |p: u32| {
            if set_bit(fired, p) {
                touched.push(p);
            }
        };
        let mut ctx = WalkCtx {
            active,
            feed,
            numbuf,
            cache,
        };
        for &(node, tok) in hits {
            self.feed_node(node as usize, doc, tok, &mut ctx, &mut fire);
        }
        if self.keywords_needed(doc, sc) {
            self.feed_keywords(doc, sc);
        }
        // Candidates.
        sc.candidates.clear();
        sc.partial.clear();
        for &p in &sc.touched {
            let pred = &self.preds[p as usize];
            let mut start = 0usize;
            for &(bucket, end) in &pred.rule_groups {
                let group = &pred.rules[start..end as usize];
                start = end as usize;
                if !get_bit(&sc.active, bucket) {
                    continue;
                }
                for &entry in group {
                    let (r, k, two) = (entry >> 2, entry >> 1 & 1, entry & 1 == 1);
                    let (mine, other) = if k == 0 {
                        (&mut sc.marked, &sc.marked2)
                    } else {
                        (&mut sc.marked2, &sc.marked)
                    };
                    if set_bit(mine, r) {
                        sc.partial.push(r);
                        if !two || get_bit(other, r) {
                            sc.candidates.push(r);
                        }
                    }
                }
            }
        }
        for &b in &sc.active_list {
            for &r in &self.buckets[b as usize].always {
                if set_bit(&mut sc.marked, r) {
                    sc.partial.push(r);
                    sc.candidates.push(r);
                }
            }
        }
        // Evaluate.
        let fired = &sc.fired;
        for &c in &sc.candidates {
            let cr = &self.compiled[c as usize];
            let ok = cr.expr.eval(&|p| get_bit(fired, p), &mut |f| {
                self.eval_fieldref(f, doc, hits)
            });
            if ok && set_bit(&mut sc.rule_seen, cr.rule) {
                out.push(RuleHit {
                    rule: self.rules[cr.rule as usize].clone(),
                    matched: self.explain(&cr.expr, fired, doc, hits),
                });
            }
        }
        // Reset only what was touched.
        for &p in &sc.touched {
            sc.fired[(p / 64) as usize] = 0;
        }
        for &c in &sc.partial {
            sc.marked[(c / 64) as usize] = 0;
            sc.marked2[(c / 64) as usize] = 0;
        }
        sc.rule_seen.iter_mut().for_each(|w| *w = 0);
    }

    /// Whether some active bucket's keyword search could match: a keyword
    /// absent from the raw line (in its JSON-escaped form, compared
    /// ASCII-lowercased) cannot be in any value. Lines with `\u` escapes
    /// could hide a keyword and always take the exact pass.
    fn keywords_needed(&self, doc: &Doc<'_>, sc: &mut Scratch) -> bool {
        let mut lowered = false;
        for &b in &sc.active_list {
            if !self.buckets[b as usize].keywords {
                continue;
            }
            match &self.keyword_prefilters[b as usize] {
                Some(pf) if !doc.has_unicode_escapes() && !sc.exhaustive => {
                    if !lowered {
                        let raw = doc.text().as_bytes();
                        sc.joined.clear();
                        sc.joined.extend_from_slice(raw);
                        sc.joined.make_ascii_lowercase();
                        lowered = true;
                    }
                    if pf.is_match(&sc.joined) {
                        return true;
                    }
                }
                _ => return true,
            }
        }
        false
    }

    /// Feeds every value of the event to the keyword slot: joined for a
    /// single scan when the keywords allow it, one by one otherwise.
    fn feed_keywords(&self, doc: &Doc<'_>, sc: &mut Scratch) {
        let Some(k) = self.keyword_slot else {
            return;
        };
        let Scratch {
            fired,
            touched,
            feed,
            numbuf,
            joined,
            ..
        } = sc;
        let mut fire = |p: u32| {
            if set_bit(fired, p) {
                touched.push(p);
            }
        };
        let m = &self.slots[k as usize].matcher;
        joined.clear();
        let joinable = m.joinable();
        for_each_text(doc, numbuf, &mut |t| {
            if joinable {
                if t.is_ascii() {
                    joined.extend(t.bytes().map(|b| b.to_ascii_lowercase()));
                } else {
                    joined.extend_from_slice(t.to_lowercase().as_bytes());
                }
                joined.push(0xff);
            } else {
                m.feed_text(t, feed, &mut fire);
            }
        });
        if !joined.is_empty() {
            m.feed_joined(joined, &mut fire);
        }
    }

    /// Feeds one gathered value to the active slots of its node.
    fn feed_node(
        &self,
        node: usize,
        doc: &Doc<'_>,
        tok: u32,
        ctx: &mut WalkCtx<'_>,
        fire: &mut impl FnMut(u32),
    ) {
        let n = &self.path_data[node];
        if n.slots.is_empty() {
            return;
        }
        let active: &[u64] = ctx.active;
        let kind = doc.kind(tok);
        if kind == Kind::Array {
            for s in &n.slots {
                let slot = &self.slots[*s as usize];
                if intersects(active, &slot.buckets) {
                    slot.matcher.feed_container(fire);
                }
            }
            return;
        }
        let text = doc.scalar_text(tok, ctx.numbuf);
        for s in &n.slots {
            let slot = &self.slots[*s as usize];
            if !intersects(active, &slot.buckets) {
                continue;
            }
            match text {
                Some(t) if t.len() <= CACHE_MAX_LEN => {
                    let key = ValueCache::key(*s, t);
                    if !ctx.cache.replay(key, *s, t, fire) {
                        ctx.cache.make_room();
                        let start = ctx.cache.preds.len();
                        let preds = &mut ctx.cache.preds;
                        slot.matcher.feed_text(t, ctx.feed, &mut |p| {
                            preds.push(p);
                            fire(p);
                        });
                        ctx.cache.insert(key, *s, t, start);
                    }
                }
                Some(t) => slot.matcher.feed_text(t, ctx.feed, fire),
                None if kind == Kind::Null => slot.matcher.feed_null(fire),
                None => slot.matcher.feed_container(fire),
            }
        }
    }

    /// The texts gathered at the nodes where operand `id` is read.
    fn operand_texts<'d>(
        &'d self,
        id: u32,
        doc: &'d Doc<'_>,
        hits: &'d [(u32, u32)],
    ) -> impl Iterator<Item = String> + 'd {
        let mut buf = String::new();
        hits.iter()
            .filter(move |(n, _)| self.path_data[*n as usize].refs.contains(&id))
            .filter_map(move |&(_, t)| doc.scalar_text(t, &mut buf).map(str::to_owned))
    }

    /// Compares the two operands of field reference `f` over the gathered values.
    fn eval_fieldref(&self, f: u32, doc: &Doc<'_>, hits: &[(u32, u32)]) -> bool {
        let fr = &self.fieldrefs[f as usize];
        let norm = |s: String| {
            if fr.spec.cased {
                s
            } else {
                let mut out = String::new();
                crate::glob::lowercase_into(&s, &mut out);
                out
            }
        };
        let bs: Vec<String> = self.operand_texts(fr.b, doc, hits).map(norm).collect();
        if bs.is_empty() {
            return false;
        }
        self.operand_texts(fr.a, doc, hits).map(norm).any(|la| {
            bs.iter().any(|lb| match fr.spec.mode {
                RefMode::Eq => la == *lb,
                RefMode::Contains => la.contains(lb.as_str()),
                RefMode::StartsWith => la.starts_with(lb.as_str()),
                RefMode::EndsWith => la.ends_with(lb.as_str()),
            })
        })
    }

    /// The fields and values behind a match: every positively used predicate that fired.
    fn explain(
        &self,
        expr: &Expr,
        fired: &[u64],
        doc: &Doc<'_>,
        hits: &[(u32, u32)],
    ) -> Vec<MatchedField> {
        let mut ids = Vec::new();
        expr.visit_preds(true, &mut |p, positive| {
            if positive && get_bit(fired, p) {
                ids.push(p);
            }
        });
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::new();
        let mut buf = String::new();
        for p in ids {
            let pred = &self.preds[p as usize];
            let slot = &self.slots[pred.slot as usize];
            let test = |t: &str| match &pred.regex {
                Some(re) => re.is_match(t),
                None => pred.test.matches_text(t),
            };
            let mut value = None;
            if slot.paths.is_empty() {
                for_each_text(doc, &mut buf, &mut |t| {
                    if value.is_none() && test(t) {
                        value = Some(t.to_string());
                    }
                });
            } else {
                for &(n, tok) in hits {
                    if !self.path_data[n as usize].slots.contains(&pred.slot) {
                        continue;
                    }
                    if let Some(t) = doc.scalar_text(tok, &mut buf)
                        && test(t)
                    {
                        value = Some(t.to_string());
                        break;
                    }
                }
            }
            out.push(MatchedField {
                field: slot.field.clone(),
                value: value.unwrap_or_default(),
                test: pred.test.describe(),
            });
        }
        out
    }
}

/// How often a predicate is expected to fire on ordinary events (lower is rarer).
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
    match t {
        Test::Present | Test::NonNull => 900,
        Test::Str { pat, .. } => match pat.shape() {
            Shape::Any => 1000,
            Shape::Exact(l) => by_len(l.len()).min(50),
            Shape::Contains(l) | Shape::Prefix(l) | Shape::Suffix(l) => by_len(l.len()),
            Shape::General => pat.longest_literal().map_or(1000, |l| by_len(l.len())),
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

/// Up to two sets of predicates such that, for `e` to be true, each set
/// must have a fired predicate; chosen to fire as rarely as possible. Empty
/// when `e` can hold without any predicate (negations, field references).
fn trigger_sets(e: &Expr, cost: &impl Fn(u32) -> u32) -> Vec<(Vec<u32>, u32)> {
    match e {
        Expr::Pred(p) => vec![(vec![*p], cost(*p))],
        Expr::Const(false) => vec![(Vec::new(), 0)],
        Expr::Const(true) | Expr::Not(_) | Expr::FieldRef(_) => Vec::new(),
        Expr::Or(es) => {
            // If every branch has k sets, the unions of their k-th sets are
            // each necessary.
            let branches: Vec<_> = es.iter().map(|e| trigger_sets(e, cost)).collect();
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
            let mut all: Vec<_> = es.iter().flat_map(|e| trigger_sets(e, cost)).collect();
            all.sort_by_key(|(_, c)| *c);
            all.truncate(2);
            all
        }
    }
}

fn expr_size(e: &Expr) -> usize {
    match e {
        Expr::And(es) | Expr::Or(es) => 24 + es.iter().map(expr_size).sum::<usize>(),
        Expr::Not(e) => 16 + expr_size(e),
        _ => 16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(rule: &str) -> Engine {
        let mut b = Engine::builder();
        b.add_yaml(rule, Path::new("t.yml")).unwrap();
        let e = b.build();
        assert!(e.rejections().is_empty(), "{:?}", e.rejections());
        e
    }

    fn hit(e: &Engine, raw: &str) -> bool {
        let v = crate::event::parse(raw.as_bytes()).unwrap();
        let mut sc = e.scratch();
        let mut hits = Vec::new();
        e.detect(&v.doc(), &mut sc, &mut hits);
        !hits.is_empty()
    }

    #[test]
    fn keyword_prefilter_sees_escaped_and_unicode_forms() {
        let e = engine(
            "title: k\nlogsource: {product: windows}\ndetection:\n  keywords:\n    - 'C:\\Temp\\evil'\n    - 'sekurlsa'\n    - ' -Confirm \"False\"'\n  condition: keywords\n",
        );
        assert!(e.keyword_prefilters[0].is_some());
        // Backslashes are doubled in JSON text.
        assert!(hit(&e, r#"{"a": "run C:\\TEMP\\Evil.exe"}"#));
        // \u escapes can spell a keyword that the raw bytes do not show.
        assert!(hit(&e, r#"{"a": "\u0073ekurlsa::x"}"#));
        assert!(!hit(&e, r#"{"a": "benign", "n": 12}"#));
        // Quotes are escaped in JSON text.
        assert!(hit(&e, r#"{"a": "Set-X -Confirm \"false\""}"#));
    }

    #[test]
    fn one_engine_serves_many_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Engine>();
        let e = Arc::new(engine(
            "title: t\nlogsource: {product: windows}\ndetection:\n  sel:\n    CommandLine|contains: sekurlsa\n  condition: sel\n",
        ));
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let e = Arc::clone(&e);
                std::thread::spawn(move || {
                    let mut sc = e.scratch();
                    let mut hits = Vec::new();
                    let mut n = 0;
                    for j in 0..200 {
                        let raw = if (i + j) % 2 == 0 {
                            r#"{"CommandLine": "mimikatz sekurlsa::logonpasswords"}"#
                        } else {
                            r#"{"CommandLine": "notepad.exe"}"#
                        };
                        let v = crate::event::parse(raw.as_bytes()).unwrap();
                        e.detect(&v.doc(), &mut sc, &mut hits);
                        n += hits.len();
                    }
                    n
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 100);
        }
    }

    #[test]
    fn value_cache_replays_the_same_verdict() {
        let e = engine(
            "title: c\nlogsource: {product: windows}\ndetection:\n  sel:\n    Image|endswith: '\\cmd.exe'\n  condition: sel\n",
        );
        let mut sc = e.scratch();
        let mut hits = Vec::new();
        for (raw, want) in [
            (r#"{"Image": "C:\\Windows\\cmd.exe"}"#, true),
            (r#"{"Image": "C:\\Windows\\cmd.exe"}"#, true),
            (r#"{"Image": "C:\\Windows\\notepad.exe"}"#, false),
            (r#"{"Image": "C:\\Windows\\cmd.exe"}"#, true),
        ] {
            let v = crate::event::parse(raw.as_bytes()).unwrap();
            e.detect(&v.doc(), &mut sc, &mut hits);
            assert_eq!(!hits.is_empty(), want, "{raw}");
        }
    }
}
