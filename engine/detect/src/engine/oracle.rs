//! A slow, independent evaluation of a compiled rule set, for tests.
//!
//! Every rule of every bucket the event routes to is evaluated, on values
//! found by plain path lookups over the parsed event and with each
//! predicate's reference test ([`Test::matches_text`], the reference
//! wildcard matcher, the plain regex engine): no gathering walk or
//! remembered walks, no field indexes, value memo, keyword prefilter,
//! hash lists, fixed-position regexes or trigger sets. What it shares with
//! [`Engine::detect`] is the compiled condition programs and the mapping's
//! bucket conditions, which the conformance suite and the mapping and
//! regression tests check on their own.
//! The differential tests hold `detect` to it on long, varied streams.

use regex_automata::meta::Regex;

use super::{Engine, get_bit, set_bit, words};
use crate::compile::RefMode;
use crate::event::Doc;
use crate::json::{Kind, Node};
use crate::predicate::Test;

/// A value found at a path: its kind and the text it reads as.
struct Val {
    kind: Kind,
    text: Option<String>,
}

/// Everything the reference evaluation needs that is built once.
pub(super) struct Oracle {
    /// Per predicate: its regex, compiled by the plain regex engine.
    regexes: Vec<Option<Regex>>,
    /// Per field-reference operand id: its paths, and the derived values
    /// it reads (indexes into [`Engine::derived`]).
    operands: Vec<Operand>,
}

type Operand = (Vec<Vec<String>>, Vec<u32>);

/// Values at `segs` below `node`, as the gathering walk defines them: an
/// array at the end of a path is a value and so is each of its elements
/// (nested arrays flattened); objects inside arrays are looked into with
/// the rest of the path; every member with a matching key counts.
fn values_at<'d>(node: Node<'d>, segs: &[String], out: &mut Vec<Node<'d>>) {
    match segs.split_first() {
        None => {
            out.push(node);
            for e in node.elements() {
                values_at(e, segs, out);
            }
        }
        Some((first, rest)) => match node.kind() {
            Kind::Object => {
                for (k, v) in node.members() {
                    if k == first {
                        values_at(v, rest, out);
                    }
                }
            }
            Kind::Array => {
                for e in node.elements() {
                    if matches!(e.kind(), Kind::Object | Kind::Array) {
                        values_at(e, segs, out);
                    }
                }
            }
            _ => {}
        },
    }
}

/// The values of derived value `d`, from plain lookups of its inputs
/// (relative inputs of an `each` value looked up inside each object).
fn derive(e: &Engine, d: u32, doc: &Doc<'_>) -> Vec<Val> {
    let d = &e.derived[d as usize];
    let dv = &d.derivation;
    // Per input: its paths (and aliases) as key segments.
    let input_paths: Vec<Vec<Vec<String>>> = dv
        .inputs
        .iter()
        .map(|paths| {
            paths
                .iter()
                .flat_map(|p| crate::event::segmentations(p))
                .collect()
        })
        .collect();
    // Scalar texts at `paths` below `node`, in document order (as the
    // walk gathers them), not path by path.
    let scalars = |node: crate::json::Node<'_>, paths: &[Vec<String>]| -> Vec<String> {
        let mut nodes = Vec::new();
        for p in paths {
            values_at(node, p, &mut nodes);
        }
        nodes.sort_by_key(|n| n.index());
        let mut buf = String::new();
        nodes
            .into_iter()
            .filter(|n| n.kind() != Kind::Array)
            .filter_map(|n| n.text(&mut buf).map(str::to_string))
            .collect()
    };
    // The objects at the `each` path, in document order.
    let mut objects = Vec::new();
    if let Some(each) = dv.each
        && matches!(doc.root().kind(), Kind::Object | Kind::Array)
    {
        for p in &input_paths[each] {
            values_at(doc.root(), p, &mut objects);
        }
        objects.retain(|n| n.kind() == Kind::Object);
        objects.sort_by_key(|n| n.index());
    }
    // Per input: (text, object holding it).
    let inputs: Vec<Vec<(String, usize)>> = (0..dv.inputs.len())
        .map(|i| {
            if Some(i) == dv.each {
                return (0..objects.len()).map(|j| (String::new(), j)).collect();
            }
            match &dv.relative[i] {
                None if !matches!(doc.root().kind(), Kind::Object | Kind::Array) => Vec::new(),
                None => scalars(doc.root(), &input_paths[i])
                    .into_iter()
                    .map(|t| (t, usize::MAX))
                    .collect(),
                Some(rel) => {
                    let segs = crate::event::segmentations(rel);
                    objects
                        .iter()
                        .enumerate()
                        .flat_map(|(j, o)| scalars(*o, &segs).into_iter().map(move |t| (t, j)))
                        .collect()
                }
            }
        })
        .collect();
    let mut out = Vec::new();
    dv.eval(
        &|i| inputs[i].len(),
        &mut |i, k, o| o.push_str(&inputs[i][k].0),
        &|i, k| inputs[i][k].1,
        &mut String::new(),
        &mut |t| {
            out.push(Val {
                kind: Kind::String,
                text: Some(t.to_string()),
            })
        },
    );
    out
}

