//! Event access: paths into parsed JSON events.
//!
//! Events are parsed once into a [`Doc`] (see [`crate::json`]). A Sigma
//! field `a.b.c` addresses nested objects, and a flat key literally named
//! `a.b` or `a.b.c` matches too, so every path is stored as all of its
//! segmentations. Whoever reads several paths builds a [`PathTrie`] of
//! them and walks the document once.

pub use crate::json::{Doc, JsonError, Kind, Node, OwnedDoc, Tape};

/// Parses one JSON event on its own (tests and one-off use; hot paths
/// reuse a [`Tape`]).
pub fn parse(bytes: &[u8]) -> Result<OwnedDoc, JsonError> {
    OwnedDoc::parse(bytes)
}

const MAX_SPLIT_DOTS: usize = 5;

/// Every way of reading a dotted path as nested keys (`a.b` → `[a, b]`, `[a.b]`).
pub fn segmentations(path: &str) -> Vec<Vec<String>> {
    let parts: Vec<&str> = path.split('.').collect();
    let dots = parts.len() - 1;
    if dots == 0 {
        return vec![vec![path.to_string()]];
    }
    if dots > MAX_SPLIT_DOTS {
        return vec![
            parts.iter().map(|s| s.to_string()).collect(),
            vec![path.to_string()],
        ];
    }
    let mut out = Vec::with_capacity(1 << dots);
    for mask in 0..(1u32 << dots) {
        // Bit i set: join parts i and i+1 with a literal dot.
        let mut segs = Vec::new();
        let mut cur = parts[0].to_string();
        for i in 0..dots {
            if mask & (1 << i) != 0 {
                cur.push('.');
                cur.push_str(parts[i + 1]);
            } else {
                segs.push(std::mem::take(&mut cur));
                cur = parts[i + 1].to_string();
            }
        }
        segs.push(cur);
        out.push(segs);
    }
    out
}

/// Up to this many children, a node's keys are compared one by one;
/// above, they are hashed.
const SCAN_CHILDREN: usize = 8;

/// A trie of object-key paths with fast child lookup. Node 0 is the
/// document root; users keep their own data per node, indexed by node id.
#[derive(Debug, Clone)]
pub struct PathTrie {
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Clone, Default)]
struct TrieNode {
    keys: Vec<Box<str>>,
    children: Vec<u32>,
    /// Per key: its length and first eight bytes, compared before the key.
    heads: Vec<(u32, u64)>,
    /// Open addressing over `keys` when hashed: (hash's high half, entry
    /// + 1; 0 is empty).
    table: Vec<(u32, u32)>,
}

/// The first eight bytes of `k`, zero-padded.
#[inline(always)]
fn head8(k: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = k.len().min(8);
    w[..n].copy_from_slice(&k[..n]);
    u64::from_le_bytes(w)
}

