//! STIX 2.1 bundles: indicator objects with simple patterns.
//!
//! Supported patterns are one or more comparisons `object:path = 'value'`
//! joined by `OR`, inside one or more `[...]` observation expressions also
//! joined by `OR` (parentheses allowed), for these object paths:
//! `ipv4-addr:value`, `ipv6-addr:value` (address or CIDR),
//! `domain-name:value`, `url:value`, `file:hashes.MD5`,
//! `file:hashes.'SHA-1'`, `file:hashes.'SHA-256'` (also `SHA1`/`SHA256`,
//! quotes optional, any case).  Everything else (`AND`, `FOLLOWEDBY`,
//! qualifiers such as `WITHIN`/`START`/`REPEATS`, operators other than `=`,
//! `NOT`, `EXISTS`, non-string literals, other object paths) rejects the
//! whole indicator, with a reason naming the unsupported part.
//!
//! Indicators with `"revoked": true` are skipped (counted in
//! [`Loaded::skipped`]); `valid_from` / `valid_until` are *not* checked, so
//! an expired indicator still loads: expiry is a feed-management decision
//! and the engine has no notion of "now" at load time.  Objects that are
//! not indicators (identities, relationships, observables...) are skipped.

use serde_json::Value;

use super::normalize::normalize;
use super::{Indicator, IndicatorKind, Loaded, shorten};

/// Loads the `objects` of a bundle.
pub(crate) fn load_bundle(bundle: &Value, source: &str, out: &mut Loaded) {
    let Some(objects) = bundle.get("objects").and_then(Value::as_array) else {
        return;
    };
    for obj in objects {
        load_object(obj, source, out);
    }
}

