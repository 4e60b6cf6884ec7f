//! Derived values: a Sigma field whose source logs it in another form.
//!
//! Some forwarders rewrite values on the way: Elastic's Sysmon pipeline
//! turns `Initiated: true` into `network.direction: egress`, splits
//! `User: NT AUTHORITY\SYSTEM` into `user.domain` and `user.name`, and
//! keeps registry `Details: DWORD (0x00000004)` as `["4"]`. No path holds
//! what the rule was written against, so a mapping can name a derived
//! value instead: text built from the event's values by a template, kept
//! only when a condition holds, optionally translated through a table.
//!
//! ```yaml
//! derived:
//!   Initiated:
//!     template: '{network.direction}'
//!     values: {egress: 'true', ingress: 'false'}
//!   Details_dword:
//!     template: 'DWORD ({registry.data.strings|hex32})'
//!     require: {registry.data.type: SZ_DWORD}
//!   Hashes:
//!     parts: ['SHA1={process.hash.sha1}', 'MD5={process.hash.md5}']
//!     join: ','
//! fields:
//!   Initiated: [winlog.event_data.Initiated, 'derived:Initiated']
//! ```
//!
//! Semantics (the engine and the reference evaluation share them):
//! - `{path}` reads every scalar value at `path` (and its aliases); a path
//!   holding several values (an array) yields one result per value, and
//!   several such references yield one per combination, up to
//!   [`MAX_RESULTS`] values ([`MAX_TRIES`] combinations tried).
//! - `parts` are templates joined by `join` (default empty); a part one of
//!   whose references has no value is left out, and when every part is
//!   left out there is no value. `template: T` is `parts: [T]`.
//! - `|hex32` writes a decimal number as Sysmon writes a DWORD
//!   (`0x00000004`), `|qword` as it writes a QWORD
//!   (`0x00000000-0x00000004`, high then low half); `|lower` and `|upper`
//!   change case. A value they cannot convert leaves its part out.
//! - `require: {path: value or [values]}`: the derived value exists only
//!   when some value at each path equals one of the values
//!   (case-insensitive; `'*'` or `[]`: any value).
//! - `unless: {path: value or [values]}`: no derived value when some
//!   value at a path equals one of the values (`'*'` or `[]`: when the
//!   path has any value).
//! - `each: PATH`: the template is written once for every object at PATH
//!   (an array of objects: each element), its references read relative
//!   to that object (`{name}` is `PATH.name` within the same element), so
//!   members of one element stay together. Each object gives its own
//!   values, or with `each_join: SEP` all of them join into one value.
//! - `values: {from: to}`: each result is replaced by the table's entry
//!   for it (case-insensitive); results not in the table are dropped.

use std::collections::HashMap;
use std::fmt::Write as _;

/// Most values one derivation yields for one event (for one object of an
/// `each` value without `each_join`, in all), and most combinations of
/// values it tries.
pub const MAX_RESULTS: usize = 256;
const MAX_TRIES: usize = 4 * MAX_RESULTS;

/// Most inputs with several values whose combinations are taken (the
/// others take their first value); 2^8 combinations already reach
/// [`MAX_RESULTS`].
const MAX_MULTI: usize = 8;

/// Most objects an `each` value is written for.
pub const MAX_OBJECTS: usize = 4096;

/// How a reference's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Text,
    Hex32,
    Qword,
    Lower,
    Upper,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Ref { input: usize, func: Func },
}

/// One derived value of a mapping.
#[derive(Debug, Clone)]
pub struct Derivation {
    pub name: String,
    /// Per input: its paths (the path written and its aliases).
    pub inputs: Vec<Vec<String>>,
    parts: Vec<Vec<Piece>>,
    join: String,
    /// (input, lowercased accepted values; empty: any).
    require: Vec<(usize, Vec<String>)>,
    /// (input, lowercased refused values; empty: any).
    unless: Vec<(usize, Vec<String>)>,
    /// Lowercased result -> replacement.
    values: Option<HashMap<String, String>>,
    /// The inputs the parts read, each once.
    reads: Vec<usize>,
    /// `each`: the input whose values are the objects the template is
    /// written for, and per input the path relative to such an object
    /// (None: read from the event as a whole).
    pub each: Option<usize>,
    pub relative: Vec<Option<String>>,
    each_join: Option<String>,
}

