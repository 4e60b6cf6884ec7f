//! The compiled rule set and the per-event matcher.
//!
//! Build once with [`EngineBuilder`], share the [`Engine`] behind an `Arc`,
//! and give every thread its own [`Scratch`]. Per event:
//!
//! 1. one walk over the parsed event ([`Doc`]), guided by a trie of every
//!    path a rule, a routing condition or a field reference reads, gathers
//!    the values at those paths;
//! 2. routing ([`route`]): the mapping's logsource conditions pick the
//!    active buckets (one bucket per logsource entry; without a mapping,
//!    one bucket), memoised per tuple of routing values;
//! 3. each gathered value goes to the field index of its slot if the slot
//!    belongs to an active bucket (memoised per value in [`cache`]), which
//!    fires predicates; keyword searches run when [`keywords`] says the
//!    raw line could hold a keyword;
//!    Values a mapping derives from others ([`crate::derive`]) are built
//!    from the gathered ones and fed the same way;
//! 4. only rules whose trigger sets fired (plus the few whose condition
//!    can hold with none) have their condition evaluated.

mod adapt;
mod build;
mod cache;
mod flat;
#[cfg(test)]
#[path = "../../tests/flat/mod.rs"]
mod flat_layout;
mod folded;
mod keywords;
#[cfg(test)]
mod oracle;
mod route;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use build::EngineBuilder;

use crate::compile::{FieldRefSpec, RefMode};
use crate::event::{Doc, Kind, PathTrie, for_each_text};
use crate::gather::{Hit, Paths};
use crate::index::{FeedScratch, FieldMatcher};
use crate::predicate::Test;
use crate::sigma::RuleMeta;

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
    pub field: Arc<str>,
    /// The event value that matched.
    pub value: String,
    /// What it was tested against.
    pub test: Arc<str>,
}

/// A rule that matched an event.
#[derive(Debug, Clone)]
pub struct RuleHit {
    pub rule: Arc<RuleInfo>,
    pub matched: Vec<MatchedField>,
}

/// A Sigma field resolved to event paths, shared by every bucket that
/// resolves it the same way, so each value is scanned once per field.
#[derive(Debug)]
struct Slot {
    /// Buckets with rules on this slot (bitset).
    buckets: Vec<u64>,
    field: Arc<str>,
    paths: Vec<Vec<String>>,
    /// Derived values read too (indexes into [`Engine::derived`]).
    derived: Vec<u32>,
    matcher: FieldMatcher,
}

/// An interned predicate: a test on the values of one slot.
#[derive(Debug)]
struct Pred {
    slot: u32,
    test: Test,
    /// Compiled for explaining matches, the first time one is explained
    /// (most predicates never are: building all of them up front made
    /// rule loading slower).
    check: std::sync::OnceLock<Check>,
    /// [`Test::describe`], for every alert that explains it.
    describe: Arc<str>,
}

#[derive(Debug)]
struct CompiledRule {
    rule: u32,
    bucket: u32,
    /// Where its condition starts in [`Engine::program`].
    code: u32,
    /// The predicates its condition uses positively, sorted: what a match
    /// is explained by.
    positive: Box<[u32]>,
    /// The field references it uses positively, sorted: they explain a
    /// match too.
    positive_refs: Box<[u32]>,
    /// Sets of predicates each of which must have one fired for the
    /// condition to hold, cheapest first by the static estimate (empty:
    /// it can hold with none); two of them trigger the rule.
    alts: Box<[Box<[u32]>]>,
}

#[derive(Debug)]
struct FieldRef {
    spec: FieldRefSpec,
    /// How an alert's `matched` names the comparison (`fieldref:Other`,
    /// `contains fieldref:Other`, ...).
    describe: Arc<str>,
    /// Operand ids (trie `refs`) of the field and the referenced field.
    a: u32,
    b: u32,
}

#[derive(Debug, Default)]
struct Bucket {
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
    /// Inputs of derived values read here (ids: [`Derived::input_base`]
    /// plus the input's index).
    inputs: Vec<u32>,
    /// Any of the above: the walk collects values here.
    target: bool,
}

/// A derived value some rule reads ([`crate::derive`]).
#[derive(Debug)]
struct Derived {
    derivation: crate::derive::Derivation,
    /// Its node in [`Engine::path_data`], past the trie's: gathered values
    /// of it are hits at this node, their token [`DERIVED_TOK`] plus the
    /// value's index in [`Scratch::derived`].
    node: u32,
    /// Input `i` is read at the trie nodes whose `inputs` hold
    /// `input_base + i`.
    input_base: u32,
}

/// Marks a hit's token as a derived value's index.
const DERIVED_TOK: u32 = 1 << 31;

/// Marks an input id in [`PathData::inputs`] as an `each` input (its
/// values are objects).
const OBJECTS_INPUT: u32 = 1 << 31;

/// The text of a gathered value: a token of `doc`, or a derived value.
#[inline]
fn hit_text<'b>(
    doc: &'b Doc<'_>,
    derived: &'b [String],
    tok: u32,
    buf: &'b mut String,
) -> Option<&'b str> {
    if tok & DERIVED_TOK != 0 {
        derived
            .get((tok & !DERIVED_TOK) as usize)
            .map(String::as_str)
    } else {
        doc.scalar_text(tok, buf)
    }
}

