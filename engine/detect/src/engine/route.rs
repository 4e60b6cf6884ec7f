//! Logsource routing: which buckets (logsource entries of the mapping) an
//! event belongs to.
//!
//! The answer depends only on the values at the routing paths (channel,
//! event id, provider, ...), so it is memoised per distinct tuple of those
//! values, together with what the active buckets need for keywords.

use std::collections::HashMap;

use super::keywords::{self, KeywordPlan};
use super::{Engine, FastMap, set_bit, words};
use crate::event::{Doc, segmentations};
use crate::gather::Hit;
use crate::mapping::Mapping;

/// The routing conditions of every bucket, indexed for lookup.
#[derive(Debug, Default)]
pub(super) struct Router {
    /// Distinct condition paths (all segmentations each).
    pub(super) paths: Vec<Vec<Vec<String>>>,
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

/// The routing of one tuple of routing values.
#[derive(Debug)]
pub(super) struct Route {
    /// Active buckets, in order.
    pub(super) list: Vec<u32>,
    /// The same as a bitset.
    pub(super) bits: Vec<u64>,
    /// Slots read by some active bucket (bitset): a gathered value skips
    /// the slots of inactive buckets without touching them.
    pub(super) slots: Vec<u64>,
    pub(super) keywords: KeywordPlan,
}

/// Per-thread routing state and memo.
#[derive(Debug, Default)]
pub(super) struct RouteScratch {
    /// Per routing path: the lowercased values seen, separated by [`SEP`].
    vals: Vec<String>,
    has: Vec<bool>,
    key: Vec<u8>,
    memo: FastMap<Box<[u8]>, u32>,
    /// The routing values as the event writes them (path, text), in the
    /// walk's order: most events repeat an earlier event's exactly, and
    /// this finds their route without lowercasing anything.
    raw: Vec<u8>,
    raw_memo: FastMap<Box<[u8]>, u32>,
    pub(super) routes: Vec<Route>,
    /// Keyword plans per set of active keyword buckets.
    plans: FastMap<Vec<u32>, KeywordPlan>,
}

/// Separates the several values of one routing path (arrays such as ECS
/// `event.type: ["info", "start"]`).
const SEP: char = '\u{1f}';

/// Distinct routing tuples remembered before starting over.
const MEMO_CAPACITY: usize = 4096;

impl Router {
    /// Whether bucket `b`'s conditions hold for these lowercased values
    /// per routing path (the reference evaluation's routing).
    #[cfg(test)]
    pub(super) fn accepts(&self, b: u32, vals: &[Vec<String>]) -> bool {
        self.conditions[b as usize].iter().all(|(p, accepted)| {
            !vals[*p].is_empty()
                && (accepted.is_empty() || vals[*p].iter().any(|v| accepted.contains(v)))
        })
    }
}

pub(super) fn build_router(mapping: Option<&Mapping>, nbuckets: usize) -> Router {
    let mut r = Router::default();
    let Some(m) = mapping else {
        r.unconditional = (0..nbuckets as u32).collect();
        r.conditions = vec![Vec::new(); nbuckets];
        return r;
    };
    let mut path_ids: HashMap<Vec<String>, usize> = HashMap::new();
    for e in &m.logsources {
        let mut conds = Vec::new();
        for c in &e.conditions {
            let id = *path_ids.entry(c.paths.clone()).or_insert_with(|| {
                r.paths
                    .push(c.paths.iter().flat_map(|p| segmentations(p)).collect());
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
    /// The routing of an event, from the routing values gathered by the
    /// walk: an index into `rs.routes`.
    pub(super) fn route(&self, doc: &Doc<'_>, hits: &[Hit], rs: &mut RouteScratch) -> usize {
        let r = &self.router;
        let mut numbuf = String::new();
        rs.raw.clear();
        for h in hits {
            for &p in &self.path_data[h.node as usize].routes {
                if let Some(t) = doc.scalar_text(h.tok, &mut numbuf) {
                    rs.raw.extend_from_slice(&p.to_le_bytes());
                    rs.raw.extend_from_slice(t.as_bytes());
                    rs.raw.push(0xff);
                }
            }
        }
        if let Some(&i) = rs.raw_memo.get(rs.raw.as_slice()) {
            return i as usize;
        }
        let npaths = r.paths.len();
        if rs.vals.len() != npaths {
            rs.vals = vec![String::new(); npaths];
            rs.has = vec![false; npaths];
        }
        rs.has.iter_mut().for_each(|h| *h = false);
        for h in hits {
            for &p in &self.path_data[h.node as usize].routes {
                let p = p as usize;
                let Some(t) = doc.scalar_text(h.tok, &mut numbuf) else {
                    continue;
                };
                let buf = &mut rs.vals[p];
                if rs.has[p] {
                    buf.push(SEP);
                } else {
                    buf.clear();
                    rs.has[p] = true;
                }
                // As the mapping's values were lowercased.
                crate::glob::lowercase_append(t, buf);
            }
        }
        rs.key.clear();
        for p in 0..npaths {
            if rs.has[p] {
                rs.key.extend_from_slice(&(p as u32).to_le_bytes());
                rs.key.extend_from_slice(rs.vals[p].as_bytes());
                rs.key.push(0xff);
            }
        }
        if rs.raw_memo.len() >= MEMO_CAPACITY {
            rs.raw_memo.clear();
            rs.memo.clear();
            rs.routes.clear();
        }
        let i = match rs.memo.get(rs.key.as_slice()) {
            Some(&i) => i,
            None => {
                let route = self.resolve(rs, doc.text().as_bytes());
                let i = rs.routes.len() as u32;
                rs.routes.push(route);
                rs.memo.insert(rs.key.as_slice().into(), i);
                i
            }
        };
        rs.raw_memo.insert(rs.raw.as_slice().into(), i);
        i as usize
    }

    /// Routes the values in `rs` from scratch.
    fn resolve(&self, rs: &mut RouteScratch, sample: &[u8]) -> Route {
        let r = &self.router;
        let mut bits = vec![0u64; words(self.buckets.len())];
        let mut list = Vec::new();
        for &b in &r.unconditional {
            if set_bit(&mut bits, b) {
                list.push(b);
            }
        }
        let ok = |b: u32| {
            r.conditions[b as usize].iter().all(|(p, accepted)| {
                rs.has[*p]
                    && (accepted.is_empty()
                        || rs.vals[*p]
                            .split(SEP)
                            .any(|v| accepted.iter().any(|a| a == v)))
            })
        };
        for &fp in &r.first_paths {
            if !rs.has[fp] {
                continue;
            }
            let selected = rs.vals[fp]
                .split(SEP)
                .filter_map(|v| r.by_first[fp].get(v))
                .chain(std::iter::once(&r.present[fp]));
            for c in selected {
                for &b in c {
                    if ok(b) && set_bit(&mut bits, b) {
                        list.push(b);
                    }
                }
            }
        }
        let mut kw: Vec<u32> = list
            .iter()
            .copied()
            .filter(|&b| {
                !matches!(
                    self.bucket_keywords[b as usize],
                    keywords::BucketKeywords::None
                )
            })
            .collect();
        kw.sort_unstable();
        let keywords = match rs.plans.get(&kw) {
            Some(p) => p.clone(),
            None => {
                let p = keywords::plan(&self.bucket_keywords, &kw, sample);
                rs.plans.insert(kw, p.clone());
                p
            }
        };
        let mut slots = vec![0u64; words(self.slots.len())];
        for (s, slot) in self.slots.iter().enumerate() {
            if super::intersects(&bits, &slot.buckets) {
                set_bit(&mut slots, s as u32);
            }
        }
        Route {
            list,
            bits,
            slots,
            keywords,
        }
    }
}
