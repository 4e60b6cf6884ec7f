//! Plain indicator lists: one value per line.

use super::normalize::normalize_hint;
use super::{Hint, Indicator, Loaded};

/// Parses a plain list: one indicator per line.
///
/// * Blank lines and lines starting with `#` or `;` are ignored.
/// * An inline comment (whitespace followed by `#` or `;`) is removed and
///   becomes the indicator's description: `1.2.3.4  # scanner`.
/// * A line is either `value` (type inferred, see [`super::infer`]) or
///   `kind<TAB>value[<TAB>description]` or `kind,value`, where `kind` is
///   any name accepted by [`super::IndicatorKind`]'s `FromStr` (or `hash`).
///   If the part before the first tab/comma is not a known type name the
///   whole line is taken as the value (so a URL containing a comma works).
///
/// A line that cannot be used is a rejection located `path:line`.
pub fn parse_plain(text: &str, source: &str, path: &str) -> Loaded {
    let mut out = Loaded::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let (body, comment) = split_inline_comment(line);
        let (hint, value, desc) = split_typed(body);
        match normalize_hint(hint, value) {
            Ok((kind, value)) => out.indicators.push(Indicator {
                kind,
                value,
                source: source.to_string(),
                description: desc.or(comment).map(str::to_string),
                id: None,
            }),
            Err(reason) => out.reject(format!("{path}:{}", i + 1), reason),
        }
    }
    out
}

/// Splits `value   # comment` / `value ; comment`.
fn split_inline_comment(line: &str) -> (&str, Option<&str>) {
    let b = line.as_bytes();
    for i in 1..b.len() {
        if matches!(b[i], b'#' | b';') && b[i - 1].is_ascii_whitespace() {
            let comment = line[i + 1..].trim();
            return (
                line[..i].trim_end(),
                (!comment.is_empty()).then_some(comment),
            );
        }
    }
    (line, None)
}

/// Splits an optional leading type: `kind\tvalue[\tdescription]` or `kind,value`.
fn split_typed(body: &str) -> (Hint, &str, Option<&str>) {
    if let Some((k, rest)) = body.split_once('\t')
        && let Some(h) = Hint::parse(k)
    {
        let (v, d) = match rest.split_once('\t') {
            Some((v, d)) => (v, Some(d.trim()).filter(|d| !d.is_empty())),
            None => (rest, None),
        };
        return (h, v.trim(), d);
    }
    if let Some((k, v)) = body.split_once(',')
        && let Some(h) = Hint::parse(k)
    {
        return (h, v.trim(), None);
    }
    (Hint::Infer, body, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::IndicatorKind::*;

    #[test]
    fn plain_list() {
        let text = "\
# Warden blocklist
; spamhaus style comment

1.2.3.4
10.0.0.0/8 ; SBL123
Evil.COM.   # c2 domain
domain,evil.org
sha1\tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\tdropper
url,http://x.example/a,b
http://y.example/#frag
foo bar
md5,abc
";
        let l = parse_plain(text, "blocklist", "lists/blocklist.txt");
        let got: Vec<_> = l
            .indicators
            .iter()
            .map(|i| (i.kind, i.value.as_str(), i.description.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Ip, "1.2.3.4", None),
                (Cidr, "10.0.0.0/8", Some("SBL123")),
                (Domain, "evil.com", Some("c2 domain")),
                (Domain, "evil.org", None),
                (Sha1, "a".repeat(40).as_str(), Some("dropper")),
                (Url, "http://x.example/a,b", None),
                (Url, "http://y.example/#frag", None),
            ]
        );
        let rej: Vec<String> = l.rejected.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            rej,
            [
                "lists/blocklist.txt:11: cannot infer indicator type of 'foo bar'",
                "lists/blocklist.txt:12: md5 hash 'abc' has 3 characters, expected 32 hex digits",
            ]
        );
    }

    #[test]
    fn untyped_comma_line_is_a_value() {
        let l = parse_plain("1.2.3.4,scanner\n", "f", "f.txt");
        assert!(l.indicators.is_empty());
        assert_eq!(l.rejected[0].location, "f.txt:1");
    }
}
