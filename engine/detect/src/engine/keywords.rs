//! Keyword searches: Sigma keywords look at every value of an event.
//!
//! Most events contain none of a rule set's keywords, so the exact pass
//! (every value, lowercased, through the keyword slot's index) runs only
//! when the raw JSON line could contain one: each keyword is printable
//! ASCII, whose JSON form is itself with `\` and `"` escaped, so a keyword
//! absent from the ASCII-lowercased line is in no value. Lines whose
//! strings spell an ASCII character with a `\u` escape, or use `\/`, could
//! hold a keyword the raw bytes do not show: their decoded values are
//! searched instead. (A `\u` escape of any other character, as Python's
//! `json.dumps` writes every non-ASCII one, hides nothing: no printable
//! ASCII keyword can match across it.)
//!
//! The check runs once per event over the keywords of every active bucket
//! together: the searcher for a set of buckets is built the first time an
//! event activates that set (each literal anchored where that event's line
//! makes it rarest), and kept with the routing memo.

use std::sync::Arc;

use super::folded::FoldedPairs;
use super::{Engine, Scratch};
use crate::event::{Doc, for_each_text};
use crate::glob::LOWERS_TO_ASCII;
use crate::predicate::Test;

/// What a bucket's keyword searches allow.
#[derive(Debug, Clone)]
pub(super) enum BucketKeywords {
    /// No rule of the bucket searches keywords.
    None,
    /// Some keyword cannot be found in the raw line (not a plain
    /// case-insensitive printable-ASCII substring): always the exact pass.
    Exact,
    /// The JSON-escaped, lowercase literals of the bucket's keywords.
    Literals(Vec<Vec<u8>>),
}

/// What an event with a given set of active buckets does about keywords.
#[derive(Debug, Clone)]
pub(super) enum KeywordPlan {
    None,
    Exact,
    Prefilter(Arc<Prefilter>),
}

/// Finds whether any keyword literal occurs in a (lowercased) raw line:
/// the SIMD packed searcher when the literal set is small enough for it,
/// a DFA otherwise. Literals are lowercase and lines ASCII-lowercased, so
/// the search stays case-sensitive (which the packed searcher requires).
#[derive(Debug)]
pub(super) enum Prefilter {
    /// A few short substrings, one of which every literal holds, searched
    /// by the packed searcher; the literals holding a substring are
    /// checked where it occurs. Mimikatz's twenty keywords need three
    /// (`::`, `kiwi`, `mimi`): the searcher then tells candidates apart by
    /// two bytes instead of four and, with one substring a bucket, stops
    /// only where one occurs, so a line costs well under half as much.
    Cover {
        searcher: aho_corasick::packed::Searcher,
        covers: Vec<Cover>,
        /// The same search on the raw line, without its lowercase copy
        /// (when the CPU allows).
        folded: Option<FoldedPairs>,
    },
    Packed {
        searcher: aho_corasick::packed::Searcher,
        /// Per searcher pattern: the literal and where the pattern (its
        /// anchor) starts in it.
        anchors: Vec<Anchor>,
    },
    Dfa(aho_corasick::AhoCorasick),
}

/// A keyword literal searched by one of its suffixes: the packed searcher
/// tells candidates apart by a pattern's first bytes, and a literal that
/// starts like the event's own keys (`event::clear` and `"EventID"`) would
/// stop it at every key. Any suffix of a literal occurs wherever the
/// literal does, so searching it and then checking the whole literal is exact.
#[derive(Debug)]
pub(super) struct Anchor {
    lit: Vec<u8>,
    offset: usize,
}

/// The bytes of a pattern the packed searcher tells candidates apart by.
const FINGERPRINT: usize = 4;

impl Anchor {
    /// Whether `hay` holds the literal with its anchor at `p`.
    #[inline]
    fn holds(&self, hay: &[u8], p: usize) -> bool {
        p >= self.offset && hay[p - self.offset..].starts_with(&self.lit)
    }

    /// [`Anchor::holds`] in a line not lowercased (the literal is).
    #[inline]
    fn holds_folded(&self, hay: &[u8], p: usize) -> bool {
        p >= self.offset && starts_folded(&hay[p - self.offset..], &self.lit)
    }
}