/// A predicate's test compiled for explaining matches (re-testing the
/// gathered values of an alerting rule).
#[derive(Debug)]
enum Check {
    Regex(regex_automata::meta::Regex),
    /// A wildcard pattern, on the lowercased value unless cased.
    Glob(crate::glob::Glob, bool),
    /// Anything else: [`Test::matches_text`].
    Test,
}

impl Check {
    fn new(test: &Test) -> Check {
        match test {
            Test::Regex(r) => crate::re::compile(r, regex_automata::meta::Config::new())
                .map_or(Check::Test, Check::Regex),
            Test::Str { pat, cased } => Check::Glob(crate::glob::Glob::new(pat), *cased),
            _ => Check::Test,
        }
    }

    fn memory_usage(&self) -> usize {
        match self {
            Check::Regex(re) => re.memory_usage(),
            Check::Glob(g, _) => g.memory_usage(),
            Check::Test => 0,
        }
    }

    /// Whether `text` passes `test` (which this was built from); `low` is a
    /// reusable buffer.
    fn matches(&self, test: &Test, text: &str, low: &mut String) -> bool {
        match self {
            Check::Regex(re) => re.is_match(text),
            Check::Glob(g, true) => g.matches(text.as_bytes()),
            Check::Glob(g, false) => {
                crate::glob::lowercase_into(text, low);
                g.matches(low.as_bytes())
            }
            Check::Test => test.matches_text(text),
        }
    }
}

/// A compiled, immutable rule set.
#[derive(Debug)]
pub struct Engine {
    /// Tells scratches made for another engine apart.
    id: u64,
    rules: Vec<Arc<RuleInfo>>,
    rejections: Vec<Rejection>,
    buckets: Vec<Bucket>,
    bucket_keywords: Vec<keywords::BucketKeywords>,
    slots: Vec<Slot>,
    keyword_slot: Option<u32>,
    preds: Vec<Pred>,
    triggers: flat::Triggers,
    compiled: Vec<CompiledRule>,
    program: flat::Program,
    fieldrefs: Vec<FieldRef>,
    trie: PathTrie,
    /// Per trie node, then per derived value.
    path_data: Vec<PathData>,
    derived: Vec<Derived>,
    router: route::Router,
    mapping_name: Option<String>,
}

/// Engine ids (and [`crate::gather::Gather`]s', from the same counter):
/// what a scratch or a remembered walk was made for.
fn next_engine_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn next_walk_owner() -> u64 {
    next_engine_id()
}

/// Per-thread working memory for [`Engine::detect`].
#[derive(Debug, Default)]
pub struct Scratch {
    engine: u64,
    fired: Vec<u64>,
    touched: Touched,
    marked: Vec<u64>,
    marked2: Vec<u64>,
    partial: Vec<u32>,
    candidates: Vec<u32>,
    rule_seen: Vec<u64>,
    route: route::RouteScratch,
    feed: FeedScratch,
    numbuf: String,
    /// The ASCII-lowercased raw line (keyword prefilter).
    lowered: Vec<u8>,
    /// Lowercased values joined for one keyword scan.
    joined: Vec<u8>,
    cache: cache::ValueCache,
    /// The per-event values at the paths rules read.
    gathered: Vec<Hit>,
    /// Remembered walks per event shape.
    walks: crate::gather::WalkCache,
    /// Text buffers for field references.
    refs: [String; 4],
    /// Firing counts and the trigger sets chosen from them.
    adapt: adapt::Adapt,
    /// Skip the keyword prefilter (see [`Engine::detect_exhaustive`]).
    exhaustive: bool,
    /// Derived values of the current event, and how many are in use
    /// (the rest keep their capacity).
    derived: Vec<String>,
    nderived: usize,
    /// (input id, token) of the gathered inputs of derived values.
    dinputs: Vec<(u32, u32)>,
    /// The gathered values plus the derived ones.
    with_derived: Vec<Hit>,
    dbuf: String,
}

/// The predicates the current event fired, each once, in firing order:
/// a buffer with room for every predicate, so that firing appends without
/// a branch on whether the predicate is new (value-driven, so hard to
/// predict) or on the buffer's capacity.
#[derive(Debug, Default)]
struct Touched {
    buf: Vec<u32>,
    len: usize,
}

impl Touched {
    fn new(preds: usize) -> Touched {
        Touched {
            buf: vec![0; preds + 1],
            len: 0,
        }
    }

    /// Sets `p` in `fired`, and lists it if it was not set.
    #[inline(always)]
    fn fire(&mut self, fired: &mut [u64], p: u32) {
        let new = set_bit(fired, p);
        // At most every predicate is listed, so `len` stays in bounds.
        self.buf[self.len] = p;
        self.len += usize::from(new);
    }

    #[inline]
    fn as_slice(&self) -> &[u32] {
        &self.buf[..self.len]
    }

    #[inline]
    fn clear(&mut self) {
        self.len = 0;
    }
}

#[inline(always)]
fn set_bit(bits: &mut [u64], i: u32) -> bool {
    let (w, b) = ((i / 64) as usize, i % 64);
    let was = bits[w] & (1 << b) != 0;
    bits[w] |= 1 << b;
    !was
}

#[inline(always)]
fn get_bit(bits: &[u64], i: u32) -> bool {
    bits[(i / 64) as usize] & (1 << (i % 64)) != 0
}