/// What a mapping file says about one derived value.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDerivation {
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    parts: Option<Vec<String>>,
    #[serde(default)]
    join: Option<String>,
    #[serde(default)]
    require: serde_yaml_ng::Mapping,
    #[serde(default)]
    unless: serde_yaml_ng::Mapping,
    #[serde(default)]
    values: Option<serde_yaml_ng::Mapping>,
    #[serde(default)]
    each: Option<String>,
    #[serde(default)]
    each_join: Option<String>,
}

/// A YAML scalar as text (numbers and booleans as written).
fn scalar_text(v: &serde_yaml_ng::Value) -> Option<String> {
    match v {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Derivation {
    /// Compiles `raw`; `expand` gives a path's aliases (the path first).
    /// Errors name what is wrong, for the caller to prefix with the
    /// derivation and file.
    pub(crate) fn compile(
        name: &str,
        raw: RawDerivation,
        expand: &dyn Fn(&str) -> Vec<String>,
    ) -> Result<Derivation, String> {
        let templates = match (raw.template, raw.parts) {
            (Some(t), None) => vec![t],
            (None, Some(p)) if !p.is_empty() => p,
            (None, Some(_)) => return Err("'parts' is empty".into()),
            (Some(_), Some(_)) => return Err("give 'template' or 'parts', not both".into()),
            (None, None) => return Err("needs a 'template' or 'parts'".into()),
        };
        let mut d = Derivation {
            name: name.to_string(),
            inputs: Vec::new(),
            parts: Vec::new(),
            join: raw.join.unwrap_or_default(),
            require: Vec::new(),
            unless: Vec::new(),
            values: None,
            reads: Vec::new(),
            each: None,
            relative: Vec::new(),
            each_join: raw.each_join,
        };
        if d.each_join.is_some() && raw.each.is_none() {
            return Err("'each_join' needs 'each'".into());
        }
        let input_of = |path: &str, inputs: &mut Vec<Vec<String>>| -> usize {
            let paths = expand(path);
            match inputs.iter().position(|p| *p == paths) {
                Some(i) => i,
                None => {
                    inputs.push(paths);
                    inputs.len() - 1
                }
            }
        };
        if let Some(each) = &raw.each {
            if each.trim().is_empty() {
                return Err("'each' is empty".into());
            }
            d.each = Some(input_of(each, &mut d.inputs));
        }
        for t in &templates {
            let pieces = parse_template(t).map_err(|e| format!("template '{t}': {e}"))?;
            let pieces = pieces
                .into_iter()
                .map(|p| match p {
                    RawPiece::Lit(s) => Piece::Lit(s),
                    RawPiece::Ref(path, func) => match &raw.each {
                        None => Piece::Ref {
                            input: input_of(&path, &mut d.inputs),
                            func,
                        },
                        Some(each) => {
                            let input = input_of(&format!("{each}.{path}"), &mut d.inputs);
                            d.relative.resize(d.inputs.len(), None);
                            d.relative[input] = Some(path);
                            Piece::Ref { input, func }
                        }
                    },
                })
                .collect::<Vec<_>>();
            for p in &pieces {
                if let Piece::Ref { input, .. } = p
                    && !d.reads.contains(input)
                {
                    d.reads.push(*input);
                }
            }
            d.parts.push(pieces);
        }
        for (which, table) in [("require", raw.require), ("unless", raw.unless)] {
            for (k, v) in table {
                let Some(path) = k.as_str() else {
                    return Err(format!("{which}: key {k:?} is not a path"));
                };
                let vals = crate::mapping::condition_values(v)
                    .map_err(|e| format!("{which} '{path}': {e}"))?;
                let input = input_of(path, &mut d.inputs);
                if which == "require" {
                    d.require.push((input, vals));
                } else {
                    d.unless.push((input, vals));
                }
            }
        }
        if let Some(table) = raw.values {
            let mut m = HashMap::new();
            for (k, v) in table {
                let (Some(k), Some(v)) = (scalar_text(&k), scalar_text(&v)) else {
                    return Err(format!("values: {k:?}: {v:?} is not a pair of scalars"));
                };
                m.insert(crate::glob::lowercase(&k), v);
            }
            d.values = Some(m);
        }
        d.relative.resize(d.inputs.len(), None);
        Ok(d)
    }

    /// The derived values of one event. `count(i)` is how many values
    /// input `i` has (scalars; for the `each` input, objects);
    /// `text(i, k, out)` appends the `k`-th one's text to `out`;
    /// `owner(i, k)` is which of the `each` input's objects holds the
    /// `k`-th value of a relative input (`usize::MAX`: none). `emit` gets
    /// each value (at most [`MAX_RESULTS`] per object).
    pub fn eval(
        &self,
        count: &dyn Fn(usize) -> usize,
        text: &mut dyn FnMut(usize, usize, &mut String),
        owner: &dyn Fn(usize, usize) -> usize,
        buf: &mut String,
        emit: &mut dyn FnMut(&str),
    ) {
        // Conditions first: most events of a mapping lack them.
        let mut holds = |input: usize, vals: &[String]| {
            (0..count(input)).any(|k| {
                if vals.is_empty() {
                    return true;
                }
                buf.clear();
                text(input, k, buf);
                vals.iter().any(|v| eq_ignore_case(v, buf))
            })
        };
        if !self.require.iter().all(|(i, v)| holds(*i, v))
            || self.unless.iter().any(|(i, v)| holds(*i, v))
        {
            return;
        }
        let Some(each) = self.each else {
            return self.eval_one(count, text, buf, emit);
        };
        let nobj = count(each).min(MAX_OBJECTS);
        // Per relative input and object: the indexes of its values the
        // object holds (one pass over the values).
        let by_object: Vec<Vec<Vec<usize>>> = (0..self.inputs.len())
            .map(|i| {
                if self.relative[i].is_none() {
                    return Vec::new();
                }
                let mut v = vec![Vec::new(); nobj];
                for k in 0..count(i) {
                    if let Some(o) = v.get_mut(owner(i, k)) {
                        o.push(k);
                    }
                }
                v
            })
            .collect();
        let (mut joined, mut any, mut n) = (String::new(), false, 0);
        for j in 0..nobj {
            // Absolute inputs have no list: all their values.
            let mine = |i: usize| by_object[i].get(j);
            let c = |i: usize| mine(i).map_or_else(|| count(i), Vec::len);
            let mut t =
                |i: usize, k: usize, out: &mut String| text(i, mine(i).map_or(k, |ks| ks[k]), out);
            match &self.each_join {
                Some(sep) => self.eval_one(&c, &mut t, buf, &mut |v| {
                    if any {
                        joined.push_str(sep);
                    }
                    joined.push_str(v);
                    any = true;
                }),
                None => self.eval_one(&c, &mut t, buf, &mut |v| {
                    if n < MAX_RESULTS {
                        emit(v);
                        n += 1;
                    }
                }),
            }
        }
        if any {
            emit(&joined);
        }
    }

    /// [`Derivation::eval`] for one object (or the event), conditions
    /// checked.
    fn eval_one(
        &self,
        count: &dyn Fn(usize) -> usize,
        text: &mut dyn FnMut(usize, usize, &mut String),
        buf: &mut String,
        emit: &mut dyn FnMut(&str),
    ) {
        // Combinations of the values of the inputs the parts read that
        // have several (most have one or none): an odometer over those.
        let mut multi = [0usize; MAX_MULTI];
        let mut nmulti = 0;
        for &input in &self.reads {
            if count(input) > 1 && nmulti < MAX_MULTI {
                multi[nmulti] = input;
                nmulti += 1;
            }
        }
        let read = &multi[..nmulti];
        let mut pick = [0usize; MAX_MULTI];
        let (mut emitted, mut tried) = (0, 0);
        let mut piece = String::new();
        loop {
            buf.clear();
            let mut any = false;
            for part in &self.parts {
                piece.clear();
                if !write_part(part, read, &pick, count, text, &mut piece) {
                    continue;
                }
                if any {
                    buf.push_str(&self.join);
                }
                buf.push_str(&piece);
                any = true;
            }
            tried += 1;
            if any {
                match &self.values {
                    None => emit(buf),
                    Some(table) => {
                        if let Some(v) = table.get(&crate::glob::lowercase(buf)) {
                            emit(v)
                        }
                    }
                }
                emitted += 1;
            }
            // Next combination (odometer over the inputs with values).
            let mut i = 0;
            loop {
                if i == read.len() || emitted >= MAX_RESULTS || tried >= MAX_TRIES {
                    return;
                }
                pick[i] += 1;
                if pick[i] < count(read[i]) {
                    break;
                }
                pick[i] = 0;
                i += 1;
            }
        }
    }
}

/// Writes one part for the chosen values; false when a reference has no
/// value or cannot be converted.
fn write_part(
    part: &[Piece],
    read: &[usize],
    pick: &[usize],
    count: &dyn Fn(usize) -> usize,
    text: &mut dyn FnMut(usize, usize, &mut String),
    out: &mut String,
) -> bool {
    let mut raw = String::new();
    for p in part {
        match p {
            Piece::Lit(s) => out.push_str(s),
            Piece::Ref { input, func } => {
                // Inputs past the odometer's take their first value.
                let k = read.iter().position(|r| r == input).map_or(0, |i| pick[i]);
                if k >= count(*input) {
                    return false;
                }
                if *func == Func::Text {
                    text(*input, k, out);
                    continue;
                }
                raw.clear();
                text(*input, k, &mut raw);
                if !convert(*func, &raw, out) {
                    return false;
                }
            }
        }
    }
    true
}

fn convert(func: Func, raw: &str, out: &mut String) -> bool {
    match func {
        Func::Text => out.push_str(raw),
        Func::Lower => out.push_str(&crate::glob::lowercase(raw)),
        Func::Upper => out.push_str(&raw.to_uppercase()),
        Func::Hex32 => match parse_number(raw.trim()) {
            Some(n) if n <= u64::from(u32::MAX) => {
                let _ = write!(out, "0x{n:08x}");
            }
            _ => return false,
        },
        Func::Qword => match parse_number(raw.trim()) {
            Some(n) => {
                let _ = write!(out, "0x{:08x}-0x{:08x}", n >> 32, n & 0xffff_ffff);
            }
            None => return false,
        },
    }
    true
}

/// A non-negative integer, decimal or `0x` hexadecimal.
fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn eq_ignore_case(lowered: &str, s: &str) -> bool {
    if s.is_ascii() {
        lowered.eq_ignore_ascii_case(s)
    } else {
        *lowered == crate::glob::lowercase(s)
    }
}

enum RawPiece {
    Lit(String),
    Ref(String, Func),
}

/// `text {path|func} text`, with `{{` and `}}` for literal braces.
fn parse_template(t: &str) -> Result<Vec<RawPiece>, String> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = t.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|x| x.1) == Some('{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek().map(|x| x.1) == Some('}') => {
                chars.next();
                lit.push('}');
            }
            '}' => {
                return Err(format!(
                    "unmatched '}}' at offset {i} (write '}}}}' for a brace)"
                ));
            }
            '{' => {
                let rest = &t[i + 1..];
                let Some(end) = rest.find('}') else {
                    return Err(format!("unclosed '{{' at offset {i}"));
                };
                let inner = &rest[..end];
                let (path, func) = match inner.split_once('|') {
                    None => (inner, Func::Text),
                    Some((p, f)) => (
                        p,
                        match f.trim() {
                            "hex32" => Func::Hex32,
                            "qword" => Func::Qword,
                            "lower" => Func::Lower,
                            "upper" => Func::Upper,
                            other => {
                                return Err(format!(
                                    "unknown conversion '{other}' at offset {} (known: hex32, qword, lower, upper)",
                                    i + 1 + p.len() + 1
                                ));
                            }
                        },
                    ),
                };
                let path = path.trim();
                if path.is_empty() {
                    return Err(format!("empty reference at offset {i}"));
                }
                if !lit.is_empty() {
                    out.push(RawPiece::Lit(std::mem::take(&mut lit)));
                }
                out.push(RawPiece::Ref(path.to_string(), func));
                // Skip the reference's characters.
                while let Some(&(j, _)) = chars.peek() {
                    if j > i + end + 1 {
                        break;
                    }
                    chars.next();
                }
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(RawPiece::Lit(lit));
    }
    if !out.iter().any(|p| matches!(p, RawPiece::Ref(..))) {
        return Err("reads no path (write references as {path})".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derive(yaml: &str) -> Derivation {
        let raw: RawDerivation = serde_yaml_ng::from_str(yaml).unwrap();
        Derivation::compile("t", raw, &|p| vec![p.to_string()]).unwrap()
    }

    fn error(yaml: &str) -> String {
        let raw: RawDerivation = serde_yaml_ng::from_str(yaml).unwrap();
        Derivation::compile("t", raw, &|p| vec![p.to_string()]).unwrap_err()
    }

    /// The derived values for inputs given as (path, values).
    fn run(d: &Derivation, event: &[(&str, &[&str])]) -> Vec<String> {
        let vals: Vec<Vec<String>> = d
            .inputs
            .iter()
            .map(|paths| {
                event
                    .iter()
                    .filter(|(p, _)| paths.iter().any(|x| x == p))
                    .flat_map(|(_, v)| v.iter().map(|s| s.to_string()))
                    .collect()
            })
            .collect();
        let mut out = Vec::new();
        d.eval(
            &|i| vals[i].len(),
            &mut |i, k, o| o.push_str(&vals[i][k]),
            &|_, _| usize::MAX,
            &mut String::new(),
            &mut |s| out.push(s.to_string()),
        );
        out
    }

    /// [`run`] for `each` values: `objects` are the objects at the `each`
    /// path, each a list of (relative path, value).
    fn run_each(d: &Derivation, objects: &[&[(&str, &str)]]) -> Vec<String> {
        // Per input: (value, object) pairs.
        let vals: Vec<Vec<(String, usize)>> = (0..d.inputs.len())
            .map(|i| match &d.relative[i] {
                _ if Some(i) == d.each => (0..objects.len()).map(|j| (String::new(), j)).collect(),
                Some(rel) => objects
                    .iter()
                    .enumerate()
                    .flat_map(|(j, o)| {
                        o.iter()
                            .filter(|(p, _)| p == rel)
                            .map(move |(_, v)| (v.to_string(), j))
                    })
                    .collect(),
                None => Vec::new(),
            })
            .collect();
        let mut out = Vec::new();
        d.eval(
            &|i| vals[i].len(),
            &mut |i, k, o| o.push_str(&vals[i][k].0),
            &|i, k| vals[i][k].1,
            &mut String::new(),
            &mut |s| out.push(s.to_string()),
        );
        out
    }

    #[test]
    fn each_object_keeps_its_members_together() {
        let yaml = r#"{each: inv, parts: ['{type}({cmd}): ', 'name={name}; value=', '{value}'], each_join: "\n"}"#;
        let d = derive(yaml);
        let objs: [&[(&str, &str)]; 3] = [
            &[
                ("type", "CommandInvocation"),
                ("cmd", "Out-Null"),
                ("value", "\"Out-Null\""),
            ],
            &[
                ("type", "ParameterBinding"),
                ("cmd", "Out-Null"),
                ("name", "\"InputObject\""),
                ("value", "\"x\""),
            ],
            &[("cmd", "lonely")],
        ];
        assert_eq!(
            run_each(&d, &objs),
            [
                "CommandInvocation(Out-Null): \"Out-Null\"\nParameterBinding(Out-Null): name=\"InputObject\"; value=\"x\""
            ]
        );
        let d = derive("{each: inv, template: '{cmd}={value}'}");
        assert_eq!(
            run_each(&d, &objs),
            ["Out-Null=\"Out-Null\"", "Out-Null=\"x\""]
        );
        assert!(run_each(&d, &[]).is_empty());
        assert!(error("{template: '{a}', each_join: ','}").contains("needs 'each'"));
    }

    #[test]
    fn a_table_translates_and_drops_what_it_lacks() {
        let d =
            derive("{template: '{network.direction}', values: {egress: 'true', ingress: 'false'}}");
        assert_eq!(run(&d, &[("network.direction", &["Egress"])]), ["true"]);
        assert_eq!(run(&d, &[("network.direction", &["ingress"])]), ["false"]);
        assert!(run(&d, &[("network.direction", &["internal"])]).is_empty());
        assert!(run(&d, &[]).is_empty());
    }

    #[test]
    fn a_template_joins_paths_and_needs_each() {
        let d = derive(r"{template: '{user.domain}\{user.name}'}");
        assert_eq!(
            run(
                &d,
                &[
                    ("user.domain", &["NT AUTHORITY"]),
                    ("user.name", &["SYSTEM"])
                ]
            ),
            [r"NT AUTHORITY\SYSTEM"]
        );
        assert!(run(&d, &[("user.name", &["SYSTEM"])]).is_empty());
    }

    #[test]
    fn parts_missing_a_value_are_left_out() {
        let d = derive("{parts: ['SHA1={a}', 'MD5={b}', 'IMPHASH={c|upper}'], join: ','}");
        assert_eq!(
            run(&d, &[("a", &["x1"]), ("c", &["ab"])]),
            ["SHA1=x1,IMPHASH=AB"]
        );
        assert_eq!(run(&d, &[("b", &["m"])]), ["MD5=m"]);
        assert!(run(&d, &[("z", &["m"])]).is_empty());
    }

    #[test]
    fn numbers_are_written_as_sysmon_writes_registry_values() {
        let d = derive("{template: 'DWORD ({v|hex32})', require: {t: SZ_DWORD}}");
        assert_eq!(
            run(&d, &[("t", &["SZ_DWORD"]), ("v", &["4"])]),
            ["DWORD (0x00000004)"]
        );
        assert_eq!(
            run(&d, &[("t", &["sz_dword"]), ("v", &["4294967295"])]),
            ["DWORD (0xffffffff)"]
        );
        assert!(run(&d, &[("t", &["SZ_DWORD"]), ("v", &["4294967296"])]).is_empty());
        assert!(run(&d, &[("t", &["SZ_DWORD"]), ("v", &["four"])]).is_empty());
        assert!(run(&d, &[("t", &["SZ_SZ"]), ("v", &["4"])]).is_empty());
        let t = derive("{template: '{v}', unless: {t: [SZ_DWORD, SZ_QWORD]}}");
        assert_eq!(run(&t, &[("t", &["REG_SZ"]), ("v", &["4"])]), ["4"]);
        assert_eq!(run(&t, &[("v", &["4"])]), ["4"]);
        assert!(run(&t, &[("t", &["sz_qword"]), ("v", &["4"])]).is_empty());
        let q = derive("{template: 'QWORD ({v|qword})'}");
        assert_eq!(
            run(&q, &[("v", &["4294967297"])]),
            ["QWORD (0x00000001-0x00000001)"]
        );
    }

    #[test]
    fn several_values_give_each_combination_up_to_the_limit() {
        let d = derive("{template: '{a}-{b}'}");
        let mut got = run(&d, &[("a", &["1", "2"]), ("b", &["x", "y"])]);
        got.sort();
        assert_eq!(got, ["1-x", "1-y", "2-x", "2-y"]);
        let many: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(run(&d, &[("a", &many), ("b", &many)]).len(), MAX_RESULTS);
        // One list of values is read whole up to the limit.
        let d = derive("{template: 'x{a}'}");
        let long: Vec<String> = (0..300).map(|i| i.to_string()).collect();
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        assert_eq!(run(&d, &[("a", &long[..200])]).len(), 200);
        assert_eq!(run(&d, &[("a", &long)]).len(), MAX_RESULTS);
        // Combinations that give nothing are bounded too.
        let d = derive("{template: '{a|hex32}-{b}'}");
        let words: Vec<String> = (0..60).map(|i| format!("w{i}")).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert!(run(&d, &[("a", &words), ("b", &words)]).is_empty());
    }

    #[test]
    fn many_inputs_in_one_value() {
        let parts: Vec<String> = (0..13).map(|i| format!("'k{i} = {{p{i}}}'")).collect();
        let d = derive(&format!("{{parts: [{}], join: ';'}}", parts.join(", ")));
        let names: Vec<String> = (0..13).map(|i| format!("p{i}")).collect();
        let event: Vec<(&str, &[&str])> = names
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 1)
            .map(|(_, n)| (n.as_str(), &["v", "w"][..]))
            .collect();
        let got = run(&d, &event);
        assert_eq!(got.len(), MAX_RESULTS);
        assert!(got[0].starts_with("k0 = v;k2 = v;k3 = v;"), "{}", got[0]);
        assert!(got.iter().all(|g| g.split(';').count() == 9), "{got:?}");
    }

    #[test]
    fn literal_braces_and_bad_templates() {
        let d = derive("{template: '{{{a}}}'}");
        assert_eq!(run(&d, &[("a", &["x"])]), ["{x}"]);
        assert!(error("{template: 'x'}").contains("reads no path"));
        assert!(error("{template: '{a'}").contains("unclosed '{' at offset 0"));
        assert!(error("{template: 'a}'}").contains("unmatched '}' at offset 1"));
        assert!(error("{template: '{a|hex}'}").contains("unknown conversion 'hex' at offset 3"));
        assert!(error("{template: '{}'}").contains("empty reference"));
        assert!(error("{}").contains("needs a 'template' or 'parts'"));
        assert!(error("{template: '{a}', parts: ['{b}']}").contains("not both"));
    }
}
