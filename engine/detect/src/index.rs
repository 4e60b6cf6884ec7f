//! The per-slot index: every predicate of one field, grouped so that one
//! value is tested against all of them at once.
//!
//! - exact values: a hash map from the (lowercased) value to predicates;
//! - contains / startswith / endswith and the literal gate of general
//!   wildcard patterns: one Aho-Corasick automaton per case mode;
//! - regexes: one multi-pattern regex-automata searcher;
//! - CIDRs: a prefix table; numbers, time parts, presence: short lists.

use std::collections::HashMap;

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::nfa::contiguous;
use aho_corasick::{Anchored, MatchKind};
use regex_automata::meta;

use crate::glob::{Glob, Pattern, Shape};
use crate::ip::PrefixTable;
use crate::predicate::{Cmp, Test, TimePart};

/// Above this many literals a field's automaton is a contiguous NFA
/// instead of a DFA (DFA memory grows with literals × byte classes).
const DFA_MAX_LITERALS: usize = 3_000;

/// Shortest literal worth gating an anchored wildcard pattern on.
const MIN_GATE: usize = 3;

/// What an automaton hit means.
#[derive(Debug, Clone, Copy)]
enum AcTarget {
    Contains(u32),
    /// The literal of general pattern `idx` occurs: verify the whole pattern.
    Gate(u32),
    /// A literal every match of regex `idx` starts with (or ends with) occurs: run it.
    RegexGate(u32),
}

#[derive(Debug)]
struct AcIndex {
    ac: Literals,
    targets: Targets,
    /// Shortest literal: shorter values cannot hit.
    min_len: usize,
    /// The one-byte literals of a large set, kept out of its automaton
    /// (their ids follow the automaton's).
    one_byte: Option<OneByte>,
}

impl AcIndex {
    fn build(mut lits: Vec<Vec<u8>>, mut targets: Vec<Vec<AcTarget>>) -> AcIndex {
        let min_len = lits.iter().map(Vec::len).min().unwrap_or(0);
        let mut one_byte = None;
        if lits.len() > DFA_MAX_LITERALS && lits.iter().any(|l| l.len() == 1) {
            // Longer literals first, so the automaton's pattern ids are the
            // literal ids and the one-byte ones follow.
            let (mut both, ones): (Vec<_>, Vec<_>) = lits
                .into_iter()
                .zip(targets)
                .partition(|(l, _)| l.len() > 1);
            let long = both.len();
            both.extend(ones);
            (lits, targets) = both.into_iter().unzip();
            one_byte = Some(OneByte::build(&lits[long..], long));
            lits.truncate(long);
        }
        AcIndex {
            ac: Literals::build(&lits),
            targets: Targets::build(targets),
            min_len,
            one_byte,
        }
    }

    /// Calls `f` with the id of every literal occurrence in `hay` (one-byte
    /// literals once each), resuming the automaton's recorded scans when
    /// `resume` is given.
    #[inline]
    fn for_each_match(&self, hay: &[u8], resume: Option<&mut Resume>, f: &mut impl FnMut(usize)) {
        if let Some(o) = &self.one_byte {
            o.for_each_match(hay, f);
        }
        match resume {
            Some(rec) => self.ac.for_each_match_resuming(hay, rec, f),
            None => self.ac.for_each_match(hay, f),
        }
    }

    fn memory_usage(&self) -> usize {
        self.ac.memory_usage()
            + self.targets.memory_usage()
            + self.one_byte.as_ref().map_or(0, OneByte::memory_usage)
    }
}

/// The one-byte literals of a large literal set (`\`, `i`, `0`, `9` in
/// SigmaHQ's command-line set), kept out of its automaton: they hit every
/// few bytes of a command line, and every automaton state that ends in one
/// of them is a match state. Each is reported once, which is all its
/// targets need (a predicate fires once, a gate is verified once per
/// value). Which occur is one pass over the value ORing each byte's bit
/// from a table (SigmaHQ's command lines have 16 such literals: one
/// `memchr` each had cost four times as much on a 120-byte value).
#[derive(Debug)]
struct OneByte {
    /// Each byte and its literal id.
    bytes: Vec<(u8, u32)>,
    /// Per byte value: the bit of its index in `bytes` (at most 64
    /// literals; `None` above, when each takes a `memchr`).
    bits: Option<Box<[u64; 256]>>,
    /// Every literal's bit.
    all: u64,
}

impl OneByte {
    /// From the one-byte literals `lits`, whose ids start at `first`.
    fn build(lits: &[Vec<u8>], first: usize) -> OneByte {
        let bytes: Vec<(u8, u32)> = lits
            .iter()
            .enumerate()
            .map(|(i, l)| (l[0], (first + i) as u32))
            .collect();
        let bits = (bytes.len() <= 64).then(|| {
            let mut t = Box::new([0u64; 256]);
            for (i, &(b, _)) in bytes.iter().enumerate() {
                t[b as usize] |= 1 << i;
            }
            t
        });
        let all = bits.as_ref().map_or(0, |t| t.iter().fold(0, |a, b| a | b));
        OneByte { bytes, bits, all }
    }

    #[inline]
    fn for_each_match(&self, hay: &[u8], f: &mut impl FnMut(usize)) {
        let Some(bits) = &self.bits else {
            for &(b, id) in &self.bytes {
                if memchr::memchr(b, hay).is_some() {
                    f(id as usize);
                }
            }
            return;
        };
        let mut seen = present(bits, self.all, hay);
        while seen != 0 {
            f(self.bytes[seen.trailing_zeros() as usize].1 as usize);
            seen &= seen - 1;
        }
    }

    fn memory_usage(&self) -> usize {
        self.bytes.len() * 8 + self.bits.as_ref().map_or(0, |_| 256 * 8)
    }
}

/// The OR of `bits` over the bytes of `hay`: four independent chains, and
/// a check every 256 bytes whether `all` the bits are already set.
#[inline]
fn present(bits: &[u64; 256], all: u64, hay: &[u8]) -> u64 {
    let mut seen = 0u64;
    for block in hay.chunks(256) {
        let mut m = [0u64; 4];
        let mut quads = block.chunks_exact(4);
        for q in &mut quads {
            m[0] |= bits[q[0] as usize];
            m[1] |= bits[q[1] as usize];
            m[2] |= bits[q[2] as usize];
            m[3] |= bits[q[3] as usize];
        }
        for &b in quads.remainder() {
            m[0] |= bits[b as usize];
        }
        seen |= m[0] | m[1] | m[2] | m[3];
        if seen == all {
            break;
        }
    }
    seen
}

/// What each literal of an automaton means, in flat arrays read once per
/// reported match: most literals have one target, held inline in a `u32`
/// (a vector per literal cost a cache miss for its header and another for
/// its contents, ~30 times per command line).
#[derive(Debug, Default)]
struct Targets {
    /// Per literal: an encoded target ([`Targets::encode`]), or [`MULTI`]
    /// with where its list starts in `lists` (its length first).
    per_lit: Vec<u32>,
    lists: Vec<u32>,
}

/// Kind bits of an encoded target (the top two); the rest is the id.
const KIND_SHIFT: u32 = 30;
const ID_MASK: u32 = (1 << KIND_SHIFT) - 1;
const CONTAINS: u32 = 0;
const GATE: u32 = 1;
const REGEX_GATE: u32 = 2;
const MULTI: u32 = 3;

impl Targets {
    fn encode(t: AcTarget) -> u32 {
        let (kind, id) = match t {
            AcTarget::Contains(p) => (CONTAINS, p),
            AcTarget::Gate(g) => (GATE, g),
            AcTarget::RegexGate(r) => (REGEX_GATE, r),
        };
        assert!(id <= ID_MASK, "target ids stay below 2^30");
        kind << KIND_SHIFT | id
    }

    fn decode(code: u32) -> AcTarget {
        let id = code & ID_MASK;
        match code >> KIND_SHIFT {
            CONTAINS => AcTarget::Contains(id),
            GATE => AcTarget::Gate(id),
            _ => AcTarget::RegexGate(id),
        }
    }

    fn build(per_lit: Vec<Vec<AcTarget>>) -> Targets {
        let mut t = Targets::default();
        for list in per_lit {
            if let [one] = list[..] {
                t.per_lit.push(Targets::encode(one));
                continue;
            }
            let at = t.lists.len() as u32;
            assert!(at <= ID_MASK, "target lists stay below 2^30 entries");
            t.per_lit.push(MULTI << KIND_SHIFT | at);
            t.lists.push(list.len() as u32);
            t.lists.extend(list.into_iter().map(Targets::encode));
        }
        t
    }

    /// Calls `f` with each target of literal `lit`.
    #[inline(always)]
    fn for_each(&self, lit: usize, mut f: impl FnMut(AcTarget)) {
        let code = self.per_lit[lit];
        if code >> KIND_SHIFT != MULTI {
            f(Targets::decode(code));
            return;
        }
        let at = (code & ID_MASK) as usize;
        let n = self.lists[at] as usize;
        for &c in &self.lists[at + 1..at + 1 + n] {
            f(Targets::decode(c));
        }
    }

    fn all(&self, mut pred: impl FnMut(AcTarget) -> bool) -> bool {
        (0..self.per_lit.len()).all(|l| {
            let mut ok = true;
            self.for_each(l, |t| ok &= pred(t));
            ok
        })
    }

    fn memory_usage(&self) -> usize {
        (self.per_lit.len() + self.lists.len()) * 4
    }
}

/// An unanchored literal automaton used directly, so that each byte costs
/// one statically dispatched transition and every literal ending there is
/// reported in place (the overlapping iterator of `AhoCorasick` returns
/// to its caller once per match: ~30 times per command line here).
#[derive(Debug)]
enum Literals {
    Dfa(aho_corasick::dfa::DFA),
    Nfa(contiguous::NFA),
    Heads(Heads),
}

/// A head's bytes as a word.
#[inline(always)]
fn head_word(h: &[u8]) -> u32 {
    u32::from_le_bytes([h[0], h[1], h[2], h[3]])
}

/// Length of the heads [`Heads`] groups literals by.
const HEAD_LEN: usize = 4;
/// Most distinct heads [`Heads`] takes (the packed SIMD searcher's range).
const MAX_HEADS: usize = 32;
/// Most distinct literal lengths per head: each costs one lookup per
/// occurrence of the head.
const MAX_LENS_PER_HEAD: usize = 4;