/// Whether `hay` ASCII-lowercased starts with `lower`.
#[inline]
fn starts_folded(hay: &[u8], lower: &[u8]) -> bool {
    hay.get(..lower.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(lower))
}

/// Whether `check` holds at some position where `searcher` finds a
/// pattern starting (every such position, overlapping ones included).
#[inline]
fn any_start(
    searcher: &aho_corasick::packed::Searcher,
    hay: &[u8],
    check: impl Fn(usize) -> bool,
) -> bool {
    let mut at = 0;
    while let Some(m) = searcher.find_in(hay, aho_corasick::Span::from(at..hay.len())) {
        if check(m.start()) {
            return true;
        }
        at = m.start() + 1;
    }
    false
}

/// A substring of a cover and the literals holding it, each anchored
/// where the substring first starts in it.
#[derive(Debug)]
pub(super) struct Cover {
    sub: Vec<u8>,
    lits: Vec<Anchor>,
}

/// At most this many substrings in a cover.
const MAX_COVER: usize = 4;
/// Cover substrings are two to this many bytes long.
const COVER_LEN: usize = 4;
/// Bytes of the sample line, and candidate substrings per step, looked at.
const COVER_SAMPLE: usize = 16 << 10;
const COVER_CANDIDATES: usize = 256;

/// A cover of `lits`: at most [`MAX_COVER`] substrings of two to
/// [`COVER_LEN`] bytes, none occurring in `sample` (a line of the events
/// served, so that no substring is part of every line, as `"eventid"`
/// would be), such that every literal holds one. Chosen greedily: the
/// substring held by the most literals not yet covered, the longest of
/// those. `None` when there is no such cover (many unrelated literals, a
/// one-byte literal, substrings the events' own lines show).
fn cover(lits: &[Vec<u8>], sample: &[u8]) -> Option<Vec<Cover>> {
    use std::collections::HashMap;
    // Bounded work for a huge first line or literal set: its start shows
    // the keys, and a substring that many literals share is among the
    // first candidates.
    let sample = &sample[..sample.len().min(COVER_SAMPLE)];
    let mut left: Vec<&[u8]> = lits.iter().map(Vec::as_slice).collect();
    let mut out: Vec<Cover> = Vec::new();
    while !left.is_empty() {
        if out.len() == MAX_COVER {
            return None;
        }
        // Per substring: how many uncovered literals hold it.
        let mut held: HashMap<&[u8], usize> = HashMap::new();
        for l in &left {
            let mut seen: Vec<&[u8]> = Vec::new();
            for n in 2..=COVER_LEN.min(l.len()) {
                for w in l.windows(n) {
                    if !seen.contains(&w) {
                        seen.push(w);
                        *held.entry(w).or_default() += 1;
                    }
                }
            }
        }
        let mut ranked: Vec<(&[u8], usize)> = held.into_iter().collect();
        ranked.sort_by(|a, b| {
            (b.1.cmp(&a.1))
                .then(b.0.len().cmp(&a.0.len()))
                .then(a.0.cmp(b.0))
        });
        let sub = ranked
            .into_iter()
            .take(COVER_CANDIDATES)
            .map(|(w, _)| w)
            .find(|w| memchr::memmem::find(sample, w).is_none())?
            .to_vec();
        let mut lits = Vec::new();
        left.retain(|l| match memchr::memmem::find(l, &sub) {
            Some(at) => {
                lits.push(Anchor {
                    lit: l.to_vec(),
                    offset: at,
                });
                false
            }
            None => true,
        });
        out.push(Cover { sub, lits });
    }
    Some(out)
}

impl Prefilter {
    /// `sample`: a lowercased raw line of the events this prefilter serves,
    /// to pick for each literal the suffix whose first bytes it shows least.
    fn new(lits: &[Vec<u8>], sample: &[u8]) -> Option<Self> {
        if let Some(covers) = cover(lits, sample) {
            let mut packed = aho_corasick::packed::Config::new().builder();
            packed.extend(covers.iter().map(|c| &c.sub));
            if let Some(searcher) = packed.build() {
                let subs: Vec<&[u8]> = covers.iter().map(|c| c.sub.as_slice()).collect();
                let folded = FoldedPairs::new(&subs, sample);
                return Some(Prefilter::Cover {
                    searcher,
                    covers,
                    folded,
                });
            }
        }
        let anchors: Vec<Anchor> = lits
            .iter()
            .map(|l| Anchor {
                lit: l.clone(),
                offset: anchor_offset(l, sample),
            })
            .collect();
        let mut packed = aho_corasick::packed::Config::new().builder();
        packed.extend(anchors.iter().map(|a| &a.lit[a.offset..]));
        if let Some(searcher) = packed.build() {
            return Some(Prefilter::Packed { searcher, anchors });
        }
        aho_corasick::AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(lits)
            .ok()
            .map(Prefilter::Dfa)
    }

