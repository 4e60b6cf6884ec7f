//! The per-slot index: every predicate of one field, grouped so that one
//! value is tested against all of them at once.
//!
//! - exact values: a hash map from the (lowercased) value to predicates;
//! - contains / startswith / endswith and the literal gate of general
//!   wildcard patterns: one Aho-Corasick automaton per case mode;
//! - regexes: one multi-pattern regex-automata searcher;
//! - CIDRs: a prefix table; numbers, time parts, presence: short lists.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex_automata::{Input, PatternSet, meta};

use crate::glob::{Pattern, Shape};
use crate::ip::PrefixTable;
use crate::predicate::{Cmp, Test, TimePart};

/// What an automaton hit means.
#[derive(Debug, Clone, Copy)]
enum AcTarget {
    Contains(u32),
    Prefix(u32),
    Suffix(u32),
    /// The literal of general pattern `idx` occurs: verify the whole pattern.
    Gate(u32),
}

#[derive(Debug)]
struct AcIndex {
    ac: AhoCorasick,
    targets: Vec<Vec<AcTarget>>,
}

/// A general wildcard pattern, verified after its gate literal hits.
#[derive(Debug)]
struct General {
    pred: u32,
    pat: Pattern,
}

/// Per-case-mode string structures.
#[derive(Debug, Default)]
struct StrIndex {
    exact: HashMap<Box<[u8]>, Vec<u32>>,
    ac: Option<AcIndex>,
    general: Vec<General>,
    /// General patterns without any literal: verified on every value.
    ungated: Vec<u32>,
    /// `*`: any value.
    any: Vec<u32>,
}

