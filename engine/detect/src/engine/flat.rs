//! The per-event tables in flat arrays: what a fired predicate triggers,
//! and every rule's condition as a contiguous program. Both are read for
//! every event, at random places; one array each keeps that to one cache
//! miss per predicate or rule instead of one per pointer followed.

use crate::predicate::Expr;

/// Which compiled rules each predicate triggers, grouped by bucket so an
/// inactive bucket's rules are skipped at once.
///
/// Per predicate, `at[p]` holds either its only (bucket, entry) pair
/// inline (most predicates trigger one rule: one cache miss instead of
/// two), marked by [`INLINE`] on the bucket, or (offset, group count)
/// into one `u32` stream holding per group its bucket, its entry count and
/// the entries (`rule << 2 | trigger set << 1 | needs both sets`).
#[derive(Debug, Default)]
pub(super) struct Triggers {
    at: Vec<[u32; 2]>,
    stream: Vec<u32>,
}

/// Marks an inline (bucket, entry) pair in [`Triggers::at`].
const INLINE: u32 = 1 << 31;

impl Triggers {
    /// From, per predicate, its (bucket, entry) pairs.
    pub(super) fn build(per_pred: Vec<Vec<(u32, u32)>>) -> Triggers {
        let mut t = Triggers::default();
        for mut list in per_pred {
            if let [(b, e)] = list[..] {
                assert!(b < INLINE, "bucket ids stay below 2^31");
                t.at.push([b | INLINE, e]);
                continue;
            }
            list.sort_by_key(|(b, _)| *b);
            assert!(
                t.stream.len() < INLINE as usize,
                "trigger stream below 2^31 entries"
            );
            let at = t.stream.len() as u32;
            let mut groups = 0;
            let mut i = 0;
            while i < list.len() {
                let b = list[i].0;
                let n = list[i..].iter().take_while(|(x, _)| *x == b).count();
                t.stream.push(b);
                t.stream.push(n as u32);
                t.stream.extend(list[i..i + n].iter().map(|(_, e)| *e));
                groups += 1;
                i += n;
            }
            t.at.push([at, groups]);
        }
        t
    }

    /// Calls `f(bucket, entries)` for each group of predicate `p`.
    #[inline(always)]
    pub(super) fn for_each_group(&self, p: u32, mut f: impl FnMut(u32, &[u32])) {
        let at = &self.at[p as usize];
        if at[0] & INLINE != 0 {
            f(at[0] & !INLINE, std::slice::from_ref(&at[1]));
            return;
        }
        let mut i = at[0] as usize;
        for _ in 0..at[1] {
            let (bucket, n) = (self.stream[i], self.stream[i + 1] as usize);
            f(bucket, &self.stream[i + 2..i + 2 + n]);
            i += 2 + n;
        }
    }

    pub(super) fn memory_usage(&self) -> usize {
        self.at.len() * 8 + self.stream.len() * 4
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Pred,
    FieldRef,
    Const,
    Not,
    And,
    Or,
    /// An `Or` of predicates only: any of its bit masks meets the fired set.
    AnyBits,
    /// An `And` of predicates only: every bit of its masks is fired.
    AllBits,
}

/// One node of a condition in pre-order; `size` counts the nodes of its
/// subtree, so a short-circuit skips the rest of a branch at once.
#[derive(Debug, Clone, Copy)]
struct Node {
    op: Op,
    /// Predicate or field-reference id, constant (0/1), child count, or
    /// (for the bit ops) where its masks start in [`Program::masks`].
    arg: u32,
    size: u32,
    /// Number of masks of a bit op.
    len: u32,
}

/// Every compiled rule's condition, back to back.
///
/// A list of predicates (`1 of` a selection's values, a filter's
/// alternatives: most of a SigmaHQ condition) becomes one node with a
/// (word, mask) pair per 64-predicate word of the fired bitset it touches;
/// predicates of one rule are interned together, so 40 alternatives are
/// usually one or two word tests instead of 40 bit tests.
#[derive(Debug, Default)]
pub(super) struct Program {
    code: Vec<Node>,
    masks: Vec<(u32, u64)>,
}

impl Program {
    /// Appends `e` and returns where it starts.
    pub(super) fn push(&mut self, e: &Expr) -> u32 {
        let at = self.code.len() as u32;
        self.emit(e);
        at
    }

