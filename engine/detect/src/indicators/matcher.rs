//! Checking events against an [`IndicatorSet`].
//!
//! With a mapping, each indicator type is checked on the event paths the
//! mapping lists for it. Without one, every string value of the event is
//! checked by its shape: an IP address, a URL (`scheme://`), a hostname,
//! and hex runs of hash length.

use super::{Indicator, IndicatorSet};
use crate::event::{Doc, Kind, PathTrie, segmentations, walk};
use crate::gather::{Hit, Paths as GatherPaths};
use crate::mapping::IndicatorFields;

/// One indicator found in an event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndicatorHit {
    /// Index of the indicator in the set.
    #[serde(skip)]
    pub index: u32,
    /// The event path where it was found (`*` when all values were scanned).
    pub field: String,
    /// The event value that matched.
    pub value: String,
}

/// How an indicator hit reads as an alert: the same in `warden detect` and
/// in the pipeline's archive.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorAlert {
    /// `indicator:<source>:<value>`.
    pub rule_id: String,
    pub title: String,
    /// Indicator hits are always raised at this level.
    pub level: &'static str,
    pub tags: [String; 3],
    pub matched: [crate::MatchedField; 1],
}

/// A trie of the mapped paths, walked once per event.
#[derive(Debug, Default)]
struct Paths {
    trie: PathTrie,
    /// Per trie node: (kind tag, mapped path) checked there.
    targets: Vec<Vec<(u8, u32)>>,
}

impl Paths {
    fn new(fields: &IndicatorFields) -> (Paths, Vec<String>) {
        let mut paths = Paths::default();
        let mut names = Vec::new();
        for (kind, list) in [
            (b'i', &fields.ip),
            (b'd', &fields.domain),
            (b'u', &fields.url),
            (b'h', &fields.hash),
        ] {
            for path in list {
                let name = names.len() as u32;
                names.push(path.clone());
                for segs in segmentations(path) {
                    let node = paths.trie.insert(&segs) as usize;
                    paths.targets.resize_with(paths.trie.len(), Vec::new);
                    paths.targets[node].push((kind, name));
                }
            }
        }
        (paths, names)
    }
}

/// An indicator set plus where to look for each type.
#[derive(Debug)]
pub struct IndicatorMatcher {
    set: IndicatorSet,
    paths: Option<Paths>,
    names: Vec<String>,
}

/// Per-thread buffers for [`IndicatorMatcher::scan`].
#[derive(Debug, Default)]
pub struct IndicatorScratch {
    found: Vec<u32>,
    lower: String,
    num: String,
}