fn resolve(doc: &Doc<'_>, paths: &[Vec<String>]) -> Vec<Val> {
    let root = doc.root();
    let mut nodes = Vec::new();
    if matches!(root.kind(), Kind::Object | Kind::Array) {
        for p in paths {
            values_at(root, p, &mut nodes);
        }
    }
    let mut buf = String::new();
    nodes
        .into_iter()
        .map(|n| Val {
            kind: n.kind(),
            text: n.text(&mut buf).map(str::to_string),
        })
        .collect()
}

/// Every value text of the event (strings, numbers, booleans; not keys).
fn all_texts(node: Node<'_>, out: &mut Vec<Val>) {
    match node.kind() {
        Kind::Object => node.members().for_each(|(_, v)| all_texts(v, out)),
        Kind::Array => node.elements().for_each(|v| all_texts(v, out)),
        Kind::Null => {}
        kind => {
            let mut buf = String::new();
            out.push(Val {
                kind,
                text: node.text(&mut buf).map(str::to_string),
            });
        }
    }
}

impl Engine {
    pub(super) fn oracle(&self) -> Oracle {
        let regexes = self
            .preds
            .iter()
            .map(|p| match &p.test {
                Test::Regex(r) => Some(
                    crate::re::compile(r, regex_automata::meta::Config::new())
                        .expect("compiled once already"),
                ),
                _ => None,
            })
            .collect();
        let mut operands = vec![(Vec::new(), Vec::new()); self.fieldrefs.len() * 2];
        fn add(operands: &mut Vec<Operand>, id: u32) -> &mut Operand {
            let id = id as usize;
            if operands.len() <= id {
                operands.resize(id + 1, (Vec::new(), Vec::new()));
            }
            &mut operands[id]
        }
        for (segs, node) in self.trie.paths() {
            for &id in &self.path_data[node as usize].refs {
                add(&mut operands, id).0.push(segs.clone());
            }
        }
        for (k, d) in self.derived.iter().enumerate() {
            for &id in &self.path_data[d.node as usize].refs {
                add(&mut operands, id).1.push(k as u32);
            }
        }
        Oracle { regexes, operands }
    }

