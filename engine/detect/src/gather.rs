//! One walk over an event for several readers.
//!
//! Rules (one compiled set per policy layer), indicator lists and the
//! pipeline's promoted columns each read their own set of paths. Walking
//! the event once per reader repeats the key lookups, which are most of
//! the cost of reading a parsed event. A [`Gather`] merges the readers'
//! paths into one trie, walks each event once, and hands every reader the
//! values at its paths, in document order, under the reader's own node ids.

use std::collections::HashMap;

use crate::event::{Doc, Kind, PathTrie};
use crate::json::Shape;

/// A value at a path some reader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The reader's own id for the path.
    pub node: u32,
    /// The value's token in the document.
    pub tok: u32,
    /// The value is an element of an array found at the path (the array
    /// itself is a hit too, before its elements).
    pub element: bool,
}

/// What one reader reads: its paths, as object keys from the root, each
/// with the reader's own id for it.
pub type Paths = Vec<(Vec<String>, u32)>;

/// Calls `visit(node, tok, element)` for every value of `doc` at a node of
/// `trie` that `target` accepts, in document order: an array found at a
/// path, then each of its elements (`element`), objects inside arrays
/// walked at the array's node.
#[inline]
pub(crate) fn walk(
    trie: &PathTrie,
    doc: &Doc<'_>,
    target: &impl Fn(u32) -> bool,
    visit: &mut impl FnMut(u32, u32, bool),
) {
    if matches!(doc.kind(0), Kind::Object | Kind::Array) {
        descend(trie, doc, 0, 0, target, visit);
    }
}

/// [`walk`] inside container `tok` at trie node `node`.
fn descend(
    trie: &PathTrie,
    doc: &Doc<'_>,
    node: u32,
    tok: u32,
    target: &impl Fn(u32) -> bool,
    visit: &mut impl FnMut(u32, u32, bool),
) {
    if doc.kind(tok) == Kind::Array {
        let wanted = target(node);
        for e in doc.elements(tok) {
            if wanted {
                visit(node, e, true);
            }
            if matches!(doc.kind(e), Kind::Object | Kind::Array) {
                descend(trie, doc, node, e, target, visit);
            }
        }
        return;
    }
    if !trie.has_children(node) {
        return;
    }
    for (k, v) in doc.members(tok) {
        let (key, head) = doc.key_head(k);
        let Some(c) = trie.child_head(node, key, head) else {
            continue;
        };
        if target(c) {
            visit(c, v, false);
        }
        match doc.kind(v) {
            Kind::Array => descend(trie, doc, c, v, target, visit),
            Kind::Object if trie.has_children(c) => descend(trie, doc, c, v, target, visit),
            _ => {}
        }
    }
}

/// Remembered walks, one per event shape (per thread, for one trie).
///
/// Events from one source repeat one shape: the same keys in the same
/// order around different values (every Sysmon process creation has the
/// same 23 `EventData` members). A walk's visits depend on nothing else,
/// so the first event of a shape records them and the next ones of that
/// shape replay them: checking that a document has a remembered shape
/// ([`Doc::has_shape`]: each container's extent, and the keys' text that
/// the parser wrote out in one piece) costs a fraction of looking every
/// key up in the trie again.
#[derive(Debug, Default, Clone)]
pub struct WalkCache {
    /// Which trie the plans were made for.
    owner: u64,
    /// Plans by [`Doc::shape_hint`], most recently used first.
    plans: HashMap<(u32, u32, u32, u64), Vec<Plan>, foldhash::fast::RandomState>,
    count: usize,
    /// Its sampled hit rate: a stream of ever new shapes skips the cache
    /// rather than only paying for recording them.
    rate: crate::sample::HitRate,
}

#[derive(Debug, Clone)]
struct Plan {
    /// The shape of the documents it serves.
    shape: Shape,
    /// The walk's visits: (node, token, element).
    visits: Box<[(u32, u32, bool)]>,
}

/// Most shapes remembered per hint, and in all.
const PLANS_PER_HINT: usize = 4;
const MAX_PLANS: usize = 256;
/// Lookups per sample of the hit rate; a sample with fewer hits than
/// this starts a bypass of [`BYPASS`] events.
const SAMPLE: u16 = 64;
const MIN_HITS: u16 = 16;
const BYPASS: u16 = 4096;

impl WalkCache {
    /// Forgets every plan if they were made for another trie.
    fn own(&mut self, owner: u64) {
        if self.owner != owner {
            *self = WalkCache {
                owner,
                ..WalkCache::default()
            };
        }
    }

    /// Whether this event should use the cache (sampling the hit rate).
    fn wanted(&mut self) -> bool {
        self.rate.wants(SAMPLE, MIN_HITS, BYPASS)
    }

    fn find(&mut self, doc: &Doc<'_>, hint: (u32, u32, u32, u64)) -> Option<&Plan> {
        let list = self.plans.get_mut(&hint)?;
        let i = list.iter().position(|p| doc.has_shape(&p.shape))?;
        self.rate.hit();
        list[..=i].rotate_right(1);
        Some(&list[0])
    }