    fn is_match(&self, hay: &[u8]) -> bool {
        match self {
            // Whichever anchor starts at `p`, its literal may hold there
            // (the check covers the anchor's own bytes).
            Prefilter::Packed { searcher, anchors } => {
                any_start(searcher, hay, |p| anchors.iter().any(|a| a.holds(hay, p)))
            }
            // Every substring starting at `p` (the searcher reports one),
            // and every literal holding it.
            Prefilter::Cover {
                searcher, covers, ..
            } => any_start(searcher, hay, |p| {
                covers
                    .iter()
                    .any(|c| hay[p..].starts_with(&c.sub) && c.lits.iter().any(|a| a.holds(hay, p)))
            }),
            Prefilter::Dfa(a) => a.is_match(hay),
        }
    }

    /// [`Prefilter::is_match`] on the raw line itself, not lowercased,
    /// when this prefilter can (`None` otherwise).
    fn is_match_raw(&self, raw: &[u8]) -> Option<bool> {
        match self {
            Prefilter::Cover {
                covers,
                folded: Some(f),
                ..
            } => Some(f.any(raw, |p| {
                covers.iter().any(|c| {
                    starts_folded(&raw[p..], &c.sub)
                        && c.lits.iter().any(|a| a.holds_folded(raw, p))
                })
            })),
            _ => None,
        }
    }
}

/// Where `lit`'s anchor starts: the suffix (at least [`FINGERPRINT`] bytes
/// long, or the whole literal) whose first bytes occur least often in
/// `sample`, the earliest of those.
fn anchor_offset(lit: &[u8], sample: &[u8]) -> usize {
    let w = FINGERPRINT.min(lit.len());
    (0..=lit.len() - w)
        .min_by_key(|&o| memchr::memmem::find_iter(sample, &lit[o..o + w]).count())
        .unwrap_or(0)
}

/// Each bucket's keyword literals, from the keyword predicates its rules use.
/// `rules` gives, per compiled rule, its bucket and the keyword-slot
/// predicates it uses; `joinable` says whether the keyword slot's index
/// holds only plain substrings.
pub(super) fn bucket_keywords<'a>(
    nbuckets: usize,
    rules: impl Iterator<Item = (u32, Vec<&'a Test>)>,
    joinable: bool,
) -> Vec<BucketKeywords> {
    let mut out = vec![BucketKeywords::None; nbuckets];
    for (bucket, tests) in rules {
        for test in tests {
            let b = &mut out[bucket as usize];
            let lit = match test {
                Test::Str { pat, cased: false } if joinable => match pat.shape() {
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
                        Some(e)
                    }
                    _ => None,
                },
                _ => None,
            };
            match (lit, &mut *b) {
                (_, BucketKeywords::Exact) => {}
                (None, _) => *b = BucketKeywords::Exact,
                (Some(l), BucketKeywords::Literals(ls)) => ls.push(l),
                (Some(l), BucketKeywords::None) => *b = BucketKeywords::Literals(vec![l]),
            }
        }
    }
    for b in &mut out {
        if let BucketKeywords::Literals(ls) = b {
            ls.sort();
            ls.dedup();
        }
    }
    out
}

/// The plan for a set of active buckets (built once per set and thread);
/// `sample` is the raw line of the event that first needs it.
pub(super) fn plan(kw: &[BucketKeywords], active: &[u32], sample: &[u8]) -> KeywordPlan {
    let mut lits: Vec<Vec<u8>> = Vec::new();
    for &b in active {
        match &kw[b as usize] {
            BucketKeywords::None => {}
            BucketKeywords::Exact => return KeywordPlan::Exact,
            BucketKeywords::Literals(l) => lits.extend(l.iter().cloned()),
        }
    }
    if lits.is_empty() {
        return KeywordPlan::None;
    }
    lits.sort();
    lits.dedup();
    match Prefilter::new(&lits, &sample.to_ascii_lowercase()) {
        Some(p) => KeywordPlan::Prefilter(Arc::new(p)),
        None => KeywordPlan::Exact,
    }
}