/// Many long literals that begin with one of a few heads (threat-intel
/// hash lists: `md5=…`, `sha256=…`, `imphash=…`): the heads are searched
/// with the packed SIMD searcher, and at each occurrence the literal-long
/// windows starting there are looked up in a hash map. A byte-at-a-time
/// automaton over such a set walks every byte of a 200-byte `Hashes`
/// value; this looks at a handful of places.
#[derive(Debug)]
struct Heads {
    searcher: aho_corasick::packed::Searcher,
    /// The heads' first bytes when there are at most three (`m`, `s`, `i`
    /// for `md5=`, `sha1=`, `imphash=`): memchr finds the candidates, and
    /// a word compare tells which head (if any) starts there, cheaper than
    /// restarting the packed searcher after every occurrence.
    firsts: Vec<u8>,
    /// The heads as words, by searcher pattern id.
    words: Vec<u32>,
    /// Per head (searcher pattern id): the distinct lengths of its literals.
    lens: Vec<Vec<usize>>,
    /// Literal bytes → literal id.
    ids: HashMap<Box<[u8]>, usize, foldhash::fast::RandomState>,
    /// How many bytes after the head every literal has (at most eight),
    /// and a bitmap of their hashes: most occurrences of a head (`sha1=`
    /// in every `Hashes` value) are followed by bytes no literal has, and
    /// this rules them out with one load into a small table instead of a
    /// hash map lookup (a likely cache miss among thousands of literals).
    probe: usize,
    after: Box<[u64]>,
}

/// Bits of [`Heads::after`]'s hash (a 32 KiB bitmap).
const AFTER_BITS: u32 = 18;

/// The bitmap position of the `n` (at most eight) bytes at `w`.
#[inline(always)]
fn after_key(w: &[u8]) -> usize {
    let mut b = [0u8; 8];
    b[..w.len()].copy_from_slice(w);
    (u64::from_le_bytes(b).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - AFTER_BITS)) as usize
}

impl Heads {
    fn build(lits: &[Vec<u8>]) -> Option<Heads> {
        if lits.len() < 64 || lits.iter().any(|l| l.len() < 2 * HEAD_LEN) {
            return None;
        }
        let mut heads: Vec<&[u8]> = Vec::new();
        let mut lens: Vec<Vec<usize>> = Vec::new();
        for l in lits {
            let h = &l[..HEAD_LEN];
            let i = match heads.iter().position(|x| *x == h) {
                Some(i) => i,
                None if heads.len() < MAX_HEADS => {
                    heads.push(h);
                    lens.push(Vec::new());
                    heads.len() - 1
                }
                None => return None,
            };
            if !lens[i].contains(&l.len()) {
                if lens[i].len() == MAX_LENS_PER_HEAD {
                    return None;
                }
                lens[i].push(l.len());
            }
        }
        let mut b = aho_corasick::packed::Config::new().builder();
        b.extend(&heads);
        let searcher = b.build()?;
        let mut firsts: Vec<u8> = heads.iter().map(|h| h[0]).collect();
        firsts.sort_unstable();
        firsts.dedup();
        if firsts.len() > 3 {
            firsts.clear();
        }
        let words = heads.iter().map(|h| head_word(h)).collect();
        let ids = lits
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone().into_boxed_slice(), i))
            .collect();
        let probe = lits
            .iter()
            .map(|l| l.len() - HEAD_LEN)
            .min()
            .unwrap_or(0)
            .min(8);
        let mut after = vec![0u64; 1 << (AFTER_BITS - 6)].into_boxed_slice();
        for l in lits {
            let k = after_key(&l[HEAD_LEN..HEAD_LEN + probe]);
            after[k / 64] |= 1 << (k % 64);
        }
        Some(Heads {
            searcher,
            firsts,
            words,
            lens,
            ids,
            probe,
            after,
        })
    }

    /// Reports the literals of head `h` that start at `p`.
    #[inline]
    fn at_head(&self, hay: &[u8], p: usize, h: usize, f: &mut impl FnMut(usize)) {
        let listed = hay
            .get(p + HEAD_LEN..p + HEAD_LEN + self.probe)
            .is_some_and(|w| {
                let k = after_key(w);
                self.after[k / 64] & (1 << (k % 64)) != 0
            });
        if !listed {
            return;
        }
        for &n in &self.lens[h] {
            if let Some(w) = hay.get(p..p + n)
                && let Some(&id) = self.ids.get(w)
            {
                f(id);
            }
        }
    }

    #[inline]
    fn for_each_match(&self, hay: &[u8], f: &mut impl FnMut(usize)) {
        if !self.firsts.is_empty() {
            let mut check = |p: usize| {
                if let Some(w) = hay.get(p..p + HEAD_LEN) {
                    let w = head_word(w);
                    if let Some(h) = self.words.iter().position(|&x| x == w) {
                        self.at_head(hay, p, h, f);
                    }
                }
            };
            match self.firsts[..] {
                [a] => memchr::memchr_iter(a, hay).for_each(&mut check),
                [a, b] => memchr::memchr2_iter(a, b, hay).for_each(&mut check),
                [a, b, c, ..] => memchr::memchr3_iter(a, b, c, hay).for_each(&mut check),
                [] => {}
            }
            return;
        }
        let mut at = 0;
        while let Some(m) = self
            .searcher
            .find_in(hay, aho_corasick::Span::from(at..hay.len()))
        {
            let p = m.start();
            self.at_head(hay, p, m.pattern().as_usize(), f);
            at = p + 1;
        }
    }

    fn memory_usage(&self) -> usize {
        self.searcher.memory_usage()
            + self.after.len() * 8
            + self.ids.keys().map(|k| k.len() + 32).sum::<usize>()
            + self.lens.iter().map(|l| l.len() * 8 + 24).sum::<usize>()
    }
}

impl Literals {
    fn build(lits: &[Vec<u8>]) -> Literals {
        if let Some(h) = Heads::build(lits) {
            return Literals::Heads(h);
        }
        // A DFA is fastest but its size grows with patterns × alphabet;
        // above a few thousand literals the contiguous NFA is the better trade.
        if lits.len() <= DFA_MAX_LITERALS
            && let Ok(d) = aho_corasick::dfa::DFA::builder()
                .match_kind(MatchKind::Standard)
                .build(lits)
        {
            return Literals::Dfa(d);
        }
        Literals::Nfa(
            contiguous::NFA::builder()
                .match_kind(MatchKind::Standard)
                .build(lits)
                .expect("aho-corasick over literal byte strings always builds"),
        )
    }

    /// Calls `f` with the id of every literal occurrence in `hay`
    /// (overlapping: each end position reports every literal ending there).
    #[inline]
    fn for_each_match(&self, hay: &[u8], f: &mut impl FnMut(usize)) {
        match self {
            Literals::Dfa(a) => scan(a, hay, f),
            Literals::Nfa(a) => scan(a, hay, f),
            Literals::Heads(h) => h.for_each_match(hay, f),
        }
    }

    /// [`Literals::for_each_match`], resuming `rec` when the automaton is
    /// scanned byte by byte (others search ahead by themselves).
    #[inline(never)]
    fn for_each_match_resuming(&self, hay: &[u8], set: &mut Resume, f: &mut impl FnMut(usize)) {
        match self {
            Literals::Dfa(a) if a.prefilter().is_none() => scan_resuming(a, hay, set, f),
            Literals::Nfa(a) if a.prefilter().is_none() => scan_resuming(a, hay, set, f),
            _ => self.for_each_match(hay, f),
        }
    }

    fn memory_usage(&self) -> usize {
        match self {
            Literals::Dfa(a) => a.memory_usage(),
            Literals::Nfa(a) => a.memory_usage(),
            Literals::Heads(h) => h.memory_usage(),
        }
    }
}

#[inline]
fn scan<A: Automaton>(a: &A, hay: &[u8], f: &mut impl FnMut(usize)) {
    if a.prefilter().is_some() {
        // Small literal sets get a prefilter that skips ahead to where a
        // literal can start: let the library's search use it.
        let input = aho_corasick::Input::new(hay);
        let mut state = aho_corasick::automaton::OverlappingState::start();
        while a.try_find_overlapping(&input, &mut state).is_ok() {
            match state.get_match() {
                Some(m) => f(m.pattern().as_usize()),
                None => break,
            }
        }
        return;
    }
    let Ok(mut sid) = a.start_state(Anchored::No) else {
        return;
    };
    for &b in hay {
        sid = a.next_state(Anchored::No, sid, b);
        if a.is_match(sid) {
            for k in 0..a.match_len(sid) {
                f(a.match_pattern(sid, k).as_usize());
            }
        }
    }
}

/// A general wildcard pattern, verified after its gate literal hits.
#[derive(Debug)]
struct General {
    pred: u32,
    glob: Glob,
}

/// Literals that must sit at one end of the value: an anchored automaton
/// walks only as far as the value agrees with some literal (suffixes are
/// stored and searched reversed).
#[derive(Debug)]
struct AnchoredIndex {
    nfa: contiguous::NFA,
    preds: Vec<Vec<u32>>,
}

impl AnchoredIndex {
    fn build(lits: Vec<(Vec<u8>, u32)>) -> Option<AnchoredIndex> {
        if lits.is_empty() {
            return None;
        }
        let mut ids: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut pats: Vec<Vec<u8>> = Vec::new();
        let mut preds: Vec<Vec<u32>> = Vec::new();
        for (l, p) in lits {
            let id = *ids.entry(l.clone()).or_insert_with(|| {
                pats.push(l);
                preds.push(Vec::new());
                pats.len() - 1
            });
            preds[id].push(p);
        }
        let nfa = contiguous::NFA::builder()
            .match_kind(MatchKind::Standard)
            .build(&pats)
            .expect("aho-corasick over literal byte strings always builds");
        Some(AnchoredIndex { nfa, preds })
    }

