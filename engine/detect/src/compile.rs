//! Sigma detection → boolean expressions over interned predicates.
//!
//! Modifiers are applied here, once, at load time: windash, expand and the
//! encodings turn one value into several alternative patterns; the result
//! is an [`Expr`] whose leaves are predicate ids handed out by a [`Sink`].

use std::collections::HashMap;

use base64::Engine as _;

use crate::glob::Pattern;
use crate::predicate::{Cmp, Expr, Test, TimePart};
use crate::sigma::{
    Condition, Detection, DetectionItem, Modifier, OfQuantifier, Search, SigmaValue,
};

/// How a field reference compares the two values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefMode {
    Eq,
    Contains,
    StartsWith,
    EndsWith,
}

/// `field|fieldref: other`: compares the values of two fields of one event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldRefSpec {
    pub field: String,
    pub other: String,
    pub mode: RefMode,
    pub cased: bool,
}

/// Where compiled predicates go: the bucket being built.
pub trait Sink {
    /// The slot of a Sigma field.
    fn field_slot(&mut self, field: &str) -> u32;
    /// The slot that sees every value of the event (keywords).
    fn keyword_slot(&mut self) -> u32;
    /// Interns a predicate and returns its id.
    fn pred(&mut self, slot: u32, test: Test) -> u32;
    /// Interns a field reference and returns its id.
    fn fieldref(&mut self, spec: FieldRefSpec) -> u32;
}

/// Placeholder values for `|expand`.
pub type Placeholders = HashMap<String, Vec<String>>;

/// Compiles a detection (all its conditions, OR-ed) into one expression.
pub fn compile_detection(
    det: &Detection,
    placeholders: &Placeholders,
    sink: &mut impl Sink,
) -> Result<Expr, String> {
    let mut compiled: HashMap<&str, Expr> = HashMap::new();
    for (name, search) in &det.searches {
        let e = compile_search(search, placeholders, sink)
            .map_err(|e| format!("search '{name}': {e}"))?;
        compiled.insert(name.as_str(), e);
    }
    let conds = det
        .conditions
        .iter()
        .map(|c| condition_expr(c, det, &compiled))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Expr::or(conds))
}

fn condition_expr(
    c: &Condition,
    det: &Detection,
    compiled: &HashMap<&str, Expr>,
) -> Result<Expr, String> {
    Ok(match c {
        Condition::Ident(n) => compiled
            .get(n.as_str())
            .cloned()
            .ok_or_else(|| format!("condition references unknown identifier '{n}'"))?,
        Condition::Not(inner) => Expr::not(condition_expr(inner, det, compiled)?),
        Condition::And(items) => Expr::and(
            items
                .iter()
                .map(|i| condition_expr(i, det, compiled))
                .collect::<Result<_, _>>()?,
        ),
        Condition::Or(items) => Expr::or(
            items
                .iter()
                .map(|i| condition_expr(i, det, compiled))
                .collect::<Result<_, _>>()?,
        ),
        Condition::Of(q, pattern) => {
            let names = det.select(pattern.as_deref());
            if names.is_empty() {
                return Err(format!(
                    "'{}' selects no identifier",
                    pattern.as_deref().unwrap_or("them")
                ));
            }
            let items: Vec<Expr> = names
                .iter()
                .map(|n| compiled.get(n).cloned().unwrap_or(Expr::Const(false)))
                .collect();
            match q {
                OfQuantifier::Any => Expr::or(items),
                OfQuantifier::All => Expr::and(items),
            }
        }
    })
}

fn compile_search(
    search: &Search,
    ph: &Placeholders,
    sink: &mut impl Sink,
) -> Result<Expr, String> {
    match search {
        Search::Keywords(item) => compile_item(item, ph, sink),
        Search::Groups(groups) => {
            let mut ors = Vec::with_capacity(groups.len());
            for g in groups {
                let ands = g
                    .iter()
                    .map(|i| compile_item(i, ph, sink))
                    .collect::<Result<Vec<_>, _>>()?;
                ors.push(Expr::and(ands));
            }
            Ok(Expr::or(ors))
        }
    }
}

struct Mods<'a>(&'a [Modifier]);