/// Whether `raw` holds a character outside ASCII whose lowercase form has
/// an ASCII letter (the Kelvin sign, `İ`): a keyword could match its value
/// although the ASCII-lowercased raw line does not show it.
fn lowers_to_ascii(raw: &[u8]) -> bool {
    let mut bufs = [[0u8; 4]; 2];
    let [a, b] = &mut bufs;
    let (a, b) = (
        LOWERS_TO_ASCII[0].encode_utf8(a).as_bytes(),
        LOWERS_TO_ASCII[1].encode_utf8(b).as_bytes(),
    );
    // Their lead bytes are rare even in non-ASCII text: look for those first.
    memchr::memchr2_iter(a[0], b[0], raw)
        .any(|i| raw[i..].starts_with(a) || raw[i..].starts_with(b))
}

/// Appends `text` lowercased as keyword searches read it (ASCII bytes
/// directly, anything else by Unicode's mapping); `escape` writes `\` and
/// `"` as JSON text has them (`\\`, `\"`).
fn push_lowercase(out: &mut Vec<u8>, text: &str, escape: bool) {
    let at = out.len();
    let unicode;
    let mut rest = if text.is_ascii() {
        text.as_bytes()
    } else {
        unicode = crate::glob::lowercase(text);
        unicode.as_bytes()
    };
    while escape && let Some(i) = memchr::memchr2(b'\\', b'"', rest) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(&[b'\\', rest[i]]);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out[at..].make_ascii_lowercase();
}

impl Engine {
    /// Whether the exact keyword pass must run for this event.
    /// (`r`: the event's route.)
    pub(super) fn keywords_needed(&self, doc: &Doc<'_>, r: usize, sc: &mut Scratch) -> bool {
        let Scratch {
            route,
            lowered,
            numbuf,
            exhaustive,
            ..
        } = sc;
        match &route.routes[r].keywords {
            KeywordPlan::None => false,
            KeywordPlan::Exact => true,
            KeywordPlan::Prefilter(_) if *exhaustive => true,
            KeywordPlan::Prefilter(pf) => {
                let raw = doc.text().as_bytes();
                lowered.clear();
                if doc.has_hidden_text() || (doc.has_non_ascii() && lowers_to_ascii(raw)) {
                    // The raw line may not show a value as the exact pass
                    // reads it: search the values themselves, lowercased
                    // as that pass does, in the JSON-escaped form the
                    // literals have, one per line (no literal holds a
                    // line break).
                    for_each_text(doc, numbuf, &mut |t| {
                        push_lowercase(lowered, t, true);
                        lowered.push(b'\n');
                    });
                } else if let Some(found) = pf.is_match_raw(raw) {
                    return found;
                } else {
                    lowered.extend(raw.iter().map(u8::to_ascii_lowercase));
                }
                pf.is_match(lowered)
            }
        }
    }

    /// Feeds every value of the event to the keyword slot: joined for a
    /// single scan when the keywords allow it, one by one otherwise.
    pub(super) fn feed_keywords(&self, doc: &Doc<'_>, sc: &mut Scratch) {
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
        let mut fire = |p: u32| touched.fire(fired, p);
        let m = &self.slots[k as usize].matcher;
        joined.clear();
        let joinable = m.joinable();
        for_each_text(doc, numbuf, &mut |t| {
            if joinable {
                push_lowercase(joined, t, false);
                joined.push(0xff);
            } else {
                m.feed_text(t, feed, &mut fire);
            }
        });
        if !joined.is_empty() {
            m.feed_joined(joined, &mut fire);
        }
    }
}

#[cfg(test)]
mod tests {
    use warden_gen::Rng;