    /// Fires every literal that is a prefix of `hay`: a walk from the
    /// anchored start state that ends at the first byte no literal continues with.
    /// (`hay` is an iterator so that suffixes walk the value backwards in
    /// place: the walk stops after a few bytes, and reversing a copy of
    /// the whole value first cost as much as the rest of its feed.)
    #[inline]
    fn feed<'h>(&self, hay: impl Iterator<Item = &'h u8>, fire: &mut impl FnMut(u32)) {
        let Ok(mut sid) = self.nfa.start_state(Anchored::Yes) else {
            return;
        };
        for (i, &b) in hay.enumerate() {
            sid = self.nfa.next_state(Anchored::Yes, sid, b);
            if self.nfa.is_dead(sid) {
                return;
            }
            if self.nfa.is_match(sid) {
                for k in 0..self.nfa.match_len(sid) {
                    let pid = self.nfa.match_pattern(sid, k);
                    // Match states also carry shorter literals ending here; keep
                    // only those that start at the anchor.
                    if self.nfa.pattern_len(pid) == i + 1 {
                        self.preds[pid.as_usize()].iter().for_each(|p| fire(*p));
                    }
                }
            }
        }
    }

    fn memory_usage(&self) -> usize {
        self.nfa.memory_usage() + self.preds.iter().map(|p| p.len() * 4 + 24).sum::<usize>()
    }
}