impl Mods<'_> {
    fn has(&self, m: Modifier) -> bool {
        self.0.contains(&m)
    }
    fn pos(&self, m: Modifier) -> Option<usize> {
        self.0.iter().position(|x| *x == m)
    }
    fn only(&self, allowed: &[Modifier], what: &str) -> Result<(), String> {
        match self.0.iter().find(|m| !allowed.contains(m)) {
            Some(m) => Err(format!("modifier '{m}' cannot be combined with '{what}'")),
            None => Ok(()),
        }
    }
}

fn item_name(item: &DetectionItem) -> String {
    let mut s = item.field.clone().unwrap_or_default();
    for m in &item.modifiers {
        s.push('|');
        s.push_str(&m.to_string());
    }
    if s.is_empty() { "keywords".into() } else { s }
}

fn combine(values: Vec<Expr>, all: bool) -> Expr {
    if all {
        Expr::and(values)
    } else {
        Expr::or(values)
    }
}

/// Compiles one `Field|modifiers: values` item.
pub fn compile_item(
    item: &DetectionItem,
    ph: &Placeholders,
    sink: &mut impl Sink,
) -> Result<Expr, String> {
    compile_item_inner(item, ph, sink).map_err(|e| format!("'{}': {e}", item_name(item)))
}

fn compile_item_inner(
    item: &DetectionItem,
    ph: &Placeholders,
    sink: &mut impl Sink,
) -> Result<Expr, String> {
    use Modifier as M;
    let mods = Mods(&item.modifiers);
    let all = mods.has(M::All);
    let neq = mods.has(M::Neq);
    // `neq`: the field is present and differs from every value (pySigma
    // negates the whole item; we also require presence, as the spec's
    // "the field is different" implies, so an absent field never matches).
    let present = match &item.field {
        Some(f) if neq => {
            let slot = sink.field_slot(f);
            Some(Expr::Pred(sink.pred(slot, Test::Present)))
        }
        _ => None,
    };
    let wrap = |e: Expr| match (&present, neq) {
        (Some(p), true) => Expr::and(vec![p.clone(), Expr::not(e)]),
        (None, true) => Expr::not(e),
        _ => e,
    };
    for sub in [M::ReI, M::ReM, M::ReS] {
        if mods.has(sub) && !mods.has(M::Re) {
            return Err(format!("modifier '{sub}' requires 're'"));
        }
    }
    let slot = match &item.field {
        Some(f) => sink.field_slot(f),
        None => {
            if mods.has(M::Exists) || mods.has(M::FieldRef) {
                return Err("keywords cannot use 'exists' or 'fieldref'".into());
            }
            sink.keyword_slot()
        }
    };

    if mods.has(M::Exists) {
        mods.only(&[M::Exists], "exists")?;
        let [SigmaValue::Bool(b)] = item.values.as_slice() else {
            return Err("'exists' takes a single boolean value (true or false)".into());
        };
        let p = Expr::Pred(sink.pred(slot, Test::Present));
        return Ok(if *b { p } else { Expr::not(p) });
    }

    if mods.has(M::FieldRef) {
        mods.only(
            &[
                M::FieldRef,
                M::Contains,
                M::StartsWith,
                M::EndsWith,
                M::Cased,
                M::Neq,
                M::All,
            ],
            "fieldref",
        )?;
        let mode = string_mode(&mods)?;
        let mode = match mode {
            None => RefMode::Eq,
            Some(M::Contains) => RefMode::Contains,
            Some(M::StartsWith) => RefMode::StartsWith,
            Some(_) => RefMode::EndsWith,
        };
        let field = item.field.clone().unwrap_or_default();
        let mut out = Vec::new();
        for v in &item.values {
            let Some(other) = v.as_text().filter(|_| matches!(v, SigmaValue::Str(_))) else {
                return Err("'fieldref' values must be field names".into());
            };
            if other.contains(['*', '?']) {
                return Err(format!(
                    "'fieldref' target '{other}' cannot contain a wildcard"
                ));
            }
            out.push(Expr::FieldRef(sink.fieldref(FieldRefSpec {
                field: field.clone(),
                other,
                mode,
                cased: mods.has(M::Cased),
            })));
        }
        return Ok(wrap(combine(out, all)));
    }

    if mods.has(M::Re) {
        if mods.pos(M::Re) != Some(0) {
            return Err("'re' must be the first modifier".into());
        }
        // contains/startswith/endswith are no-ops under search semantics.
        mods.only(
            &[
                M::Re,
                M::ReI,
                M::ReM,
                M::ReS,
                M::Neq,
                M::All,
                M::Contains,
                M::StartsWith,
                M::EndsWith,
            ],
            "re",
        )?;
        let mut flags = String::new();
        for (m, f) in [(M::ReI, 'i'), (M::ReM, 'm'), (M::ReS, 's')] {
            if mods.has(m) {
                flags.push(f);
            }
        }
        let mut out = Vec::new();
        for v in &item.values {
            let SigmaValue::Str(re) = v else {
                return Err("'re' values must be strings".into());
            };
            let full = if flags.is_empty() {
                re.clone()
            } else {
                format!("(?{flags}){re}")
            };
            check_regex(&full)?;
            out.push(Expr::Pred(sink.pred(slot, Test::Regex(full))));
        }
        return Ok(wrap(combine(out, all)));
    }

    if mods.has(M::Cidr) {
        mods.only(&[M::Cidr, M::Neq, M::All], "cidr")?;
        let mut out = Vec::new();
        for v in &item.values {
            let text = v.as_text().ok_or("'cidr' values must be networks")?;
            let net = crate::ip::IpNet::parse(&text)
                .map_err(|e| format!("invalid cidr '{text}': {e}"))?;
            out.push(Expr::Pred(sink.pred(slot, Test::Cidr(net))));
        }
        return Ok(wrap(combine(out, all)));
    }

    let time = [
        (M::Minute, TimePart::Minute),
        (M::Hour, TimePart::Hour),
        (M::Day, TimePart::Day),
        (M::Week, TimePart::Week),
        (M::Month, TimePart::Month),
        (M::Year, TimePart::Year),
    ]
    .into_iter()
    .filter(|(m, _)| mods.has(*m))
    .map(|(_, p)| p)
    .collect::<Vec<_>>();
    let cmps = [
        (M::Lt, Cmp::Lt),
        (M::Lte, Cmp::Lte),
        (M::Gt, Cmp::Gt),
        (M::Gte, Cmp::Gte),
    ]
    .into_iter()
    .filter(|(m, _)| mods.has(*m))
    .map(|(_, c)| c)
    .collect::<Vec<_>>();
    if time.len() > 1 || cmps.len() > 1 {
        return Err("at most one time-part and one comparison modifier may be combined".into());
    }
    if !time.is_empty() || !cmps.is_empty() {
        mods.only(
            &[
                M::Lt,
                M::Lte,
                M::Gt,
                M::Gte,
                M::Minute,
                M::Hour,
                M::Day,
                M::Week,
                M::Month,
                M::Year,
                M::Neq,
                M::All,
            ],
            "a numeric comparison",
        )?;
        let cmp = cmps.first().copied().unwrap_or(Cmp::Eq);
        let mut out = Vec::new();
        for v in &item.values {
            let text = match v {
                SigmaValue::Num(s) | SigmaValue::Str(s) => s,
                _ => return Err(format!("numeric modifier needs a number, got {v:?}")),
            };
            let n = crate::predicate::parse_number(text)
                .ok_or_else(|| format!("numeric modifier needs a number, got '{text}'"))?;
            let test = match time.first() {
                Some(part) => {
                    if n.fract() != 0.0 {
                        return Err(format!("time part value must be an integer, got '{text}'"));
                    }
                    Test::Time(*part, cmp, n as i64)
                }
                None => Test::Num(cmp, n),
            };
            out.push(Expr::Pred(sink.pred(slot, test)));
        }
        return Ok(wrap(combine(out, all)));
    }

    // String matching.
    let mode = string_mode(&mods)?;
    let cased = mods.has(M::Cased);
    let keyword = item.field.is_none();
    let encodings: Vec<Modifier> = item
        .modifiers
        .iter()
        .copied()
        .filter(|m| {
            matches!(
                m,
                M::Utf16Le | M::Utf16Be | M::Utf16 | M::Wide | M::Base64 | M::Base64Offset
            )
        })
        .collect();
    if mods.has(M::Base64) && mods.has(M::Base64Offset) {
        return Err("'base64' and 'base64offset' cannot be combined".into());
    }
    let mut out = Vec::new();
    for v in &item.values {
        if *v == SigmaValue::Null {
            if !item.modifiers.iter().all(|m| *m == M::Neq) {
                return Err("null cannot be combined with modifiers".into());
            }
            if keyword {
                return Err("null is not a valid keyword".into());
            }
            out.push(Expr::not(Expr::Pred(sink.pred(slot, Test::NonNull))));
            continue;
        }
        let text = v.as_text().unwrap_or_default();
        let texts = if mods.has(M::Expand) {
            expand(&text, ph)?
        } else {
            vec![text]
        };
        for text in texts {
            let mut alts = vec![Pattern::parse(&text)];
            if mods.has(M::Windash) {
                alts = alts
                    .into_iter()
                    .map(|p| windash(&p))
                    .collect::<Result<Vec<_>, _>>()?
                    .concat();
            }
            for enc in &encodings {
                alts = encode(alts, *enc)?;
            }
            let mut value_alts = Vec::new();
            for p in alts {
                let p = match mode {
                    Some(M::Contains) => p.contains(),
                    Some(M::StartsWith) => p.startswith(),
                    Some(M::EndsWith) => p.endswith(),
                    _ if keyword => p.contains(),
                    _ => p,
                };
                let p = if cased { p } else { p.lowercase() };
                value_alts.push(Expr::Pred(sink.pred(slot, Test::Str { pat: p, cased })));
            }
            out.push(Expr::or(value_alts));
        }
    }
    Ok(wrap(combine(out, all)))
}