    fn remember(
        &mut self,
        doc: &Doc<'_>,
        hint: (u32, u32, u32, u64),
        visits: Vec<(u32, u32, bool)>,
    ) {
        if self.count >= MAX_PLANS {
            self.plans.clear();
            self.count = 0;
        }
        let shape = doc.shape();
        let list = self.plans.entry(hint).or_default();
        if list.len() == PLANS_PER_HINT {
            list.pop();
            self.count -= 1;
        }
        list.insert(
            0,
            Plan {
                shape,
                visits: visits.into(),
            },
        );
        self.count += 1;
    }
}

/// [`walk`], replaying a remembered walk when `doc` has a shape `cache`
/// has seen for this trie (`owner` tells tries apart).
#[inline]
pub(crate) fn walk_cached(
    trie: &PathTrie,
    owner: u64,
    doc: &Doc<'_>,
    target: &impl Fn(u32) -> bool,
    cache: &mut WalkCache,
    visit: &mut impl FnMut(u32, u32, bool),
) {
    cache.own(owner);
    if !cache.wanted() {
        walk(trie, doc, target, visit);
        return;
    }
    let hint = doc.shape_hint();
    if let Some(plan) = cache.find(doc, hint) {
        for &(node, tok, element) in plan.visits.iter() {
            visit(node, tok, element);
        }
        return;
    }
    let mut visits = Vec::new();
    walk(trie, doc, target, &mut |node, tok, element| {
        visits.push((node, tok, element));
        visit(node, tok, element);
    });
    cache.remember(doc, hint, visits);
}

/// The merged paths of several readers.
#[derive(Debug, Clone)]
pub struct Gather {
    /// Tells this trie's remembered walks apart from other tries'.
    id: u64,
    trie: PathTrie,
    /// Per trie node: (reader, the reader's id of the path).
    fan: Vec<Vec<(u32, u32)>>,
    readers: usize,
}

/// Per-reader hits of the last event gathered.
#[derive(Debug, Default, Clone)]
pub struct Gathered {
    hits: Vec<Vec<Hit>>,
    walks: WalkCache,
}

impl Gathered {
    /// Reader `r`'s hits.
    pub fn of(&self, r: usize) -> &[Hit] {
        self.hits.get(r).map_or(&[], Vec::as_slice)
    }
}

impl Gather {
    /// Merges readers' paths; reader `r` is `readers[r]`.
    pub fn new(readers: &[Paths]) -> Gather {
        let mut trie = PathTrie::new();
        let mut fan: Vec<Vec<(u32, u32)>> = vec![Vec::new()];
        for (r, paths) in readers.iter().enumerate() {
            for (segs, id) in paths {
                let n = trie.insert(segs) as usize;
                fan.resize_with(trie.len(), Vec::new);
                if !fan[n].contains(&(r as u32, *id)) {
                    fan[n].push((r as u32, *id));
                }
            }
        }
        fan.resize_with(trie.len(), Vec::new);
        Gather {
            id: crate::engine::next_walk_owner(),
            trie,
            fan,
            readers: readers.len(),
        }
    }

    /// Number of readers.
    pub fn readers(&self) -> usize {
        self.readers
    }

    /// Walks `doc` once; `out` then holds each reader's hits.
    pub fn gather(&self, doc: &Doc<'_>, out: &mut Gathered) {
        out.hits.resize_with(self.readers, Vec::new);
        out.hits.iter_mut().for_each(Vec::clear);
        walk_cached(
            &self.trie,
            self.id,
            doc,
            &|n| !self.fan[n as usize].is_empty(),
            &mut out.walks,
            &mut |node, tok, element| {
                for &(r, id) in &self.fan[node as usize] {
                    out.hits[r as usize].push(Hit {
                        node: id,
                        tok,
                        element,
                    });
                }
            },
        );
    }

