//! Threat indicators (IOCs): loading from feeds and fast lookup.
//!
//! * [`load_path`] reads one feed file: CSV with a header row, a plain list
//!   (one value per line), a STIX 2.1 bundle or a MISP event (JSON).  Every
//!   loader returns [`Loaded`]: the accepted indicators plus a list of
//!   [`Rejection`]s for the entries that could not be used (malformed line,
//!   unsupported STIX pattern, unsupported MISP attribute type...).  Only an
//!   unreadable file, invalid JSON, an unrecognised JSON document or a CSV
//!   without a value column is a hard [`IndicatorError`].
//! * [`IndicatorSet::build`] indexes indicators for allocation-free lookups
//!   of IPs (exact and CIDR), domains (with subdomains), URLs and file hashes.
//!
//! Values are normalised on load (see [`normalize`]): domains lowercased
//! without trailing dot, hashes lowercase hex, URLs with lowercase scheme and
//! host, IPs in canonical text (IPv4-mapped IPv6 becomes IPv4), CIDRs with
//! host bits cleared.

mod csv;
mod matcher;
mod misp;
mod normalize;
mod plain;
mod set;
mod stix;

pub use matcher::{IndicatorAlert, IndicatorHit, IndicatorMatcher, IndicatorScratch};

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use self::csv::parse_csv;
pub use self::normalize::{infer, normalize};
pub use self::plain::parse_plain;
pub use self::set::IndicatorSet;
pub use self::stix::parse_stix_pattern;

/// What an indicator value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndicatorKind {
    /// A single IPv4 or IPv6 address.
    Ip,
    /// An IPv4 or IPv6 network.
    Cidr,
    /// A domain name; also matches its subdomains.
    Domain,
    /// A URL with scheme.
    Url,
    /// MD5 file hash (32 hex digits).
    Md5,
    /// SHA-1 file hash (40 hex digits).
    Sha1,
    /// SHA-256 file hash (64 hex digits).
    Sha256,
}

impl IndicatorKind {
    /// Every kind, in declaration order.
    pub const ALL: [IndicatorKind; 7] = [
        IndicatorKind::Ip,
        IndicatorKind::Cidr,
        IndicatorKind::Domain,
        IndicatorKind::Url,
        IndicatorKind::Md5,
        IndicatorKind::Sha1,
        IndicatorKind::Sha256,
    ];

