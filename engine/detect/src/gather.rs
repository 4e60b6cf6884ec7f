//! One walk over an event for several readers.
//!
//! Rules (one compiled set per policy layer), indicator lists and the
//! pipeline's promoted columns each read their own set of paths. Walking
//! the event once per reader repeats the key lookups, which are most of
//! the cost of reading a parsed event. A [`Gather`] merges the readers'
//! paths into one trie, walks each event once, and hands every reader the
//! values at its paths, in document order, under the reader's own node ids.

use crate::event::{Doc, Kind, PathTrie};

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

/// The merged paths of several readers.
#[derive(Debug, Clone)]
pub struct Gather {
    trie: PathTrie,
    /// Per trie node: (reader, the reader's id of the path).
    fan: Vec<Vec<(u32, u32)>>,
    readers: usize,
}

/// Per-reader hits of the last event gathered.
#[derive(Debug, Default, Clone)]
pub struct Gathered {
    hits: Vec<Vec<Hit>>,
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
        walk(
            &self.trie,
            doc,
            &|n| !self.fan[n as usize].is_empty(),
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
}