#[cfg(test)]
thread_local! {
    /// Bytes of values whose scan was resumed rather than made (for tests).
    static RESUMED_BYTES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
thread_local! {
    /// Gated wildcard patterns verified on this thread (for tests).
    static GLOB_CHECKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Per-case-mode string structures.
#[derive(Debug, Default)]
struct StrIndex {
    exact: HashMap<Box<[u8]>, Vec<u32>, foldhash::fast::RandomState>,
    // The large parts are boxed, so that a slot's matcher is a few cache
    // lines: feeding a value reads every part's header, and most slots
    // see one value every few events, by when their lines have gone cold
    // (inline, a matcher was 3.2 KB and a value read ~15 of its lines).
    ac: Option<Box<AcIndex>>,
    prefix: Option<Box<AnchoredIndex>>,
    suffix: Option<Box<AnchoredIndex>>,
    general: Vec<General>,
    /// General patterns without any literal: verified on every value.
    ungated: Vec<u32>,
    /// `*`: any value.
    any: Vec<u32>,
    /// Which of the above hold something ([`Parts`]): a value reads this
    /// first, and the other headers only for the parts there are.
    has: Parts,
}

/// Bits saying which parts of an index hold something.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Parts(u16);

impl Parts {
    const PREFIX: u16 = 1;
    const SUFFIX: u16 = 1 << 1;
    const EXACT: u16 = 1 << 2;
    const ANY: u16 = 1 << 3;
    const AC: u16 = 1 << 4;
    const UNGATED: u16 = 1 << 5;
    // FieldMatcher's.
    const PRESENT: u16 = 1 << 6;
    const NONNULL: u16 = 1 << 7;
    const CI: u16 = 1 << 8;
    const CS: u16 = 1 << 9;
    const REGEXES: u16 = 1 << 10;
    const UNGATED_REGEXES: u16 = 1 << 11;
    const NUMS: u16 = 1 << 12;
    const TIMES: u16 = 1 << 13;
    const CIDRS: u16 = 1 << 14;

    fn of(parts: &[(u16, bool)]) -> Parts {
        Parts(parts.iter().filter(|p| p.1).fold(0, |a, p| a | p.0))
    }

    #[inline(always)]
    fn any(self, bits: u16) -> bool {
        self.0 & bits != 0
    }
}

impl StrIndex {
    fn is_empty(&self) -> bool {
        self.has == Parts::default()
    }

    /// Sets [`StrIndex::has`] from the parts.
    fn seal(mut self) -> StrIndex {
        self.has = Parts::of(&[
            (Parts::PREFIX, self.prefix.is_some()),
            (Parts::SUFFIX, self.suffix.is_some()),
            (Parts::EXACT, !self.exact.is_empty()),
            (Parts::ANY, !self.any.is_empty()),
            (Parts::AC, self.ac.is_some()),
            (Parts::UNGATED, !self.ungated.is_empty()),
        ]);
        self
    }

    fn build(preds: &[(u32, &Pattern)], regex_gates: &[(u32, Vec<Vec<u8>>)]) -> StrIndex {
        let mut idx = StrIndex::default();
        let mut lits: Vec<Vec<u8>> = Vec::new();
        let mut lit_ids: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut targets: Vec<Vec<AcTarget>> = Vec::new();
        let mut add =
            |lit: &[u8], t: AcTarget, lits: &mut Vec<Vec<u8>>, targets: &mut Vec<Vec<AcTarget>>| {
                let id = *lit_ids.entry(lit.to_vec()).or_insert_with(|| {
                    lits.push(lit.to_vec());
                    targets.push(Vec::new());
                    lits.len() - 1
                });
                targets[id].push(t);
            };
        let mut prefixes = Vec::new();
        let mut suffixes = Vec::new();
        for &(pred, pat) in preds {
            match pat.shape() {
                Shape::Exact(l) => idx.exact.entry(l.into()).or_default().push(pred),
                Shape::Any => idx.any.push(pred),
                Shape::Contains(l) if !l.is_empty() => {
                    add(l, AcTarget::Contains(pred), &mut lits, &mut targets)
                }
                Shape::Prefix(l) if !l.is_empty() => prefixes.push((l.to_vec(), pred)),
                Shape::Suffix(l) if !l.is_empty() => {
                    suffixes.push((l.iter().rev().copied().collect(), pred))
                }
                _ => {
                    let gi = idx.general.len() as u32;
                    let glob = Glob::new(pat);
                    let anchored = glob.anchored();
                    idx.general.push(General { pred, glob });
                    // A short literal is a poor gate (it is in most values);
                    // a pattern anchored at an end is cheaper to check outright.
                    match pat.longest_literal() {
                        Some(l) if l.len() >= MIN_GATE || (!l.is_empty() && !anchored) => {
                            add(l, AcTarget::Gate(gi), &mut lits, &mut targets)
                        }
                        _ => idx.ungated.push(gi),
                    }
                }
            }
        }
        for (ri, gates) in regex_gates {
            for g in gates {
                add(g, AcTarget::RegexGate(*ri), &mut lits, &mut targets);
            }
        }
        idx.prefix = AnchoredIndex::build(prefixes).map(Box::new);
        idx.suffix = AnchoredIndex::build(suffixes).map(Box::new);
        if !lits.is_empty() {
            idx.ac = Some(Box::new(AcIndex::build(lits, targets)));
        }
        idx.seal()
    }

    /// `globs` collects the wildcard patterns whose gate literal occurs:
    /// each is verified once per value, however often its gate occurs (a
    /// value of 90,000 backslashes must not verify `*\\*` 90,000 times).
    #[inline]
    fn feed(
        &self,
        hay: &[u8],
        globs: &mut Vec<u32>,
        resume: Option<&mut Resume>,
        fire: &mut impl FnMut(u32),
        gate: &mut impl FnMut(u32),
    ) {
        let has = self.has;
        if has.any(Parts::PREFIX)
            && let Some(p) = &self.prefix
        {
            p.feed(hay.iter(), fire);
        }
        if has.any(Parts::SUFFIX)
            && let Some(sfx) = &self.suffix
        {
            sfx.feed(hay.iter().rev(), fire);
        }
        if has.any(Parts::EXACT)
            && let Some(ps) = self.exact.get(hay)
        {
            ps.iter().for_each(|p| fire(*p));
        }
        if has.any(Parts::ANY) {
            for p in &self.any {
                fire(*p);
            }
        }
        if has.any(Parts::AC)
            && let Some(ac) = &self.ac
            && hay.len() >= ac.min_len
        {
            globs.clear();
            let mut hit = |m| {
                ac.targets.for_each(m, |t| match t {
                    AcTarget::Contains(p) => fire(p),
                    // A run of one gate (a value of backslashes) stays one entry.
                    AcTarget::Gate(g) if globs.last() != Some(&g) => globs.push(g),
                    AcTarget::Gate(_) => {}
                    AcTarget::RegexGate(r) => gate(r),
                })
            };
            ac.for_each_match(hay, resume, &mut hit);
            if globs.len() > 1 {
                globs.sort_unstable();
                globs.dedup();
            }
            for &g in globs.iter() {
                let g = &self.general[g as usize];
                #[cfg(test)]
                GLOB_CHECKS.with(|c| c.set(c.get() + 1));
                if g.glob.matches(hay) {
                    fire(g.pred);
                }
            }
        }
        if has.any(Parts::UNGATED) {
            for g in &self.ungated {
                let g = &self.general[*g as usize];
                if g.glob.matches(hay) {
                    fire(g.pred);
                }
            }
        }
    }

    /// Whether every predicate is a plain `contains` literal without the
    /// byte 0xFF, so values joined by 0xFF can be scanned in one pass.
    fn contains_only(&self) -> bool {
        self.exact.is_empty()
            && self.prefix.is_none()
            && self.suffix.is_none()
            && self.ungated.is_empty()
            && self.any.is_empty()
            && self.general.is_empty()
            && self
                .ac
                .as_ref()
                .is_some_and(|a| a.targets.all(|t| matches!(t, AcTarget::Contains(_))))
    }

    fn memory_usage(&self) -> usize {
        let exact: usize = self
            .exact
            .iter()
            .map(|(k, v)| k.len() + v.len() * 4 + 48)
            .sum();
        let ac = self.ac.as_ref().map_or(0, |a| a.memory_usage());
        let anchored = |a: &Option<Box<AnchoredIndex>>| a.as_ref().map_or(0, |a| a.memory_usage());
        exact
            + ac
            + anchored(&self.prefix)
            + anchored(&self.suffix)
            + self.general.len() * 64
            + (self.ungated.len() + self.any.len()) * 4
    }
}

/// A regex with its predicate; gated ones run only after a gate literal hit.
#[derive(Debug)]
struct RegexPred {
    pred: u32,
    re: meta::Regex,
    /// The same pattern by shift-and, when it is a fixed sequence of
    /// one-byte positions (GUIDs, `:[^\\]`): cheaper than any filter.
    fixed: Option<crate::shift_and::ShiftAnd>,
    filter: RegexFilter,
}

/// Cheap necessary conditions checked before a regex runs on a value.
#[derive(Debug, Default)]
struct RegexFilter {
    /// The shortest text it can match, in bytes: shorter values are skipped.
    min_len: usize,
    /// For regexes without a literal gate: bytes one of which every match
    /// contains (lowercased), if a small such set exists.
    bytes: Vec<u8>,
    /// Literals one of which every match contains exactly (case kept): a
    /// case-insensitive gate hit on `-f` does not run `\s-F\s` on `-f`.
    exact: Vec<memchr::memmem::Finder<'static>>,
    /// A run of at least this many bytes of a class every match contains
    /// (`[a-f0-9]{64}`), as a byte table.
    run: Option<(Box<[bool; 256]>, usize)>,
    /// A byte every match holds at least this many times (`\{.*\{.*\{`:
    /// three braces), when more than once.
    count: Option<(u8, usize)>,
}

/// Exact literals are checked only when this few.
const MAX_EXACT: usize = 4;
/// Class runs shorter than this are not worth a pass over the value.
const MIN_RUN: usize = 8;

/// What makes running a regex pointless on a value: its minimum match
/// length, (when asked) a set of at most three bytes one of which any
/// match must contain, a small exact literal set, a long class run.
fn regex_filter(pattern: &str, want_bytes: bool) -> RegexFilter {
    let Ok(hir) = regex_syntax::ParserBuilder::new().build().parse(pattern) else {
        return RegexFilter::default();
    };
    // A regex that can never match has no minimum length: never run it.
    let min_len = hir.properties().minimum_len().unwrap_or(usize::MAX);
    let bytes = if want_bytes {
        gates::required(&hir, true)
            .map(gates::normalise)
            .filter(|set| !set.is_empty() && set.len() <= 3 && set.iter().all(|l| l.len() == 1))
            .map(|set| set.into_iter().map(|l| l[0]).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let exact = gates::required(&hir, false)
        .filter(|set| set.len() <= MAX_EXACT && gates::min_len(set) >= 2)
        .map(|set| {
            set.iter()
                .map(|l| memchr::memmem::Finder::new(l).into_owned())
                .collect()
        })
        .unwrap_or_default();
    let run = gates::class_run(&hir)
        .filter(|(_, n)| *n >= MIN_RUN)
        .map(|(t, n)| (Box::new(t), n));
    let count = (0..=255u8)
        .map(|b| (b, gates::min_count(&hir, b)))
        .filter(|&(_, n)| n >= 2)
        .max_by_key(|&(_, n)| n);
    RegexFilter {
        min_len,
        bytes,
        exact,
        run,
        count,
    }
}

impl RegexFilter {
    /// Whether the regex could match `text` (`lower`: it lowercased).
    #[inline]
    fn admits(&self, text: &str, lower: &[u8]) -> bool {
        if text.len() < self.min_len {
            return false;
        }
        let gate_ok = match self.bytes.as_slice() {
            [] => true,
            &[a] => memchr::memchr(a, lower).is_some(),
            &[a, b] => memchr::memchr2(a, b, lower).is_some(),
            &[a, b, c, ..] => memchr::memchr3(a, b, c, lower).is_some(),
        };
        if !gate_ok {
            return false;
        }
        let raw = text.as_bytes();
        if !self.exact.is_empty() && !self.exact.iter().any(|f| f.find(raw).is_some()) {
            return false;
        }
        if let Some((b, need)) = self.count
            && memchr::memchr_iter(b, raw).take(need).count() < need
        {
            return false;
        }
        if let Some((table, need)) = &self.run
            && !has_run(table, raw, *need)
        {
            return false;
        }
        true
    }
}

/// Whether `raw` holds `need` consecutive bytes of the class `table`.
///
/// Every run that long covers one of the positions `need - 1`,
/// `2 * need - 1`, ... (any `need` consecutive positions hold one), so
/// only those are probed, and the run through a probe that is in the
/// class is measured on both sides: a 300-byte command line needs five
/// probes for a run of 64 instead of 300 steps.
#[inline]
fn has_run(table: &[bool; 256], raw: &[u8], need: usize) -> bool {
    if need == 0 {
        return true;
    }
    let within = |i: usize| table[raw[i] as usize];
    let mut p = need - 1;
    while p < raw.len() {
        if within(p) {
            let left = (p + 1 - need..p).rev().take_while(|&i| within(i)).count();
            let right = (p + 1..raw.len())
                .take(need - 1 - left)
                .take_while(|&i| within(i))
                .count();
            if left + 1 + right >= need {
                return true;
            }
        }
        p += need;
    }
    false
}

impl RegexPred {
    /// Runs the regex unless a filter rules the value out (`lower`: the
    /// value lowercased, for the byte gate).
    #[inline]
    fn check(&self, text: &str, lower: &[u8]) -> bool {
        if let Some(f) = &self.fixed {
            return text.len() >= self.filter.min_len && f.is_match(text.as_bytes());
        }
        self.filter.admits(text, lower) && self.re.is_match(text)
    }
}

/// Literals one of which occurs (lowercased) in every value a regex
/// matches, or `None` if no such small set is known. Of the candidate sets
/// (literals required somewhere inside the pattern, prefixes, suffixes),
/// the most selective one wins: the longest shortest literal.
fn regex_gates(pattern: &str) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .ok()?;
    let mut candidates: Vec<Vec<Vec<u8>>> = Vec::new();
    if let Some(r) = gates::required(&hir, true) {
        candidates.push(r);
    }
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let mut ex = Extractor::new();
        ex.kind(kind).limit_total(64);
        let seq = ex.extract(&hir);
        if let Some(lits) = seq.literals() {
            candidates.push(
                lits.iter()
                    .map(|l| crate::glob::lowercase_bytes(l.as_bytes()))
                    .collect(),
            );
        }
    }
    candidates
        .into_iter()
        .map(gates::normalise)
        .filter(|c| !c.is_empty() && gates::min_len(c) >= 2)
        .max_by_key(gates::score)
}

/// Required-literal analysis of a regex's HIR.
///
/// With `fold`, literals are lowercased (for the case-insensitive
/// automaton, which sees lowercased values); without, they are exact (a
/// case-insensitive pattern's case variants are all in the set).
mod gates {
    use regex_syntax::hir::{Class, Hir, HirKind};

    /// Most alternatives a literal set may grow to.
    const MAX_SET: usize = 64;
    /// Largest class expanded into single-character alternatives.
    const MAX_CLASS: usize = 8;
    /// Largest class a repetition may have to lend its first and last
    /// character to its neighbours (`[A-F0-9]{8}-` requires one of `0-`..`F-`).
    const MAX_EDGE_CLASS: usize = 22;

    type Set = Vec<Vec<u8>>;

    pub(super) fn min_len(s: &Set) -> usize {
        s.iter().map(Vec::len).min().unwrap_or(0)
    }

    pub(super) fn score(s: &Set) -> (usize, std::cmp::Reverse<usize>) {
        (min_len(s).min(12), std::cmp::Reverse(s.len()))
    }

    pub(super) fn normalise(s: Set) -> Set {
        tidy(s, true)
    }

    fn tidy(mut s: Set, fold: bool) -> Set {
        if fold {
            for l in &mut s {
                *l = crate::glob::lowercase_bytes(l);
            }
        }
        s.sort();
        s.dedup();
        s
    }

    fn better(a: Option<Set>, b: Option<Set>, fold: bool) -> Option<Set> {
        match (a, b) {
            (Some(a), Some(b)) => Some(
                if score(&tidy(b.clone(), fold)) > score(&tidy(a.clone(), fold)) {
                    b
                } else {
                    a
                },
            ),
            (a, None) => a,
            (None, b) => b,
        }
    }

    fn cross(a: &Set, b: &Set, fold: bool) -> Option<Set> {
        if a.len() * b.len() > MAX_SET {
            return None;
        }
        let mut out = Vec::with_capacity(a.len() * b.len());
        for x in a {
            for y in b {
                let mut v = x.clone();
                v.extend_from_slice(y);
                out.push(v);
            }
        }
        Some(tidy(out, fold))
    }

    /// The characters of a class, if at most `max` of them.
    fn class_set(c: &Class, max: usize, fold: bool) -> Option<Set> {
        let mut out = Vec::new();
        match c {
            Class::Unicode(c) => {
                for r in c.ranges() {
                    for ch in r.start()..=r.end() {
                        out.push(ch.to_string().into_bytes());
                        if out.len() > max * 4 {
                            return None;
                        }
                    }
                }
            }
            Class::Bytes(c) => {
                for r in c.ranges() {
                    for b in r.start()..=r.end() {
                        out.push(vec![b]);
                        if out.len() > max * 4 {
                            return None;
                        }
                    }
                }
            }
        }
        let out = tidy(out, fold);
        (out.len() <= max).then_some(out)
    }

    /// Every string `h` matches, if that set is small.
    fn finite(h: &Hir, fold: bool) -> Option<Set> {
        match h.kind() {
            HirKind::Empty => Some(vec![Vec::new()]),
            HirKind::Literal(l) => Some(vec![l.0.to_vec()]),
            HirKind::Class(c) => class_set(c, MAX_CLASS, fold),
            HirKind::Capture(c) => finite(&c.sub, fold),
            HirKind::Concat(items) => {
                let mut acc: Set = vec![Vec::new()];
                for it in items {
                    acc = cross(&acc, &finite(it, fold)?, fold)?;
                }
                Some(acc)
            }
            HirKind::Alternation(alts) => {
                let mut out = Vec::new();
                for a in alts {
                    out.extend(finite(a, fold)?);
                    if out.len() > MAX_SET {
                        return None;
                    }
                }
                Some(tidy(out, fold))
            }
            HirKind::Repetition(r) if Some(r.min) == r.max && r.min <= 4 => {
                let sub = finite(&r.sub, fold)?;
                let mut acc: Set = vec![Vec::new()];
                for _ in 0..r.min {
                    acc = cross(&acc, &sub, fold)?;
                }
                Some(acc)
            }
            _ => None,
        }
    }

    /// For a repetition of at least one character from a small class: that
    /// class, which both its first and its last character belong to.
    fn edges(h: &Hir, fold: bool) -> Option<Set> {
        match h.kind() {
            HirKind::Repetition(r) if r.min >= 1 => match r.sub.kind() {
                HirKind::Class(c) => class_set(c, MAX_EDGE_CLASS, fold),
                HirKind::Literal(l) if l.0.len() == 1 => Some(vec![l.0.to_vec()]),
                _ => None,
            },
            HirKind::Class(c) => class_set(c, MAX_EDGE_CLASS, fold),
            _ => None,
        }
    }

    /// A set of literals one of which occurs in every match of `h`.
    pub(super) fn required(h: &Hir, fold: bool) -> Option<Set> {
        match h.kind() {
            HirKind::Capture(c) => required(&c.sub, fold),
            HirKind::Repetition(r) if r.min >= 1 => required(&r.sub, fold),
            HirKind::Alternation(alts) => {
                let mut out = Vec::new();
                for a in alts {
                    out.extend(required(a, fold)?);
                    if out.len() > MAX_SET {
                        return None;
                    }
                }
                Some(tidy(out, fold))
            }
            HirKind::Concat(items) => {
                // Runs of items with small finite sets combine into longer
                // literals; a repetition of a small class joins the run
                // before it with its first character and starts the next
                // run with its last; any item's own required set qualifies.
                let mut best: Option<Set> = None;
                let mut run: Option<Set> = None;
                for it in items {
                    if let Some(set) = finite(it, fold) {
                        run = match run.take() {
                            None => Some(set),
                            Some(r) => match cross(&r, &set, fold) {
                                Some(c) => Some(c),
                                None => {
                                    best = better(best, Some(r), fold);
                                    Some(set)
                                }
                            },
                        };
                        continue;
                    }
                    if let Some(edge) = edges(it, fold) {
                        let ended = run.take().map(|r| cross(&r, &edge, fold).unwrap_or(r));
                        best = better(best, ended, fold);
                        best = better(best, required(it, fold), fold);
                        run = Some(edge);
                        continue;
                    }
                    best = better(best, run.take(), fold);
                    best = better(best, required(it, fold), fold);
                }
                better(best, run, fold)
            }
            _ => finite(h, fold),
        }
    }

    /// The fewest times byte `b` occurs in any text `h` matches.
    pub(super) fn min_count(h: &Hir, b: u8) -> usize {
        match h.kind() {
            HirKind::Literal(l) => l.0.iter().filter(|&&x| x == b).count(),
            HirKind::Class(Class::Bytes(c)) => usize::from(
                c.ranges().len() == 1 && c.ranges()[0].start() == b && c.ranges()[0].end() == b,
            ),
            HirKind::Class(Class::Unicode(c)) => usize::from(
                b < 0x80
                    && c.ranges().len() == 1
                    && c.ranges()[0].start() == b as char
                    && c.ranges()[0].end() == b as char,
            ),
            HirKind::Capture(c) => min_count(&c.sub, b),
            HirKind::Repetition(r) => (r.min as usize).saturating_mul(min_count(&r.sub, b)),
            HirKind::Concat(items) => items.iter().map(|i| min_count(i, b)).sum(),
            HirKind::Alternation(alts) => alts.iter().map(|a| min_count(a, b)).min().unwrap_or(0),
            HirKind::Empty | HirKind::Look(_) => 0,
        }
    }

    /// The longest run every match has of characters from one class: the
    /// class as a byte table (any byte of a non-ASCII character counts) and
    /// the run's length. Only classes of fewer than 128 ASCII bytes count:
    /// long runs of nearly anything are no filter.
    pub(super) fn class_run(h: &Hir) -> Option<([bool; 256], usize)> {
        let table = |c: &Class| -> Option<[bool; 256]> {
            let mut t = [false; 256];
            let mut ascii = 0;
            match c {
                Class::Unicode(c) => {
                    for r in c.ranges() {
                        let (a, b) = (r.start() as u32, r.end() as u32);
                        if b >= 0x80 {
                            t[0x80..].iter_mut().for_each(|x| *x = true);
                        }
                        for x in a..=b.min(0x7f) {
                            t[x as usize] = true;
                            ascii += 1;
                        }
                    }
                }
                Class::Bytes(c) => {
                    for r in c.ranges() {
                        for x in r.start()..=r.end() {
                            t[x as usize] = true;
                            ascii += usize::from(x < 0x80);
                        }
                    }
                }
            }
            (ascii < 128).then_some(t)
        };
        match h.kind() {
            HirKind::Capture(c) => class_run(&c.sub),
            HirKind::Repetition(r) if r.min >= 1 => match r.sub.kind() {
                HirKind::Class(c) => table(c).map(|t| (t, r.min as usize)),
                _ => class_run(&r.sub),
            },
            HirKind::Concat(items) => items.iter().filter_map(class_run).max_by_key(|(_, n)| *n),
            _ => None,
        }
    }
}

#[cfg(test)]
mod gate_tests {
    use warden_gen::Rng;

    use super::{FeedScratch, FieldMatcher, Pattern, Test, regex_gates};

    fn g(p: &str) -> Vec<String> {
        regex_gates(p)
            .unwrap_or_default()
            .into_iter()
            .map(|l| String::from_utf8(l).unwrap())
            .collect()
    }

    /// The index over `tests`, predicate `i` being `tests[i]`.
    fn matcher(tests: &[Test]) -> FieldMatcher {
        let preds: Vec<(u32, &Test)> = tests
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u32, t))
            .collect();
        FieldMatcher::build(&preds).unwrap()
    }

    /// The predicates `value` fires, sorted, each once.
    fn fired(m: &FieldMatcher, value: &str, sc: &mut FeedScratch) -> Vec<u32> {
        let mut got = Vec::new();
        m.feed_text(value, sc, &mut |p| got.push(p));
        got.sort_unstable();
        got.dedup();
        got
    }

    /// [`fired`], through a scan resumable for `slot`.
    fn fired_resuming(m: &FieldMatcher, value: &str, sc: &mut FeedScratch, slot: u32) -> Vec<u32> {
        let mut got = Vec::new();
        m.feed_text_resuming(value, sc, Some(slot), &mut |p| got.push(p));
        got.sort_unstable();
        got.dedup();
        got
    }

    /// The tests (by index) `value` meets by the reference semantics.
    fn reference(tests: &[Test], value: &str) -> Vec<u32> {
        tests
            .iter()
            .enumerate()
            .filter(|(_, t)| t.matches_text(value))
            .map(|(i, _)| i as u32)
            .collect()
    }

    fn text(g: &mut Rng, max: usize, alphabet: &[char]) -> String {
        let n = g.below(max + 1);
        (0..n).map(|_| alphabet[g.below(alphabet.len())]).collect()
    }

    /// Values of only ASCII bytes (most of what forwarders send: the
    /// value's lowercase copy is made by the ASCII path), with the Kelvin
    /// sign's ASCII lowercase `k` among them.
    const ASCII: [char; 10] = ['a', 'b', 'A', 'B', '\\', '.', ' ', '-', 'k', 'K'];

    /// The index fires exactly the predicates whose reference semantics
    /// (`Test::matches_text`) hold, for every shape of string pattern, both
    /// case modes, both automaton kinds (a DFA up to `DFA_MAX_LITERALS`
    /// literals, a contiguous NFA above), and values with and without a
    /// non-ASCII character.
    #[test]
    fn index_agrees_with_the_reference_semantics() {
        let alphabet = [
            'a', 'b', 'A', 'B', '\\', '.', ' ', '-', 'É', 'é', 'k', '\u{212a}',
        ];
        for (seed, preds_n) in [(1u64, 400usize), (2, 4_000)] {
            let mut g = Rng::new(0x9e37_79b9_7f4a_7c15 ^ seed);
            let mut tests = Vec::new();
            for _ in 0..preds_n {
                let mut lit = text(&mut g, 6, &alphabet);
                if lit.is_empty() {
                    lit.push('a');
                }
                let body = match g.below(4) {
                    // A wildcard inside.
                    0 if lit.chars().count() > 1 => {
                        let cut = lit.char_indices().nth(1).map_or(1, |(i, _)| i);
                        let w = if g.below(2) == 0 { "*" } else { "?" };
                        format!("{}{w}{}", &lit[..cut], &lit[cut..])
                    }
                    _ => lit.replace('\\', "\\\\"),
                };
                let pat = Pattern::parse(&body);
                let pat = match g.below(4) {
                    0 => pat.contains(),
                    1 => pat.startswith(),
                    2 => pat.endswith(),
                    _ => pat,
                };
                let cased = g.below(3) == 0;
                let pat = if cased { pat } else { pat.lowercase() };
                tests.push(Test::Str { pat, cased });
            }
            let m = matcher(&tests);
            let mut sc = FeedScratch::default();
            let mut hits = 0usize;
            let mut ascii_hits = 0usize;
            for i in 0..3_000 {
                let value = if i % 2 == 0 {
                    text(&mut g, 40, &ASCII)
                } else {
                    text(&mut g, 40, &alphabet)
                };
                let got = fired(&m, &value, &mut sc);
                let want = reference(&tests, &value);
                assert_eq!(got, want, "value {value:?} with {preds_n} predicates");
                hits += want.len();
                if value.is_ascii() && value.bytes().any(|b| b.is_ascii_uppercase()) {
                    ascii_hits += want.len();
                }
            }
            assert!(
                hits > 500 && ascii_hits > 250,
                "the generator should make values match ({hits}, {ascii_hits} on ASCII values with capitals)"
            );
        }
    }

    /// A large literal set keeps its one-byte literals out of the automaton
    /// (a search per byte instead); the predicates fired stay exactly the
    /// reference's: plain `contains` of one byte among thousands of longer
    /// literals, wildcard patterns gated on a one-byte literal, values
    /// holding the byte once, many times, at either end, or not at all,
    /// fresh and resumed.
    #[test]
    fn one_byte_literals_of_large_sets_fire_as_the_reference() {
        let alphabet = ['a', 'b', 'c', 'A', '\\', '.', ' ', '-', '9', 'é', 'É'];
        let mut g = Rng::new(0x0b17e);
        let mut tests = Vec::new();
        let mut singles = 0;
        for i in 0..5_000 {
            let n = if i % 9 == 0 { 1 } else { 3 + g.below(8) };
            let lit: String = (0..n).map(|_| alphabet[g.below(alphabet.len())]).collect();
            singles += usize::from(lit.chars().count() == 1);
            let body = if i % 13 == 0 {
                // A wildcard pattern whose only literal is one byte.
                let c = alphabet[g.below(5)];
                format!("{}*{c}*", if c == '\\' { "\\\\" } else { "" })
            } else {
                lit.replace('\\', "\\\\")
            };
            let pat = Pattern::parse(&body).contains().lowercase();
            tests.push(Test::Str { pat, cased: false });
        }
        let m = matcher(&tests);
        let ac = m.ci.ac.as_ref().expect("an automaton");
        assert!(ac.targets.per_lit.len() > super::DFA_MAX_LITERALS);
        let one_byte = ac.one_byte.as_ref().expect("one-byte literals kept apart");
        assert!(one_byte.bytes.len() >= 5, "{:?}", one_byte.bytes);
        assert!(singles > 300);
        let mut sc = FeedScratch::default();
        let mut fired_one = 0usize;
        for i in 0..2_000 {
            let mut value = text(&mut g, 30, &alphabet);
            match i % 4 {
                0 => value.insert(0, alphabet[g.below(alphabet.len())]),
                1 => value.push(alphabet[g.below(alphabet.len())]),
                2 => value = value.repeat(1 + g.below(40)),
                _ => {}
            }
            let want = reference(&tests, &value);
            assert_eq!(fired(&m, &value, &mut sc), want, "value {value:?}");
            let resumed = fired_resuming(&m, &value, &mut sc, 0);
            assert_eq!(resumed, want, "resumed, value {value:?}");
            fired_one += want.iter().filter(|&&p| p % 9 == 0 || p % 13 == 0).count();
        }
        assert!(
            fired_one > 2_000,
            "one-byte literals and their gates fire ({fired_one})"
        );
    }

    /// Which one-byte literals a value holds, read through the byte table,
    /// is what a search for each byte finds: one to 64 literals, values of
    /// every length around the four-byte steps and the 256-byte blocks
    /// whose ends check whether everything is found, with a literal's only
    /// occurrence anywhere (the last byte, the first byte of a later block).
    #[test]
    fn one_byte_presence_is_a_search_for_each_byte() {
        let mut g = Rng::new(0x0b1e);
        for round in 0..3_000 {
            let n = 1 + g.below(64);
            let mut lits: Vec<u8> = Vec::new();
            while lits.len() < n {
                let b = g.below(256) as u8;
                if !lits.contains(&b) {
                    lits.push(b);
                }
            }
            let one =
                super::OneByte::build(&lits.iter().map(|&b| vec![b]).collect::<Vec<_>>(), 100);
            assert!(one.bits.is_some());
            // Filler from bytes no literal has, then a few literals.
            let filler: Vec<u8> = (0..=255u8).filter(|b| !lits.contains(b)).collect();
            let len = [
                g.below(9),
                250 + g.below(12),
                510 + g.below(8),
                g.below(1_100),
            ][round % 4];
            let mut hay: Vec<u8> = (0..len).map(|_| filler[g.below(filler.len())]).collect();
            for _ in 0..g.below(4) {
                if !hay.is_empty() {
                    let at =
                        [hay.len() - 1, 256.min(hay.len() - 1), g.below(hay.len())][g.below(3)];
                    hay[at] = lits[g.below(lits.len())];
                }
            }
            let mut got = Vec::new();
            one.for_each_match(&hay, &mut |id| got.push(id));
            let want: Vec<usize> = lits
                .iter()
                .enumerate()
                .filter(|(_, b)| hay.contains(b))
                .map(|(i, _)| 100 + i)
                .collect();
            assert_eq!(got, want, "literals {lits:?} in {} bytes", hay.len());
        }
    }

    /// Scans resumed from a recorded value that begins alike fire exactly
    /// what fresh scans fire: values of interleaved sessions (more than the
    /// records kept) sharing long heads cut anywhere (on and around the
    /// checkpoints), repeated, shortened and lengthened, in both case modes
    /// and with both automaton kinds.
    #[test]
    fn resumed_scans_fire_what_fresh_scans_fire() {
        let alphabet = ['a', 'b', 'A', 'B', '\\', '.', ' ', '-', 'É', 'é'];
        for (seed, preds_n, nfa) in [(5u64, 300usize, false), (6, 9_000, true)] {
            let mut g = Rng::new(0x5eed ^ seed);
            let mut tests = Vec::new();
            for _ in 0..preds_n {
                let mut lit = text(&mut g, 8, &alphabet);
                if lit.is_empty() {
                    lit.push('b');
                }
                let body = match g.below(3) {
                    0 if lit.chars().count() > 1 => {
                        let cut = lit.char_indices().nth(1).map_or(1, |(i, _)| i);
                        format!("{}*{}", &lit[..cut], &lit[cut..])
                    }
                    _ => lit.replace('\\', "\\\\"),
                };
                let pat = Pattern::parse(&body).contains();
                let cased = g.below(3) == 0;
                let pat = if cased { pat } else { pat.lowercase() };
                tests.push(Test::Str { pat, cased });
            }
            let m = matcher(&tests);
            assert!(m.ci.ac.as_ref().is_some_and(|a| match &a.ac {
                super::Literals::Nfa(_) => nfa,
                super::Literals::Dfa(d) => !nfa && super::Automaton::prefilter(d).is_none(),
                super::Literals::Heads(_) => false,
            }));
            let resumed_before = super::RESUMED_BYTES.with(|c| c.get());
            // Half the sessions ASCII, half not.
            let heads: Vec<(String, &[char])> = (0..super::RESUME_RECS + 6)
                .map(|k| {
                    let n = 60 + g.below(700);
                    let abc: &[char] = if k % 2 == 0 { &ASCII } else { &alphabet };
                    ((0..n).map(|_| abc[g.below(abc.len())]).collect(), abc)
                })
                .collect();
            let (mut resumed, mut fresh) = (FeedScratch::default(), FeedScratch::default());
            let mut values: Vec<String> = Vec::new();
            let (mut hits, mut long_shared) = (0usize, 0usize);
            for i in 0..700 {
                let value = match g.below(6) {
                    0 if !values.is_empty() => values[g.below(values.len())].clone(),
                    1 => text(&mut g, 300, &alphabet),
                    _ => {
                        let (h, abc) = &heads[g.below(heads.len())];
                        // Cut on a char boundary near a checkpoint or anywhere.
                        let want = match g.below(3) {
                            0 => (64 * (1 + g.below(10)) + g.below(3)).saturating_sub(1),
                            _ => g.below(h.len() + 1),
                        };
                        let cut = (want.min(h.len())..=h.len())
                            .find(|&c| h.is_char_boundary(c))
                            .unwrap();
                        long_shared += usize::from(cut >= 2 * super::RESUME_STEP);
                        format!("{}{}", &h[..cut], text(&mut g, 80, abc))
                    }
                };
                let got = fired_resuming(&m, &value, &mut resumed, 3);
                let want = fired(&m, &value, &mut fresh);
                assert_eq!(got, want, "value {i} {value:?} with {preds_n} predicates");
                if i % 70 == 0 {
                    let reference = reference(&tests, &value);
                    assert_eq!(want, reference, "value {i} {value:?}");
                }
                hits += want.len();
                values.push(value);
            }
            assert!(hits > 5_000 && long_shared > 150, "{hits} {long_shared}");
            // Both case modes kept as many records as they may, and most of
            // the shared heads' bytes were resumed rather than scanned.
            let recs = &resumed.resume[3];
            assert!(recs.iter().all(|r| r.recs.len() == super::RESUME_RECS));
            let resumed_bytes = super::RESUMED_BYTES.with(|c| c.get()) - resumed_before;
            assert!(resumed_bytes > 50_000, "{resumed_bytes}");
        }
    }

    /// Hash lists (many long literals behind a few heads such as `md5=`)
    /// are matched by head and window lookup, which must agree with the
    /// reference semantics: occurrences anywhere, overlapping ones, inside
    /// longer hex runs, at either end, in any case.
    #[test]
    fn hash_lists_match_like_any_literal_set() {
        let mut g = Rng::new(77);
        let hex = |g: &mut Rng, n: usize| -> String {
            (0..n)
                .map(|_| "0123456789abcdef".as_bytes()[g.below(16)] as char)
                .collect()
        };
        let algs = [
            ("MD5=", 32),
            ("SHA1=", 40),
            ("SHA256=", 64),
            ("IMPHASH=", 32),
        ];
        // With heads that overlap themselves (`abab`) the heads start with
        // four different bytes and the packed searcher finds them; without,
        // memchr finds the three first bytes.
        for overlapping in [true, false] {
            let mut tests = Vec::new();
            let mut lits = Vec::new();
            for i in 0..600 {
                let (alg, n) = algs[i % algs.len()];
                let lit = format!("{alg}{}", hex(&mut g, n));
                // Short hex literals with the same heads overlap the long ones.
                let body = match i % 50 {
                    0 => lit[..alg.len() + 6].to_string(),
                    1 if overlapping => format!("abab{}", hex(&mut g, 12)),
                    2 if overlapping => format!("aaaa{}", hex(&mut g, 12)),
                    _ => lit.clone(),
                };
                tests.push(Test::Str {
                    pat: Pattern::parse(&body).contains().lowercase(),
                    cased: false,
                });
                lits.push(body);
            }
            let m = matcher(&tests);
            assert!(m.ci.ac.as_ref().is_some_and(
                |a| matches!(&a.ac, super::Literals::Heads(h) if h.firsts.is_empty() == overlapping)
            ));
            let mut sc = FeedScratch::default();
            let mut hits = 0usize;
            for round in 0..2_000 {
                let mut parts = Vec::new();
                for _ in 0..g.below(5) {
                    let (alg, n) = algs[g.below(algs.len())];
                    parts.push(match g.below(4) {
                        // A listed hash, maybe in another case, maybe inside more hex.
                        0 => {
                            let l = &lits[g.below(lits.len())];
                            let l = if g.below(2) == 0 {
                                l.to_lowercase()
                            } else {
                                l.clone()
                            };
                            let (a, b) = (g.below(3), g.below(3));
                            format!("{}{l}{}", hex(&mut g, a), hex(&mut g, b))
                        }
                        // Heads next to each other: overlapping candidates.
                        1 => format!("{alg}{alg}{}", hex(&mut g, n)),
                        2 if overlapping && g.below(2) == 0 => {
                            let l = &lits[1 + 50 * g.below(lits.len() / 50)];
                            format!("{}{}", "ab".repeat(g.below(4)), l.to_uppercase())
                        }
                        _ => format!("{alg}{}", hex(&mut g, n)),
                    });
                }
                let value = parts.join(if round % 2 == 0 { "," } else { "" });
                let got = fired(&m, &value, &mut sc);
                let want = reference(&tests, &value);
                assert_eq!(got, want, "value {value:?}");
                hits += want.len();
            }
            assert!(
                hits > 300,
                "the generator should plant listed hashes ({hits})"
            );
        }
        // Too many distinct heads: the automaton it falls back to agrees too.
        let tests: Vec<Test> = (0..200)
            .map(|i| Test::Str {
                pat: Pattern::parse(&format!("h{i:03}={}", hex(&mut g, 32)))
                    .contains()
                    .lowercase(),
                cased: false,
            })
            .collect();
        let m = matcher(&tests);
        assert!(
            m.ci.ac
                .as_ref()
                .is_some_and(|a| !matches!(a.ac, super::Literals::Heads(_)))
        );
    }

    /// A wildcard pattern is verified once per value, not once per
    /// occurrence of its gate literal: verifying a long value at each of
    /// its many occurrences is quadratic.
    #[test]
    fn a_gated_pattern_is_verified_once_per_value() {
        // Unanchored, with only a one- or two-byte literal: gated on it.
        let tests = [
            Test::Str {
                pat: Pattern::parse(r"*\\?\\*").lowercase(),
                cased: false,
            },
            Test::Str {
                pat: Pattern::parse("*-e?b*").lowercase(),
                cased: false,
            },
        ];
        let m = matcher(&tests);
        let mut sc = FeedScratch::default();
        for (value, want) in [
            ("\\".repeat(5_000) + "x\\", vec![0]),
            ("-e ".repeat(5_000) + "-e b", vec![1]),
            ("\\.-e".repeat(5_000), vec![]),
        ] {
            let before = super::GLOB_CHECKS.with(|c| c.get());
            let got = fired(&m, &value, &mut sc);
            let checks = super::GLOB_CHECKS.with(|c| c.get()) - before;
            assert_eq!(got, want);
            assert!(
                checks <= 2,
                "{checks} verifications of two patterns on one value"
            );
        }
    }

    #[test]
    fn picks_the_rarest_required_literal() {
        let v = g(r#"(?i)\.exe["']?\s+[^"]{0,64}werfaultsecure\.exe["']?\s+\d{2,10}"#);
        assert!(
            v.iter()
                .all(|l| l.starts_with("werfault") && l.ends_with("ecure.exe")),
            "{v:?}"
        );
        assert_eq!(g(r"net\s+user"), vec!["user"]);
        assert_eq!(g(r"(?i)abc(def|xyz)"), vec!["abcdef", "abcxyz"]);
        // (?i)s also matches U+017F, which lowercasing keeps: it must stay an alternative.
        assert!(g(r"(?i)sekurlsa").len() > 1);
        // Nothing required: no gate.
        assert!(regex_gates(r"a?b?").is_none());
    }

    #[test]
    fn class_runs_are_found_wherever_they_sit() {
        let hex = {
            let mut t = [false; 256];
            for b in b"0123456789abcdef" {
                t[*b as usize] = true;
            }
            t
        };
        let reference = |raw: &[u8], need: usize| {
            let (mut run, mut best) = (0usize, 0usize);
            for &b in raw {
                run = if hex[b as usize] { run + 1 } else { 0 };
                best = best.max(run);
            }
            best >= need
        };
        let mut g = warden_gen::Rng::new(11);
        for _ in 0..20_000 {
            let len = g.below(90);
            let raw: Vec<u8> = (0..len)
                .map(|_| {
                    if g.below(8) == 0 {
                        b'x'
                    } else {
                        b"0a9f"[g.below(4)]
                    }
                })
                .collect();
            let need = g.below(20);
            assert_eq!(
                super::has_run(&hex, &raw, need),
                reference(&raw, need),
                "{} needing {need}",
                String::from_utf8_lossy(&raw)
            );
        }
    }

    #[test]
    fn regex_filters_never_skip_a_match() {
        for (re, hay) in [
            (r"\{.*\{.*\{", "a{b{c{"),
            (r"`.*`", "x `y` z"),
            (r":[^\\]", "C:x"),
            (r".{10,}", "0123456789"),
            (r"(?i)\^", "a^b"),
            (r"\s-\s*<", " - <"),
        ] {
            let f = super::regex_filter(re, true);
            let lower = crate::glob::lowercase_bytes(hay.as_bytes());
            assert!(f.admits(hay, &lower), "{re} on {hay}");
        }
        assert_eq!(super::regex_filter(r".{1000,}", true).min_len, 1000);
        assert_eq!(super::regex_filter(r"`.*`.*`", true).bytes, b"`");
        // Each brace is required: fewer than three braces cannot match.
        let f = super::regex_filter(r"\{.*\{.*\{", true);
        assert_eq!(f.count, Some((b'{', 3)));
        assert!(!f.admits("a{b{c", b"a{b{c"));
        assert!(f.admits("a{b{c{", b"a{b{c{"));
        // Alternatives count their least: `a{{|b{` needs one brace.
        assert_eq!(
            super::regex_filter(r"(?:x\{\{|y\{)z\{", true).count,
            Some((b'{', 2))
        );
        assert_eq!(super::regex_filter(r"(?i)aa", true).count, None);
        assert_eq!(super::regex_filter(r"\{.*\{", true).bytes, b"{");
        // No small required byte set: no byte gate.
        assert!(super::regex_filter(r"[0-9]+", true).bytes.is_empty());
        assert!(super::regex_filter(r"a|b|c|d", true).bytes.is_empty());
        // Case kept: `-F` is required exactly, `-f` is no reason to run.
        let f = super::regex_filter(r"\s-[FTd]\s", false);
        assert!(f.admits(" -F x", b" -f x"));
        assert!(!f.admits(" -f x", b" -f x"));
        // A 64-character hex run is required.
        let hex = "ab".repeat(32);
        let f = super::regex_filter(r"\s[a-fA-F0-9]{64}\s[a-fA-F0-9]{16}", false);
        let yes = format!(" {hex} {} ", &hex[..16]);
        assert!(f.admits(&yes, yes.as_bytes()));
        let no = format!(" {} {} ", &hex[..60], &hex[..16]);
        assert!(!f.admits(&no, no.as_bytes()));
        // Case-insensitive regexes keep every case variant exactly.
        let f = super::regex_filter(r"(?i)ab", false);
        assert!(f.admits("xAbx", b"xabx"));
    }

    #[test]
    fn class_repetitions_lend_their_edges_to_gates() {
        let v = g(r"[A-F0-9]{8}-[A-F0-9]{4}-[A-F0-9]{4}");
        assert_eq!(v.len(), 16, "{v:?}");
        assert!(v.iter().all(|l| l.len() == 2), "{v:?}");
        assert!(
            v.contains(&"a-".to_string()) || v.contains(&"-a".to_string()),
            "{v:?}"
        );
    }

    #[test]
    fn gated_regexes_still_match_what_they_should() {
        for (re, hay) in [
            (
                r"(?i)\.exe\s+werfaultsecure\.exe\s+\d{2,10}",
                "x.exe  WerFaultSecure.exe 1234",
            ),
            (r"net\s+user", "net   user bob"),
            (r"(?i)SeKuRlSa::", "mimikatz sekurlsa::logonpasswords"),
        ] {
            let gates = regex_gates(re).unwrap();
            let lower = crate::glob::lowercase_bytes(hay.as_bytes());
            assert!(
                gates
                    .iter()
                    .any(|g| memchr::memmem::find(&lower, g).is_some()),
                "{re} gates {gates:?} miss {hay}"
            );
        }
    }

    /// A slot's matcher is read on every value of its field, usually cold:
    /// its automata stay behind pointers, so that the headers a value
    /// reads span a few cache lines (inline, it was 3.2 KB).
    #[test]
    fn a_matcher_is_a_few_cache_lines() {
        assert!(std::mem::size_of::<FieldMatcher>() <= 8 * 64);
        assert!(std::mem::size_of::<super::StrIndex>() <= 3 * 64);
    }
}

/// Every predicate of one slot.
#[derive(Debug, Default)]
pub struct FieldMatcher {
    joinable: bool,
    ci: StrIndex,
    cs: StrIndex,
    regexes: Vec<RegexPred>,
    /// Regexes without a gate literal: run on every value.
    ungated_regexes: Vec<u32>,
    nums: Vec<(u32, Cmp, f64)>,
    times: Vec<(u32, TimePart, Cmp, i64)>,
    cidrs: Option<Box<PrefixTable<u32>>>,
    present: Vec<u32>,
    nonnull: Vec<u32>,
    /// Which of the above hold something (read first, as for [`StrIndex`]).
    has: Parts,
}

/// Reusable per-call buffers.
#[derive(Debug, Default)]
pub struct FeedScratch {
    lower: String,
    globs: Vec<u32>,
    gated: Vec<u32>,
    /// Per slot, recorded literal scans of its long values
    /// (case-insensitive and cased), for values that begin alike.
    resume: Vec<[Resume; 2]>,
}

/// Bytes between the checkpoints of a resumable scan.
const RESUME_STEP: usize = 64;
/// Longest value a resumable scan keeps.
pub const RESUME_MAX: usize = 16 * 1024;

/// Literal scans that later values can resume where they begin as one of
/// them did: forwarders repeat long values with a changing end (PowerShell
/// 4103's `ContextInfo`: 5 KB of host application, then a sequence
/// number), several sessions interleaved. The automaton's state after a
/// prefix and the literals ending inside it depend on the prefix alone, so
/// a value that shares its first `p` bytes with a recorded one takes the
/// state and literals recorded at the last checkpoint at or before `p` and
/// scans only the rest.
#[derive(Debug, Default)]
pub struct Resume {
    recs: Vec<ResumeRec>,
    /// Values scanned, to find the least recently used record.
    tick: u64,
    /// The automaton the records were made with (its address): records
    /// of another are dropped, never resumed.
    owner: usize,
    /// The current scan's literals as a bitset (rebuilt from the record's
    /// literals at each scan).
    seen: Vec<u64>,
}

/// Values a [`Resume`] keeps: one per session of a field's values that
/// are interleaved in the stream, say.
const RESUME_RECS: usize = 16;

#[derive(Debug, Default)]
struct ResumeRec {
    /// The value scanned (as the automaton read it).
    text: Vec<u8>,
    /// Checkpoints every [`RESUME_STEP`] bytes: (bytes consumed, state
    /// after them, literals found in them); the first is at 0.
    marks: Vec<(u32, StateID, u32)>,
    /// The distinct literals found, in the order first found (a literal
    /// found again fires nothing new: its targets are predicates and
    /// gates, each acted on once per value).
    ids: Vec<u32>,
    /// When it was last written.
    used: u64,
}

/// How many leading bytes `a` and `b` share.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut i = 0;
    for (x, y) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        if x != y {
            break;
        }
        i += 16;
    }
    i + a[i..]
        .iter()
        .zip(&b[i..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// [`scan`] resuming the recorded scan that shares the longest prefix with
/// `hay`, and recording this one for later values: over the record it
/// resumed when the two share at least half of `hay` (the same session,
/// a newer value), else over the least recently used record.
fn scan_resuming<A: Automaton>(a: &A, hay: &[u8], set: &mut Resume, f: &mut impl FnMut(usize)) {
    let Ok(start) = a.start_state(Anchored::No) else {
        return;
    };
    let owner = std::ptr::from_ref(a) as usize;
    if set.owner != owner {
        set.recs.clear();
        set.owner = owner;
    }
    set.tick += 1;
    let (src, lcp) = set
        .recs
        .iter()
        .map(|r| common_prefix(&r.text, hay))
        .enumerate()
        .max_by_key(|&(_, n)| n)
        .filter(|&(_, n)| n >= RESUME_STEP)
        .unwrap_or((usize::MAX, 0));
    let dst = if src != usize::MAX && 2 * lcp >= hay.len() {
        src
    } else if set.recs.len() < RESUME_RECS {
        set.recs.push(ResumeRec::default());
        set.recs.len() - 1
    } else {
        (0..set.recs.len())
            .min_by_key(|&i| set.recs[i].used)
            .unwrap_or(0)
    };
    // Where to resume: the last checkpoint within the shared prefix.
    let (k, (from, mut sid, found)) = match set.recs.get(src) {
        Some(r) => {
            let k = r.marks.partition_point(|m| m.0 as usize <= lcp);
            (k, r.marks[k - 1])
        }
        None => (1, (0, start, 0)),
    };
    let (from, found) = (from as usize, found as usize);
    #[cfg(test)]
    RESUMED_BYTES.with(|c| c.set(c.get() + from));
    if dst == src {
        let r = &mut set.recs[dst];
        r.text.truncate(from);
        r.marks.truncate(k);
        r.ids.truncate(found);
    } else if src != usize::MAX {
        let (s, d) = if src < dst {
            let (l, r) = set.recs.split_at_mut(dst);
            (&l[src], &mut r[0])
        } else {
            let (l, r) = set.recs.split_at_mut(src);
            (&r[0], &mut l[dst])
        };
        d.text.clear();
        d.text.extend_from_slice(&s.text[..from]);
        d.marks.clear();
        d.marks.extend_from_slice(&s.marks[..k]);
        d.ids.clear();
        d.ids.extend_from_slice(&s.ids[..found]);
    } else {
        let d = &mut set.recs[dst];
        d.text.clear();
        d.marks.clear();
        d.marks.push((0, start, 0));
        d.ids.clear();
    }
    if let Some(r) = set.recs.get_mut(src) {
        r.used = set.tick;
    }
    let rec = &mut set.recs[dst];
    rec.used = set.tick;
    let seen = &mut set.seen;
    seen.clear();
    seen.resize(a.patterns_len().div_ceil(64), 0);
    for &id in &rec.ids {
        seen[id as usize / 64] |= 1 << (id % 64);
        f(id as usize);
    }
    rec.text.extend_from_slice(&hay[from..]);
    let mut pos = from;
    for chunk in hay[from..].chunks(RESUME_STEP) {
        if pos > from {
            rec.marks.push((pos as u32, sid, rec.ids.len() as u32));
        }
        for &b in chunk {
            sid = a.next_state(Anchored::No, sid, b);
            if a.is_match(sid) {
                for m in 0..a.match_len(sid) {
                    let id = a.match_pattern(sid, m).as_usize();
                    let (w, bit) = (id / 64, 1u64 << (id % 64));
                    if seen[w] & bit == 0 {
                        seen[w] |= bit;
                        rec.ids.push(id as u32);
                    }
                    f(id);
                }
            }
        }
        pos += chunk.len();
    }
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
                Test::Cidr(net) => m
                    .cidrs
                    .get_or_insert_with(Default::default)
                    .insert(*net, id),
                Test::Present => m.present.push(id),
                Test::NonNull => m.nonnull.push(id),
            }
        }
        let mut gates = Vec::new();
        for (i, (id, r)) in regexes.iter().enumerate() {
            let text = crate::re::translate(r).map_err(|e| format!("regex '{r}': {e}"))?;
            // Searches run on the lazy DFA; when it gives up (a reverse
            // inner-literal search that turns quadratic, as the GUID regex
            // does on command lines full of `-`), the bounded backtracker
            // finishes a short value in a third of the PikeVM's instructions.
            // Only whether it occurs matters: search for the least of it
            // (gates and filters hold for that too, see `for_presence`).
            let search = crate::re::for_presence(&text);
            let search = search.as_deref().unwrap_or(&text);
            let re = meta::Regex::builder()
                .configure(meta::Config::new())
                .build(search)
                .map_err(|e| format!("regex '{r}': {e}"))?;
            let gate = regex_gates(&text);
            let filter = regex_filter(&text, gate.is_none());
            m.regexes.push(RegexPred {
                pred: *id,
                re,
                fixed: crate::shift_and::ShiftAnd::new(search),
                filter,
            });
            match gate {
                Some(g) => gates.push((i as u32, g)),
                None => m.ungated_regexes.push(i as u32),
            }
        }
        // Regex gates live on the case-insensitive automaton: a literal of a
        // (cased or not) match always occurs in the lowercased value.
        m.ci = StrIndex::build(&ci, &gates);
        m.cs = StrIndex::build(&cs, &[]);
        m.has = Parts::of(&[
            (Parts::PRESENT, !m.present.is_empty()),
            (Parts::NONNULL, !m.nonnull.is_empty()),
            (Parts::CI, !m.ci.is_empty()),
            (Parts::CS, !m.cs.is_empty()),
            (Parts::REGEXES, !m.regexes.is_empty()),
            (Parts::UNGATED_REGEXES, !m.ungated_regexes.is_empty()),
            (Parts::NUMS, !m.nums.is_empty()),
            (Parts::TIMES, !m.times.is_empty()),
            (Parts::CIDRS, m.cidrs.is_some()),
        ]);
        m.joinable = m.ci.contains_only()
            && m.cs.is_empty()
            && m.regexes.is_empty()
            && m.nums.is_empty()
            && m.times.is_empty()
            && m.cidrs.is_none()
            && m.present.is_empty()
            && m.nonnull.is_empty()
            && ci.iter().all(|(_, p)| {
                !p.toks()
                    .iter()
                    .any(|t| matches!(t, crate::glob::Tok::Lit(l) if l.contains(&0xff)))
            });
        Ok(m)
    }

    /// Whether [`FieldMatcher::feed_joined`] is exact for this slot (keyword
    /// slots whose keywords are all plain substrings).
    pub fn joinable(&self) -> bool {
        self.joinable
    }

    /// Tests many values at once: their lowercased texts joined by 0xFF
    /// (a byte no UTF-8 text and no joinable literal contains).
    pub fn feed_joined(&self, joined: &[u8], fire: &mut impl FnMut(u32)) {
        if let Some(ac) = &self.ci.ac {
            ac.for_each_match(joined, None, &mut |m| {
                ac.targets.for_each(m, |t| {
                    if let AcTarget::Contains(p) = t {
                        fire(p);
                    }
                })
            });
        }
    }

    /// Tests one non-null text value.
    #[inline]
    pub fn feed_text(&self, text: &str, sc: &mut FeedScratch, fire: &mut impl FnMut(u32)) {
        self.feed_text_resuming(text, sc, None, fire)
    }

    /// [`FieldMatcher::feed_text`], where the literal scans may resume a
    /// recorded scan of an earlier value of `slot` (this matcher's slot)
    /// that begins alike, and are recorded for later ones.
    #[inline]
    pub fn feed_text_resuming(
        &self,
        text: &str,
        sc: &mut FeedScratch,
        slot: Option<u32>,
        fire: &mut impl FnMut(u32),
    ) {
        let has = self.has;
        if has.any(Parts::PRESENT) {
            self.present.iter().for_each(|p| fire(*p));
        }
        if has.any(Parts::NONNULL) {
            self.nonnull.iter().for_each(|p| fire(*p));
        }
        sc.gated.clear();
        let gated = &mut sc.gated;
        // Only the case-insensitive parts read the lowercased value, and
        // most values have no uppercase letter: skip the copy then.
        let lower = has.any(Parts::CI | Parts::REGEXES)
            && (!text.is_ascii() || text.bytes().any(|b| b.is_ascii_uppercase()));
        let hay = if !lower {
            text.as_bytes()
        } else {
            crate::glob::lowercase_into(text, &mut sc.lower);
            sc.lower.as_bytes()
        };
        let (mut rci, mut rcs) = match slot {
            Some(s) if text.len() <= RESUME_MAX => {
                let s = s as usize;
                if sc.resume.len() <= s {
                    sc.resume.resize_with(s + 1, Default::default);
                }
                let [a, b] = &mut sc.resume[s];
                (Some(a), Some(b))
            }
            _ => (None, None),
        };
        if has.any(Parts::CI) {
            self.ci
                .feed(hay, &mut sc.globs, rci.take(), fire, &mut |r| gated.push(r));
        }
        if has.any(Parts::CS) {
            self.cs.feed(
                text.as_bytes(),
                &mut sc.globs,
                rcs.take(),
                fire,
                &mut |_| {},
            );
        }
        if !sc.gated.is_empty() {
            sc.gated.sort_unstable();
            sc.gated.dedup();
            for r in &sc.gated {
                let r = &self.regexes[*r as usize];
                if r.check(text, hay) {
                    fire(r.pred);
                }
            }
        }
        if has.any(Parts::UNGATED_REGEXES) {
            for r in &self.ungated_regexes {
                let r = &self.regexes[*r as usize];
                if r.check(text, hay) {
                    fire(r.pred);
                }
            }
        }
        if has.any(Parts::NUMS)
            && let Some(x) = crate::predicate::parse_number(text)
        {
            for &(p, c, v) in &self.nums {
                if c.eval(x, v) {
                    fire(p);
                }
            }
        }
        if has.any(Parts::TIMES) {
            for &(p, part, c, v) in &self.times {
                if let Some(x) = crate::predicate::time_part(text, part)
                    && c.eval(x as f64, v as f64)
                {
                    fire(p);
                }
            }
        }
        if has.any(Parts::CIDRS)
            && let Some(t) = &self.cidrs
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
            + self
                .regexes
                .iter()
                .map(|r| r.re.memory_usage() + r.fixed.as_ref().map_or(0, |f| f.memory_usage()) + 8)
                .sum::<usize>()
            + self.nums.len() * 24
            + self.times.len() * 24
            + self.cidrs.as_ref().map_or(0, |c| c.memory_usage())
            + (self.present.len() + self.nonnull.len()) * 4
    }
}