    /// The canonical name: "ip", "cidr", "domain", "url", "md5", "sha1", "sha256".
    pub fn as_str(self) -> &'static str {
        match self {
            IndicatorKind::Ip => "ip",
            IndicatorKind::Cidr => "cidr",
            IndicatorKind::Domain => "domain",
            IndicatorKind::Url => "url",
            IndicatorKind::Md5 => "md5",
            IndicatorKind::Sha1 => "sha1",
            IndicatorKind::Sha256 => "sha256",
        }
    }

    /// True for the three hash kinds.
    pub fn is_hash(self) -> bool {
        matches!(
            self,
            IndicatorKind::Md5 | IndicatorKind::Sha1 | IndicatorKind::Sha256
        )
    }

    /// Number of hex digits of a hash kind.
    pub fn hash_hex_len(self) -> Option<usize> {
        match self {
            IndicatorKind::Md5 => Some(32),
            IndicatorKind::Sha1 => Some(40),
            IndicatorKind::Sha256 => Some(64),
            _ => None,
        }
    }

    /// The hash kind with this many hex digits.
    pub fn hash_from_hex_len(len: usize) -> Option<IndicatorKind> {
        match len {
            32 => Some(IndicatorKind::Md5),
            40 => Some(IndicatorKind::Sha1),
            64 => Some(IndicatorKind::Sha256),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for IndicatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names accepted by [`IndicatorKind::from_str`], compared ignoring ASCII
/// case and treating `_` and space as `-`.
const KIND_NAMES: &[(&str, IndicatorKind)] = &[
    ("ip", IndicatorKind::Ip),
    ("ipv4", IndicatorKind::Ip),
    ("ipv6", IndicatorKind::Ip),
    ("ip-src", IndicatorKind::Ip),
    ("ip-dst", IndicatorKind::Ip),
    ("ip-addr", IndicatorKind::Ip),
    ("ipv4-addr", IndicatorKind::Ip),
    ("ipv6-addr", IndicatorKind::Ip),
    ("ip-address", IndicatorKind::Ip),
    ("ipaddress", IndicatorKind::Ip),
    ("ipaddr", IndicatorKind::Ip),
    ("cidr", IndicatorKind::Cidr),
    ("net", IndicatorKind::Cidr),
    ("network", IndicatorKind::Cidr),
    ("subnet", IndicatorKind::Cidr),
    ("netblock", IndicatorKind::Cidr),
    ("ip-range", IndicatorKind::Cidr),
    ("iprange", IndicatorKind::Cidr),
    ("ip-network", IndicatorKind::Cidr),
    ("ipv4-net", IndicatorKind::Cidr),
    ("ipv6-net", IndicatorKind::Cidr),
    ("ipv4-cidr", IndicatorKind::Cidr),
    ("ipv6-cidr", IndicatorKind::Cidr),
    ("domain", IndicatorKind::Domain),
    ("hostname", IndicatorKind::Domain),
    ("host", IndicatorKind::Domain),
    ("domain-name", IndicatorKind::Domain),
    ("domainname", IndicatorKind::Domain),
    ("fqdn", IndicatorKind::Domain),
    ("url", IndicatorKind::Url),
    ("uri", IndicatorKind::Url),
    ("link", IndicatorKind::Url),
    ("md5", IndicatorKind::Md5),
    ("md5-hash", IndicatorKind::Md5),
    ("hash-md5", IndicatorKind::Md5),
    ("filehash-md5", IndicatorKind::Md5),
    ("file-md5", IndicatorKind::Md5),
    ("sha1", IndicatorKind::Sha1),
    ("sha-1", IndicatorKind::Sha1),
    ("sha1-hash", IndicatorKind::Sha1),
    ("hash-sha1", IndicatorKind::Sha1),
    ("filehash-sha1", IndicatorKind::Sha1),
    ("file-sha1", IndicatorKind::Sha1),
    ("sha256", IndicatorKind::Sha256),
    ("sha-256", IndicatorKind::Sha256),
    ("sha256-hash", IndicatorKind::Sha256),
    ("hash-sha256", IndicatorKind::Sha256),
    ("filehash-sha256", IndicatorKind::Sha256),
    ("file-sha256", IndicatorKind::Sha256),
];

/// Compares a user-written kind name with a canonical (lowercase, dashed)
/// one, ignoring ASCII case and treating `_` and ' ' as '-'.
fn kind_name_eq(given: &str, canonical: &str) -> bool {
    given.len() == canonical.len()
        && given.bytes().zip(canonical.bytes()).all(|(g, c)| {
            let g = match g {
                b'_' | b' ' => b'-',
                g => g.to_ascii_lowercase(),
            };
            g == c
        })
}

/// Error of [`IndicatorKind::from_str`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown indicator type '{0}'")]
pub struct UnknownKind(pub String);

impl FromStr for IndicatorKind {
    type Err = UnknownKind;

    /// Accepts the canonical names and common aliases ("ipv4", "ip-dst",
    /// "hostname", "domain-name", "sha-256", "uri", "link", ...), ignoring
    /// ASCII case and surrounding whitespace; `_` and ' ' count as `-`.
    fn from_str(s: &str) -> Result<IndicatorKind, UnknownKind> {
        let t = s.trim();
        KIND_NAMES
            .iter()
            .find(|(name, _)| kind_name_eq(t, name))
            .map(|&(_, k)| k)
            .ok_or_else(|| UnknownKind(t.to_string()))
    }
}

/// A type given next to a value in a feed: a kind, "any hash", or nothing
/// (infer from the value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hint {
    Kind(IndicatorKind),
    AnyHash,
    Infer,
}

impl Hint {
    /// `None` if the type name is not recognised.
    fn parse(s: &str) -> Option<Hint> {
        let t = s.trim();
        if t.is_empty() || kind_name_eq(t, "auto") {
            return Some(Hint::Infer);
        }
        if ["hash", "filehash", "file-hash", "checksum"]
            .iter()
            .any(|n| kind_name_eq(t, n))
        {
            return Some(Hint::AnyHash);
        }
        t.parse().ok().map(Hint::Kind)
    }
}

/// One threat indicator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    /// What the value is.
    pub kind: IndicatorKind,
    /// The normalised value.
    pub value: String,
    /// Feed name: the stem of the file it was loaded from.
    pub source: String,
    /// Free text from the feed, if any.
    pub description: Option<String>,
    /// STIX indicator id or MISP attribute uuid, if any.
    pub id: Option<String>,
}