    /// Searching each literal by a suffix picked from a sample line finds
    /// exactly the lines holding some literal, whatever the sample.
    #[test]
    fn anchored_prefilter_finds_exactly_the_lines_with_a_literal() {
        let mut g = Rng::new(7);
        let text = |g: &mut Rng, min: usize, max: usize| -> Vec<u8> {
            let n = min + g.below(max - min + 1);
            (0..n).map(|_| b"ab:e"[g.below(4)]).collect()
        };
        let piece = |g: &mut Rng, l: &[u8]| -> Vec<u8> {
            let (a, b) = (g.below(l.len()), g.below(l.len() + 1));
            l[a.min(b)..a.max(b)].to_vec()
        };
        let (mut moved, mut found) = (0, 0);
        for round in 0..400 {
            let mut lits: Vec<Vec<u8>> = (0..2 + g.below(8)).map(|_| text(&mut g, 5, 9)).collect();
            lits.push(b"event::clear".to_vec());
            lits.sort();
            lits.dedup();
            // A sample full of the literals' beginnings pushes anchors
            // towards their ends.
            let mut sample = br#"{"event":{"eventid":1}}"#.to_vec();
            for _ in 0..g.below(10) {
                let l = &lits[g.below(lits.len())];
                sample.extend_from_slice(&l[..1 + g.below(l.len())]);
                sample.push(b' ');
            }
            let pf = super::Prefilter::new(&lits, &sample).unwrap();
            if let super::Prefilter::Packed { anchors, .. } = &pf {
                moved += anchors.iter().filter(|a| a.offset > 0).count();
            }
            for _ in 0..40 {
                // Pieces of literals (their anchors among them), noise, and
                // now and then a whole literal.
                let mut hay = Vec::new();
                for _ in 0..g.below(8) {
                    let l = &lits[g.below(lits.len())];
                    match g.below(8) {
                        0 => hay.extend_from_slice(l),
                        1 => hay.extend(text(&mut g, 0, 3)),
                        _ => hay.extend(piece(&mut g, l)),
                    }
                }
                let want = lits.iter().any(|l| memchr::memmem::find(&hay, l).is_some());
                assert_eq!(
                    pf.is_match(&hay),
                    want,
                    "round {round}: {lits:?} in {hay:?}"
                );
                found += usize::from(want);
            }
        }
        assert!(
            moved > 300,
            "anchors should often move off the start ({moved})"
        );
        assert!(
            (2_000..14_000).contains(&found),
            "{found} of 16,000 lines match"
        );
    }

    /// Literals in families that share a substring (as `::` in Mimikatz's
    /// commands) are searched by a cover of a few substrings, and the
    /// cover finds exactly the lines holding some literal: at the
    /// literal's start, end or middle, overlapping other substrings, with
    /// the substring occurring in the line before the literal does.
    #[test]
    fn covered_prefilter_finds_exactly_the_lines_with_a_literal() {
        let mut g = Rng::new(11);
        let word = |g: &mut Rng, min: usize, max: usize| -> Vec<u8> {
            let n = min + g.below(max - min + 1);
            (0..n).map(|_| b"abcd::x."[g.below(8)]).collect()
        };
        let (mut covered, mut found, mut raw_checked) = (0, 0, 0);
        for round in 0..400 {
            // One to four families, each a shared middle with its own ends.
            let mut lits: Vec<Vec<u8>> = Vec::new();
            for _ in 0..1 + g.below(4) {
                let mid = word(&mut g, 2, 4);
                for _ in 0..1 + g.below(5) {
                    let mut l = word(&mut g, 0, 3);
                    l.extend_from_slice(&mid);
                    l.extend(word(&mut g, 0, 3));
                    lits.push(l);
                }
            }
            lits.sort();
            lits.dedup();
            let sample: Vec<u8> = (0..g.below(40)).map(|_| b"abcdxyz. "[g.below(9)]).collect();
            let pf = super::Prefilter::new(&lits, &sample).unwrap();
            if let super::Prefilter::Cover { covers, .. } = &pf {
                covered += 1;
                assert!(covers.len() <= super::MAX_COVER);
                for c in covers {
                    assert!(memchr::memmem::find(&sample, &c.sub).is_none());
                }
            }
            for _ in 0..40 {
                let mut hay = Vec::new();
                for _ in 0..g.below(8) {
                    let l = &lits[g.below(lits.len())];
                    match g.below(6) {
                        0 => hay.extend_from_slice(l),
                        1 => hay.extend(word(&mut g, 0, 4)),
                        _ => {
                            let (a, b) = (g.below(l.len()), g.below(l.len() + 1));
                            hay.extend_from_slice(&l[a.min(b)..a.max(b)]);
                        }
                    }
                }
                let want = lits.iter().any(|l| memchr::memmem::find(&hay, l).is_some());
                assert_eq!(
                    pf.is_match(&hay),
                    want,
                    "round {round}: {lits:?} in {hay:?}"
                );
                // The raw line, in any case, gives the same answer.
                let raw: Vec<u8> = hay
                    .iter()
                    .map(|c| match g.below(2) {
                        0 => c.to_ascii_uppercase(),
                        _ => *c,
                    })
                    .collect();
                if let Some(got) = pf.is_match_raw(&raw) {
                    assert_eq!(got, want, "round {round}: {lits:?} in raw {raw:?}");
                    raw_checked += 1;
                }
                found += usize::from(want);
            }
        }
        if super::super::folded::avx2() {
            assert!(raw_checked > 8_000, "raw lines checked: {raw_checked}");
        }
        assert!(covered > 200, "covers chosen in {covered} of 400 rounds");
        assert!(
            (2_000..14_000).contains(&found),
            "{found} of 16,000 lines match"
        );
    }

