//! Trigger sets chosen by what each thread's own stream fires.
//!
//! A rule is a candidate for evaluation only when two *trigger sets* of its
//! predicates have both fired, each set necessary for the rule to match
//! (`Image|endswith: '\cmd.exe'` and the command-line literals of a
//! `cmd.exe ... and ...` rule). Any necessary sets give the same verdicts;
//! the cheapest ones fire rarely, so that few rules are marked and fewer
//! evaluated. At build time that is a guess from the predicates' shapes
//! ([`super::build`]'s likelihood estimate), and some guesses are wrong for
//! a given stream: `Initiated: 'true'` looks selective and is in nearly
//! every network event, `Image|endswith: '\cmd.exe'` in a good share of
//! process creations.
//!
//! So each scratch counts how often each predicate fires, and after 4,096
//! events (then 16 Ki, 64 Ki, ... up to every Mi events) picks, for every
//! rule, the two of its necessary sets (up to [`super::build`]'s six
//! alternatives) whose predicates fired least, and builds its own trigger
//! lists from them. Verdicts do not change; only which rules are looked at
//! does. Counts are halved at each choice, so the choice follows a stream
//! that changes.

use super::flat::Triggers;
use super::{CompiledRule, Engine};

/// Firings are counted on one event in this many.
const SAMPLE_EVERY: u64 = 8;

/// Events before the first choice; each later one waits four times longer,
/// up to [`LAST`].
const FIRST: u64 = 4096;
const LAST: u64 = 1 << 20;

/// Per-thread firing counts and the triggers chosen from them.
#[derive(Debug, Default)]
pub(super) struct Adapt {
    /// Per predicate: how often it fired (halved at each choice).
    fires: Vec<u32>,
    events: u64,
    next: u64,
    interval: u64,
    /// This thread's triggers, once chosen; the engine's until then.
    pub(super) triggers: Option<Triggers>,
    /// Per compiled rule: the alternatives chosen (indices into its `alts`;
    /// [`ONE`] as the second: only the first).
    chosen: Vec<[u8; 2]>,
    /// Events counted since the last choice (halved with the counts).
    window: u64,
}

/// No second trigger set.
const ONE: u8 = u8::MAX;

/// A second trigger set that fires in at least this share of events (per
/// mille) is not worth its marks: the rule triggers on the first alone
/// (measured on the bench's mix: 1% and below did as well as each other,
/// 5% kept a third of the marks, 20% most of them).
const COMMON: u64 = 10;

impl Adapt {
    /// Counts one firing of predicate `p`.
    #[inline(always)]
    pub(super) fn fired(&mut self, p: u32) {
        if let Some(c) = self.fires.get_mut(p as usize) {
            *c = c.saturating_add(1);
        }
    }

    /// Whether this event's firings are counted: one event in
    /// [`SAMPLE_EVERY`] (the counts are compared with each other, so a
    /// sample serves as well as the whole stream, for an eighth of the
    /// scattered counter updates).
    #[inline(always)]
    pub(super) fn sampling(&self) -> bool {
        self.events.is_multiple_of(SAMPLE_EVERY)
    }

    /// Counts an event; true when it is time to choose again.
    #[inline]
    pub(super) fn tick(&mut self) -> bool {
        self.events += 1;
        self.window += 1;
        self.events >= self.next
    }

    /// Whether this thread's triggers differ from the engine's.
    #[cfg(test)]
    pub(super) fn adapted(&self) -> bool {
        self.triggers.is_some()
    }
}

impl Engine {
    /// A fresh adaptation state for this engine.
    pub(super) fn adapt_state(&self) -> Adapt {
        Adapt {
            fires: vec![0; self.preds.len()],
            next: FIRST,
            interval: FIRST,
            chosen: self
                .compiled
                .iter()
                .map(|c| [0, u8::from(c.alts.len() > 1)])
                .collect(),
            ..Adapt::default()
        }
    }

    /// Chooses every rule's two trigger sets from the counts, and rebuilds
    /// the thread's triggers if any choice changed.
    #[cold]
    #[inline(never)]
    pub(super) fn choose_triggers(&self, a: &mut Adapt) {
        a.interval = (a.interval * 4).min(LAST);
        a.next = a.events + a.interval;
        let mut changed = false;
        for (c, rule) in self.compiled.iter().enumerate() {
            if rule.alts.len() < 2 {
                continue;
            }
            let pick = least_fired(rule, &a.fires, a.window / SAMPLE_EVERY);
            if pick != a.chosen[c] {
                a.chosen[c] = pick;
                changed = true;
            }
        }
        for f in &mut a.fires {
            *f /= 2;
        }
        a.window /= 2;
        if !changed {
            return;
        }
        let mut per_pred: Vec<Vec<(u32, u32)>> = vec![Vec::new(); self.preds.len()];
        for (c, rule) in self.compiled.iter().enumerate() {
            let picked: Vec<u8> = a.chosen[c]
                .iter()
                .copied()
                .filter(|&k| k != ONE && (k as usize) < rule.alts.len())
                .take(rule.alts.len().min(2))
                .collect();
            let two = u32::from(picked.len() == 2);
            for (k, &alt) in picked.iter().enumerate() {
                for &p in rule.alts[alt as usize].iter() {
                    per_pred[p as usize]
                        .push((rule.bucket, (c as u32) << 2 | (k as u32) << 1 | two));
                }
            }
        }
        a.triggers = Some(Triggers::build(per_pred));
    }
}

/// The two alternatives of `rule` whose predicates fired least (ties: the
/// cheaper by the static estimate, which comes first), or only the least
/// when the other fired in a [`COMMON`] share of the `events`.
fn least_fired(rule: &CompiledRule, fires: &[u32], events: u64) -> [u8; 2] {
    let mut best = [(u64::MAX, 0u8), (u64::MAX, 0u8)];
    for (i, set) in rule.alts.iter().enumerate() {
        let n: u64 = set.iter().map(|&p| u64::from(fires[p as usize])).sum();
        if n < best[0].0 {
            best[1] = best[0];
            best[0] = (n, i as u8);
        } else if n < best[1].0 {
            best[1] = (n, i as u8);
        }
    }
    // Keep the sets in their static order (a rule's set 0 is the one
    // listed first), so an unchanged choice compares equal.
    if best[1].0.saturating_mul(1000) >= COMMON.saturating_mul(events) {
        return [best[0].1, ONE];
    }
    let (a, b) = (best[0].1, best[1].1);
    [a.min(b), a.max(b)]
}