impl fmt::Display for Indicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.kind, self.value, self.source)
    }
}

/// An entry of a feed that was not turned into an indicator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// `file:line` for line-based formats, the STIX indicator id or MISP
    /// attribute uuid for JSON formats.
    pub location: String,
    /// Why it was rejected.
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.reason)
    }
}

/// What a loader produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Accepted, normalised indicators.
    pub indicators: Vec<Indicator>,
    /// Entries that could not be used, with the reason.
    pub rejected: Vec<Rejection>,
    /// Entries deliberately ignored, not errors: revoked STIX indicators,
    /// MISP attributes with `to_ids: false` or `deleted: true`, STIX objects
    /// that are not indicators.
    pub skipped: usize,
}

impl Loaded {
    fn reject(&mut self, location: impl Into<String>, reason: impl Into<String>) {
        self.rejected.push(Rejection {
            location: location.into(),
            reason: reason.into(),
        });
    }

    /// Appends another load result.
    pub fn extend(&mut self, other: Loaded) {
        self.indicators.extend(other.indicators);
        self.rejected.extend(other.rejected);
        self.skipped += other.skipped;
    }
}

/// A hard loading error: the file as a whole could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IndicatorError {
    /// The file could not be read.
    #[error("{path}: cannot read indicator file: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// JSON syntax error.
    #[error("{path}:{line}:{column}: invalid JSON: {message}")]
    Json {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A problem at a known line (e.g. a CSV header without a value column).
    #[error("{path}:{line}: {message}")]
    AtLine {
        path: String,
        line: u64,
        message: String,
    },
    /// A problem with the file as a whole (e.g. unrecognised JSON document).
    #[error("{path}: {message}")]
    Format { path: String, message: String },
}

/// The feed name for a path: its file stem.
pub fn source_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Loads one indicator file.
///
/// The format is chosen by extension: `.csv` is CSV with a header row;
/// `.json` (also `.stix`, `.misp`) is JSON (a STIX 2.1 bundle or a MISP
/// event, see [`parse_json`]); `.txt` and `.list` are plain lists.  Any
/// other file is JSON if its first non-blank character is `{`, or `[`
/// followed by `{`, `]` or a newline; otherwise a plain list.
///
/// The indicators' `source` is the file stem; rejection locations use the
/// path as given (`path:line` for line formats).
pub fn load_path(path: &Path) -> Result<Loaded, IndicatorError> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| IndicatorError::Io {
        path: label.clone(),
        source,
    })?;
    let text = crate::text::decode(bytes).map_err(|msg| IndicatorError::Io {
        path: label.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, msg),
    })?;
    let text = text.as_str();
    let source = source_name(path);
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "csv" => parse_csv(text, &source, &label),
        "json" | "stix" | "misp" => parse_json(text, &source, &label),
        "txt" | "list" => Ok(parse_plain(text, &source, &label)),
        _ if looks_like_json(text) => parse_json(text, &source, &label),
        _ => Ok(parse_plain(text, &source, &label)),
    }
}

fn looks_like_json(text: &str) -> bool {
    let t = text.trim_start();
    if t.starts_with('{') {
        return true;
    }
    match t.strip_prefix('[') {
        Some(rest) => {
            let rest = rest.trim_start_matches([' ', '\t', '\r']);
            rest.starts_with(['{', ']', '\n']) || rest.is_empty()
        }
        None => false,
    }
}

/// Parses a JSON feed: a STIX 2.1 bundle (`{"type": "bundle", "objects":
/// [...]}`), a single STIX object, a MISP event (`{"Event": {...}}`, a bare
/// event object with `Attribute`s, a list of `{"Event": ...}`, or
/// `{"response": [{"Event": ...}]}`).
///
/// `source` becomes the indicators' `source`; `path` is used in error
/// messages.
pub fn parse_json(text: &str, source: &str, path: &str) -> Result<Loaded, IndicatorError> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        let full = e.to_string();
        let message = match full.rfind(" at line ") {
            Some(i) if e.line() > 0 => full[..i].to_string(),
            _ => full,
        };
        IndicatorError::Json {
            path: path.to_string(),
            line: e.line(),
            column: e.column(),
            message,
        }
    })?;
    let mut out = Loaded::default();
    if load_json_value(&doc, source, &mut out) {
        Ok(out)
    } else {
        Err(IndicatorError::Format {
            path: path.to_string(),
            message: "unrecognised JSON document: expected a STIX 2.1 bundle or a MISP event"
                .to_string(),
        })
    }
}

