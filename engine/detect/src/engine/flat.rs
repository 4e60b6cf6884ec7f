//! The per-event tables in flat arrays: what a fired predicate triggers,
//! and every rule's condition as a contiguous program. Both are read for
//! every event, at random places; one array each keeps that to one cache
//! miss per predicate or rule instead of one per pointer followed.

use crate::predicate::Expr;

/// Which compiled rules each predicate triggers, grouped by bucket so an
/// inactive bucket's rules are skipped at once.
///
/// One `u32` stream: at `at[p]`, the number of groups, then per group its
/// bucket, its entry count and the entries (`rule << 2 | trigger set << 1
/// | needs both sets`).
#[derive(Debug, Default)]
pub(super) struct Triggers {
    at: Vec<u32>,
    stream: Vec<u32>,
}

impl Triggers {
    /// From, per predicate, its (bucket, entry) pairs.
    pub(super) fn build(per_pred: Vec<Vec<(u32, u32)>>) -> Triggers {
        let mut t = Triggers::default();
        for mut list in per_pred {
            t.at.push(t.stream.len() as u32);
            list.sort_by_key(|(b, _)| *b);
            let count_at = t.stream.len();
            t.stream.push(0);
            let mut i = 0;
            while i < list.len() {
                let b = list[i].0;
                let n = list[i..].iter().take_while(|(x, _)| *x == b).count();
                t.stream.push(b);
                t.stream.push(n as u32);
                t.stream.extend(list[i..i + n].iter().map(|(_, e)| *e));
                t.stream[count_at] += 1;
                i += n;
            }
        }
        t
    }

    /// Calls `f(bucket, entries)` for each group of predicate `p`.
    #[inline(always)]
    pub(super) fn for_each_group(&self, p: u32, mut f: impl FnMut(u32, &[u32])) {
        let mut i = self.at[p as usize] as usize;
        let groups = self.stream[i];
        i += 1;
        for _ in 0..groups {
            let (bucket, n) = (self.stream[i], self.stream[i + 1] as usize);
            f(bucket, &self.stream[i + 2..i + 2 + n]);
            i += 2 + n;
        }
    }

    pub(super) fn memory_usage(&self) -> usize {
        (self.at.len() + self.stream.len()) * 4
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
}

/// One node of a condition in pre-order; `size` counts the nodes of its
/// subtree, so a short-circuit skips the rest of a branch at once.
#[derive(Debug, Clone, Copy)]
struct Node {
    op: Op,
    /// Predicate or field-reference id, constant (0/1), or child count.
    arg: u32,
    size: u32,
}

/// Every compiled rule's condition, back to back.
#[derive(Debug, Default)]
pub(super) struct Program {
    code: Vec<Node>,
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
        let (op, arg) = match e {
            Expr::Pred(p) => (Op::Pred, *p),
            Expr::FieldRef(f) => (Op::FieldRef, *f),
            Expr::Const(b) => (Op::Const, u32::from(*b)),
            Expr::Not(_) => (Op::Not, 1),
            Expr::And(es) => (Op::And, es.len() as u32),
            Expr::Or(es) => (Op::Or, es.len() as u32),
        };
        self.code.push(Node { op, arg, size: 1 });
        match e {
            Expr::Not(inner) => self.emit(inner),
            Expr::And(es) | Expr::Or(es) => es.iter().for_each(|c| self.emit(c)),
            _ => {}
        }
        self.code[at].size = (self.code.len() - at) as u32;
    }

    /// Evaluates the condition starting at `at`, as [`Expr::eval`] does.
    #[inline]
    pub(super) fn eval(
        &self,
        at: u32,
        pred: &impl Fn(u32) -> bool,
        fref: &mut impl FnMut(u32) -> bool,
    ) -> bool {
        let n = self.code[at as usize];
        match n.op {
            Op::Pred => pred(n.arg),
            Op::FieldRef => fref(n.arg),
            Op::Const => n.arg != 0,
            Op::Not => !self.eval(at + 1, pred, fref),
            Op::And | Op::Or => {
                let want = n.op == Op::Or;
                let mut c = at + 1;
                for _ in 0..n.arg {
                    // Predicates are most children: tested in place.
                    let child = self.code[c as usize];
                    let v = if child.op == Op::Pred {
                        pred(child.arg)
                    } else {
                        self.eval(c, pred, fref)
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
        self.code.len() * std::mem::size_of::<Node>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_evaluate_as_their_expressions() {
        let e = Expr::And(vec![
            Expr::Or(vec![Expr::Pred(0), Expr::Pred(1)]),
            Expr::Not(Box::new(Expr::And(vec![Expr::Pred(2), Expr::FieldRef(0)]))),
            Expr::Or(vec![Expr::Const(false), Expr::Pred(3)]),
        ]);
        let mut prog = Program::default();
        prog.push(&Expr::Pred(9));
        let at = prog.push(&e);
        for bits in 0u32..32 {
            let pred = |p: u32| bits & (1 << p) != 0;
            let want = e.eval(&pred, &mut |_| bits & 16 != 0);
            let got = prog.eval(at, &pred, &mut |_| bits & 16 != 0);
            assert_eq!(got, want, "{bits:05b}");
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
