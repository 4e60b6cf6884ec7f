//! CSV feeds with a header row.

use super::normalize::normalize_hint;
use super::{Hint, Indicator, IndicatorError, Loaded, kind_name_eq, shorten};

/// Header names of the type column (compared ignoring case, `_`/' ' = `-`).
const TYPE_COLUMNS: &[&str] = &["type", "kind", "indicator-type", "ioc-type"];
/// Header names of the value column.
const VALUE_COLUMNS: &[&str] = &["value", "indicator", "ioc", "ioc-value", "observable"];
/// Header names of the optional description column.
const DESCRIPTION_COLUMNS: &[&str] = &["description", "comment", "comments", "desc"];
/// Header names of the optional id column.
const ID_COLUMNS: &[&str] = &["id", "uuid"];

/// Turns the byte offset of a CSV record into its line number.
///
/// The `csv` crate reports a record's position as where it started looking,
/// which is before any blank or comment lines it skipped; so skip those
/// forward from the offset.  Offsets only grow, so counting is incremental.
struct LineLocator<'a> {
    text: &'a str,
    /// Byte offset up to which newlines have been counted ...
    at: usize,
    /// ... and the 1-based line number at that offset.
    line: u64,
}

impl<'a> LineLocator<'a> {
    fn new(text: &'a str) -> Self {
        LineLocator {
            text,
            at: 0,
            line: 1,
        }
    }