    /// SigmaHQ's Mimikatz keywords, against a Sysmon line: three substrings.
    #[test]
    fn mimikatz_keywords_are_covered_by_three_substrings() {
        let lits: Vec<Vec<u8>> = [
            "dpapi::masterkey",
            "eo.oe.kiwi",
            "event::clear",
            "event::drop",
            "gentilkiwi.com",
            "kerberos::golden",
            "kerberos::ptc",
            "kerberos::ptt",
            "kerberos::tgt",
            "kiwi legit printer",
            "lsadump::",
            "mimidrv.sys",
            "\\\\mimilib.dll",
            "misc::printnightmare",
            "misc::shadowcopies",
            "misc::skeleton",
            "privilege::backup",
            "privilege::debug",
            "privilege::driver",
            "sekurlsa::",
        ]
        .iter()
        .map(|l| l.as_bytes().to_vec())
        .collect();
        let sample = br#"{"event":{"system":{"eventid":1,"channel":"microsoft-windows-sysmon/operational"},"eventdata":{"image":"c:\\windows\\system32\\cmd.exe"}}}"#;
        let pf = super::Prefilter::new(&lits, sample).unwrap();
        let super::Prefilter::Cover { covers, .. } = &pf else {
            panic!("expected a cover: {pf:?}");
        };
        let subs: Vec<&[u8]> = covers.iter().map(|c| c.sub.as_slice()).collect();
        assert_eq!(subs, [&b"::"[..], b"kiwi", b"mimi"]);
        assert!(pf.is_match(br#"{"commandline":"x privilege::debug exit"}"#));
        assert!(pf.is_match(br#"{"p":"c:\\x\\mimilib.dll"}"#));
        assert!(!pf.is_match(br#"{"p":"c:\\x\\mimilib2.dll","ip":"::1","k":"kiwi"}"#));
        // The raw line, not lowercased.
        if let Some(raw) = pf.is_match_raw(br#"{"CommandLine":"x PRIVILEGE::Debug exit"}"#) {
            assert!(raw);
            assert_eq!(
                pf.is_match_raw(br#"{"P":"C:\\X\\MimiLib.DLL"}"#),
                Some(true)
            );
            assert_eq!(
                pf.is_match_raw(br#"{"P":"C:\\X\\MimiLib2.dll","IP":"::1","K":"Kiwi"}"#),
                Some(false)
            );
            assert_eq!(
                pf.is_match_raw(br#"{"P":"C:|X|MimiLib.dll","K":"GentilKiwi.COM"}"#),
                Some(true)
            );
        } else {
            assert!(!super::super::folded::avx2(), "AVX2 but no raw search");
        }
    }

    #[test]
    fn lowers_to_ascii_lists_every_such_character() {
        let found: Vec<char> = (0x80..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|c| c.to_lowercase().any(|l| l.is_ascii()))
            .collect();
        assert_eq!(found, super::LOWERS_TO_ASCII);
        assert!(super::lowers_to_ascii("x \u{212A}erberos".as_bytes()));
        assert!(!super::lowers_to_ascii("caf\u{e9}".as_bytes()));
    }
}