/// Dispatches one JSON value; false if it is not a recognised document.
fn load_json_value(v: &serde_json::Value, source: &str, out: &mut Loaded) -> bool {
    use serde_json::Value;
    match v {
        Value::Array(items) => {
            let mut ok = true;
            for item in items {
                ok &= load_json_value(item, source, out);
            }
            ok
        }
        Value::Object(map) => {
            if let Some(ev) = map.get("Event") {
                misp::load_event(ev, source, out);
                true
            } else if let Some(resp) = map.get("response") {
                load_json_value(resp, source, out)
            } else if map.get("type").and_then(Value::as_str) == Some("bundle") {
                stix::load_bundle(v, source, out);
                true
            } else if map.get("type").and_then(Value::as_str).is_some()
                && map
                    .get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.contains("--"))
            {
                // A single STIX object (STIX ids are `type--uuid`).
                stix::load_object(v, source, out);
                true
            } else if map.contains_key("Attribute") || map.contains_key("Object") {
                misp::load_event(v, source, out);
                true
            } else {
                false
            }
        }
        _ => false,
    }
}

/// Shortens a value for an error message.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 120;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    pub(crate) fn testdata(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name)
    }

    /// A file in a fresh temp directory, removed on drop.
    pub(crate) struct TempFile(pub PathBuf);

    impl std::ops::Deref for TempFile {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    /// Writes `content` to a fresh temp file with the given name.
    pub(crate) fn temp_file(name: &str, content: &str) -> TempFile {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "warden-ind-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        TempFile(p)
    }

    #[test]
    fn kind_names() {
        for k in IndicatorKind::ALL {
            assert_eq!(k.as_str().parse::<IndicatorKind>().unwrap(), k);
            assert_eq!(k.to_string(), k.as_str());
        }
        let cases = [
            ("IPv4", IndicatorKind::Ip),
            ("ipv6", IndicatorKind::Ip),
            ("ip-src", IndicatorKind::Ip),
            ("IP_DST", IndicatorKind::Ip),
            ("hostname", IndicatorKind::Domain),
            ("domain-name", IndicatorKind::Domain),
            ("Domain Name", IndicatorKind::Domain),
            ("SHA-1", IndicatorKind::Sha1),
            ("sha-256", IndicatorKind::Sha256),
            (" md5 ", IndicatorKind::Md5),
            ("uri", IndicatorKind::Url),
            ("link", IndicatorKind::Url),
            ("subnet", IndicatorKind::Cidr),
        ];
        for (s, k) in cases {
            assert_eq!(s.parse::<IndicatorKind>().unwrap(), k, "{s}");
        }
        let e = "regkey".parse::<IndicatorKind>().unwrap_err();
        assert_eq!(e.to_string(), "unknown indicator type 'regkey'");
        assert_eq!(Hint::parse(""), Some(Hint::Infer));
        assert_eq!(Hint::parse("Hash"), Some(Hint::AnyHash));
        assert_eq!(Hint::parse("bogus"), None);
        assert_eq!(
            serde_json::to_string(&IndicatorKind::Sha256).unwrap(),
            "\"sha256\""
        );
    }

    #[test]
    fn load_path_dispatch_and_testdata() {
        let csv = load_path(&testdata("indicators.csv")).unwrap();
        assert!(!csv.indicators.is_empty());
        assert!(csv.indicators.iter().all(|i| i.source == "indicators"));
        let plain = load_path(&testdata("blocklist.txt")).unwrap();
        assert!(!plain.indicators.is_empty());
        assert_eq!(plain.rejected.len(), 1, "{:?}", plain.rejected);
        let stix = load_path(&testdata("stix_bundle.json")).unwrap();
        assert!(!stix.indicators.is_empty() && !stix.rejected.is_empty());
        let misp = load_path(&testdata("misp_event.json")).unwrap();
        assert!(!misp.indicators.is_empty() && !misp.rejected.is_empty());

        // Extension-less files are sniffed.
        let p = temp_file(
            "feed",
            "{\"Event\": {\"Attribute\": [{\"type\": \"domain\", \"value\": \"Evil.COM.\"}]}}",
        );
        let l = load_path(&p).unwrap();
        assert_eq!(l.indicators[0].value, "evil.com");
        assert_eq!(l.indicators[0].source, "feed");
        let p = temp_file("feed2", "[::1]\n1.2.3.4\n");
        let l = load_path(&p).unwrap();
        assert_eq!(l.indicators.len(), 2, "{l:?}");
        let p = temp_file("feed3.dat", "[\n{\"type\":\"bundle\",\"objects\":[]}]");
        assert!(load_path(&p).unwrap().indicators.is_empty());
    }

    #[test]
    fn hard_errors_name_the_file() {
        let missing = testdata("does-not-exist.csv");
        let e = load_path(&missing).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("does-not-exist.csv") && msg.contains("cannot read"),
            "{msg}"
        );

        let p = temp_file(
            "broken.json",
            "{\n  \"type\": \"bundle\",\n  \"objects\": [,]\n}",
        );
        let e = load_path(&p).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(
                e,
                IndicatorError::Json {
                    line: 3,
                    column: 15,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            msg.contains("broken.json:3:15: invalid JSON: expected value"),
            "{msg}"
        );
        assert!(!msg.contains(" at line "), "{msg}");

        let p = temp_file("other.json", "{\"foo\": 1}");
        let msg = load_path(&p).unwrap_err().to_string();
        assert!(
            msg.contains("other.json: unrecognised JSON document"),
            "{msg}"
        );
    }

    /// Garbage in: no panics anywhere.
    #[test]
    fn garbage_does_not_panic() {
        const ALPHABET: &[&str] = &[
            "a",
            "F",
            "0",
            "9",
            ".",
            "/",
            ":",
            "[",
            "]",
            "(",
            ")",
            "'",
            "\\",
            " ",
            "\t",
            "\n",
            ",",
            "#",
            ";",
            "|",
            "=",
            "!",
            "<",
            ">",
            "-",
            "_",
            "*",
            "?",
            "@",
            "é",
            "€",
            "AND",
            " OR ",
            "ipv4-addr:value",
            "file:hashes.",
            "url:value",
            "http://",
            "::ffff:",
            "1.2.3.4",
            "\"",
            "{",
            "}",
            "%",
        ];
        let mut state = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let set = IndicatorSet::build(
            [
                "evil.com",
                "1.2.3.4",
                "10.0.0.0/8",
                "http://x.com/a",
                &"a".repeat(32),
            ]
            .iter()
            .map(|v| {
                let (kind, value) = infer(v).unwrap();
                Indicator {
                    kind,
                    value,
                    source: "t".into(),
                    description: None,
                    id: None,
                }
            })
            .collect(),
        );
        let mut out = Vec::new();
        let mut scratch = String::new();
        for _ in 0..3000 {
            let n = (next() % 24) as usize;
            let s: String = (0..n)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let _ = parse_stix_pattern(&s);
            let _ = parse_stix_pattern(&format!("[{s}]"));
            let _ = infer(&s);
            for k in IndicatorKind::ALL {
                let _ = normalize(k, &s);
            }
            let _ = parse_plain(&s, "f", "f.txt");
            let _ = parse_csv(&format!("value,type\n{s}\n"), "f", "f.csv");
            let _ = parse_json(&s, "f", "f.json");
            let _ = crate::ip::IpNet::parse(&s);
            let _ = crate::ip::parse_ip_lenient(&s);
            set.match_domain(&s, &mut scratch, &mut out);
            set.match_url(&s, &mut scratch, &mut out);
            set.match_hashes(&s, &mut out);
        }
    }

    #[test]
    fn rejection_display() {
        let r = Rejection {
            location: "indicators.csv:17".into(),
            reason: "cannot infer indicator type of 'foo bar'".into(),
        };
        assert_eq!(
            r.to_string(),
            "indicators.csv:17: cannot infer indicator type of 'foo bar'"
        );
        assert_eq!(shorten("abc"), "abc");
        assert!(shorten(&"é".repeat(100)).ends_with("..."));
    }
}