    fn emit(&mut self, e: &Expr) {
        let at = self.code.len();
        if let Expr::And(es) | Expr::Or(es) = e
            && es.len() >= 2
            && es.iter().all(|c| matches!(c, Expr::Pred(_)))
        {
            let mut words: Vec<(u32, u64)> = Vec::new();
            for c in es {
                if let Expr::Pred(p) = c {
                    let (w, b) = (p / 64, 1u64 << (p % 64));
                    match words.iter_mut().find(|(x, _)| *x == w) {
                        Some((_, m)) => *m |= b,
                        None => words.push((w, b)),
                    }
                }
            }
            words.sort_unstable_by_key(|(w, _)| *w);
            let op = if matches!(e, Expr::Or(_)) {
                Op::AnyBits
            } else {
                Op::AllBits
            };
            self.code.push(Node {
                op,
                arg: self.masks.len() as u32,
                size: 1,
                len: words.len() as u32,
            });
            self.masks.extend(words);
            return;
        }
        let (op, arg) = match e {
            Expr::Pred(p) => (Op::Pred, *p),
            Expr::FieldRef(f) => (Op::FieldRef, *f),
            Expr::Const(b) => (Op::Const, u32::from(*b)),
            Expr::Not(_) => (Op::Not, 1),
            Expr::And(es) => (Op::And, es.len() as u32),
            Expr::Or(es) => (Op::Or, es.len() as u32),
        };
        self.code.push(Node {
            op,
            arg,
            size: 1,
            len: 0,
        });
        match e {
            Expr::Not(inner) => self.emit(inner),
            Expr::And(es) | Expr::Or(es) => es.iter().for_each(|c| self.emit(c)),
            _ => {}
        }
        self.code[at].size = (self.code.len() - at) as u32;
    }

    /// Evaluates the condition starting at `at`, as [`Expr::eval`] does,
    /// with `fired` the bitset of fired predicates.
    #[inline]
    pub(super) fn eval(&self, at: u32, fired: &[u64], fref: &mut impl FnMut(u32) -> bool) -> bool {
        let pred = |p: u32| super::get_bit(fired, p);
        let n = self.code[at as usize];
        match n.op {
            Op::Pred => pred(n.arg),
            Op::FieldRef => fref(n.arg),
            Op::Const => n.arg != 0,
            Op::AnyBits => self.masks[n.arg as usize..(n.arg + n.len) as usize]
                .iter()
                .any(|&(w, m)| fired[w as usize] & m != 0),
            Op::AllBits => self.masks[n.arg as usize..(n.arg + n.len) as usize]
                .iter()
                .all(|&(w, m)| fired[w as usize] & m == m),
            Op::Not => !self.eval(at + 1, fired, fref),
            Op::And | Op::Or => {
                let want = n.op == Op::Or;
                let mut c = at + 1;
                for _ in 0..n.arg {
                    // Predicates are most children: tested in place.
                    let child = self.code[c as usize];
                    let v = if child.op == Op::Pred {
                        pred(child.arg)
                    } else {
                        self.eval(c, fired, fref)
                    };
                    if v == want {
                        return want;
                    }
                    c += child.size;
                }
                !want
            }
        }
    }

    pub(super) fn memory_usage(&self) -> usize {
        self.code.len() * std::mem::size_of::<Node>() + self.masks.len() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_evaluate_as_their_expressions() {
        // Predicate ids across three words of the bitset, so that the
        // all-predicate lists become several (word, mask) pairs.
        let ids = [0u32, 1, 70, 71, 130, 3, 64];
        let p = |i: usize| Expr::Pred(ids[i]);
        let e = Expr::And(vec![
            Expr::Or(vec![p(0), p(2), p(4)]),
            Expr::Not(Box::new(Expr::And(vec![p(1), Expr::FieldRef(0)]))),
            Expr::Or(vec![Expr::Const(false), p(3)]),
            Expr::Not(Box::new(Expr::And(vec![p(5), p(6), p(2)]))),
        ]);
        let alone = Expr::Or(vec![
            Expr::And(vec![p(0), p(6)]),
            Expr::Or(vec![p(4), p(5)]),
        ]);
        let mut prog = Program::default();
        prog.push(&Expr::Pred(9));
        let at = prog.push(&e);
        let at2 = prog.push(&alone);
        assert!(prog.masks.len() >= 6, "lists of predicates use masks");
        for bits in 0u32..(1 << (ids.len() + 1)) {
            let on = |p: u32| {
                ids.iter()
                    .position(|&x| x == p)
                    .is_some_and(|i| bits & (1 << i) != 0)
            };
            let mut fired = vec![0u64; 3];
            for &id in &ids {
                if on(id) {
                    fired[(id / 64) as usize] |= 1 << (id % 64);
                }
            }
            let fr = bits & (1 << ids.len()) != 0;
            for (expr, at) in [(&e, at), (&alone, at2)] {
                let want = expr.eval(&on, &mut |_| fr);
                let got = prog.eval(at, &fired, &mut |_| fr);
                assert_eq!(got, want, "{bits:08b}");
            }
        }
    }

    #[test]
    fn triggers_keep_each_predicates_groups() {
        let t = Triggers::build(vec![vec![(1, 10), (0, 11), (1, 12)], vec![(1, 13)], vec![]]);
        let groups = |p| {
            let mut v = Vec::new();
            t.for_each_group(p, |b, es| v.push((b, es.to_vec())));
            v
        };
        assert_eq!(groups(0), vec![(0, vec![11]), (1, vec![10, 12])]);
        assert_eq!(groups(1), vec![(1, vec![13])]);
        assert_eq!(groups(2), vec![]);
    }
}