#[inline(always)]
fn intersects(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

fn words(n: usize) -> usize {
    n.div_ceil(64).max(1)
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
        let preds = self.preds.len() * std::mem::size_of::<Pred>()
            + self
                .preds
                .iter()
                .map(|p| p.check.get().map_or(0, Check::memory_usage) + p.describe.len())
                .sum::<usize>()
            + self.triggers.memory_usage();
        let exprs: usize = self
            .compiled
            .iter()
            .map(|c| 32 + c.positive.len() * 4)
            .sum::<usize>()
            + self.program.memory_usage();
        let trie: usize = self.trie.memory_usage()
            + self
                .path_data
                .iter()
                .map(|d| 80 + (d.slots.len() + d.routes.len() + d.refs.len() + d.inputs.len()) * 4)
                .sum::<usize>();
        slots + preds + exprs + trie
    }

    /// A fresh scratch sized for this engine.
    pub fn scratch(&self) -> Scratch {
        Scratch {
            engine: self.id,
            fired: vec![0; words(self.preds.len())],
            touched: Touched::new(self.preds.len()),
            marked: vec![0; words(self.compiled.len())],
            marked2: vec![0; words(self.compiled.len())],
            rule_seen: vec![0; words(self.rules.len())],
            adapt: self.adapt_state(),
            ..Scratch::default()
        }
    }

    /// Evaluates every rule against one parsed event; matches go to `out`
    /// (cleared first), each rule at most once.
    pub fn detect(&self, doc: &Doc<'_>, sc: &mut Scratch, out: &mut Vec<RuleHit>) {
        let mut hits = std::mem::take(&mut sc.gathered);
        hits.clear();
        crate::gather::walk_cached(
            &self.trie,
            self.id,
            doc,
            &|n| self.path_data[n as usize].target,
            &mut sc.walks,
            &mut |node, tok, element| hits.push(Hit { node, tok, element }),
        );
        self.detect_hits(doc, &hits, sc, out);
        sc.gathered = hits;
    }

    /// The paths rules read, with the ids [`Engine::detect_hits`] expects:
    /// for a [`crate::gather::Gather`] that walks each event once for
    /// several readers.
    pub fn paths(&self) -> Paths {
        self.trie
            .paths()
            .into_iter()
            .filter(|(_, n)| self.path_data[*n as usize].target)
            .collect()
    }

    /// [`Engine::detect`] on values already gathered at [`Engine::paths`].
    pub fn detect_hits(
        &self,
        doc: &Doc<'_>,
        hits: &[Hit],
        sc: &mut Scratch,
        out: &mut Vec<RuleHit>,
    ) {
        out.clear();
        if sc.engine != self.id {
            *sc = self.scratch();
        }
        let r = self.route(doc, hits, &mut sc.route);
        if sc.route.routes[r].list.is_empty() {
            return;
        }
        if self.derived.is_empty() {
            self.matches(doc, hits, hits.len(), r, sc, out);
            return;
        }
        let mut all = std::mem::take(&mut sc.with_derived);
        all.clear();
        all.extend_from_slice(hits);
        self.derive_values(doc, hits, sc, &mut all);
        self.matches(doc, &all, hits.len(), r, sc, out);
        sc.with_derived = all;
    }

    /// Builds the event's derived values from the gathered `hits` into
    /// `sc.derived`, appending a hit for each to `all`.
    #[inline(never)]
    fn derive_values(&self, doc: &Doc<'_>, hits: &[Hit], sc: &mut Scratch, all: &mut Vec<Hit>) {
        let Scratch {
            derived,
            nderived,
            dinputs,
            dbuf,
            numbuf,
            ..
        } = sc;
        *nderived = 0;
        dinputs.clear();
        for h in hits {
            for &g in &self.path_data[h.node as usize].inputs {
                // An `each` input takes objects, the others scalars.
                let ok = if g & OBJECTS_INPUT != 0 {
                    doc.kind(h.tok) == Kind::Object
                } else {
                    doc.scalar_text(h.tok, numbuf).is_some()
                };
                if ok {
                    dinputs.push((g & !OBJECTS_INPUT, h.tok));
                }
            }
        }
        if dinputs.is_empty() {
            return;
        }
        // Stable: an input's values stay in document order.
        dinputs.sort_by_key(|&(g, _)| g);
        for d in &self.derived {
            let n = d.derivation.inputs.len() as u32;
            let lo = dinputs.partition_point(|&(g, _)| g < d.input_base);
            let hi = dinputs.partition_point(|&(g, _)| g < d.input_base + n);
            if lo == hi {
                continue;
            }
            let mine = &dinputs[lo..hi];
            // Sorted by input id: each input's values are one run, in
            // document order.
            let of = |i: usize| {
                let g = d.input_base + i as u32;
                let lo = mine.partition_point(|&(x, _)| x < g);
                let hi = mine.partition_point(|&(x, _)| x <= g);
                &mine[lo..hi]
            };
            // Which object of the `each` input holds a value: objects at
            // one path do not nest, so the last one starting before the
            // value's token, if its subtree holds the token.
            let owner = |i: usize, k: usize| {
                let (Some(each), Some(&(_, t))) = (d.derivation.each, of(i).get(k)) else {
                    return usize::MAX;
                };
                let objects = of(each);
                match objects.partition_point(|&(_, e)| e < t) {
                    0 => usize::MAX,
                    p if t < doc.next(objects[p - 1].1) => p - 1,
                    _ => usize::MAX,
                }
            };
            d.derivation.eval(
                &|i| of(i).len(),
                &mut |i, k, out| {
                    if let Some(&(_, tok)) = of(i).get(k)
                        && let Some(t) = doc.scalar_text(tok, numbuf)
                    {
                        out.push_str(t);
                    }
                },
                &owner,
                dbuf,
                &mut |v| {
                    if *nderived < derived.len() {
                        derived[*nderived].clear();
                        derived[*nderived].push_str(v);
                    } else {
                        derived.push(v.to_string());
                    }
                    all.push(Hit {
                        node: d.node,
                        tok: DERIVED_TOK | *nderived as u32,
                        element: false,
                    });
                    *nderived += 1;
                },
            );
        }
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

    /// `hits`: the gathered values, then (from `real` on) the derived ones.
    #[inline(never)]
    fn matches(
        &self,
        doc: &Doc<'_>,
        hits: &[Hit],
        real: usize,
        r: usize,
        sc: &mut Scratch,
        out: &mut Vec<RuleHit>,
    ) {
        let Scratch {
            fired,
            touched,
            feed,
            numbuf,
            cache,
            route,
            derived,
            ..
        } = sc;
        let active = &route.routes[r].slots;
        touched.clear();
        let mut fire = |p: u32| touched.fire(fired, p);
        for h in &hits[..real] {
            let slots = &self.path_data[h.node as usize].slots;
            // Most paths feed one slot; skip the value's text when the
            // route reads none of them.
            if slots.iter().any(|&s| get_bit(active, s)) {
                self.feed(slots, doc, h.tok, active, feed, numbuf, cache, &mut fire);
            }
        }
        for h in &hits[real..] {
            let text = &derived[(h.tok & !DERIVED_TOK) as usize];
            for &s in &self.path_data[h.node as usize].slots {
                if get_bit(active, s) {
                    self.slots[s as usize]
                        .matcher
                        .feed_text(text, feed, &mut fire);
                }
            }
        }
        if self.keywords_needed(doc, r, sc) {
            self.feed_keywords(doc, sc);
        }
        self.candidates(r, sc);
        // Evaluate.
        let fired = &sc.fired;
        let bufs = &mut sc.refs;
        let derived = &sc.derived[..sc.nderived];
        for &c in &sc.candidates {
            let cr = &self.compiled[c as usize];
            let ok = self.program.eval(cr.code, fired, &mut |f| {
                self.eval_fieldref(f, doc, derived, hits, bufs)
            });
            if ok && set_bit(&mut sc.rule_seen, cr.rule) {
                out.push(RuleHit {
                    rule: self.rules[cr.rule as usize].clone(),
                    matched: self.explain(cr, fired, doc, derived, hits, bufs),
                });
            }
        }
        // Reset only what was touched.
        for &p in sc.touched.as_slice() {
            sc.fired[(p / 64) as usize] = 0;
        }
        for &c in &sc.partial {
            sc.marked[(c / 64) as usize] = 0;
            sc.marked2[(c / 64) as usize] = 0;
        }
        for &c in &sc.candidates {
            sc.rule_seen[(self.compiled[c as usize].rule / 64) as usize] = 0;
        }
        if sc.adapt.tick() {
            self.choose_triggers(&mut sc.adapt);
        }
    }

    /// The compiled rules to evaluate: every trigger set fired, or none needed.
    fn candidates(&self, r: usize, sc: &mut Scratch) {
        sc.candidates.clear();
        sc.partial.clear();
        let active = &sc.route.routes[r].bits;
        let Scratch {
            touched,
            marked,
            marked2,
            partial,
            candidates,
            adapt,
            ..
        } = sc;
        if adapt.sampling() {
            for &p in touched.as_slice() {
                adapt.fired(p);
            }
        }
        let triggers = adapt.triggers.as_ref().unwrap_or(&self.triggers);
        for &p in touched.as_slice() {
            triggers.for_each_group(p, |bucket, entries| {
                if !get_bit(active, bucket) {
                    return;
                }
                for &entry in entries {
                    let (r, k, two) = (entry >> 2, entry >> 1 & 1, entry & 1 == 1);
                    let (mine, other) = if k == 0 {
                        (&mut *marked, &*marked2)
                    } else {
                        (&mut *marked2, &*marked)
                    };
                    if set_bit(mine, r) {
                        partial.push(r);
                        if !two || get_bit(other, r) {
                            candidates.push(r);
                        }
                    }
                }
            });
        }
        for &b in &sc.route.routes[r].list {
            for &c in &self.buckets[b as usize].always {
                if set_bit(&mut sc.marked, c) {
                    sc.partial.push(c);
                    sc.candidates.push(c);
                }
            }
        }
    }

    /// Feeds one gathered value to the active ones of `slots`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn feed(
        &self,
        slots: &[u32],
        doc: &Doc<'_>,
        tok: u32,
        active_slots: &[u64],
        feed: &mut FeedScratch,
        numbuf: &mut String,
        cache: &mut cache::ValueCache,
        fire: &mut impl FnMut(u32),
    ) {
        let kind = doc.kind(tok);
        if kind == Kind::Array {
            for &s in slots {
                if get_bit(active_slots, s) {
                    self.slots[s as usize].matcher.feed_container(fire);
                }
            }
            return;
        }
        let text = doc.scalar_text(tok, numbuf);
        for &s in slots {
            if !get_bit(active_slots, s) {
                continue;
            }
            let slot = &self.slots[s as usize];
            match text {
                Some(t) if t.len() <= cache::MAX_LEN && cache.wants(s) => {
                    match cache.lookup(s, t) {
                        Ok(preds) => preds.iter().for_each(|p| fire(*p)),
                        Err(miss) => {
                            let preds = cache.preds_mut();
                            slot.matcher.feed_text(t, feed, &mut |p| {
                                preds.push(p);
                                fire(p);
                            });
                            cache.store(miss, s, t);
                        }
                    }
                }
                Some(t) if t.len() > cache::MAX_LEN => feed_long(slot, s, t, feed, cache, fire),
                Some(t) => slot.matcher.feed_text(t, feed, fire),
                None if kind == Kind::Null => slot.matcher.feed_null(fire),
                None => slot.matcher.feed_container(fire),
            }
        }
    }

    /// Calls `f` with each text gathered where operand `id` is read.
    fn operand_texts(
        &self,
        id: u32,
        doc: &Doc<'_>,
        derived: &[String],
        hits: &[Hit],
        buf: &mut String,
        f: &mut impl FnMut(&str) -> bool,
    ) -> bool {
        for h in hits {
            if self.path_data[h.node as usize].refs.contains(&id)
                && let Some(text) = hit_text(doc, derived, h.tok, buf)
                && f(text)
            {
                return true;
            }
        }
        false
    }

    /// Compares the two operands of field reference `f` over the gathered
    /// values (`bufs`: reusable text buffers).
    fn eval_fieldref(
        &self,
        f: u32,
        doc: &Doc<'_>,
        derived: &[String],
        hits: &[Hit],
        bufs: &mut [String; 4],
    ) -> bool {
        self.find_fieldref(f, doc, derived, hits, bufs, &mut |_| {})
    }

    /// [`Engine::eval_fieldref`], calling `found` with the first value of
    /// the field that stands in the relation to a value of the referenced
    /// one.
    fn find_fieldref(
        &self,
        f: u32,
        doc: &Doc<'_>,
        derived: &[String],
        hits: &[Hit],
        bufs: &mut [String; 4],
        found: &mut impl FnMut(&str),
    ) -> bool {
        let fr = &self.fieldrefs[f as usize];
        let norm = |s: &str, out: &mut String| {
            out.clear();
            if fr.spec.cased {
                out.push_str(s);
            } else {
                crate::glob::lowercase_into(s, out);
            }
        };
        let [buf_a, buf_b, la, lb] = bufs;
        self.operand_texts(fr.a, doc, derived, hits, buf_a, &mut |a| {
            norm(a, la);
            let hit = self.operand_texts(fr.b, doc, derived, hits, buf_b, &mut |b| {
                norm(b, lb);
                match fr.spec.mode {
                    RefMode::Eq => *la == *lb,
                    RefMode::Contains => la.contains(lb.as_str()),
                    RefMode::StartsWith => la.starts_with(lb.as_str()),
                    RefMode::EndsWith => la.ends_with(lb.as_str()),
                }
            });
            if hit {
                found(a);
            }
            hit
        })
    }

    /// The fields and values behind a match: every positively used field
    /// reference that holds (first), then every positively used predicate
    /// that fired. (`bufs`: the scratch's reusable text buffers:
    /// values are read and lowercased there, not in fresh strings grown a
    /// character at a time.)
    fn explain(
        &self,
        cr: &CompiledRule,
        fired: &[u64],
        doc: &Doc<'_>,
        derived: &[String],
        hits: &[Hit],
        bufs: &mut [String; 4],
    ) -> Vec<MatchedField> {
        let positive = &cr.positive;
        let mut out = Vec::with_capacity(
            positive.iter().filter(|&&p| get_bit(fired, p)).count() + cr.positive_refs.len(),
        );
        for &f in &cr.positive_refs {
            let mut value = None;
            if self.find_fieldref(f, doc, derived, hits, bufs, &mut |a| {
                value = Some(a.to_string())
            }) {
                let fr = &self.fieldrefs[f as usize];
                out.push(MatchedField {
                    field: fr.spec.field.as_str().into(),
                    value: value.unwrap_or_default(),
                    test: fr.describe.clone(),
                });
            }
        }
        let [buf, _, low, _] = bufs;
        for &p in positive.iter().filter(|&&p| get_bit(fired, p)) {
            let pred = &self.preds[p as usize];
            let slot = &self.slots[pred.slot as usize];
            let check = pred.check.get_or_init(|| Check::new(&pred.test));
            let mut test = |t: &str| check.matches(&pred.test, t, low);
            let mut value = None;
            if Some(pred.slot) == self.keyword_slot {
                for_each_text(doc, buf, &mut |t| {
                    if value.is_none() && test(t) {
                        value = Some(t.to_string());
                    }
                });
            } else {
                for h in hits {
                    if !self.path_data[h.node as usize].slots.contains(&pred.slot) {
                        continue;
                    }
                    if let Some(t) = hit_text(doc, derived, h.tok, buf)
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
                test: pred.describe.clone(),
            });
        }
        out
    }
}