impl StrIndex {
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.ac.is_none() && self.ungated.is_empty() && self.any.is_empty()
    }

    fn build(preds: &[(u32, &Pattern)]) -> StrIndex {
        let mut idx = StrIndex::default();
        let mut lits: Vec<Vec<u8>> = Vec::new();
        let mut lit_ids: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut targets: Vec<Vec<AcTarget>> = Vec::new();
        let mut add = |lit: &[u8], t: AcTarget, lits: &mut Vec<Vec<u8>>, targets: &mut Vec<Vec<AcTarget>>| {
            let id = *lit_ids.entry(lit.to_vec()).or_insert_with(|| {
                lits.push(lit.to_vec());
                targets.push(Vec::new());
                lits.len() - 1
            });
            targets[id].push(t);
        };
        for &(pred, pat) in preds {
            match pat.shape() {
                Shape::Exact(l) => idx.exact.entry(l.into()).or_default().push(pred),
                Shape::Any => idx.any.push(pred),
                Shape::Contains(l) if !l.is_empty() => add(l, AcTarget::Contains(pred), &mut lits, &mut targets),
                Shape::Prefix(l) if !l.is_empty() => add(l, AcTarget::Prefix(pred), &mut lits, &mut targets),
                Shape::Suffix(l) if !l.is_empty() => add(l, AcTarget::Suffix(pred), &mut lits, &mut targets),
                _ => {
                    let gi = idx.general.len() as u32;
                    idx.general.push(General { pred, pat: pat.clone() });
                    match pat.longest_literal() {
                        Some(l) if !l.is_empty() => add(l, AcTarget::Gate(gi), &mut lits, &mut targets),
                        _ => idx.ungated.push(gi),
                    }
                }
            }
        }
        if !lits.is_empty() {
            // A DFA is fastest but its size grows with patterns × alphabet;
            // above a few thousand literals the contiguous NFA is the better trade.
            let kind = if lits.len() <= 3000 {
                AhoCorasickKind::DFA
            } else {
                AhoCorasickKind::ContiguousNFA
            };
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(Some(kind))
                .build(&lits)
                .or_else(|_| AhoCorasick::builder().match_kind(MatchKind::Standard).build(&lits))
                .expect("aho-corasick over literal byte strings always builds");
            idx.ac = Some(AcIndex { ac, targets });
        }
        idx
    }

    #[inline]
    fn feed(&self, hay: &[u8], fire: &mut impl FnMut(u32)) {
        if let Some(ps) = self.exact.get(hay) {
            ps.iter().for_each(|p| fire(*p));
        }
        for p in &self.any {
            fire(*p);
        }
        if let Some(ac) = &self.ac {
            for m in ac.ac.find_overlapping_iter(hay) {
                for t in &ac.targets[m.pattern().as_usize()] {
                    match *t {
                        AcTarget::Contains(p) => fire(p),
                        AcTarget::Prefix(p) if m.start() == 0 => fire(p),
                        AcTarget::Suffix(p) if m.end() == hay.len() => fire(p),
                        AcTarget::Gate(g) => {
                            let g = &self.general[g as usize];
                            if g.pat.matches(hay) {
                                fire(g.pred);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        for g in &self.ungated {
            let g = &self.general[*g as usize];
            if g.pat.matches(hay) {
                fire(g.pred);
            }
        }
    }

    fn memory_usage(&self) -> usize {
        let exact: usize = self.exact.iter().map(|(k, v)| k.len() + v.len() * 4 + 48).sum();
        let ac = self.ac.as_ref().map_or(0, |a| {
            a.ac.memory_usage() + a.targets.iter().map(|t| t.len() * 8 + 24).sum::<usize>()
        });
        exact + ac + self.general.len() * 64 + (self.ungated.len() + self.any.len()) * 4
    }
}

#[derive(Debug)]
struct RegexIndex {
    re: meta::Regex,
    preds: Vec<u32>,
}

/// Every predicate of one slot.
#[derive(Debug, Default)]
pub struct FieldMatcher {
    ci: StrIndex,
    cs: StrIndex,
    regex: Option<RegexIndex>,
    nums: Vec<(u32, Cmp, f64)>,
    times: Vec<(u32, TimePart, Cmp, i64)>,
    cidrs: Option<PrefixTable<u32>>,
    present: Vec<u32>,
    nonnull: Vec<u32>,
}

/// Reusable per-call buffers.
#[derive(Debug, Default)]
pub struct FeedScratch {
    lower: String,
    regex_set: Option<PatternSet>,
}

impl FieldMatcher {
    /// Builds the index over `(predicate id, test)` pairs of one slot.
    pub fn build(preds: &[(u32, &Test)]) -> Result<FieldMatcher, String> {
        let mut m = FieldMatcher::default();
        let mut ci = Vec::new();
        let mut cs = Vec::new();
        let mut regexes: Vec<(u32, &str)> = Vec::new();
        for &(id, test) in preds {
            match test {
                Test::Str { pat, cased: false } => ci.push((id, pat)),
                Test::Str { pat, cased: true } => cs.push((id, pat)),
                Test::Regex(r) => regexes.push((id, r)),
                Test::Num(c, v) => m.nums.push((id, *c, *v)),
                Test::Time(p, c, v) => m.times.push((id, *p, *c, *v)),
                Test::Cidr(net) => m.cidrs.get_or_insert_with(PrefixTable::new).insert(*net, id),
                Test::Present => m.present.push(id),
                Test::NonNull => m.nonnull.push(id),
            }
        }
        m.ci = StrIndex::build(&ci);
        m.cs = StrIndex::build(&cs);
        if !regexes.is_empty() {
            let pats: Vec<&str> = regexes.iter().map(|(_, r)| *r).collect();
            let re = meta::Regex::builder()
                .configure(meta::Config::new().match_kind(regex_automata::MatchKind::All))
                .build_many(&pats)
                .map_err(|e| format!("regex set: {e}"))?;
            m.regex = Some(RegexIndex {
                re,
                preds: regexes.iter().map(|(id, _)| *id).collect(),
            });
        }
        Ok(m)
    }

    /// Tests one non-null text value.
    #[inline]
    pub fn feed_text(&self, text: &str, sc: &mut FeedScratch, fire: &mut impl FnMut(u32)) {
        self.present.iter().for_each(|p| fire(*p));
        self.nonnull.iter().for_each(|p| fire(*p));
        if !self.ci.is_empty() {
            crate::glob::lowercase_into(text, &mut sc.lower);
            self.ci.feed(sc.lower.as_bytes(), fire);
        }
        if !self.cs.is_empty() {
            self.cs.feed(text.as_bytes(), fire);
        }
        if let Some(r) = &self.regex {
            let set = sc
                .regex_set
                .get_or_insert_with(|| PatternSet::new(r.re.pattern_len()));
            if set.capacity() < r.re.pattern_len() {
                *set = PatternSet::new(r.re.pattern_len());
            }
            set.clear();
            r.re.which_overlapping_matches(&Input::new(text), set);
            for pid in set.iter() {
                fire(r.preds[pid.as_usize()]);
            }
        }
        if !self.nums.is_empty()
            && let Some(x) = crate::predicate::parse_number(text)
        {
            for &(p, c, v) in &self.nums {
                if c.eval(x, v) {
                    fire(p);
                }
            }
        }
        for &(p, part, c, v) in &self.times {
            if let Some(x) = crate::predicate::time_part(text, part)
                && c.eval(x as f64, v as f64)
            {
                fire(p);
            }
        }
        if let Some(t) = &self.cidrs
            && let Some(addr) = crate::ip::parse_ip_lenient(text)
        {
            t.matches(addr).for_each(|p| fire(*p));
        }
    }

    /// A value that is JSON null (or an object/array container): only presence fires.
    #[inline]
    pub fn feed_null(&self, fire: &mut impl FnMut(u32)) {
        self.present.iter().for_each(|p| fire(*p));
    }

    /// A non-null value that has no text (an object).
    #[inline]
    pub fn feed_container(&self, fire: &mut impl FnMut(u32)) {
        self.present.iter().for_each(|p| fire(*p));
        self.nonnull.iter().for_each(|p| fire(*p));
    }

    /// Approximate heap bytes.
    pub fn memory_usage(&self) -> usize {
        self.ci.memory_usage()
            + self.cs.memory_usage()
            + self.regex.as_ref().map_or(0, |r| r.re.memory_usage() + r.preds.len() * 4)
            + self.nums.len() * 24
            + self.times.len() * 24
            + self.cidrs.as_ref().map_or(0, |c| c.memory_usage())
            + (self.present.len() + self.nonnull.len()) * 4
    }
}
