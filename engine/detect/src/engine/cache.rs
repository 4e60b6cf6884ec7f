//! Per-thread memo of (slot, value) → the predicates that value fires.
//!
//! Field values repeat heavily in real logs (images, users, integrity
//! levels, product names), and a slot's verdict on a value never changes.
//! The memo is a two-way set-associative table small enough to stay in
//! the core's L2 cache (a larger hash map spent most of its time on cache
//! misses): a new value goes first in its set, a hit moves to the front,
//! and the value at the back is the one replaced.
//!
//! Texts and predicate lists live in arenas of two generations. When the
//! current one is full it becomes the old one and a fresh one starts;
//! entries of the old generation still answer, and are copied into the
//! current one when they do, so values in use survive and the rest
//! expire with the old arena.
//!
//! Some fields hold a new value in almost every event (logon ids, ports,
//! addresses, times): memoising them only evicts the values that do
//! repeat. Each slot's hit rate is sampled, and a slot that rarely hits
//! bypasses the memo for a while before it is sampled again.

use std::hash::BuildHasher;

use crate::sample::HitRate;

/// Values longer than this are not memoised (long values such as command
/// lines are mostly unique).
pub(super) const MAX_LEN: usize = 160;
/// Table sets (a power of two) of two entries each.
const SETS: usize = 4096;
/// Text bytes per arena generation.
const TEXT_CAP: usize = 128 * 1024;
/// Predicate ids per arena generation.
const PRED_CAP: usize = 32 * 1024;
/// Lookups per sample of a slot's hit rate.
const SAMPLE: u16 = 32;
/// A sample with fewer hits than this makes the slot bypass the memo
/// (low, so that a slot whose first sample meets a cold memo is kept)...
const MIN_HITS: u16 = 3;
/// ...for this many values.
const BYPASS: u16 = 512;

/// Whether `slot` looks its values up now (see [`HitRate`]), a slot that
/// rarely hits skipping its next `bypass` values.
#[inline]
fn slot_wants(slots: &mut Vec<HitRate>, slot: u32, bypass: u16) -> bool {
    let s = slot as usize;
    if s >= slots.len() {
        slots.resize(s + 1, HitRate::default());
    }
    slots[s].wants(SAMPLE, MIN_HITS, bypass)
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// The value's hash (never 0); 0 marks an empty entry.
    tag: u64,
    slot: u32,
    /// The arena generation holding its text and predicates.
    generation: u32,
    text_at: u32,
    preds_at: u32,
    text_len: u16,
    preds_len: u16,
}

/// A miss: where the computed verdict goes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Miss {
    tag: u64,
    idx: usize,
    preds_at: usize,
}

#[derive(Debug, Default)]
struct Arena {
    texts: Vec<u8>,
    preds: Vec<u32>,
}

impl Arena {
    fn full(&self, text: usize, preds: usize) -> bool {
        self.texts.len() + text > TEXT_CAP || self.preds.len() + preds > PRED_CAP
    }
}

#[derive(Debug)]
pub(super) struct ValueCache {
    entries: Vec<Entry>,
    generation: u32,
    cur: Arena,
    old: Arena,
    slots: Vec<HitRate>,
    /// Values longer than [`MAX_LEN`].
    pub(super) long: LongCache,
}

impl Default for ValueCache {
    fn default() -> Self {
        ValueCache {
            entries: vec![Entry::default(); 2 * SETS],
            generation: 1,
            cur: Arena::default(),
            old: Arena::default(),
            slots: Vec::new(),
            long: LongCache::default(),
        }
    }
}

impl ValueCache {
    /// Whether values of `slot` are looked up at all right now (a slot that
    /// rarely hits is skipped for a while).
    #[inline]
    pub(super) fn wants(&mut self, slot: u32) -> bool {
        slot_wants(&mut self.slots, slot, BYPASS)
    }