/// Feeds a value longer than the short memo takes: through the long-value
/// memo while its slot's values repeat. Kept out of line so that the
/// per-value loop stays as it is for the short values that make most
/// events.
#[inline(never)]
fn feed_long(
    slot: &Slot,
    s: u32,
    t: &str,
    feed: &mut FeedScratch,
    cache: &mut cache::ValueCache,
    fire: &mut impl FnMut(u32),
) {
    // Long enough that scanning it again costs more than recording it, so
    // the next value of the slot may resume where it begins alike.
    let resume = (t.len() >= RESUME_MIN).then_some(s);
    if t.len() <= cache::LONG_MAX && cache.long.wants(s) {
        let preds = cache.long.get_or_compute(s, t, |preds| {
            slot.matcher
                .feed_text_resuming(t, feed, resume, &mut |p| preds.push(p))
        });
        preds.iter().for_each(|p| fire(*p));
    } else {
        slot.matcher.feed_text_resuming(t, feed, resume, fire)
    }
}

/// Shortest value whose literal scans are recorded for resuming.
const RESUME_MIN: usize = 512;

#[cfg(test)]
mod tests {
    use std::path::Path;

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

    /// The one alert `raw` raises: its `matched` as (field, value, test).
    fn matched(e: &Engine, raw: &str) -> Vec<(String, String, String)> {
        let v = crate::event::parse(raw.as_bytes()).unwrap();
        let mut sc = e.scratch();
        let mut hits = Vec::new();
        e.detect(&v.doc(), &mut sc, &mut hits);
        assert_eq!(hits.len(), 1);
        hits[0]
            .matched
            .iter()
            .map(|m| (m.field.to_string(), m.value.clone(), m.test.to_string()))
            .collect()
    }