    fn line_of(&mut self, pos: Option<&::csv::Position>) -> u64 {
        let Some(pos) = pos else { return 0 };
        let mut start = usize::try_from(pos.byte())
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while !self.text.is_char_boundary(start) {
            start -= 1;
        }
        // Skip blank and comment lines the reader passed over.
        loop {
            let rest = &self.text[start..];
            let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
            let line = &rest[..end];
            let skippable = line.trim().is_empty() || line.starts_with('#');
            if !skippable || end == rest.len() {
                break;
            }
            start += end;
        }
        if start < self.at {
            // Not expected (positions only grow); recount from the top.
            self.at = 0;
            self.line = 1;
        }
        let newlines = self.text.as_bytes()[self.at..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += newlines as u64;
        self.at = start;
        self.line
    }
}

fn find_column(header: &::csv::StringRecord, names: &[&str]) -> Option<usize> {
    header
        .iter()
        .position(|h| names.iter().any(|n| kind_name_eq(h, n)))
}

/// Parses a CSV feed whose first record is a header.
///
/// Columns are recognised by name, ignoring case: type (`type`, `kind`,
/// `indicator_type`, `ioc_type`), value (`value`, `indicator`, `ioc`,
/// `ioc_value`, `observable`), optional description (`description`,
/// `comment`) and id (`id`, `uuid`).  Without a type column, or where the
/// type cell is empty, the type is inferred from the value; a type of
/// `hash` means "md5/sha1/sha256 by length".  Lines starting with `#` and
/// blank lines are ignored; fields are trimmed; rows may have any number of
/// fields.
///
/// A header without a value column is a hard error; a bad row is a
/// rejection located `path:line`.
pub fn parse_csv(text: &str, source: &str, path: &str) -> Result<Loaded, IndicatorError> {
    let mut rdr = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = Loaded::default();
    let mut rec = ::csv::StringRecord::new();
    let mut lines = LineLocator::new(text);
    let csv_error = |e: ::csv::Error| {
        let line = e.position().map_or(0, |p| p.line());
        IndicatorError::AtLine {
            path: path.to_string(),
            line,
            message: format!("malformed CSV: {e}"),
        }
    };

    // Header: the first non-empty record.
    loop {
        if !rdr.read_record(&mut rec).map_err(csv_error)? {
            return Ok(out);
        }
        if rec.iter().any(|f| !f.is_empty()) {
            break;
        }
    }
    let header = rec.clone();
    let header_line = lines.line_of(header.position());
    let Some(value_col) = find_column(&header, VALUE_COLUMNS) else {
        return Err(IndicatorError::AtLine {
            path: path.to_string(),
            line: header_line,
            message: format!(
                "CSV header has no value column (expected one of: value, indicator, ioc); found: {}",
                shorten(&header.iter().collect::<Vec<_>>().join(","))
            ),
        });
    };
    let type_col = find_column(&header, TYPE_COLUMNS);
    let desc_col = find_column(&header, DESCRIPTION_COLUMNS);
    let id_col = find_column(&header, ID_COLUMNS);

    loop {
        match rdr.read_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // Cannot happen for in-memory UTF-8 text with flexible rows,
                // but keep going past a bad record if it does.
                let line = lines.line_of(e.position());
                out.reject(
                    format!("{path}:{line}"),
                    format!("malformed CSV record: {e}"),
                );
                continue;
            }
        }
        let value = rec.get(value_col).unwrap_or("");
        if value.is_empty() {
            if rec.iter().all(str::is_empty) {
                continue;
            }
            out.reject(
                format!("{path}:{}", lines.line_of(rec.position())),
                "empty indicator value",
            );
            continue;
        }
        let hint = match type_col.and_then(|c| rec.get(c)) {
            None => Hint::Infer,
            Some(t) => match Hint::parse(t) {
                Some(h) => h,
                None => {
                    out.reject(
                        format!("{path}:{}", lines.line_of(rec.position())),
                        format!("unknown indicator type '{}'", shorten(t)),
                    );
                    continue;
                }
            },
        };
        match normalize_hint(hint, value) {
            Ok((kind, value)) => {
                let cell = |c: Option<usize>| {
                    c.and_then(|c| rec.get(c))
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                out.indicators.push(Indicator {
                    kind,
                    value,
                    source: source.to_string(),
                    description: cell(desc_col),
                    id: cell(id_col),
                });
            }
            Err(reason) => out.reject(format!("{path}:{}", lines.line_of(rec.position())), reason),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::IndicatorKind::*;

    #[test]
    fn with_type_column() {
        let text = "\
# exported by feedtool
Type,Value,Description
ip,1.2.3.4,scanner
IPv4,10.1.2.3/8,
domain,Evil.COM.,\"c2, primary\"
sha-256,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,dropper
hash,bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb,
,evil.org,inferred

md5,not-a-hash,bad
regkey,HKLM\\x,unsupported
url,,empty
url,http://Evil.com/,x
";
        let l = parse_csv(text, "feed", "feeds/feed.csv").unwrap();
        let got: Vec<_> = l
            .indicators
            .iter()
            .map(|i| (i.kind, i.value.as_str(), i.description.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Ip, "1.2.3.4", Some("scanner")),
                (Cidr, "10.0.0.0/8", None),
                (Domain, "evil.com", Some("c2, primary")),
                (Sha256, "a".repeat(64).as_str(), Some("dropper")),
                (Md5, "b".repeat(32).as_str(), None),
                (Domain, "evil.org", Some("inferred")),
                (Url, "http://evil.com", Some("x")),
            ]
        );
        assert!(l.indicators.iter().all(|i| i.source == "feed"));
        let rej: Vec<String> = l.rejected.iter().map(|r| r.to_string()).collect();
        assert_eq!(rej.len(), 3, "{rej:?}");
        assert!(
            rej[0].starts_with("feeds/feed.csv:10: md5 hash 'not-a-hash'"),
            "{rej:?}"
        );
        assert_eq!(rej[1], "feeds/feed.csv:11: unknown indicator type 'regkey'");
        assert_eq!(rej[2], "feeds/feed.csv:12: empty indicator value");
    }

    #[test]
    fn without_type_column() {
        let text = "ioc,comment,ID\n1.2.3.4,a,id-1\nevil.com,,\nfoo bar,x,\n2001:db8::/32,v6,\n";
        let l = parse_csv(text, "f", "f.csv").unwrap();
        let got: Vec<_> = l
            .indicators
            .iter()
            .map(|i| (i.kind, i.value.as_str(), i.id.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Ip, "1.2.3.4", Some("id-1")),
                (Domain, "evil.com", None),
                (Cidr, "2001:db8::/32", None),
            ]
        );
        assert_eq!(l.rejected.len(), 1);
        assert_eq!(
            l.rejected[0].to_string(),
            "f.csv:4: cannot infer indicator type of 'foo bar'"
        );
    }

    #[test]
    fn header_without_value_column_is_an_error() {
        let e = parse_csv("# c\ntype,thing\nip,1.2.3.4\n", "f", "x/f.csv").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("x/f.csv:2: CSV header has no value column"),
            "{msg}"
        );
        assert!(msg.contains("type,thing"), "{msg}");
        // Empty or comment-only files are fine.
        assert_eq!(parse_csv("", "f", "f.csv").unwrap(), Loaded::default());
        assert_eq!(
            parse_csv("# nothing\n\n", "f", "f.csv").unwrap(),
            Loaded::default()
        );
    }
}