fn looks_like_host(s: &str) -> bool {
    s.len() <= 253
        && s.contains('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl IndicatorMatcher {
    /// Checks mapped fields (`Some`) or every value (`None`).
    pub fn new(set: IndicatorSet, fields: Option<&IndicatorFields>) -> Self {
        let (paths, names) = match fields.map(Paths::new) {
            Some((p, n)) => (Some(p), n),
            None => (None, Vec::new()),
        };
        IndicatorMatcher { set, paths, names }
    }

    /// The indicators.
    pub fn set(&self) -> &IndicatorSet {
        &self.set
    }

    /// The indicator behind a hit.
    pub fn indicator(&self, hit: &IndicatorHit) -> &Indicator {
        self.set.get(hit.index)
    }

    /// The alert a hit raises.
    pub fn alert(&self, hit: &IndicatorHit) -> IndicatorAlert {
        let ind = self.indicator(hit);
        let kind = ind.kind.as_str();
        IndicatorAlert {
            rule_id: format!("indicator:{}:{}", ind.source, ind.value),
            title: format!("Threat indicator match: {kind} {}", ind.value),
            level: "high",
            tags: [
                "indicator".to_string(),
                format!("indicator.{kind}"),
                format!("indicator.source.{}", ind.source),
            ],
            matched: [crate::MatchedField {
                field: hit.field.as_str().into(),
                value: hit.value.clone(),
                test: format!("indicator {kind} {} from {}", ind.value, ind.source).into(),
            }],
        }
    }

    /// The event paths checked (none when every value is checked by
    /// shape), with the ids [`IndicatorMatcher::scan_hits`] expects.
    pub fn paths(&self) -> GatherPaths {
        match &self.paths {
            Some(p) => p
                .trie
                .paths()
                .into_iter()
                .filter(|(_, n)| !p.targets[*n as usize].is_empty())
                .collect(),
            None => Vec::new(),
        }
    }

    /// [`IndicatorMatcher::scan`] on values already gathered at
    /// [`IndicatorMatcher::paths`].
    pub fn scan_hits(
        &self,
        doc: &Doc<'_>,
        hits: &[Hit],
        sc: &mut IndicatorScratch,
        out: &mut Vec<IndicatorHit>,
    ) {
        out.clear();
        if self.set.is_empty() {
            return;
        }
        match &self.paths {
            Some(p) => {
                let mut num = std::mem::take(&mut sc.num);
                for h in hits {
                    if let Some(t) = doc.scalar_text(h.tok, &mut num) {
                        for &(kind, name) in &p.targets[h.node as usize] {
                            self.check(kind, t, &self.names[name as usize], sc, out);
                        }
                    }
                }
                sc.num = num;
            }
            None => self.scan_all(doc, sc, out),
        }
        out.sort_by_key(|h| h.index);
        out.dedup_by_key(|h| h.index);
    }

    /// Finds every indicator in `event`; each indicator is reported once.
    pub fn scan(&self, doc: &Doc<'_>, sc: &mut IndicatorScratch, out: &mut Vec<IndicatorHit>) {
        out.clear();
        if self.set.is_empty() {
            return;
        }
        match &self.paths {
            Some(p) => self.scan_mapped(p, doc, sc, out),
            None => self.scan_all(doc, sc, out),
        }
        out.sort_by_key(|h| h.index);
        out.dedup_by_key(|h| h.index);
    }

    fn check(
        &self,
        kind: u8,
        text: &str,
        field: &str,
        sc: &mut IndicatorScratch,
        out: &mut Vec<IndicatorHit>,
    ) {
        sc.found.clear();
        match kind {
            b'i' => {
                if let Some(a) = crate::ip::parse_ip_lenient(text) {
                    self.set.match_ip(a, &mut sc.found);
                }
            }
            b'd' => self.set.match_domain(text, &mut sc.lower, &mut sc.found),
            b'u' => self.set.match_url(text, &mut sc.lower, &mut sc.found),
            _ => self.set.match_hashes(text, &mut sc.found),
        }
        for &i in &sc.found {
            out.push(IndicatorHit {
                index: i,
                field: field.to_string(),
                value: text.to_string(),
            });
        }
    }

    fn scan_mapped(
        &self,
        p: &Paths,
        doc: &Doc<'_>,
        sc: &mut IndicatorScratch,
        out: &mut Vec<IndicatorHit>,
    ) {
        let mut num = std::mem::take(&mut sc.num);
        walk(
            &p.trie,
            doc,
            0,
            0,
            &|n| !p.targets[n as usize].is_empty(),
            &mut |n, tok| {
                if let Some(t) = doc.scalar_text(tok, &mut num) {
                    for &(kind, name) in &p.targets[n as usize] {
                        self.check(kind, t, &self.names[name as usize], sc, out);
                    }
                }
            },
        );
        sc.num = num;
    }

    /// Every string value of the event, checked by its shape.
    fn scan_all(&self, doc: &Doc<'_>, sc: &mut IndicatorScratch, out: &mut Vec<IndicatorHit>) {
        for i in 0..doc.len() {
            let t = doc.tok(i);
            if t.is_key() || t.kind() != Kind::String {
                continue;
            }
            let s = doc.str_at(i).trim();
            if crate::ip::parse_ip_lenient(s).is_some() {
                self.check(b'i', s, "*", sc, out);
            } else if s.contains("://") {
                self.check(b'u', s, "*", sc, out);
            } else if looks_like_host(s) {
                self.check(b'd', s, "*", sc, out);
            }
            if s.len() >= 32 {
                self.check(b'h', s, "*", sc, out);
            }
        }
    }
}