    /// Approximate heap bytes.
    pub fn memory_usage(&self) -> usize {
        self.trie.memory_usage() + self.fan.iter().map(|f| 24 + f.len() * 8).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{parse, segmentations};

    fn paths(list: &[(&str, u32)]) -> Paths {
        list.iter()
            .flat_map(|(p, id)| segmentations(p).into_iter().map(move |s| (s, *id)))
            .collect()
    }

    #[test]
    fn each_reader_gets_its_own_paths_once_per_walk() {
        let g = Gather::new(&[
            paths(&[("a.b", 7), ("c", 8)]),
            paths(&[("a.b", 1), ("d.e", 2)]),
            paths(&[]),
        ]);
        let ev = parse(
            br#"{"a": {"b": [1, {"x": 2}]}, "c": "y", "d": [{"e": "z"}, {"e": 3}], "a.b": "flat"}"#,
        )
        .unwrap();
        let doc = ev.doc();
        let mut out = Gathered::default();
        g.gather(&doc, &mut out);
        let texts = |r: usize| -> Vec<(u32, Option<String>, bool)> {
            let mut buf = String::new();
            out.of(r)
                .iter()
                .map(|h| {
                    (
                        h.node,
                        doc.scalar_text(h.tok, &mut buf).map(str::to_string),
                        h.element,
                    )
                })
                .collect()
        };
        assert_eq!(
            texts(0),
            vec![
                (7, None, false),
                (7, Some("1".into()), true),
                (7, None, true),
                (8, Some("y".into()), false),
                (7, Some("flat".into()), false),
            ]
        );
        assert_eq!(
            texts(1),
            vec![
                (1, None, false),
                (1, Some("1".into()), true),
                (1, None, true),
                (2, Some("z".into()), false),
                (2, Some("3".into()), false),
                (1, Some("flat".into()), false),
            ]
        );
        assert!(out.of(2).is_empty());
    }

    /// A remembered walk is replayed only for a document of the very same
    /// shape: every other document, however close (a key renamed to one of
    /// the same length, a scalar turned into an object, an array grown, a
    /// key spelled with an escape, members regrouped with the same token
    /// count), is walked afresh. Checked against the plain walk over a
    /// stream that keeps returning to a few shapes.
    #[test]
    fn a_remembered_walk_is_replayed_only_for_the_same_shape() {
        use warden_gen::Rng;
        let g = Gather::new(&[paths(&[
            ("a.b", 1),
            ("a.c", 2),
            ("d", 3),
            ("e.f", 4),
            ("Key", 5),
            ("ParentProcessGuidAndMore", 6),
            ("EightByt", 7),
            ("SixteenBytesLong", 8),
            ("FifteenBytesLng", 9),
        ])]);
        let templates = [
            r#"{"a":{"b":V,"c":V},"d":V,"e":{"f":V}}"#,
            r#"{"a":{"b":V,"c":{"x":V}},"d":V,"e":{"f":V}}"#,
            r#"{"a":{"b":V},"c":V,"d":V,"e":{"f":V}}"#,
            r#"{"a":{"b":V,"x":V},"d":V,"e":{"f":V}}"#,
            r#"{"a":{"b":V,"c":V},"d":[V,V],"e":{"f":V}}"#,
            r#"{"a":{"b":V,"c":V},"d":[V,V,V],"e":{"f":V}}"#,
            r#"{"a":{"b":V,"c":V},"d":V,"e":{"g":V}}"#,
            r#"{"a":{"b":V,"\u0063":V},"d":V,"e":{"f":V}}"#,
            r#"{"a":{"b":V,"C":V},"d":V,"e":{"f":V}}"#,
            r#"{"Key":V,"a":[{"b":V},{"c":V}],"d":V}"#,
            r#"{"Kez":V,"a":[{"b":V},{"c":V}],"d":V}"#,
            r#"{"Key":V,"a":[{"b":V,"c":V}],"d":V}"#,
            // Long keys that differ only past their first sixteen bytes,
            // keys of exactly eight and sixteen bytes, a key at the end.
            r#"{"ParentProcessGuidAndMore":V,"EightByt":V,"SixteenBytesLong":V}"#,
            r#"{"ParentProcessGuidAndMorf":V,"EightByt":V,"SixteenBytesLong":V}"#,
            r#"{"ParentProcessGuidAndMore":V,"EightByu":V,"SixteenBytesLong":V}"#,
            r#"{"ParentProcessGuidAndMore":V,"EightByt":V,"SixteenBytesLonh":V}"#,
            r#"{"d":V,"SixteenBytesLong":V}"#,
            r#"{"d":V,"SixteenBytesLonx":V}"#,
            r#"{"FifteenBytesLng":V,"d":V}"#,
            r#"{"FifteenBytesLnx":V,"d":V}"#,
        ];
        let values = [
            r#""s""#,
            "1",
            "null",
            "true",
            r#"{"z":1}"#,
            "[]",
            r#""\"q""#,
        ];
        let mut rng = Rng::new(11);
        let mut out = Gathered::default();
        let mut replayed = 0;
        for _ in 0..3_000 {
            let t = templates[rng.below(templates.len())];
            let mut doc = String::new();
            for (i, part) in t.split('V').enumerate() {
                if i > 0 {
                    // Mostly scalars, sometimes a container in a scalar's place.
                    let v = if rng.below(6) == 0 {
                        values[rng.below(values.len())]
                    } else {
                        values[rng.below(4)]
                    };
                    doc.push_str(v);
                }
                doc.push_str(part);
            }
            let ev = parse(doc.as_bytes()).unwrap();
            let doc_ = ev.doc();
            let hits_before = out.walks.rate.hits();
            g.gather(&doc_, &mut out);
            replayed += usize::from(out.walks.rate.hits() != hits_before);
            let mut want: Vec<Hit> = Vec::new();
            walk(
                &g.trie,
                &doc_,
                &|n| !g.fan[n as usize].is_empty(),
                &mut |node, tok, element| {
                    for &(_, id) in &g.fan[node as usize] {
                        want.push(Hit {
                            node: id,
                            tok,
                            element,
                        });
                    }
                },
            );
            assert_eq!(out.of(0), &want[..], "{doc}");
        }
        assert!(
            replayed > 1_000,
            "most documents repeat a shape: {replayed} replayed"
        );
    }
}