fn string_mode(mods: &Mods<'_>) -> Result<Option<Modifier>, String> {
    let modes: Vec<Modifier> = [Modifier::Contains, Modifier::StartsWith, Modifier::EndsWith]
        .into_iter()
        .filter(|m| mods.has(*m))
        .collect();
    match modes.as_slice() {
        [] => Ok(None),
        [m] => Ok(Some(*m)),
        _ => Err(format!(
            "contradictory modifiers: {}",
            modes
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn check_regex(re: &str) -> Result<(), String> {
    crate::re::compile(re, regex_automata::meta::Config::new())
        .map(|_| ())
        .map_err(|msg| {
            let detail = msg
                .lines()
                .filter(|l| l.starts_with("error:"))
                .collect::<Vec<_>>()
                .join(" ");
            let detail = if detail.is_empty() {
                msg.lines().next().unwrap_or_default().to_string()
            } else {
                detail
            };
            format!("invalid or unsupported regex '{re}': {detail}")
        })
}

/// Replaces `%name%` placeholders (not preceded by `\`) with every configured value.
fn expand(text: &str, ph: &Placeholders) -> Result<Vec<String>, String> {
    let mut results = vec![String::new()];
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut lit_start = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && (i == 0 || bytes[i - 1] != b'\\')
            && let Some(len) = text[i + 1..].find('%').filter(|l| *l > 0)
        {
            let name = &text[i + 1..i + 1 + len];
            let values = ph
                .get(name)
                .ok_or_else(|| format!("placeholder '%{name}%' is not configured"))?;
            if values.is_empty() {
                return Err(format!("placeholder '%{name}%' has no values"));
            }
            let lit = &text[lit_start..i];
            results = results
                .iter()
                .flat_map(|r| values.iter().map(move |v| format!("{r}{lit}{v}")))
                .collect();
            i += len + 2;
            lit_start = i;
            continue;
        }
        i += 1;
    }
    let tail = &text[lit_start..];
    Ok(results.into_iter().map(|r| r + tail).collect())
}

const DASHES: [&str; 5] = ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"];
const MAX_WINDASH_VARIANTS: usize = 625;

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `windash`: every `-` or `/` that starts an option (not preceded by a word
/// character, followed by one) may be any of the five dash characters.
fn windash(p: &Pattern) -> Result<Vec<Pattern>, String> {
    use crate::glob::Tok;
    // Expand literal by literal, building the cross product of token lists.
    let mut variants: Vec<Vec<Tok>> = vec![Vec::new()];
    for t in p.toks() {
        let choices: Vec<Tok> = match t {
            Tok::Lit(l) => {
                let mut parts: Vec<Vec<u8>> = vec![Vec::new()];
                for (i, &b) in l.iter().enumerate() {
                    let prev_word = i > 0 && is_word(l[i - 1]);
                    let next_word = l.get(i + 1).is_some_and(|n| is_word(*n));
                    if (b == b'-' || b == b'/') && !prev_word && next_word {
                        parts = parts
                            .iter()
                            .flat_map(|s| {
                                DASHES.iter().map(move |d| {
                                    let mut s = s.clone();
                                    s.extend_from_slice(d.as_bytes());
                                    s
                                })
                            })
                            .collect();
                        if parts.len() > MAX_WINDASH_VARIANTS {
                            return Err("windash expands to too many variants".into());
                        }
                    } else {
                        parts.iter_mut().for_each(|s| s.push(b));
                    }
                }
                parts.into_iter().map(Tok::Lit).collect()
            }
            other => vec![other.clone()],
        };
        variants = variants
            .iter()
            .flat_map(|v| {
                choices.iter().map(move |c| {
                    let mut v = v.clone();
                    v.push(c.clone());
                    v
                })
            })
            .collect();
        if variants.len() > MAX_WINDASH_VARIANTS {
            return Err("windash expands to too many variants".into());
        }
    }
    Ok(variants.into_iter().map(Pattern::from_toks).collect())
}

fn encode(alts: Vec<Pattern>, enc: Modifier) -> Result<Vec<Pattern>, String> {
    let mut out = Vec::new();
    for p in alts {
        let Some(bytes) = p.as_literal() else {
            return Err(format!("'{enc}' cannot encode a value with wildcards"));
        };
        let utf16 = |be: bool, bom: bool| -> Result<Vec<u8>, String> {
            let s = std::str::from_utf8(&bytes).map_err(|_| format!("'{enc}' needs text input"))?;
            let mut v = Vec::with_capacity(s.len() * 2 + 2);
            if bom {
                v.extend_from_slice(&[0xff, 0xfe]);
            }
            for u in s.encode_utf16() {
                v.extend_from_slice(&if be { u.to_be_bytes() } else { u.to_le_bytes() });
            }
            Ok(v)
        };
        match enc {
            Modifier::Utf16Le | Modifier::Wide => out.push(Pattern::literal(utf16(false, false)?)),
            Modifier::Utf16Be => out.push(Pattern::literal(utf16(true, false)?)),
            Modifier::Utf16 => out.push(Pattern::literal(utf16(false, true)?)),
            Modifier::Base64 => out.push(Pattern::literal(
                base64::engine::general_purpose::STANDARD
                    .encode(&bytes)
                    .into_bytes(),
            )),
            Modifier::Base64Offset => {
                for v in base64_offsets(&bytes) {
                    out.push(Pattern::literal(v.into_bytes()));
                }
            }
            _ => unreachable!("only encodings are passed"),
        }
    }
    Ok(out)
}

/// The three base64 encodings of `value` at byte offsets 0, 1, 2 within a
/// larger string, trimmed to the characters that do not depend on the
/// surrounding bytes.
pub fn base64_offsets(value: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const TRIM: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|i| {
            let mut buf = vec![b' '; i];
            buf.extend_from_slice(value);
            let enc = base64::engine::general_purpose::STANDARD.encode(&buf);
            let trim = TRIM[(value.len() + i) % 3];
            let end = enc.len().saturating_sub(trim);
            enc.get(START[i]..end).unwrap_or_default().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64offset_matches_pysigma() {
        assert_eq!(
            base64_offsets(b"foobar"),
            vec!["Zm9vYmFy", "Zvb2Jhc", "mb29iYX"]
        );
    }

    #[test]
    fn windash_variants() {
        let v = windash(&Pattern::parse(" -enc")).unwrap();
        assert_eq!(v.len(), 5);
        let v = windash(&Pattern::parse("a-b")).unwrap();
        assert_eq!(v.len(), 1);
        let v = windash(&Pattern::parse("-param-1")).unwrap();
        assert_eq!(v.len(), 5);
        let v = windash(&Pattern::parse("--y")).unwrap();
        assert_eq!(v.len(), 5);
    }

    #[test]
    fn expand_placeholders() {
        let mut ph = Placeholders::new();
        ph.insert("admins".into(), vec!["alice".into(), "bob".into()]);
        assert_eq!(expand("x%admins%y", &ph).unwrap(), vec!["xalicey", "xboby"]);
        assert!(
            expand("%nope%", &ph)
                .unwrap_err()
                .contains("not configured")
        );
        assert_eq!(expand(r"100\%", &ph).unwrap(), vec![r"100\%"]);
    }
}