    /// Starts a new generation: the current arena becomes the old one.
    fn rotate(&mut self) {
        std::mem::swap(&mut self.cur, &mut self.old);
        self.cur.texts.clear();
        self.cur.preds.clear();
        self.generation = self.generation.wrapping_add(1).max(1);
    }

    /// The memoised predicates of `(slot, text)`, or where to put them.
    #[inline]
    pub(super) fn lookup(&mut self, slot: u32, text: &str) -> Result<&[u32], Miss> {
        let h = foldhash::fast::FixedState::with_seed(0x5741_5244_454e).hash_one((slot, text)) | 1;
        let set = 2 * ((h >> 20) as usize & (SETS - 1));
        for way in 0..2 {
            let e = self.entries[set + way];
            if e.tag != h || e.slot != slot || e.text_len as usize != text.len() {
                continue;
            }
            let (ta, pa) = (e.text_at as usize, e.preds_at as usize);
            let (te, pe) = (ta + e.text_len as usize, pa + e.preds_len as usize);
            let current = e.generation == self.generation
                && self
                    .cur
                    .texts
                    .get(ta..te)
                    .is_some_and(|t| same(t, text.as_bytes()));
            let old = !current
                && e.generation.wrapping_add(1) == self.generation
                && self
                    .old
                    .texts
                    .get(ta..te)
                    .is_some_and(|t| same(t, text.as_bytes()));
            if !(current || old) {
                continue;
            }
            self.hit(slot);
            let mut e = e;
            if old {
                // Still in use: move it into the current generation.
                if self.cur.full(text.len(), pe - pa) {
                    // The old arena is about to be dropped: keep its preds.
                    let preds: Vec<u32> = self.old.preds[pa..pe].to_vec();
                    self.rotate();
                    self.cur.preds.extend_from_slice(&preds);
                } else {
                    let Arena { preds, .. } = &self.old;
                    self.cur.preds.extend_from_slice(&preds[pa..pe]);
                }
                e.preds_at = (self.cur.preds.len() - (pe - pa)) as u32;
                e.text_at = self.cur.texts.len() as u32;
                e.generation = self.generation;
                self.cur.texts.extend_from_slice(text.as_bytes());
            }
            // Most recently used first (a current entry in front stays).
            if way == 1 {
                self.entries[set + 1] = self.entries[set];
                self.entries[set] = e;
            } else if old {
                self.entries[set] = e;
            }
            let at = e.preds_at as usize;
            return Ok(&self.cur.preds[at..at + e.preds_len as usize]);
        }
        if self.cur.full(text.len(), 64) {
            self.rotate();
        }
        Err(Miss {
            tag: h,
            idx: set,
            preds_at: self.cur.preds.len(),
        })
    }

    fn hit(&mut self, slot: u32) {
        if let Some(u) = self.slots.get_mut(slot as usize) {
            u.hit();
        }
    }

    /// Where a miss's predicates are collected (see [`ValueCache::store`]).
    #[inline]
    pub(super) fn preds_mut(&mut self) -> &mut Vec<u32> {
        &mut self.cur.preds
    }

    /// Memoises the predicates pushed since `miss` for `(slot, text)`.
    #[inline]
    pub(super) fn store(&mut self, miss: Miss, slot: u32, text: &str) {
        let count = self.cur.preds.len() - miss.preds_at;
        if count > u16::MAX as usize || text.len() > MAX_LEN {
            return; // not memoised (and never seen in practice)
        }
        let text_at = self.cur.texts.len() as u32;
        self.cur.texts.extend_from_slice(text.as_bytes());
        // The set's front entry moves back; the back one is replaced.
        self.entries[miss.idx + 1] = self.entries[miss.idx];
        self.entries[miss.idx] = Entry {
            tag: miss.tag,
            slot,
            generation: self.generation,
            text_at,
            text_len: text.len() as u16,
            preds_at: miss.preds_at as u32,
            preds_len: count as u16,
        };
    }
}