/// Loads one STIX object (ignored unless it is an indicator).
pub(crate) fn load_object(obj: &Value, source: &str, out: &mut Loaded) {
    if obj.get("type").and_then(Value::as_str) != Some("indicator") {
        out.skipped += 1;
        return;
    }
    let id = obj.get("id").and_then(Value::as_str);
    let location = id.unwrap_or("indicator without id").to_string();
    if obj.get("revoked").and_then(Value::as_bool) == Some(true) {
        out.skipped += 1;
        return;
    }
    if let Some(pt) = obj.get("pattern_type")
        && pt.as_str() != Some("stix")
    {
        out.reject(
            location,
            format!(
                "pattern_type {} is not supported (only stix)",
                shorten(&pt.to_string())
            ),
        );
        return;
    }
    let Some(pattern) = obj.get("pattern").and_then(Value::as_str) else {
        out.reject(location, "indicator has no pattern");
        return;
    };
    let values = match parse_stix_pattern(pattern) {
        Ok(v) => v,
        Err(reason) => {
            out.reject(
                location,
                format!("unsupported STIX pattern: {reason} in {}", shorten(pattern)),
            );
            return;
        }
    };
    let description = ["description", "name"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    for (kind, value) in values {
        out.indicators.push(Indicator {
            kind,
            value,
            source: source.to_string(),
            description: description.clone(),
            id: id.map(str::to_string),
        });
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    LBrack,
    RBrack,
    LParen,
    RParen,
    Comma,
    /// A string literal, unescaped.
    Str(String),
    /// An object path `type:property...`, as written.
    Path(String),
    /// A keyword, number or other bare word.
    Word(String),
    /// A comparison operator.
    Op(&'static str),
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::LBrack => f.write_str("'['"),
            Tok::RBrack => f.write_str("']'"),
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::Comma => f.write_str("','"),
            Tok::Str(s) => write!(f, "string '{}'", shorten(s)),
            Tok::Path(s) => write!(f, "object path {}", shorten(s)),
            Tok::Word(s) => write!(f, "'{}'", shorten(s)),
            Tok::Op(s) => write!(f, "operator '{s}'"),
        }
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Reads a `'...'` literal starting at `start` (the quote); returns the
/// unescaped text and the index after the closing quote.
fn lex_string(p: &str, start: usize) -> Result<(String, usize), String> {
    let b = p.as_bytes();
    let mut s = String::new();
    let mut seg = start + 1;
    let mut i = seg;
    loop {
        match b.get(i) {
            None => return Err("unterminated string literal".to_string()),
            Some(b'\\') => {
                s.push_str(&p[seg..i]);
                match b.get(i + 1) {
                    Some(b'\\') => s.push('\\'),
                    Some(b'\'') => s.push('\''),
                    _ => {
                        return Err(
                            "invalid escape in string literal (only \\' and \\\\ are allowed)"
                                .to_string(),
                        );
                    }
                }
                i += 2;
                seg = i;
            }
            Some(b'\'') => {
                s.push_str(&p[seg..i]);
                return Ok((s, i + 1));
            }
            Some(_) => i += 1,
        }
    }
}

fn lex(p: &str) -> Result<Vec<Tok>, String> {
    let b = p.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'[' => {
                toks.push(Tok::LBrack);
                i += 1;
            }
            b']' => {
                toks.push(Tok::RBrack);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            b'\'' => {
                let (s, next) = lex_string(p, i)?;
                toks.push(Tok::Str(s));
                i = next;
            }
            b'=' => {
                toks.push(Tok::Op("="));
                i += 1;
            }
            b'!' | b'<' | b'>' => {
                let (op, n) = match (c, b.get(i + 1)) {
                    (b'!', Some(b'=')) => ("!=", 2),
                    (b'<', Some(b'=')) => ("<=", 2),
                    (b'<', Some(b'>')) => ("<>", 2),
                    (b'>', Some(b'=')) => (">=", 2),
                    (b'<', _) => ("<", 1),
                    (b'>', _) => (">", 1),
                    _ => return Err("unexpected character '!'".to_string()),
                };
                toks.push(Tok::Op(op));
                i += n;
            }
            c if is_word_byte(c) => {
                let start = i;
                while i < b.len() && is_word_byte(b[i]) {
                    i += 1;
                }
                if b.get(i) == Some(&b':') {
                    // Object path: type ':' property ('.' property | '[' index ']')*
                    i += 1;
                    loop {
                        match b.get(i) {
                            Some(&c) if is_word_byte(c) || c == b'.' => i += 1,
                            Some(b'\'') => i = lex_string(p, i)?.1,
                            Some(b'[') if matches!(b.get(i + 1), Some(c) if *c == b'*' || c.is_ascii_digit()) => {
                                match p[i..].find(']') {
                                    Some(j) => i += j + 1,
                                    None => return Err("unterminated list index".to_string()),
                                }
                            }
                            _ => break,
                        }
                    }
                    toks.push(Tok::Path(p[start..i].to_string()));
                } else {
                    toks.push(Tok::Word(p[start..i].to_string()));
                }
            }
            _ => {
                let ch = p[i..].chars().next().unwrap_or('?');
                return Err(format!("unexpected character {ch:?}"));
            }
        }
    }
    Ok(toks)
}

/// One `path = 'value'` comparison.
struct Comparison {
    path: String,
    value: String,
}

const MAX_DEPTH: usize = 64;

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

fn is_kw(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

const QUALIFIERS: &[&str] = &["WITHIN", "START", "STOP", "REPEATS"];
const OPERATORS: &[&str] = &["LIKE", "MATCHES", "IN", "ISSUBSET", "ISSUPERSET", "NOT"];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: &Tok) -> Result<(), String> {
        match self.next() {
            Some(t) if &t == want => Ok(()),
            Some(t) => Err(format!("expected {want}, found {t}")),
            None => Err(format!("expected {want} at end of pattern")),
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("pattern nested too deeply".to_string());
        }
        Ok(())
    }

    /// observation ( OR observation )*
    fn pattern(&mut self) -> Result<Vec<Comparison>, String> {
        self.enter()?;
        let mut out = self.observation()?;
        loop {
            match self.peek() {
                None | Some(Tok::RParen) => break,
                t if is_kw(t, "OR") => {
                    self.pos += 1;
                    out.extend(self.observation()?);
                }
                t if is_kw(t, "AND") => {
                    return Err("AND between observation expressions is not supported".into());
                }
                t if is_kw(t, "FOLLOWEDBY") => {
                    return Err("FOLLOWEDBY is not supported".into());
                }
                Some(Tok::Word(w)) if QUALIFIERS.iter().any(|q| w.eq_ignore_ascii_case(q)) => {
                    return Err(format!(
                        "qualifier {} is not supported",
                        w.to_ascii_uppercase()
                    ));
                }
                Some(t) => return Err(format!("unexpected {t}")),
            }
        }
        self.depth -= 1;
        Ok(out)
    }

    /// '[' comparisons ']' | '(' pattern ')'
    fn observation(&mut self) -> Result<Vec<Comparison>, String> {
        match self.next() {
            Some(Tok::LBrack) => {
                let v = self.comparisons()?;
                self.expect(&Tok::RBrack)?;
                Ok(v)
            }
            Some(Tok::LParen) => {
                let v = self.pattern()?;
                self.expect(&Tok::RParen)?;
                Ok(v)
            }
            Some(t) => Err(format!("expected '[' or '(', found {t}")),
            None => Err("unexpected end of pattern".to_string()),
        }
    }

    /// comparison ( OR comparison )*
    fn comparisons(&mut self) -> Result<Vec<Comparison>, String> {
        self.enter()?;
        let mut out = self.comparison()?;
        loop {
            match self.peek() {
                t if is_kw(t, "OR") => {
                    self.pos += 1;
                    out.extend(self.comparison()?);
                }
                t if is_kw(t, "AND") => {
                    return Err("AND is not supported".into());
                }
                _ => break,
            }
        }
        self.depth -= 1;
        Ok(out)
    }

    /// '(' comparisons ')' | path '=' 'string'
    fn comparison(&mut self) -> Result<Vec<Comparison>, String> {
        match self.next() {
            Some(Tok::LParen) => {
                let v = self.comparisons()?;
                self.expect(&Tok::RParen)?;
                Ok(v)
            }
            Some(Tok::Path(path)) => {
                match self.next() {
                    Some(Tok::Op("=")) => {}
                    Some(Tok::Op(op)) => return Err(format!("operator '{op}' is not supported")),
                    Some(Tok::Word(w)) if OPERATORS.iter().any(|o| w.eq_ignore_ascii_case(o)) => {
                        return Err(format!(
                            "operator {} is not supported",
                            w.to_ascii_uppercase()
                        ));
                    }
                    Some(t) => return Err(format!("expected '=' after {path}, found {t}")),
                    None => return Err(format!("expected '=' after {path}")),
                }
                match self.next() {
                    Some(Tok::Str(value)) => Ok(vec![Comparison { path, value }]),
                    Some(t) => Err(format!(
                        "only string values are supported (found {t} for {path})"
                    )),
                    None => Err(format!("missing value for {path}")),
                }
            }
            Some(Tok::Word(w))
                if w.eq_ignore_ascii_case("NOT") || w.eq_ignore_ascii_case("EXISTS") =>
            {
                Err(format!("{} is not supported", w.to_ascii_uppercase()))
            }
            Some(t) => Err(format!("expected a comparison, found {t}")),
            None => Err("unexpected end of pattern".to_string()),
        }
    }
}

/// The indicator kind for a STIX object path, if supported.
fn kind_for_path(path: &str) -> Option<IndicatorKind> {
    let (object, prop) = path.split_once(':')?;
    let object = object.to_ascii_lowercase();
    match object.as_str() {
        "ipv4-addr" | "ipv6-addr" if prop == "value" => Some(IndicatorKind::Ip),
        "domain-name" if prop == "value" => Some(IndicatorKind::Domain),
        "url" if prop == "value" => Some(IndicatorKind::Url),
        "file" => {
            let algo = prop.strip_prefix("hashes.")?;
            let algo = algo
                .strip_prefix('\'')
                .and_then(|a| a.strip_suffix('\''))
                .or_else(|| algo.strip_prefix('"').and_then(|a| a.strip_suffix('"')))
                .unwrap_or(algo)
                .to_ascii_uppercase();
            match algo.as_str() {
                "MD5" => Some(IndicatorKind::Md5),
                "SHA-1" | "SHA1" => Some(IndicatorKind::Sha1),
                "SHA-256" | "SHA256" => Some(IndicatorKind::Sha256),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Parses a STIX 2.1 pattern into normalised `(kind, value)` pairs (see the
/// module documentation for what is supported).  The error names the
/// unsupported or invalid part.
pub fn parse_stix_pattern(pattern: &str) -> Result<Vec<(IndicatorKind, String)>, String> {
    let toks = lex(pattern)?;
    if toks.is_empty() {
        return Err("empty pattern".to_string());
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let comparisons = p.pattern()?;
    if let Some(t) = p.peek() {
        return Err(format!("unexpected {t}"));
    }
    let mut out = Vec::with_capacity(comparisons.len());
    for c in comparisons {
        let kind = kind_for_path(&c.path)
            .ok_or_else(|| format!("object path {} is not supported", shorten(&c.path)))?;
        let (kind, value) =
            normalize(kind, &c.value).map_err(|e| format!("invalid value for {}: {e}", c.path))?;
        out.push((kind, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::IndicatorKind::*;
    use crate::indicators::tests::testdata;

    fn ok(p: &str) -> Vec<(IndicatorKind, String)> {
        parse_stix_pattern(p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn err(p: &str) -> String {
        parse_stix_pattern(p).unwrap_err()
    }

    #[test]
    fn supported_patterns() {
        assert_eq!(
            ok("[ipv4-addr:value = '1.2.3.4']"),
            [(Ip, "1.2.3.4".into())]
        );
        assert_eq!(
            ok("[ipv4-addr:value = '198.51.100.7/24']"),
            [(Cidr, "198.51.100.0/24".into())]
        );
        assert_eq!(
            ok("[ipv6-addr:value = '2001:DB8::/32' OR ipv6-addr:value = '2001:db8::1']"),
            [(Cidr, "2001:db8::/32".into()), (Ip, "2001:db8::1".into())]
        );
        assert_eq!(
            ok("[domain-name:value = 'Evil.COM'] OR [url:value = 'HTTP://Evil.com/']"),
            [(Domain, "evil.com".into()), (Url, "http://evil.com".into())]
        );
        assert_eq!(
            ok(
                "([file:hashes.MD5 = 'D41D8CD98F00B204E9800998ECF8427E'] OR ([file:hashes.'SHA-1' = '2fd4e1c67a2d28fced849ee1bb76e7391b93eb12']))"
            ),
            [
                (Md5, "d41d8cd98f00b204e9800998ecf8427e".into()),
                (Sha1, "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12".into())
            ]
        );
        let h = "a".repeat(64);
        for p in [
            "file:hashes.'SHA-256'",
            "file:hashes.SHA256",
            "file:hashes.sha-256",
            "file:hashes.'sha256'",
        ] {
            assert_eq!(ok(&format!("[{p} = '{h}']")), [(Sha256, h.clone())], "{p}");
        }
        assert_eq!(
            ok("[(url:value = 'http://e.com/it\\'s' OR url:value = 'http://e.com/a\\\\b')]"),
            [
                (Url, "http://e.com/it's".into()),
                (Url, "http://e.com/a\\b".into())
            ]
        );
    }

    #[test]
    fn unsupported_patterns() {
        let cases = [
            (
                "[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'x.com']",
                "AND is not supported",
            ),
            (
                "[ipv4-addr:value = '1.2.3.4'] AND [domain-name:value = 'x.com']",
                "AND between observation",
            ),
            (
                "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [domain-name:value = 'x.com']",
                "FOLLOWEDBY",
            ),
            (
                "[ipv4-addr:value = '1.2.3.4'] WITHIN 300 SECONDS",
                "qualifier WITHIN",
            ),
            (
                "[ipv4-addr:value = '1.2.3.4'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'",
                "qualifier START",
            ),
            (
                "[ipv4-addr:value = '1.2.3.4'] REPEATS 5 TIMES",
                "qualifier REPEATS",
            ),
            ("[url:value MATCHES '^http://evil']", "operator MATCHES"),
            ("[domain-name:value LIKE '%.evil.com']", "operator LIKE"),
            ("[ipv4-addr:value != '1.2.3.4']", "operator '!='"),
            ("[ipv4-addr:value NOT = '1.2.3.4']", "operator NOT"),
            ("[ipv4-addr:value IN ('1.2.3.4', '5.6.7.8')]", "operator IN"),
            (
                "[ipv4-addr:value ISSUBSET '10.0.0.0/8']",
                "operator ISSUBSET",
            ),
            ("[process:name = 'evil.exe']", "object path process:name"),
            ("[file:name = 'evil.exe']", "object path file:name"),
            (
                "[file:hashes.'SHA-512' = 'aa']",
                "object path file:hashes.'SHA-512'",
            ),
            (
                "[network-traffic:dst_ref.value = '1.2.3.4']",
                "object path network-traffic:dst_ref.value",
            ),
            ("[file:size = 25536]", "only string values"),
            (
                "[ipv4-addr:value = 'not-an-ip']",
                "invalid value for ipv4-addr:value",
            ),
            ("[ipv4-addr:value = '1.2.3.4'", "expected ']'"),
            ("[ipv4-addr:value = 'x]", "unterminated string"),
            ("[url:value = 'a\\nb']", "invalid escape"),
            ("", "empty pattern"),
            (
                "[ipv4-addr:value = '1.2.3.4'] [domain-name:value = 'x.com']",
                "unexpected '['",
            ),
        ];
        for (p, want) in cases {
            let e = err(p);
            assert!(e.contains(want), "{p}: got {e:?}, want {want:?}");
        }
        let deep = format!(
            "{}[url:value = 'http://x']{}",
            "(".repeat(200),
            ")".repeat(200)
        );
        assert!(err(&deep).contains("nested too deeply"));
    }

    #[test]
    fn bundle() {
        let text = std::fs::read_to_string(testdata("stix_bundle.json")).unwrap();
        let l = crate::indicators::parse_json(&text, "stix_bundle", "stix_bundle.json").unwrap();
        let got: Vec<_> = l
            .indicators
            .iter()
            .map(|i| (i.kind, i.value.as_str(), i.id.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Ip,
                    "198.51.100.23",
                    "indicator--a1b2c3d4-0001-4000-8000-000000000001"
                ),
                (
                    Cidr,
                    "203.0.113.0/24",
                    "indicator--a1b2c3d4-0002-4000-8000-000000000002"
                ),
                (
                    Domain,
                    "evil.example",
                    "indicator--a1b2c3d4-0003-4000-8000-000000000003"
                ),
                (
                    Domain,
                    "bad.example.net",
                    "indicator--a1b2c3d4-0003-4000-8000-000000000003"
                ),
                (
                    Url,
                    "http://evil.example/dl/it's.exe",
                    "indicator--a1b2c3d4-0004-4000-8000-000000000004"
                ),
                (
                    Sha256,
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                    "indicator--a1b2c3d4-0005-4000-8000-000000000005"
                ),
                (
                    Md5,
                    "d41d8cd98f00b204e9800998ecf8427e",
                    "indicator--a1b2c3d4-0005-4000-8000-000000000005"
                ),
                (
                    Ip,
                    "2001:db8::bad",
                    "indicator--a1b2c3d4-0006-4000-8000-000000000006"
                ),
            ]
        );
        assert_eq!(
            l.indicators[0].description.as_deref(),
            Some("Known C2 server")
        );
        assert!(l.indicators.iter().all(|i| i.source == "stix_bundle"));
        let rej: Vec<String> = l.rejected.iter().map(|r| r.to_string()).collect();
        let want = [
            "indicator--a1b2c3d4-0010-4000-8000-000000000010: unsupported STIX pattern: AND is not supported",
            "indicator--a1b2c3d4-0011-4000-8000-000000000011: unsupported STIX pattern: operator MATCHES is not supported",
            "indicator--a1b2c3d4-0012-4000-8000-000000000012: unsupported STIX pattern: object path process:name is not supported",
            "indicator--a1b2c3d4-0013-4000-8000-000000000013: unsupported STIX pattern: qualifier WITHIN is not supported",
            "indicator--a1b2c3d4-0014-4000-8000-000000000014: unsupported STIX pattern: FOLLOWEDBY is not supported",
            "indicator--a1b2c3d4-0015-4000-8000-000000000015: pattern_type \"sigma\" is not supported (only stix)",
        ];
        assert_eq!(rej.len(), want.len(), "{rej:#?}");
        for (r, w) in rej.iter().zip(want) {
            assert!(r.starts_with(w), "{r}\n  does not start with\n{w}");
        }
        // identity + relationship + revoked indicator.
        assert_eq!(l.skipped, 3);
    }
}