/// A cheap hash of a key: its length and first eight bytes. Keys that
/// agree in both (`ParentProcessGuid`, `ParentProcessName`) share a probe
/// chain and are told apart by their full comparison; reading the tail
/// too cost more per event than the extra probes.
#[inline(always)]
fn key_hash(k: &[u8], head: u64) -> u64 {
    let n = k.len();
    let h = (head ^ (n as u64).wrapping_mul(0x9E37_79B9)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

impl Default for PathTrie {
    fn default() -> Self {
        PathTrie::new()
    }
}

impl PathTrie {
    /// A trie with only the root.
    pub fn new() -> PathTrie {
        PathTrie {
            nodes: vec![TrieNode::default()],
        }
    }

    /// Number of nodes (node ids are `0..len`).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether only the root exists.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 1
    }

    /// Adds the path of keys `segs` and returns its node.
    pub fn insert(&mut self, segs: &[String]) -> u32 {
        let mut node = 0u32;
        for seg in segs {
            node = match self.child(node, seg) {
                Some(c) => c,
                None => {
                    let c = self.nodes.len() as u32;
                    self.nodes.push(TrieNode::default());
                    let n = &mut self.nodes[node as usize];
                    n.keys.push(seg.as_str().into());
                    n.heads.push((seg.len() as u32, head8(seg.as_bytes())));
                    n.children.push(c);
                    n.rehash();
                    c
                }
            };
        }
        node
    }

    /// The child of `node` under `key`.
    #[inline(always)]
    pub fn child(&self, node: u32, key: &str) -> Option<u32> {
        let key = key.as_bytes();
        self.child_head(node, key, head8(key))
    }

    /// [`PathTrie::child`] given the key's first eight bytes (zero-padded).
    #[inline(always)]
    pub(crate) fn child_head(&self, node: u32, key: &[u8], head: u64) -> Option<u32> {
        let n = &self.nodes[node as usize];
        let len = key.len() as u32;
        // Keys up to eight bytes are decided by their head alone.
        let same = |i: usize| len <= 8 || n.keys[i].as_bytes()[8..] == key[8..];
        if n.table.is_empty() {
            for (i, &(l, h)) in n.heads.iter().enumerate() {
                if l == len && h == head && same(i) {
                    return Some(n.children[i]);
                }
            }
            return None;
        }
        let hash = key_hash(key, head);
        let tag = (hash >> 32) as u32;
        let mask = n.table.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            match n.table[slot] {
                (_, 0) => return None,
                (t, e) if t == tag => {
                    let i = (e - 1) as usize;
                    let (l, h) = n.heads[i];
                    if l == len && h == head && same(i) {
                        return Some(n.children[i]);
                    }
                }
                _ => {}
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Whether `node` has children (a walk descends into its objects).
    #[inline(always)]
    pub fn has_children(&self, node: u32) -> bool {
        !self.nodes[node as usize].keys.is_empty()
    }

    /// Every node with its path of keys from the root (root excluded).
    pub fn paths(&self) -> Vec<(Vec<String>, u32)> {
        let mut out = Vec::new();
        let mut stack: Vec<(u32, Vec<String>)> = vec![(0, Vec::new())];
        while let Some((n, segs)) = stack.pop() {
            let node = &self.nodes[n as usize];
            for (k, &c) in node.keys.iter().zip(&node.children) {
                let mut s = segs.clone();
                s.push(k.to_string());
                out.push((s.clone(), c));
                stack.push((c, s));
            }
        }
        out.sort_by_key(|(_, n)| *n);
        out
    }

    /// Approximate heap bytes.
    pub fn memory_usage(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| {
                72 + n.keys.iter().map(|k| k.len() + 16).sum::<usize>()
                    + n.children.len() * 4
                    + n.heads.len() * 16
                    + n.table.len() * 8
            })
            .sum()
    }
}

impl TrieNode {
    fn rehash(&mut self) {
        if self.keys.len() <= SCAN_CHILDREN {
            self.table.clear();
            return;
        }
        let size = (self.keys.len() * 2).next_power_of_two();
        let mask = size - 1;
        self.table = vec![(0, 0); size];
        for (i, k) in self.keys.iter().enumerate() {
            let hash = key_hash(k.as_bytes(), self.heads[i].1);
            let mut slot = hash as usize & mask;
            while self.table[slot].1 != 0 {
                slot = (slot + 1) & mask;
            }
            self.table[slot] = ((hash >> 32) as u32, i as u32 + 1);
        }
    }
}

/// Calls `f(node, value token)` for every value at a path of `trie` that
/// `wanted(node)` accepts: arrays and each of their elements (objects in
/// arrays are walked with the array's node).
pub(crate) fn walk(
    trie: &PathTrie,
    doc: &Doc<'_>,
    node: u32,
    tok: u32,
    wanted: &impl Fn(u32) -> bool,
    f: &mut impl FnMut(u32, u32),
) {
    if wanted(node) {
        f(node, tok);
    }
    match doc.kind(tok) {
        Kind::Array => {
            for e in doc.elements(tok) {
                walk(trie, doc, node, e, wanted, f);
            }
        }
        Kind::Object if trie.has_children(node) => {
            for (k, v) in doc.members(tok) {
                if let Some(c) = trie.child(node, doc.str_at(k)) {
                    walk(trie, doc, c, v, wanted, f);
                }
            }
        }
        _ => {}
    }
}

/// Every value text of a parsed event, in document order: strings,
/// numbers and booleans (object keys excluded).
pub(crate) fn for_each_text(doc: &Doc<'_>, buf: &mut String, f: &mut impl FnMut(&str)) {
    for i in 0..doc.len() {
        let t = doc.tok(i);
        if t.is_key() {
            continue;
        }
        match t.kind() {
            Kind::String | Kind::Number | Kind::Bool => {
                if let Some(s) = doc.scalar_text(i, buf) {
                    f(s);
                }
            }
            _ => {}
        }
    }
}

/// Field lookups by path (all segmentations of a dotted name): for the
/// few fields a caller reads outside the rule engine (tenant id, promoted
/// columns, event time).
#[derive(Debug, Clone, Default)]
pub struct FieldPaths {
    trie: PathTrie,
    /// Per trie node: `field << 8 | rank` for each field path ending there
    /// (rank: the position of the candidate path, lower wins).
    ends: Vec<Vec<u32>>,
    fields: usize,
    arrays_first: bool,
}

impl FieldPaths {
    /// Fields, each given as candidate dotted paths tried in order. With
    /// `arrays_first`, a field holding an array reads as its first
    /// element; without, an array is no value.
    pub fn new<S: AsRef<str>>(fields: &[Vec<S>], arrays_first: bool) -> FieldPaths {
        let mut trie = PathTrie::new();
        let mut ends: Vec<Vec<u32>> = Vec::new();
        for (f, cands) in fields.iter().enumerate() {
            for (rank, p) in cands.iter().enumerate() {
                for segs in segmentations(p.as_ref()) {
                    let n = trie.insert(&segs) as usize;
                    ends.resize_with(trie.len(), Vec::new);
                    ends[n].push((f as u32) << 8 | (rank as u32).min(254));
                }
            }
        }
        ends.resize_with(trie.len(), Vec::new);
        FieldPaths {
            trie,
            ends,
            fields: fields.len(),
            arrays_first,
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields == 0
    }

    /// For each field, the first scalar text found by its best-ranked
    /// path, in document order among equals.
    pub fn texts(&self, doc: &Doc<'_>, out: &mut [Option<String>]) {
        let mut hits = Vec::new();
        self.visit(doc, 0, 0, &mut |n, tok| {
            hits.push(crate::gather::Hit {
                node: n,
                tok,
                element: false,
            })
        });
        self.texts_hits(doc, &hits, out);
    }

    /// The paths read, with the ids [`FieldPaths::texts_hits`] expects.
    pub fn paths(&self) -> crate::gather::Paths {
        self.trie
            .paths()
            .into_iter()
            .filter(|(_, n)| !self.ends[*n as usize].is_empty())
            .collect()
    }

    /// [`FieldPaths::texts`] on values already gathered at
    /// [`FieldPaths::paths`] (array elements are skipped: an array is read
    /// as a whole).
    pub fn texts_hits(
        &self,
        doc: &Doc<'_>,
        hits: &[crate::gather::Hit],
        out: &mut [Option<String>],
    ) {
        // Ranks fit in the low byte; 255 means "none yet".
        let mut small = [u8::MAX; 16];
        let mut big = Vec::new();
        let best: &mut [u8] = if self.fields <= small.len() {
            &mut small
        } else {
            big.resize(self.fields, u8::MAX);
            &mut big
        };
        let mut buf = String::new();
        for h in hits.iter().filter(|h| !h.element) {
            let tok = h.tok;
            let text = match doc.kind(tok) {
                Kind::Array if self.arrays_first => doc
                    .elements(tok)
                    .next()
                    .and_then(|e| doc.scalar_text(e, &mut buf)),
                Kind::Array => None,
                _ => doc.scalar_text(tok, &mut buf),
            };
            let Some(text) = text else { continue };
            for &e in &self.ends[h.node as usize] {
                let (f, rank) = ((e >> 8) as usize, (e & 0xff) as u8);
                let Some(b) = best.get_mut(f) else { continue };
                if f < out.len() && rank < *b {
                    *b = rank;
                    out[f] = Some(text.to_owned());
                }
            }
        }
    }

    /// Approximate heap bytes.
    pub fn memory_usage(&self) -> usize {
        self.trie.memory_usage() + self.ends.iter().map(|e| 24 + e.len() * 4).sum::<usize>()
    }

    /// The text of field 0 (see [`FieldPaths::texts`]).
    pub fn first(&self, doc: &Doc<'_>) -> Option<String> {
        let mut out = [None];
        self.texts(doc, &mut out);
        let [t] = out;
        t
    }

    /// The value at each path's end; arrays on the way are descended into
    /// (a path through an array of objects reaches into each element).
    fn visit(&self, doc: &Doc<'_>, node: u32, tok: u32, f: &mut impl FnMut(u32, u32)) {
        if !self.ends[node as usize].is_empty() {
            f(node, tok);
        }
        self.descend(doc, node, tok, f);
    }

    fn descend(&self, doc: &Doc<'_>, node: u32, tok: u32, f: &mut impl FnMut(u32, u32)) {
        if !self.trie.has_children(node) {
            return;
        }
        match doc.kind(tok) {
            Kind::Object => {
                for (k, v) in doc.members(tok) {
                    if let Some(c) = self.trie.child(node, doc.str_at(k)) {
                        self.visit(doc, c, v, f);
                    }
                }
            }
            Kind::Array => {
                for e in doc.elements(tok) {
                    self.descend(doc, node, e, f);
                }
            }
            _ => {}
        }
    }
}

/// Every text value at a field (all segmentations, array elements flattened).
pub fn field_texts(doc: &Doc<'_>, paths: &[Vec<String>]) -> Vec<String> {
    let mut trie = PathTrie::new();
    let mut targets = Vec::new();
    for segs in paths {
        targets.push(trie.insert(segs));
    }
    let mut out = Vec::new();
    let mut buf = String::new();
    walk(
        &trie,
        doc,
        0,
        0,
        &|n| targets.contains(&n),
        &mut |_, tok| {
            if doc.kind(tok) != Kind::Array
                && let Some(t) = doc.scalar_text(tok, &mut buf)
            {
                out.push(t.to_string());
            }
        },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segmentations_cover_flat_and_nested() {
        let s = segmentations("a.b.c");
        assert_eq!(s.len(), 4);
        assert!(s.contains(&vec!["a".into(), "b".into(), "c".into()]));
        assert!(s.contains(&vec!["a.b.c".into()]));
        assert!(s.contains(&vec!["a.b".into(), "c".into()]));
        assert!(s.contains(&vec!["a".into(), "b.c".into()]));
    }

    #[test]
    fn texts() {
        let ev =
            parse(br##"{"a":{"b":[1,"x",{"c":2}], "n": null, "t": {"#text": 4688}}}"##).unwrap();
        let doc = ev.doc();
        let paths = segmentations("a.b");
        assert_eq!(field_texts(&doc, &paths), vec!["1", "x"]);
        assert_eq!(field_texts(&doc, &segmentations("a.t")), vec!["4688"]);
        assert!(field_texts(&doc, &segmentations("a.n")).is_empty());
        let ev = parse(br#"{"a.b": "flat", "a": {"b": "nested"}}"#).unwrap();
        let mut all = field_texts(&ev.doc(), &segmentations("a.b"));
        all.sort();
        assert_eq!(all, vec!["flat", "nested"]);
    }

    #[test]
    fn trie_lookup_scans_and_hashes() {
        let mut t = PathTrie::new();
        let names: Vec<String> = (0..40).map(|i| format!("Field{i}Name")).collect();
        let ids: Vec<u32> = names
            .iter()
            .map(|n| t.insert(std::slice::from_ref(n)))
            .collect();
        for (n, id) in names.iter().zip(&ids) {
            assert_eq!(t.child(0, n), Some(*id));
        }
        assert_eq!(t.child(0, "Field40Name"), None);
        assert_eq!(t.child(0, ""), None);
        let few = t.insert(&["x".into(), "a".into()]);
        let x = t.child(0, "x").unwrap();
        assert_eq!(t.child(x, "a"), Some(few));
        assert_eq!(t.child(x, "b"), None);
        assert!(t.has_children(x) && !t.has_children(few));
    }

    #[test]
    fn field_paths_take_the_best_ranked_candidate() {
        let fp = FieldPaths::new(
            &[
                vec!["host.name", "Event.System.Computer"],
                vec!["user"],
                vec!["tags"],
            ],
            true,
        );
        let ev = parse(
            br#"{"Event": {"System": {"Computer": "WS1"}}, "host": {"name": "h1"}, "tags": ["a", "b"]}"#,
        )
        .unwrap();
        let mut out = vec![None; 3];
        fp.texts(&ev.doc(), &mut out);
        assert_eq!(out, vec![Some("h1".into()), None, Some("a".into())]);
        let ev = parse(br#"{"Event": {"System": {"Computer": "WS1"}}}"#).unwrap();
        assert_eq!(fp.first(&ev.doc()).as_deref(), Some("WS1"));
        // Without arrays_first an array is no value; arrays of objects are
        // still walked into.
        let org = FieldPaths::new(&[vec!["org_id"], vec!["a.b"]], false);
        let ev = parse(br#"{"org_id": ["acme", "globex"], "a": [{"b": "x"}]}"#).unwrap();
        let mut out = vec![None; 2];
        org.texts(&ev.doc(), &mut out);
        assert_eq!(out, vec![None, Some("x".into())]);
    }
}
