//! Predicates: the atomic tests a compiled rule is made of.
//!
//! Every Sigma detection item becomes a boolean expression over predicates
//! `(slot, test)`. Predicates are interned per bucket, so rules sharing a
//! test share one predicate. [`Test::matches_text`] is the reference
//! semantics; the index in [`crate::index`] must agree with it.

use crate::glob::{Pattern, lowercase_bytes};
use crate::ip::IpNet;

/// Numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmp {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl Cmp {
    pub fn eval(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Lt => a < b,
            Cmp::Lte => a <= b,
            Cmp::Gt => a > b,
            Cmp::Gte => a >= b,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Lt => "<",
            Cmp::Lte => "<=",
            Cmp::Gt => ">",
            Cmp::Gte => ">=",
        }
    }
}

/// Part of a timestamp extracted by the time modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimePart {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// The test of a predicate, applied to one value of the slot.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// Wildcard pattern; lowercased unless `cased`.
    Str { pat: Pattern, cased: bool },
    /// Regex (with its inline flags), searched anywhere in the value.
    Regex(String),
    /// Numeric comparison of the value parsed as a number.
    Num(Cmp, f64),
    /// A part of the value parsed as a timestamp, compared numerically.
    Time(TimePart, Cmp, i64),
    /// The value parsed as an IP address lies in the network.
    Cidr(IpNet),
    /// The slot has a value (any, including null).
    Present,
    /// The slot has a non-null value.
    NonNull,
}

impl Eq for Test {}

impl std::hash::Hash for Test {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Test::Str { pat, cased } => {
                pat.hash(state);
                cased.hash(state);
            }
            Test::Regex(r) => r.hash(state),
            Test::Num(c, v) => {
                c.hash(state);
                v.to_bits().hash(state);
            }
            Test::Time(p, c, v) => {
                p.hash(state);
                c.hash(state);
                v.hash(state);
            }
            Test::Cidr(n) => n.to_string().hash(state),
            Test::Present | Test::NonNull => {}
        }
    }
}

impl Test {
    /// Reference semantics on a non-null text value (slow path: used to
    /// explain matches and to check the index in tests).
    pub fn matches_text(&self, text: &str) -> bool {
        match self {
            Test::Str { pat, cased: true } => pat.matches(text.as_bytes()),
            Test::Str { pat, cased: false } => pat.matches(&lowercase_bytes(text.as_bytes())),
            Test::Regex(r) => crate::re::compile(r, regex_automata::meta::Config::new())
                .map(|re| re.is_match(text))
                .unwrap_or(false),
            Test::Num(cmp, v) => parse_number(text).is_some_and(|x| cmp.eval(x, *v)),
            Test::Time(part, cmp, v) => {
                time_part(text, *part).is_some_and(|x| cmp.eval(x as f64, *v as f64))
            }
            Test::Cidr(net) => crate::ip::parse_ip_lenient(text).is_some_and(|a| net.contains(a)),
            Test::Present | Test::NonNull => true,
        }
    }

    /// A short human description, for `matched` output.
    pub fn describe(&self) -> String {
        match self {
            Test::Str { pat, cased } => {
                let mut s = String::new();
                for t in pat.toks() {
                    match t {
                        crate::glob::Tok::Lit(l) => s.push_str(&String::from_utf8_lossy(l)),
                        crate::glob::Tok::Star => s.push('*'),
                        crate::glob::Tok::One => s.push('?'),
                    }
                }
                if *cased { format!("{s} (cased)") } else { s }
            }
            Test::Regex(r) => format!("re:{r}"),
            Test::Num(c, v) => format!("{}{v}", c.as_str()),
            Test::Time(p, c, v) => format!("{p:?}{}{v}", c.as_str()).to_lowercase(),
            Test::Cidr(n) => format!("cidr:{n}"),
            Test::Present => "exists".into(),
            Test::NonNull => "not null".into(),
        }
    }
}

/// Parses an event value as a number (integers, decimals, exponents).
pub fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(i as f64);
    }
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Extracts a part of an ISO-8601-like timestamp (`2024-05-01T03:15:00Z`,
/// `2024-05-01 03:15:00.123`, with or without offset; offsets are converted to UTC).
pub fn time_part(text: &str, part: TimePart) -> Option<i64> {
    use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
    let t = text.trim();
    let dt: NaiveDateTime = if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        d.naive_utc()
    } else if let Ok(d) = chrono::DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f%:z") {
        d.naive_utc()
    } else if let Ok(d) = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f") {
        d
    } else if let Ok(d) = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f") {
        d
    } else if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0)?
    } else {
        return None;
    };
    Some(match part {
        TimePart::Minute => dt.minute() as i64,
        TimePart::Hour => dt.hour() as i64,
        TimePart::Day => dt.day() as i64,
        TimePart::Week => dt.iso_week().week() as i64,
        TimePart::Month => dt.month() as i64,
        TimePart::Year => dt.year() as i64,
    })
}

/// A boolean expression over predicates (by id).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Const(bool),
    Pred(u32),
    /// A field-reference comparison (index into the bucket's list), evaluated on demand.
    FieldRef(u32),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    /// AND with constant folding and flattening.
    pub fn and(items: Vec<Expr>) -> Expr {
        let mut out = Vec::with_capacity(items.len());
        for e in items {
            match e {
                Expr::Const(true) => {}
                Expr::Const(false) => return Expr::Const(false),
                Expr::And(inner) => out.extend(inner),
                e => out.push(e),
            }
        }
        match out.len() {
            0 => Expr::Const(true),
            1 => out.pop().expect("one"),
            _ => Expr::And(out),
        }
    }

    /// OR with constant folding and flattening.
    pub fn or(items: Vec<Expr>) -> Expr {
        let mut out = Vec::with_capacity(items.len());
        for e in items {
            match e {
                Expr::Const(false) => {}
                Expr::Const(true) => return Expr::Const(true),
                Expr::Or(inner) => out.extend(inner),
                e => out.push(e),
            }
        }
        match out.len() {
            0 => Expr::Const(false),
            1 => out.pop().expect("one"),
            _ => Expr::Or(out),
        }
    }

    /// NOT with constant folding.
    #[allow(clippy::should_implement_trait)]
    pub fn not(e: Expr) -> Expr {
        match e {
            Expr::Const(b) => Expr::Const(!b),
            Expr::Not(inner) => *inner,
            e => Expr::Not(Box::new(e)),
        }
    }

    /// Evaluates with `pred` giving predicate values and `fref` field references.
    pub fn eval(&self, pred: &impl Fn(u32) -> bool, fref: &mut impl FnMut(u32) -> bool) -> bool {
        match self {
            Expr::Const(b) => *b,
            Expr::Pred(p) => pred(*p),
            Expr::FieldRef(f) => fref(*f),
            Expr::Not(e) => !e.eval(pred, fref),
            Expr::And(es) => es.iter().all(|e| e.eval(pred, fref)),
            Expr::Or(es) => es.iter().any(|e| e.eval(pred, fref)),
        }
    }

    /// Every leaf the expression mentions (a predicate or a field
    /// reference, as [`Expr::Pred`] or [`Expr::FieldRef`]), with whether it
    /// occurs under an even number of negations (positively).
    pub fn visit_leaves(&self, positive: bool, f: &mut impl FnMut(&Expr, bool)) {
        match self {
            Expr::Pred(_) | Expr::FieldRef(_) => f(self, positive),
            Expr::Not(e) => e.visit_leaves(!positive, f),
            Expr::And(es) | Expr::Or(es) => es.iter().for_each(|e| e.visit_leaves(positive, f)),
            Expr::Const(_) => {}
        }
    }
}