    #[test]
    fn an_alert_names_each_matching_field_with_its_original_value() {
        let e = engine(concat!(
            "title: m\nlogsource: {product: windows}\ndetection:\n",
            "  img:\n    Image|endswith: '\\cmd.exe'\n",
            "  cmd:\n    CommandLine|contains|cased: 'Foo'\n",
            "  usr:\n    User|re: '^NT AUTH'\n",
            "  tag:\n    Tags: 'b?t*'\n",
            "  port:\n    Port|gte: 440\n",
            "  condition: all of them\n",
        ));
        let raw = concat!(
            r#"{"Image": "C:\\Windows\\CMD.EXE", "CommandLine": "cmd /c Foo", "#,
            r#""User": "NT AUTHORITY\\SYSTEM", "Tags": ["alpha", "BETA1"], "Port": 443}"#,
        );
        let got = matched(&e, raw);
        let got: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|(f, v, t)| (f.as_str(), v.as_str(), t.as_str()))
            .collect();
        let want = [
            ("Image", "C:\\Windows\\CMD.EXE", "*\\cmd.exe"),
            ("CommandLine", "cmd /c Foo", "*Foo* (cased)"),
            ("User", "NT AUTHORITY\\SYSTEM", "re:^NT AUTH"),
            ("Tags", "BETA1", "b?t*"),
            ("Port", "443", ">=440"),
        ];
        for w in want {
            assert!(got.contains(&w), "{w:?} not in {got:?}");
        }
        assert_eq!(got.len(), want.len(), "{got:?}");
    }

    /// A field reference that holds explains the alert too: the field, its
    /// value and what it was compared with. One used under `not` does not.
    #[test]
    fn an_alert_names_the_field_references_that_held() {
        let e = engine(concat!(
            "title: m\nlogsource: {product: windows}\ndetection:\n",
            "  same:\n    Image|fieldref: ParentImage\n",
            "  arg:\n    CommandLine|fieldref|contains: User\n",
            "  other:\n    Image|fieldref|endswith: Target\n",
            "  nope:\n    User: alice\n",
            "  condition: same and arg and not (other and nope)\n",
        ));
        // `other` holds but sits under `not`: it explains nothing.
        let raw = concat!(
            r#"{"Image": "C:\\Temp\\A.exe", "ParentImage": "c:\\temp\\a.exe", "#,
            r#""CommandLine": "net user Bob /add", "User": "bob", "Target": "a.exe"}"#,
        );
        let got = matched(&e, raw);
        let got: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|(f, v, t)| (f.as_str(), v.as_str(), t.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Image", "C:\\Temp\\A.exe", "fieldref:ParentImage"),
                ("CommandLine", "net user Bob /add", "contains fieldref:User"),
            ]
        );
    }

    /// A rule literal is lowercased on its own, an event value as a whole:
    /// the word-final sigma must not make them differ.
    #[test]
    fn case_insensitive_matching_treats_every_sigma_alike() {
        for detection in [
            "  sel:\n    CommandLine|contains: 'ΟΔΟΣ'\n  condition: sel\n",
            "  keywords:\n    - 'ΟΔΟΣ'\n  condition: keywords\n",
        ] {
            let e = engine(&format!(
                "title: s\nlogsource: {{product: windows}}\ndetection:\n{detection}"
            ));
            for value in ["ΟΔΟΣ", "ΟΔΟΣΑ", "η οδος", "οδοσ", "x ΟδΟς y"] {
                let ev = format!(r#"{{"CommandLine": "{value}"}}"#);
                assert!(hit(&e, &ev), "{detection}: {value}");
            }
            assert!(!hit(&e, r#"{"CommandLine": "ΟΔΟ"}"#), "{detection}");
        }
    }

    #[test]
    fn keyword_prefilter_sees_escaped_and_unicode_forms() {
        let e = engine(
            "title: k\nlogsource: {product: windows}\ndetection:\n  keywords:\n    - 'C:\\Temp\\evil'\n    - 'sekurlsa'\n    - ' -Confirm \"False\"'\n  condition: keywords\n",
        );
        assert!(matches!(
            e.bucket_keywords[0],
            keywords::BucketKeywords::Literals(_)
        ));
        // Backslashes are doubled in JSON text.
        assert!(hit(&e, r#"{"a": "run C:\\TEMP\\Evil.exe"}"#));
        // \u escapes can spell a keyword that the raw bytes do not show.
        assert!(hit(&e, r#"{"a": "\u0073ekurlsa::x"}"#));
        // So can \/ (PHP and others escape every slash).
        let e2 = engine(
            "title: k\nlogsource: {product: windows}\ndetection:\n  keywords:\n    - 'http://evil.example/x'\n  condition: keywords\n",
        );
        assert!(hit(&e2, r#"{"url": "http:\/\/evil.example\/x"}"#));
        assert!(!hit(&e2, r#"{"url": "http:\/\/good.example\/x"}"#));
        assert!(!hit(&e, r#"{"a": "benign", "n": 12}"#));
        // Quotes are escaped in JSON text.
        assert!(hit(&e, r#"{"a": "Set-X -Confirm \"false\""}"#));
        // Kelvin sign and dotted capital I lowercase to ASCII letters
        // (written raw, not escaped).
        let e3 = engine(
            "title: k\nlogsource: {product: windows}\ndetection:\n  keywords:\n    - 'kerberoast'\n    - 'mimi'\n    - '1000'\n  condition: keywords\n",
        );
        assert!(hit(&e3, "{\"a\": \"\u{212A}erberoast\"}"));
        assert!(
            hit(&e3, "{\"a\": \"m\u{130}m\u{130}\"}")
                == "m\u{130}m\u{130}".to_lowercase().contains("mimi")
        );
        // Numbers read as their shortest decimal form: 1e3 is 1000.
        assert!(hit(&e3, r#"{"n": 1e3}"#));
        assert!(hit(&e3, r#"{"n": 1.0000e3, "s": "x"}"#));
        assert!(!hit(&e3, r#"{"n": 1.5e2}"#));
        // Escaped or not, every event gets the verdict of the exact pass.
        for raw in [
            r#"{"a": "\u006Berberoast", "n": 0.25}"#,
            r#"{"a": "x\\\"kerberoast\"", "n": 12.5e1}"#,
            r#"{"a": "caf\u00e9", "b": "mimi\/x"}"#,
            r#"{"a": "nothing here", "n": 99.5}"#,
        ] {
            let v = crate::event::parse(raw.as_bytes()).unwrap();
            let (mut sc, mut a, mut b) = (e3.scratch(), Vec::new(), Vec::new());
            e3.detect(&v.doc(), &mut sc, &mut a);
            e3.detect_exhaustive(&v.doc(), &mut sc, &mut b);
            assert_eq!(a.len(), b.len(), "{raw}");
        }
    }

    /// Lines written with `\u` escapes (as Python's `json.dumps` writes
    /// every non-ASCII character) keep the raw-line prefilter unless an
    /// escape spells an ASCII character or one lowercasing to ASCII, and
    /// every line gets the verdict of the exact pass either way.
    #[test]
    fn escaped_lines_get_the_exact_keyword_verdict() {
        let e = engine(
            "title: k\nlogsource: {product: windows}\ndetection:\n  keywords:\n    - 'kerberoast'\n    - 'mimi'\n    - 'x\\y'\n  condition: keywords\n",
        );
        let pieces = [
            "kerb", "eroast", "mimi", "mi", "x\\\\y", "\\u00e9", "\\u00C9", "\\u212a", "\\u0130",
            "\\u006b", "\\u004B", "\\u0078", "\\u005c", "e", "K", "\\\"", " ",
        ];
        let mut g = warden_gen::Rng::new(9);
        let (mut sc, mut a, mut b) = (e.scratch(), Vec::new(), Vec::new());
        let (mut raw_path, mut hits) = (0, 0);
        for _ in 0..20_000 {
            let mut v = String::new();
            for _ in 0..g.below(6) {
                v.push_str(pieces[g.below(pieces.len())]);
            }
            let raw = format!(r#"{{"a": "{v}", "b": "\u00e9t\u00e9"}}"#);
            let doc = crate::event::parse(raw.as_bytes()).unwrap();
            e.detect(&doc.doc(), &mut sc, &mut a);
            e.detect_exhaustive(&doc.doc(), &mut sc, &mut b);
            assert_eq!(a.len(), b.len(), "{raw}");
            raw_path += usize::from(!doc.doc().has_hidden_text());
            hits += b.len();
        }
        // Most lines escape only non-ASCII characters and keep the raw path.
        assert!(
            raw_path > 5_000 && hits > 2_000,
            "{raw_path} raw, {hits} hits"
        );
        for (raw, hidden) in [
            (r#"{"a": "caf\u00e9"}"#, false),
            (r#"{"a": "\u006berberoast"}"#, true),
            (r#"{"a": "\u212aerberoast"}"#, true),
            (r#"{"a": "x\/y"}"#, true),
        ] {
            let doc = crate::event::parse(raw.as_bytes()).unwrap();
            assert_eq!(doc.doc().has_hidden_text(), hidden, "{raw}");
        }
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

    #[test]
    fn long_value_memo_replays_the_same_verdict() {
        let e = engine(
            "title: c\nlogsource: {product: windows}\ndetection:\n  sel:\n    CallTrace|contains: 'UNKNOWN('\n  condition: sel\n",
        );
        let mut sc = e.scratch();
        let mut hits = Vec::new();
        let frames = "C:\\\\Windows\\\\SYSTEM32\\\\ntdll.dll+9f7a4|".repeat(40);
        let hit = format!("{frames}UNKNOWN(00000000)");
        // The same length, one byte away: must not replay `hit`'s verdict.
        let near = format!("{frames}UNKNOWN[00000000)");
        assert!(hit.len() > cache::MAX_LEN && hit.len() <= cache::LONG_MAX);
        // Rounds well past the slot's first samples (its values repeat, so
        // it keeps using the memo).
        for i in 0..3 * cache::LONG_BYPASS as usize {
            let (v, want) = match i % 3 {
                0 => (&hit, true),
                1 => (&near, false),
                _ => (&frames, false),
            };
            let raw = format!(r#"{{"CallTrace": "{v}", "n": {i}}}"#);
            let doc = crate::event::parse(raw.as_bytes()).unwrap();
            e.detect(&doc.doc(), &mut sc, &mut hits);
            assert_eq!(!hits.is_empty(), want, "event {i}");
            if want {
                assert_eq!(&*hits[0].matched[0].field, "CallTrace", "event {i}");
            }
        }
    }

    #[test]
    fn every_predicate_of_a_trigger_set_triggers_its_rules() {
        // Several rules over the same predicates, in two buckets' worth of
        // logsources: each predicate alone must make each rule that lists
        // it a candidate.
        let mut b = Engine::builder();
        for (i, lits) in [
            ["alpha", "beta", "gamma"],
            ["gamma", "delta", "alpha"],
            ["eps", "beta", "zeta"],
        ]
        .iter()
        .enumerate()
        {
            let rule = format!(
                "title: r{i}\nid: r{i}\nlogsource: {{product: windows}}\ndetection:\n  sel:\n    CommandLine|contains: [{}]\n  other:\n    Image|endswith: '.exe'\n  condition: sel and other\n",
                lits.join(", ")
            );
            b.add_yaml(&rule, Path::new("t.yml")).unwrap();
        }
        let e = b.build();
        let mut sc = e.scratch();
        let mut hits = Vec::new();
        for (word, want) in [
            ("alpha", vec!["r0", "r1"]),
            ("beta", vec!["r0", "r2"]),
            ("gamma", vec!["r0", "r1"]),
            ("delta", vec!["r1"]),
            ("eps", vec!["r2"]),
            ("zeta", vec!["r2"]),
            ("none", vec![]),
        ] {
            let raw = format!(r#"{{"CommandLine": "x {word} y", "Image": "a.exe"}}"#);
            let v = crate::event::parse(raw.as_bytes()).unwrap();
            e.detect(&v.doc(), &mut sc, &mut hits);
            let mut got: Vec<&str> = hits.iter().map(|h| h.rule.meta.title.as_str()).collect();
            got.sort();
            assert_eq!(got, want, "{word}");
        }
    }

    /// Trigger sets chosen from the stream change which rules are looked
    /// at, never a verdict: every event gets the verdicts of a scratch that
    /// never adapted, and once the stream has shown that `Initiated: true`
    /// is in every event, the rules stop being marked for it.
    #[test]
    fn adapted_triggers_keep_every_verdict() {
        let mut b = Engine::builder();
        for i in 0..20 {
            let rule = format!(
                "title: r{i}\nid: r{i}\nlogsource: {{product: windows}}\ndetection:\n  out:\n    Initiated: 'true'\n  port:\n    DestinationPort: {}\n  img:\n    Image|endswith: '\\tool{}.exe'\n  condition: out and port and img\n",
                4000 + i,
                i % 5
            );
            b.add_yaml(&rule, Path::new("t.yml")).unwrap();
        }
        let e = b.build();
        let mut g = warden_gen::Rng::new(3);
        let mut sc = e.scratch();
        let (mut hits, mut want) = (Vec::new(), Vec::new());
        let (mut marked_before, mut marked_after, mut alerts) = (0, 0, 0);
        for n in 0..12_000 {
            let raw = format!(
                r#"{{"Initiated": "true", "DestinationPort": {}, "Image": "C:\\x\\tool{}.exe"}}"#,
                4000 + g.below(40),
                g.below(10)
            );
            let v = crate::event::parse(raw.as_bytes()).unwrap();
            e.detect(&v.doc(), &mut sc, &mut hits);
            let mut fresh = e.scratch();
            e.detect(&v.doc(), &mut fresh, &mut want);
            let names = |h: &[RuleHit]| -> Vec<String> {
                let mut v: Vec<String> = h.iter().map(|h| h.rule.meta.title.clone()).collect();
                v.sort();
                v
            };
            assert_eq!(names(&hits), names(&want), "{raw}");
            alerts += hits.len();
            if n < 4_000 {
                marked_before += sc.partial.len();
            } else {
                marked_after += sc.partial.len();
            }
        }
        assert!(sc.adapt.adapted());
        assert!(alerts > 50, "{alerts}");
        // 20 rules marked by `Initiated` in every event before; after, a
        // rule is marked only when its port or image fires.
        assert!(marked_before >= 4_000 * 20, "{marked_before}");
        assert!(
            marked_after * 4 < marked_before * 2,
            "{marked_before} -> {marked_after}"
        );
    }
}