    /// The indexes (into [`Engine::rules`]) of the rules `doc` raises,
    /// sorted, by the reference evaluation.
    pub(super) fn reference_detect(&self, o: &Oracle, doc: &Doc<'_>) -> Vec<u32> {
        // Routing: each bucket's conditions on its paths' lowercased values.
        let route_vals: Vec<Vec<String>> = self
            .router
            .paths
            .iter()
            .map(|paths| {
                resolve(doc, paths)
                    .into_iter()
                    .filter_map(|v| v.text.map(|t| crate::glob::lowercase(&t)))
                    .collect()
            })
            .collect();
        let mut active = vec![0u64; words(self.buckets.len())];
        for b in 0..self.buckets.len() as u32 {
            if self.router.accepts(b, &route_vals) {
                set_bit(&mut active, b);
            }
        }
        // Predicates, slot by slot.
        let mut slot_vals: Vec<Option<Vec<Val>>> = (0..self.slots.len()).map(|_| None).collect();
        let mut fired = vec![0u64; words(self.preds.len())];
        for (p, pred) in self.preds.iter().enumerate() {
            let slot = &self.slots[pred.slot as usize];
            if !super::intersects(&active, &slot.buckets) {
                continue;
            }
            let vals = slot_vals[pred.slot as usize].get_or_insert_with(|| {
                if Some(pred.slot) == self.keyword_slot {
                    let mut v = Vec::new();
                    all_texts(doc.root(), &mut v);
                    v
                } else {
                    let mut v = resolve(doc, &slot.paths);
                    for &d in &slot.derived {
                        v.extend(derive(self, d, doc));
                    }
                    v
                }
            });
            let test = |t: &str| match &o.regexes[p] {
                Some(re) => re.is_match(t),
                None => pred.test.matches_text(t),
            };
            let fires = match pred.test {
                Test::Present => !vals.is_empty(),
                Test::NonNull => vals.iter().any(|v| v.kind != Kind::Null),
                _ => vals
                    .iter()
                    .any(|v| v.kind != Kind::Array && v.text.as_deref().is_some_and(test)),
            };
            if fires {
                set_bit(&mut fired, p as u32);
            }
        }
        let mut out: Vec<u32> = Vec::new();
        for cr in &self.compiled {
            if !get_bit(&active, cr.bucket) {
                continue;
            }
            let ok = self.program.eval(cr.code, &fired, &mut |f| {
                self.reference_fieldref(o, f as usize, doc)
            });
            if ok {
                out.push(cr.rule);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn reference_fieldref(&self, o: &Oracle, f: usize, doc: &Doc<'_>) -> bool {
        let fr = &self.fieldrefs[f];
        let texts = |id: u32| -> Vec<String> {
            let (paths, derived) = &o.operands[id as usize];
            let mut vals = resolve(doc, paths);
            for &d in derived {
                vals.extend(derive(self, d, doc));
            }
            vals.into_iter()
                .filter(|v| v.kind != Kind::Array)
                .filter_map(|v| v.text)
                .map(|t| {
                    if fr.spec.cased {
                        t
                    } else {
                        crate::glob::lowercase(&t)
                    }
                })
                .collect()
        };
        let (a, b) = (texts(fr.a), texts(fr.b));
        a.iter().any(|a| {
            b.iter().any(|b| match fr.spec.mode {
                RefMode::Eq => a == b,
                RefMode::Contains => a.contains(b.as_str()),
                RefMode::StartsWith => a.starts_with(b.as_str()),
                RefMode::EndsWith => a.ends_with(b.as_str()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::path::Path;

    use serde_json::Value;
    use warden_gen::Rng;

    use super::*;
    use crate::glob::Shape;

    /// The literals of the rule set's wildcard patterns, by the last key
    /// of each path their field is read at (`""`: all of them): what
    /// mutated events put into their values so that rules fire.
    type Literals = std::collections::HashMap<String, Vec<String>>;

    fn literals(e: &Engine) -> Literals {
        let mut out = Literals::new();
        for p in &e.preds {
            let Test::Str { pat, .. } = &p.test else {
                continue;
            };
            let (Shape::Exact(l) | Shape::Prefix(l) | Shape::Suffix(l) | Shape::Contains(l)) =
                pat.shape()
            else {
                continue;
            };
            if l.is_empty() {
                continue;
            }
            let l = String::from_utf8_lossy(l).into_owned();
            for path in &e.slots[p.slot as usize].paths {
                if let Some(k) = path.last() {
                    out.entry(k.clone()).or_default().push(l.clone());
                }
            }
            out.entry(String::new()).or_default().push(l);
        }
        for v in out.values_mut() {
            v.sort();
            v.dedup();
        }
        out
    }

    /// `s` with some letters' case flipped, and now and then a character
    /// whose lowercase is ASCII (the Kelvin sign, `İ`) or a final sigma.
    fn recase(g: &mut Rng, s: &str) -> String {
        s.chars()
            .map(|c| match g.below(12) {
                0 | 1 => c.to_ascii_uppercase(),
                2 if c == 'k' => '\u{212a}',
                3 if c == 'σ' => 'Σ',
                _ => c,
            })
            .collect()
    }

    /// A value for a mutated field: a rule literal, alone or inside other
    /// text, in mixed case.
    fn planted(g: &mut Rng, lits: &Literals, key: &str, old: &str) -> String {
        let lits = match lits.get(key) {
            Some(l) if g.below(4) != 0 => l,
            _ => &lits[""],
        };
        let pick = g.below(lits.len());
        let lit = recase(g, &lits[pick]);
        match g.below(6) {
            0 => lit,
            // A near miss: the literal without its last character.
            5 => lit
                .chars()
                .take(lit.chars().count().saturating_sub(1))
                .collect(),
            1 => format!("{old}{lit}"),
            2 => format!("{lit}{old}"),
            3 => format!("{} {lit} {}", g.hex(3), g.hex(2)),
            _ => {
                let other = g.below(lits.len());
                format!("{lit}{}", lits[other])
            }
        }
    }

    /// Mutates the strings of `v` in place: planted literals, arrays, nulls,
    /// numbers, `#text` objects, members moved to the end.
    fn mutate(g: &mut Rng, lits: &Literals, v: &mut Value, depth: u32) {
        match v {
            Value::Object(m) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    let Some(x) = m.get_mut(&k) else { continue };
                    if let Value::String(s) = x {
                        let new = match g.below(40) {
                            0..=13 => Some(Value::String(planted(g, lits, &k, s))),
                            14 => Some(Value::Array(vec![
                                Value::String(s.clone()),
                                Value::String(planted(g, lits, &k, s)),
                            ])),
                            15 => Some(Value::Null),
                            16 => Some(Value::from(g.below(70_000) as u64)),
                            17 => Some(serde_json::json!({ "#text": planted(g, lits, &k, s) })),
                            18 => Some(Value::String(recase(g, s))),
                            _ => None,
                        };
                        if let Some(n) = new {
                            *x = n;
                        }
                    } else if depth < 4 {
                        mutate(g, lits, x, depth + 1);
                    }
                    if g.below(60) == 0
                        && let Some(x) = m.remove(&k)
                    {
                        m.insert(k, x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| mutate(g, lits, x, depth + 1)),
            _ => {}
        }
    }

    /// JSON text of `v` with some characters written as `\u` escapes and
    /// some slashes as `\/`, in keys and values alike.
    fn write_json(g: &mut Rng, v: &Value, out: &mut String) {
        let string = |g: &mut Rng, s: &str, out: &mut String| {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 || g.below(60) == 0 => {
                        let mut units = [0u16; 2];
                        for u in c.encode_utf16(&mut units) {
                            let _ = write!(out, "\\u{:04x}", u);
                        }
                    }
                    '/' if g.below(3) == 0 => out.push_str("\\/"),
                    c => out.push(c),
                }
            }
            out.push('"');
        };
        match v {
            Value::Object(m) => {
                out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(g, k, out);
                    out.push(':');
                    write_json(g, x, out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json(g, x, out);
                }
                out.push(']');
            }
            Value::String(s) => string(g, s, out),
            other => out.push_str(&other.to_string()),
        }
    }

    /// `n` events: Windows events as the bench generates them, half of them
    /// mutated (and a fifth of those written with escapes), so that rules
    /// of every kind fire, miss narrowly, or see odd values.
    fn events(e: &Engine, n: usize, seed: u64) -> Vec<String> {
        mutated(e, warden_gen::windows_events(n, seed), seed)
    }

    /// Windows events, every third in the flat layout forwarders write
    /// (System and EventData members at the top level).
    fn windows_mixed(n: usize, seed: u64) -> Vec<String> {
        let mut evs = warden_gen::windows_events(n, seed);
        for raw in evs.iter_mut().step_by(3) {
            let v: Value = serde_json::from_str(raw).expect("generated JSON");
            *raw = super::super::flat_layout::flatten(&v).to_string();
        }
        evs
    }

    /// `base`, half of it mutated as [`events`] describes.
    fn mutated(e: &Engine, base: Vec<String>, seed: u64) -> Vec<String> {
        let lits = literals(e);
        let mut g = Rng::new(seed);
        base.into_iter()
            .map(|raw| {
                if g.below(2) == 0 {
                    return raw;
                }
                let mut v: Value = serde_json::from_str(&raw).expect("generated JSON");
                mutate(&mut g, &lits, &mut v, 0);
                if g.below(5) == 0 {
                    let mut out = String::new();
                    write_json(&mut g, &v, &mut out);
                    out
                } else {
                    v.to_string()
                }
            })
            .collect()
    }

    /// Runs `events` through one scratch (so remembered walks, the value
    /// memo and adapted trigger sets all come into play) and compares every
    /// verdict with the reference evaluation. Returns the alerts seen.
    fn agree(e: &Engine, events: &[String]) -> usize {
        let o = e.oracle();
        let mut sc = e.scratch();
        let mut hits = Vec::new();
        let mut alerts = 0;
        for (i, raw) in events.iter().enumerate() {
            let v = crate::event::parse(raw.as_bytes()).expect("valid JSON");
            e.detect(&v.doc(), &mut sc, &mut hits);
            let mut got: Vec<u32> = hits
                .iter()
                .map(|h| {
                    e.rules
                        .iter()
                        .position(|r| std::sync::Arc::ptr_eq(r, &h.rule))
                        .unwrap() as u32
                })
                .collect();
            got.sort_unstable();
            let want = e.reference_detect(&o, &v.doc());
            if got != want {
                let names = |ids: &[u32]| -> Vec<String> {
                    ids.iter()
                        .map(|&i| {
                            let m = &e.rules[i as usize].meta;
                            format!("{} ({})", m.title, m.id.as_deref().unwrap_or("no id"))
                        })
                        .collect()
                };
                panic!(
                    "event {i}: detect raised {:?}, the reference {:?}\n{raw}",
                    names(&got),
                    names(&want)
                );
            }
            alerts += got.len();
        }
        assert!(sc.adapt.adapted() || events.len() < 4_096);
        eprintln!(
            "{} events, {alerts} alerts, all as the reference",
            events.len()
        );
        alerts
    }

    /// `WARDEN_ORACLE_EVENTS` and `WARDEN_ORACLE_SEED` run longer or other
    /// streams on demand (`cargo test --release`).
    fn stream_size(default: usize, seed: u64) -> (usize, u64) {
        let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse().ok());
        (
            var("WARDEN_ORACLE_EVENTS").map_or(default, |n: u64| n as usize),
            var("WARDEN_ORACLE_SEED").unwrap_or(seed),
        )
    }

    fn windows() -> crate::Mapping {
        crate::Mapping::builtin("windows").unwrap().unwrap()
    }

    #[test]
    fn detect_agrees_with_the_reference_on_generated_rules() {
        let mut b = Engine::builder().mapping(windows());
        for (i, r) in warden_gen::generated_rules(1_500, 11).iter().enumerate() {
            b.add_yaml(r, Path::new(&format!("gen{i}.yml"))).unwrap();
        }
        let starter = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/packs");
        b.add_path(&starter).unwrap();
        let e = b.build();
        let (n, seed) = stream_size(6_000, 5);
        let evs = events(&e, n, seed);
        let alerts = agree(&e, &evs);
        assert!(alerts > 100, "{alerts}");
    }

    /// Every rule and event of the conformance suite (`tests/conformance`),
    /// which between them use every modifier and condition form: the rules
    /// of the cases that load on their own (no placeholders, no extra
    /// documents), and all the cases' events.
    fn conformance() -> (Vec<String>, Vec<String>) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yml"))
            .collect();
        files.sort();
        let (mut rules, mut events) = (Vec::new(), Vec::new());
        for f in files {
            let suite: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            for case in suite["cases"].as_sequence().into_iter().flatten() {
                let alone = case.get("placeholders").is_none()
                    && case.get("extra").is_none()
                    && case.get("reject").is_none();
                if alone && let Some(r) = case["rule"].as_str() {
                    rules.push(r.to_string());
                }
                for ev in case["events"].as_sequence().into_iter().flatten() {
                    let v: Value = serde_yaml_ng::from_value(ev["event"].clone()).unwrap();
                    events.push(v.to_string());
                }
            }
        }
        (rules, events)
    }

    /// The conformance events drawn at random into a stream, mutated, and
    /// run against the reference; the alerts seen.
    fn conformance_stream(e: &Engine, base: &[String], seed: u64) -> usize {
        let (n, seed) = stream_size(6_000, seed);
        let mut g = Rng::new(seed);
        let stream: Vec<String> = (0..n).map(|_| base[g.below(base.len())].clone()).collect();
        agree(e, &mutated(e, stream, seed))
    }

    /// The conformance suite's rules in one engine (no mapping) over its
    /// events, repeated past the first trigger choice and mutated: every
    /// modifier's fast path against the reference, without `../shared`.
    #[test]
    fn detect_agrees_with_the_reference_on_the_conformance_rules() {
        let (rules, base) = conformance();
        let mut b = Engine::builder();
        for (i, r) in rules.iter().enumerate() {
            b.add_yaml(r, Path::new(&format!("case{i}.yml"))).unwrap();
        }
        let e = b.build();
        assert!(e.rules().len() > 150, "{}", e.rules().len());
        let alerts = conformance_stream(&e, &base, 3);
        assert!(alerts > 2_000, "{alerts}");
    }

    /// The same without the rules whose keywords the raw-line prefilter
    /// cannot serve (one such rule sends every event of its bucket to the
    /// exact pass), so that the prefilter decides for the rest.
    #[test]
    fn keyword_prefilter_agrees_with_the_reference_on_the_conformance_rules() {
        use super::super::keywords::BucketKeywords;
        let (rules, base) = conformance();
        let exact = |e: &Engine| {
            e.bucket_keywords
                .iter()
                .any(|k| matches!(k, BucketKeywords::Exact))
        };
        let mut b = Engine::builder();
        for (i, r) in rules.iter().enumerate() {
            let mut alone = Engine::builder();
            if alone.add_yaml(r, Path::new("r.yml")).is_ok() && !exact(&alone.build()) {
                b.add_yaml(r, Path::new(&format!("case{i}.yml"))).unwrap();
            }
        }
        let e = b.build();
        assert!(!exact(&e));
        assert!(
            e.bucket_keywords
                .iter()
                .any(|k| matches!(k, BucketKeywords::Literals(_)))
        );
        let alerts = conformance_stream(&e, &base, 4);
        assert!(alerts > 2_000, "{alerts}");
    }

    /// Every JSON value in the `.json` files under `dir`.
    fn json_files(dir: &Path, out: &mut Vec<Value>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                json_files(&p, out);
            } else if p.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&p).unwrap();
                for v in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
                    match v {
                        Ok(Value::Array(a)) => out.extend(a),
                        Ok(v) => out.push(v),
                        Err(_) => break,
                    }
                }
            }
        }
    }

    /// SigmaHQ's rules with `--mapping windows` over the bench's events (a
    /// third of them flat) and SigmaHQ's regression events, as they are
    /// and mutated (skipped without `../shared/sigma`).
    #[test]
    fn detect_agrees_with_the_reference_on_sigmahq() {
        sigmahq_against_the_reference(Some(windows()), 4_500, Base::Windows, 1_000);
    }

    /// The same without a mapping: every rule sees every event, fields
    /// named as the rules name them.
    #[test]
    fn detect_agrees_with_the_reference_on_sigmahq_unmapped() {
        sigmahq_against_the_reference(None, 1_500, Base::Windows, 1_000);
    }

    /// With `--mapping ecs`, over the generator's Linux and network events
    /// in ECS (auditd, process starts, connections, DNS).
    #[test]
    fn detect_agrees_with_the_reference_on_sigmahq_ecs() {
        let ecs = crate::Mapping::builtin("ecs").unwrap().unwrap();
        sigmahq_against_the_reference(Some(ecs), 3_000, Base::Ecs, 15);
    }

    /// Which generated events a differential run starts from.
    enum Base {
        Windows,
        Ecs,
    }

    fn sigmahq_against_the_reference(
        mapping: Option<crate::Mapping>,
        n: usize,
        base: Base,
        min_alerts: usize,
    ) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/sigma");
        if !root.join("rules").is_dir() {
            eprintln!("skipped: {} not found", root.display());
            return;
        }
        let mut b = Engine::builder();
        let unmapped = mapping.is_none();
        if let Some(m) = mapping {
            b = b.mapping(m);
        }
        let mut dirs: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("rules")
            })
            .collect();
        dirs.sort();
        for d in dirs {
            b.add_path(&d).unwrap();
        }
        let e = b.build();
        let (n, seed) = stream_size(n, 9);
        let mut evs = match base {
            Base::Windows => mutated(&e, windows_mixed(n, seed), seed),
            Base::Ecs => {
                let stream = warden_gen::Stream::new(warden_gen::StreamSpec {
                    seed,
                    attacks_per_10k: 200,
                    ..Default::default()
                });
                let linux = stream
                    .filter(|ev| {
                        warden_gen::tenant_kind(ev.tenant) == warden_gen::TenantKind::Linux
                    })
                    .take(n)
                    .map(|ev| ev.json)
                    .collect();
                mutated(&e, linux, seed)
            }
        };
        let lits = literals(&e);
        let mut regression = Vec::new();
        json_files(&root.join("regression_data"), &mut regression);
        assert!(regression.len() > 100, "{}", regression.len());
        let mut g = Rng::new(seed + 4);
        for mut v in regression {
            evs.push(v.to_string());
            mutate(&mut g, &lits, &mut v, 0);
            let mut out = String::new();
            write_json(&mut g, &v, &mut out);
            evs.push(out);
        }
        // More events on demand for the unmapped run (flat events keyed
        // by the rules' field names, one JSON object a line, such as those
        // benches/rsigma/rule_diff.py builds for every rule).
        if matches!(base, Base::Windows)
            && unmapped
            && let Ok(file) = std::env::var("WARDEN_ORACLE_FILE")
        {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("WARDEN_ORACLE_FILE {file}: {e}"));
            evs.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string),
            );
        }
        let alerts = agree(&e, &evs);
        assert!(alerts >= min_alerts, "{alerts}");
    }

    /// A mapping with derived values (tables, templates, joined parts,
    /// conversions, conditions; read by fields and field references)
    /// over events whose inputs are missing, repeated, numbers, arrays,
    /// evtx text nodes or unconvertible: `detect` (derived values fed
    /// through the gathered hits, also on remembered walks) against the
    /// reference (derived from plain lookups).
    #[test]
    fn detect_agrees_with_the_reference_on_derived_values() {
        let mapping = r#"
name: derived
fields:
  Initiated: [ev.Initiated, 'derived:dir']
  User: [ev.User, 'derived:user']
  Details: [ev.Details, 'derived:dword', 'derived:qword', 'derived:text']
  Hashes: [ev.Hashes, 'derived:hashes']
  Owner: ['derived:owner']
  Payload: [ev.Payload, 'derived:payload']
  Line: ['derived:line']
  XLine: ['derived:xline']
logsources:
  - name: all
    logsource: {product: test}
    conditions: {kind: '*'}
derived:
  dir: {template: '{n.dir}', values: {egress: 'true', ingress: 'false'}}
  user: {template: '{u.d}\{u.n}'}
  owner: {template: '{o.d}\{o.n|upper}'}
  dword: {template: 'DWORD ({r.v|hex32})', require: {r.t: [SZ_DWORD, REG_DWORD]}}
  qword: {template: 'QWORD ({r.v|qword})', require: {r.t: SZ_QWORD}}
  text: {template: '{r.v}', unless: {r.t: [SZ_DWORD, sz_qword]}}
  payload: {each: inv, parts: ['{type}({cmd}): ', 'name={name}; value=', '{value}'], each_join: "\n"}
  line: {each: inv, template: '{cmd}={value|upper}'}
  xline: {each: x.inv, parts: ['{cmd}', '{value}'], join: '=', each_join: ';'}
  hashes: {parts: ['SHA1={h.sha1}', 'MD5={h.md5}', 'IMPHASH={h.imp|upper}'], join: ','}
"#;
        let m = crate::Mapping::parse(mapping, Path::new("derived.yml")).unwrap();
        let mut b = Engine::builder().mapping(m);
        let rules = [
            "Initiated: 'true'",
            "Initiated: 'false'",
            "Initiated|exists: true",
            r"User|endswith: '\SYSTEM'",
            r"User: 'NT AUTHORITY\SYSTEM'",
            "User|contains: 'AUTHORI'",
            "User|fieldref: Owner",
            "Owner|endswith: 'SYSTEM'",
            "Details: 'DWORD (0x00000001)'",
            "Details|startswith: 'QWORD (0x00000001-'",
            "Details|endswith: '-0x00000000)'",
            "Details: 'DWORD (0xffffffff)'",
            "Details: '0x1'",
            "Hashes|contains: 'IMPHASH=AB12'",
            "Hashes|startswith: 'SHA1=aa,MD5='",
            "Hashes|re: '^MD5=[0-9a-f]+$'",
            "Payload|contains: 'Binding(b): name=n1; value='",
            "Payload|re: '(?s)^Invocation\\(a\\).*\\nBinding'",
            "Payload|endswith: 'value=v2'",
            "Line: 'b=V1'",
            "Line|startswith: 'a='",
            "XLine|startswith: 'a=v1;b'",
            "XLine|endswith: ';a=v2'",
            "XLine: 'a=v1'",
        ];
        for (i, sel) in rules.iter().enumerate() {
            let r = format!(
                "title: d{i}\nid: 00000000-0000-0000-0000-{i:012}\nlogsource: {{product: test}}\n\
                 detection:\n  sel:\n    {sel}\n  condition: sel\n"
            );
            b.add_yaml(&r, Path::new(&format!("d{i}.yml"))).unwrap();
        }
        let e = b.build();
        assert!(e.rejections().is_empty(), "{:?}", e.rejections());
        let mut g = Rng::new(21);
        let mut events = Vec::new();
        let pick = |g: &mut Rng, xs: &[Value]| -> Option<Value> {
            let i = g.below(xs.len() + 1);
            xs.get(i).cloned()
        };
        use serde_json::json;
        let dirs = [
            json!("egress"),
            json!("Ingress"),
            json!("internal"),
            json!(["ingress", "egress"]),
            json!(1),
        ];
        let doms = [
            json!("NT AUTHORITY"),
            json!("CORP"),
            json!({"#text": "NT AUTHORITY"}),
            json!(["A", "B"]),
        ];
        let names = [json!("SYSTEM"), json!("system"), json!("alice"), json!(7)];
        let types = [
            json!("SZ_DWORD"),
            json!("sz_qword"),
            json!("SZ_SZ"),
            json!("REG_DWORD"),
            json!(["SZ_SZ", "SZ_QWORD"]),
        ];
        let vals = [
            json!("1"),
            json!(1),
            json!("4294967295"),
            json!("4294967296"),
            json!("0x1"),
            json!("x"),
            json!(["1", "0"]),
        ];
        let hashes = [
            json!("aa"),
            json!("bb"),
            json!("0f3c"),
            json!("ab12"),
            json!(null),
        ];
        for _ in 0..4_000 {
            let mut ev = serde_json::Map::new();
            ev.insert("kind".into(), json!("x"));
            let mut put = |path: &str, v: Option<Value>| {
                let Some(v) = v else { return };
                let (a, b) = path.split_once('.').unwrap();
                let o = ev.entry(a).or_insert_with(|| json!({}));
                o.as_object_mut().unwrap().insert(b.into(), v);
            };
            put("n.dir", pick(&mut g, &dirs));
            put("u.d", pick(&mut g, &doms));
            put("u.n", pick(&mut g, &names));
            put("o.d", pick(&mut g, &doms));
            put("o.n", pick(&mut g, &names));
            put("r.t", pick(&mut g, &types));
            put("r.v", pick(&mut g, &vals));
            put("h.sha1", pick(&mut g, &hashes));
            put("h.md5", pick(&mut g, &hashes));
            put("h.imp", pick(&mut g, &hashes));
            if g.below(8) == 0 {
                put("ev.User", Some(json!(r"X\SYSTEM")));
            }
            // Invocation details: objects with some of their members, at
            // times one object alone, or among other values.
            let mut objs = Vec::new();
            for _ in 0..g.below(4) {
                let mut o = serde_json::Map::new();
                for (k, vals) in [
                    ("type", &["Invocation", "Binding"][..]),
                    ("cmd", &["a", "b"][..]),
                    ("name", &["n1", "n2"][..]),
                    ("value", &["v1", "v2"][..]),
                ] {
                    if g.below(4) != 0 {
                        o.insert(k.into(), json!(g.pick(vals)));
                    }
                }
                objs.push(Value::Object(o));
            }
            match g.below(6) {
                0 if !objs.is_empty() => ev.insert("inv".into(), objs[0].clone()),
                1 => {
                    objs.push(json!("loose"));
                    ev.insert("inv".into(), Value::Array(objs))
                }
                2 => None,
                // The same objects under a flat dotted key the path also
                // reads ("x.inv" for x.inv), with more at the nested one.
                3 => {
                    let mut x = serde_json::Map::new();
                    x.insert("inv".into(), json!([{"cmd": "a", "value": "v1"}]));
                    ev.insert("x".into(), Value::Object(x));
                    ev.insert("x.inv".into(), Value::Array(objs))
                }
                _ => ev.insert("inv".into(), Value::Array(objs)),
            };
            events.push(Value::Object(ev).to_string());
        }
        let alerts = agree(&e, &events);
        assert!(alerts > 4_000, "{alerts}");
    }
}