/// Whether `a` and `b` hold the same bytes: values of eight to sixteen
/// bytes (many memoised ones) as two overlapping words each, without a
/// call to `memcmp`.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(w)
    };
    match n {
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// Longest value [`LongCache`] takes.
pub(super) const LONG_MAX: usize = 8 * 1024;
/// Most predicate firings a [`LongCache`] entry keeps.
const LONG_PREDS_MAX: usize = 1024;
/// [`LongCache`] sets (a power of two)...
const LONG_SETS: usize = 256;
/// ...of this many entries each, most recently used first.
const LONG_WAYS: usize = 4;
/// Text bytes (buffer capacity) all [`LongCache`] entries hold at most:
/// a value that would go over it is not kept.
const LONG_BUDGET: usize = 2 << 20;
/// Values a slot of long values that rarely repeat skips between samples:
/// a miss costs a hash and a copy, small against scanning the value, but
/// a value that never repeats gains nothing from it.
pub(super) const LONG_BYPASS: u16 = 4096;

/// Memo of long values (call stacks, script contexts, service command
/// lines) whose verdicts are costly to compute and which forwarders
/// repeat verbatim: Sysmon's `CallTrace`, PowerShell's `ContextInfo`.
/// A set-associative table (a hit moves to the front of its set, a miss
/// replaces the back) whose entries keep their buffers, so that a
/// replaced value reuses them (no allocation once warm). Its text is
/// bounded by [`LONG_BUDGET`] bytes. A Sysmon stream has a few hundred
/// distinct call stacks (process access) in use at once, more than a
/// small direct-mapped table keeps: simulated on OTRF's Sysmon 10
/// records, 128 direct-mapped entries answer 76% of lookups, 256 sets of
/// four 95%.
#[derive(Debug)]
pub(super) struct LongCache {
    entries: Vec<LongEntry>,
    slots: Vec<HitRate>,
    /// Sum of the entries' text capacities.
    bytes: usize,
}

#[derive(Debug, Default)]
struct LongEntry {
    /// The value's hash (never 0); 0 marks an empty entry.
    tag: u64,
    slot: u32,
    text: Vec<u8>,
    preds: Vec<u32>,
}

impl Default for LongCache {
    fn default() -> Self {
        LongCache {
            entries: (0..LONG_SETS * LONG_WAYS)
                .map(|_| LongEntry::default())
                .collect(),
            slots: Vec::new(),
            bytes: 0,
        }
    }
}

impl LongCache {
    /// Whether long values of `slot` are looked up now.
    #[inline]
    pub(super) fn wants(&mut self, slot: u32) -> bool {
        slot_wants(&mut self.slots, slot, LONG_BYPASS)
    }

    /// The memoised predicates of `(slot, text)`; on a miss, `compute`
    /// pushes them into the entry that now holds `text`.
    #[inline]
    pub(super) fn get_or_compute(
        &mut self,
        slot: u32,
        text: &str,
        compute: impl FnOnce(&mut Vec<u32>),
    ) -> &[u32] {
        let h = foldhash::fast::FixedState::with_seed(0x4c4f_4e47).hash_one((slot, text)) | 1;
        let first = ((h >> 32) as usize & (LONG_SETS - 1)) * LONG_WAYS;
        let set = &mut self.entries[first..first + LONG_WAYS];
        let found = set
            .iter()
            .position(|e| e.tag == h && e.slot == slot && e.text == text.as_bytes());
        if let Some(way) = found {
            if let Some(u) = self.slots.get_mut(slot as usize) {
                u.hit();
            }
            set[..=way].rotate_right(1);
            return &set[0].preds;
        }
        // The least recently used entry takes the value, at the front.
        set.rotate_right(1);
        let e = &mut set[0];
        // Unusable until computed (a panic inside `compute` must not
        // leave a partial verdict to replay).
        e.tag = 0;
        e.preds.clear();
        e.preds.shrink_to(LONG_PREDS_MAX);
        compute(&mut e.preds);
        // Predicates fire once per occurrence: a verdict listing more
        // than this is recomputed rather than kept.
        self.bytes -= e.text.capacity();
        e.text.clear();
        if e.preds.len() <= LONG_PREDS_MAX {
            // The buffer is reused unless far larger than the value (a
            // call stack taking a script's buffer would waste the budget)
            // or over the budget where a buffer of the value's size fits.
            let cap = e.text.capacity();
            if cap > 2 * text.len() + 64 || self.bytes + cap.max(text.len()) > LONG_BUDGET {
                e.text = Vec::new();
            }
            if self.bytes + text.len().max(e.text.capacity()) <= LONG_BUDGET {
                e.tag = h;
                e.slot = slot;
                e.text.reserve_exact(text.len());
                e.text.extend_from_slice(text.as_bytes());
            }
        }
        self.bytes += e.text.capacity();
        &e.preds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-wise comparison agrees with `==` for every length around
    /// its word sizes, with one byte changed anywhere.
    #[test]
    fn short_texts_compare_as_bytes() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37)).collect();
            assert!(same(&a, &a.clone()), "{n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same(&a, &b), "{n} bytes, changed at {at}");
            }
            assert!(!same(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }

    #[test]
    fn slots_that_rarely_hit_bypass_for_a_while() {
        let mut c = ValueCache::default();
        // A slot of unique values: after one sample it is bypassed.
        let mut looked = 0;
        for i in 0..(SAMPLE as usize + 100) {
            if c.wants(1) {
                looked += 1;
                let t = i.to_string();
                if let Err(m) = c.lookup(1, &t) {
                    c.store(m, 1, &t);
                }
            }
        }
        assert_eq!(looked, SAMPLE as usize);
        // A slot of repeated values keeps being looked up.
        for _ in 0..(SAMPLE as usize * 4) {
            assert!(c.wants(2));
            if let Err(m) = c.lookup(2, "same") {
                c.store(m, 2, "same");
            }
        }
        // The bypass ends and the slot is sampled again.
        let mut skipped = 0;
        while !c.wants(1) {
            skipped += 1;
        }
        assert_eq!(skipped, BYPASS as usize - 100);
    }

    #[test]
    fn remembers_replaces_and_starts_over() {
        let mut c = ValueCache::default();
        let m = c.lookup(3, "cmd.exe").unwrap_err();
        c.preds_mut().extend([7, 9]);
        c.store(m, 3, "cmd.exe");
        assert_eq!(c.lookup(3, "cmd.exe").unwrap(), &[7, 9]);
        // Another slot, another value: misses.
        assert!(c.lookup(4, "cmd.exe").is_err());
        assert!(c.lookup(3, "cmd.exE").is_err());
        // An empty verdict is remembered too.
        let m = c.lookup(5, "x").unwrap_err();
        c.store(m, 5, "x");
        assert_eq!(c.lookup(5, "x").unwrap(), &[] as &[u32]);
        // Filling arenas rotates generations without losing correctness,
        // and a value in use survives every rotation.
        let long = "a".repeat(MAX_LEN - 8);
        for i in 0..(3 * TEXT_CAP / MAX_LEN) {
            let t = format!("{i}{long}");
            if let Err(m) = c.lookup(1, &t) {
                c.preds_mut().push(i as u32);
                c.store(m, 1, &t);
            }
            assert_eq!(c.lookup(1, &t).unwrap(), &[i as u32]);
            // Kept in use, it survives every rotation (two ways: a value
            // sharing its set cannot push it out while it is the front).
            assert_eq!(c.lookup(3, "cmd.exe").unwrap(), &[7, 9], "{i}");
        }
        assert!(c.generation >= 3, "{}", c.generation);
    }
    #[test]
    fn long_values_replay_until_replaced() {
        let mut c = LongCache::default();
        let mut computed = 0;
        let mut get = |c: &mut LongCache, slot: u32, t: &str| {
            c.get_or_compute(slot, t, |p| {
                computed += 1;
                p.extend(t.bytes().map(u32::from).take(2));
                p.push(slot);
            })
            .to_vec()
        };
        let a = "a".repeat(500);
        let b = format!("{}b", "a".repeat(499));
        assert_eq!(get(&mut c, 1, &a), [97, 97, 1]);
        assert_eq!(get(&mut c, 1, &a), [97, 97, 1]);
        // Another slot or another text of the same length is its own value.
        assert_eq!(get(&mut c, 2, &a), [97, 97, 2]);
        assert_eq!(get(&mut c, 1, &b), [97, 97, 1]);
        // Enough other values to replace every entry: each verdict is still
        // its own, recomputed when its entry was taken.
        for i in 0..4 * LONG_SETS * LONG_WAYS {
            let t = format!("{i:04}{a}");
            let d = t.as_bytes();
            assert_eq!(get(&mut c, 1, &t), [d[0] as u32, d[1] as u32, 1]);
        }
        assert_eq!(get(&mut c, 1, &a), [97, 97, 1]);
        // Computed: a, a@2, b, the others, and a again unless its entry
        // survived; never the replayed a.
        assert!(
            (3 + 4 * LONG_SETS * LONG_WAYS..=4 + 4 * LONG_SETS * LONG_WAYS).contains(&computed),
            "{computed}"
        );
    }

    /// The verdict `get_or_compute` is given for `t`: its first bytes and
    /// its length.
    fn verdict(t: &str) -> Vec<u32> {
        vec![
            u32::from(t.as_bytes()[0]),
            u32::from(t.as_bytes()[1]),
            t.len() as u32,
        ]
    }

    #[test]
    fn long_values_in_use_stay_memoised() {
        // Call stacks as a Sysmon 10 stream holds them: a few hundred
        // distinct values, each seen again and again, interleaved.
        let mut c = LongCache::default();
        let stacks: Vec<String> = (0..300)
            .map(|i| {
                format!(
                    "C:\\Windows\\SYSTEM32\\ntdll.dll+{i:x}|{}",
                    "K".repeat(400 + i)
                )
            })
            .collect();
        let mut computed = 0;
        for round in 0..3 {
            for (i, t) in stacks.iter().enumerate() {
                let got = c.get_or_compute(7, t, |p| {
                    computed += 1;
                    p.extend(verdict(t));
                });
                assert_eq!(got, verdict(t), "round {round}, value {i}");
            }
        }
        // The first round computes every value; the others replay nearly
        // all (a set given more than four of them recomputes its excess).
        assert!((300..=330).contains(&computed), "{computed}");
    }

    #[test]
    fn long_memo_text_stays_within_its_budget() {
        let mut c = LongCache::default();
        let n = 4 * LONG_BUDGET / LONG_MAX;
        for i in 0..n {
            let t = format!("{i:06}{}", "x".repeat(LONG_MAX - 6));
            let got = c.get_or_compute(1, &t, |p| p.extend(verdict(&t)));
            assert_eq!(got, verdict(&t));
            let held: usize = c.entries.iter().map(|e| e.text.capacity()).sum();
            assert_eq!(held, c.bytes);
            assert!(held <= LONG_BUDGET, "{held} bytes after {i} values");
        }
        // Full, it still answers: a kept value replays, a new one computes.
        let kept = c
            .entries
            .iter()
            .find(|e| e.tag != 0)
            .map(|e| String::from_utf8(e.text.clone()).unwrap())
            .expect("some values kept");
        let got = c.get_or_compute(1, &kept, |_| panic!("a kept value is replayed"));
        assert_eq!(got, verdict(&kept));
        // Short values still fit once long ones leave their entries.
        for i in 0..LONG_SETS * LONG_WAYS {
            let t = format!("{i:06}{}", "y".repeat(200));
            assert_eq!(
                c.get_or_compute(2, &t, |p| p.extend(verdict(&t))),
                verdict(&t)
            );
        }
        let kept = c.entries.iter().filter(|e| e.tag != 0).count();
        assert!(kept > LONG_SETS * LONG_WAYS / 2, "{kept}");
        assert!(c.bytes <= LONG_BUDGET);
    }
}
