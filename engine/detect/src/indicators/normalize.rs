//! Normalisation and type inference of indicator values.

use std::net::IpAddr;

use super::{Hint, IndicatorKind, shorten};
use crate::ip::{IpNet, parse_ip_lenient};

/// Normalises `raw` as an indicator of kind `kind`, returning the kind that
/// applies (which may differ) and the normalised value:
///
/// * `Ip` / `Cidr`: a value with `/` is a CIDR (host bits cleared), without
///   it an IP; so a "cidr" given as a bare address becomes an `Ip` and an
///   "ip" given with a prefix becomes a `Cidr`.  Text is canonical
///   (`std` formatting), IPv6 may be bracketed, and IPv4-mapped IPv6
///   (`::ffff:1.2.3.4`, `::ffff:0:0/96` and longer) becomes IPv4.
/// * `Domain`: ASCII lowercased, trailing dot removed, a leading `*.` or
///   `.` removed (subdomains match anyway); labels of `[a-z0-9-_]`, 1-63
///   characters, total at most 253, last label not all digits.  Non-ASCII
///   (IDNA) names are rejected.  An IP address given as a domain becomes
///   an `Ip`.
/// * `Url`: must have `scheme://` and a host; scheme and host lowercased,
///   path/query/fragment kept as is, a path of just `/` removed
///   (`http://evil.com/` -> `http://evil.com`).  No whitespace allowed.
/// * `Md5` / `Sha1` / `Sha256`: lowercase hex of exactly 32 / 40 / 64 digits.
pub fn normalize(kind: IndicatorKind, raw: &str) -> Result<(IndicatorKind, String), String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(format!("empty {kind} value"));
    }
    match kind {
        IndicatorKind::Ip | IndicatorKind::Cidr => normalize_ip_or_cidr(s),
        IndicatorKind::Domain => {
            if let Some(a) = parse_ip_lenient(s) {
                return Ok((IndicatorKind::Ip, canonical_ip(a).to_string()));
            }
            normalize_domain(s, false).map(|d| (IndicatorKind::Domain, d))
        }
        IndicatorKind::Url => normalize_url(s).map(|u| (IndicatorKind::Url, u)),
        IndicatorKind::Md5 | IndicatorKind::Sha1 | IndicatorKind::Sha256 => {
            normalize_hash(kind, s).map(|h| (kind, h))
        }
    }
}

/// Infers the kind of an untyped value and normalises it.
///
/// In order: IP address, CIDR, hex hash by length (32 = md5, 40 = sha1,
/// 64 = sha256), URL (contains `scheme://`), domain (looks like a host
/// name: labels of `[A-Za-z0-9-_]`, at least one dot, last label not all
/// digits).  Anything else is an error "cannot infer indicator type of '...'".
pub fn infer(raw: &str) -> Result<(IndicatorKind, String), String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("empty value".to_string());
    }
    if let Some(a) = parse_ip_lenient(s) {
        return Ok((IndicatorKind::Ip, canonical_ip(a).to_string()));
    }
    if s.contains("://") {
        return normalize_url(s).map(|u| (IndicatorKind::Url, u));
    }
    if let Some((addr, _)) = s.split_once('/')
        && addr.parse::<IpAddr>().is_ok()
    {
        // An address with a prefix: a CIDR, or an error about the prefix.
        return IpNet::parse(s).map(ip_net_result);
    }
    if let Some(kind) = IndicatorKind::hash_from_hex_len(s.len())
        && s.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Ok((kind, s.to_ascii_lowercase()));
    }
    if looks_like_hostname(s) {
        return normalize_domain(s, true).map(|d| (IndicatorKind::Domain, d));
    }
    Err(format!("cannot infer indicator type of '{}'", shorten(s)))
}

/// Normalises according to a type hint from a feed.
pub(crate) fn normalize_hint(hint: Hint, raw: &str) -> Result<(IndicatorKind, String), String> {
    match hint {
        Hint::Kind(k) => normalize(k, raw),
        Hint::Infer => infer(raw),
        Hint::AnyHash => {
            let s = raw.trim();
            match IndicatorKind::hash_from_hex_len(s.len()) {
                Some(k) => normalize_hash(k, s).map(|h| (k, h)),
                None => Err(format!(
                    "hash '{}' has {} characters; expected 32 (md5), 40 (sha1) or 64 (sha256) hex digits",
                    shorten(s),
                    s.len()
                )),
            }
        }
    }
}

fn canonical_ip(a: IpAddr) -> IpAddr {
    a.to_canonical()
}

fn ip_net_result(net: IpNet) -> (IndicatorKind, String) {
    let net = net.to_canonical();
    (IndicatorKind::Cidr, net.to_string())
}

/// Parses an IP (no `/`) or a network (with `/`), canonical form.
pub(crate) fn parse_ip_or_net(s: &str) -> Result<Result<IpAddr, IpNet>, String> {
    let s = s.trim();
    if s.contains('/') {
        IpNet::parse(s).map(|n| Err(n.to_canonical()))
    } else {
        parse_ip_lenient(s)
            .map(|a| Ok(canonical_ip(a)))
            .ok_or_else(|| format!("invalid IP address '{}'", shorten(s)))
    }
}

fn normalize_ip_or_cidr(s: &str) -> Result<(IndicatorKind, String), String> {
    Ok(match parse_ip_or_net(s)? {
        Ok(a) => (IndicatorKind::Ip, a.to_string()),
        Err(n) => ip_net_result(n),
    })
}

/// True if `s` looks like a host name for type inference: labels of
/// `[A-Za-z0-9-_]`, at least one dot, last label not all digits.  A leading
/// `*.` and a trailing dot are allowed.
fn looks_like_hostname(s: &str) -> bool {
    let s = s.strip_prefix("*.").unwrap_or(s);
    let s = s.strip_suffix('.').unwrap_or(s);
    s.contains('.') && check_domain_labels(s).is_ok()
}

/// Checks labels of an already-lowercased-or-not ASCII domain.
fn check_domain_labels(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err(format!(
            "domain '{}' is longer than 253 characters",
            shorten(s)
        ));
    }
    let mut last = "";
    for label in s.split('.') {
        if label.is_empty() {
            return Err(format!("domain '{}' has an empty label", shorten(s)));
        }
        if label.len() > 63 {
            return Err(format!(
                "domain '{}' has a label longer than 63 characters",
                shorten(s)
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "domain '{}' contains invalid character {c:?}",
                shorten(s)
            ));
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "domain '{}' has an all-numeric top-level label",
            shorten(s)
        ));
    }
    Ok(())
}

/// Normalises a domain; `need_dot` requires at least two labels.
pub(crate) fn normalize_domain(s: &str, need_dot: bool) -> Result<String, String> {
    let s = s.trim();
    let s = s
        .strip_prefix("*.")
        .or_else(|| s.strip_prefix('.'))
        .unwrap_or(s);
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return Err("empty domain".to_string());
    }
    if !s.is_ascii() {
        return Err(format!(
            "non-ASCII domain '{}' (IDNA is not supported: use the punycode form)",
            shorten(s)
        ));
    }
    check_domain_labels(s)?;
    if need_dot && !s.contains('.') {
        return Err(format!("domain '{}' has no dot", shorten(s)));
    }
    Ok(s.to_ascii_lowercase())
}

/// The pieces of a `scheme://userinfo@host:port/rest` URL, as slices of the
/// input.  `userinfo` includes its '@', `port` its ':'; `rest` is path +
/// query + fragment (possibly empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UrlParts<'a> {
    pub scheme: &'a str,
    pub userinfo: &'a str,
    pub host: &'a str,
    pub port: &'a str,
    pub rest: &'a str,
}

impl UrlParts<'_> {
    /// Byte offset of `rest` in the normalised URL.
    pub fn rest_offset(&self) -> usize {
        self.scheme.len() + 3 + self.userinfo.len() + self.host.len() + self.port.len()
    }

    /// Byte offset of `host` in the normalised URL.
    pub fn host_offset(&self) -> usize {
        self.scheme.len() + 3 + self.userinfo.len()
    }

    /// True if the normalised URL equals the input text.
    pub fn is_normalized(&self) -> bool {
        !self.scheme.bytes().any(|b| b.is_ascii_uppercase())
            && !self.host.bytes().any(|b| b.is_ascii_uppercase())
            && self.rest != "/"
    }

    /// Appends the normalised URL to `out`.
    pub fn write_normalized(&self, out: &mut String) {
        push_lower(out, self.scheme);
        out.push_str("://");
        out.push_str(self.userinfo);
        push_lower(out, self.host);
        out.push_str(self.port);
        if self.rest != "/" {
            out.push_str(self.rest);
        }
    }
}

fn push_lower(out: &mut String, s: &str) {
    let start = out.len();
    out.push_str(s);
    out[start..].make_ascii_lowercase();
}

/// Splits `scheme://authority/rest`; `None` without a valid scheme.
pub(crate) fn split_url(s: &str) -> Option<UrlParts<'_>> {
    let (scheme, after) = s.split_once("://")?;
    let mut sb = scheme.bytes();
    if !sb.next().is_some_and(|b| b.is_ascii_alphabetic())
        || !sb.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    let (host, port) = split_host_port(hostport);
    Some(UrlParts {
        scheme,
        userinfo,
        host,
        port,
        rest,
    })
}

/// Splits `host:port`, `[v6]:port`; the port part keeps its ':'.
pub(crate) fn split_host_port(hostport: &str) -> (&str, &str) {
    if hostport.starts_with('[') {
        match hostport.find(']') {
            Some(i) => hostport.split_at(i + 1),
            None => (hostport, ""),
        }
    } else {
        match hostport.rfind(':') {
            Some(i) if hostport[i + 1..].bytes().all(|b| b.is_ascii_digit()) => {
                hostport.split_at(i)
            }
            _ => (hostport, ""),
        }
    }
}

/// Normalises a URL (see [`normalize`]).
pub(crate) fn normalize_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.chars().any(char::is_whitespace) {
        return Err(format!("URL '{}' contains whitespace", shorten(s)));
    }
    let parts = split_url(s).ok_or_else(|| {
        format!(
            "URL '{}' has no valid scheme (expected scheme://host...)",
            shorten(s)
        )
    })?;
    if parts.host.is_empty() {
        return Err(format!("URL '{}' has no host", shorten(s)));
    }
    let mut out = String::with_capacity(s.len());
    parts.write_normalized(&mut out);
    Ok(out)
}

/// Checks and lowercases a hash of the given kind.
pub(crate) fn normalize_hash(kind: IndicatorKind, s: &str) -> Result<String, String> {
    let s = s.trim();
    let want = kind.hash_hex_len().unwrap_or(0);
    if s.len() != want {
        return Err(format!(
            "{kind} hash '{}' has {} characters, expected {want} hex digits",
            shorten(s),
            s.len()
        ));
    }
    if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "{kind} hash '{}' contains non-hex character {c:?}",
            shorten(s)
        ));
    }
    Ok(s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use IndicatorKind::*;

    fn n(kind: IndicatorKind, s: &str) -> (IndicatorKind, String) {
        normalize(kind, s).unwrap()
    }

    fn i(s: &str) -> (IndicatorKind, String) {
        infer(s).unwrap()
    }

    #[test]
    fn ips_and_cidrs() {
        assert_eq!(n(Ip, " 1.2.3.4 "), (Ip, "1.2.3.4".into()));
        assert_eq!(n(Ip, "2001:DB8:0:0::1"), (Ip, "2001:db8::1".into()));
        assert_eq!(n(Ip, "[2001:db8::1]"), (Ip, "2001:db8::1".into()));
        assert_eq!(n(Ip, "::ffff:1.2.3.4"), (Ip, "1.2.3.4".into()));
        assert_eq!(n(Ip, "10.1.2.3/8"), (Cidr, "10.0.0.0/8".into()));
        assert_eq!(n(Cidr, "10.1.2.3/8"), (Cidr, "10.0.0.0/8".into()));
        assert_eq!(n(Cidr, "10.1.2.3"), (Ip, "10.1.2.3".into()));
        assert_eq!(n(Cidr, "::ffff:10.0.0.0/104"), (Cidr, "10.0.0.0/8".into()));
        assert_eq!(n(Cidr, "2001:db8:1::/32"), (Cidr, "2001:db8::/32".into()));
        assert!(normalize(Ip, "1.2.3.256").is_err());
        assert!(normalize(Cidr, "1.2.3.0/33").unwrap_err().contains("/33"));
        assert!(normalize(Ip, "").is_err());
    }

    #[test]
    fn domains() {
        assert_eq!(n(Domain, "Evil.COM."), (Domain, "evil.com".into()));
        assert_eq!(n(Domain, "*.evil.com"), (Domain, "evil.com".into()));
        assert_eq!(n(Domain, ".evil.com"), (Domain, "evil.com".into()));
        assert_eq!(
            n(Domain, "_dmarc.x-y.evil.com"),
            (Domain, "_dmarc.x-y.evil.com".into())
        );
        assert_eq!(n(Domain, "localhost"), (Domain, "localhost".into()));
        assert_eq!(n(Domain, "1.2.3.4"), (Ip, "1.2.3.4".into()));
        assert!(normalize(Domain, "ev il.com").is_err());
        assert!(normalize(Domain, "evil..com").is_err());
        assert!(normalize(Domain, "1.2.3.999").is_err());
        assert!(normalize(Domain, "bücher.de").unwrap_err().contains("IDNA"));
        assert!(normalize(Domain, &format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn hashes() {
        let md5 = "D41D8CD98F00B204E9800998ECF8427E";
        assert_eq!(n(Md5, md5), (Md5, md5.to_ascii_lowercase()));
        let e = normalize(Sha1, md5).unwrap_err();
        assert!(
            e.contains("sha1") && e.contains("32 characters") && e.contains("40"),
            "{e}"
        );
        let e = normalize(Md5, &"g".repeat(32)).unwrap_err();
        assert!(e.contains("non-hex"), "{e}");
        assert_eq!(n(Sha256, &"A".repeat(64)).1, "a".repeat(64));
        assert_eq!(
            normalize_hint(Hint::AnyHash, &"b".repeat(40)).unwrap(),
            (Sha1, "b".repeat(40))
        );
        assert!(normalize_hint(Hint::AnyHash, "abc").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            n(Url, "HTTP://Evil.COM/Path/X?Q=A#F"),
            (Url, "http://evil.com/Path/X?Q=A#F".into())
        );
        assert_eq!(
            n(Url, "https://evil.com/"),
            (Url, "https://evil.com".into())
        );
        assert_eq!(n(Url, "https://evil.com"), (Url, "https://evil.com".into()));
        assert_eq!(
            n(Url, "https://evil.com/?a=1"),
            (Url, "https://evil.com/?a=1".into())
        );
        assert_eq!(
            n(Url, "http://User:Pw@EVIL.com:8080/"),
            (Url, "http://User:Pw@evil.com:8080".into())
        );
        assert_eq!(
            n(Url, "http://[2001:DB8::1]:80/x"),
            (Url, "http://[2001:db8::1]:80/x".into())
        );
        assert!(normalize(Url, "evil.com/x").unwrap_err().contains("scheme"));
        assert!(normalize(Url, "http:///x").unwrap_err().contains("no host"));
        assert!(normalize(Url, "http://evil.com/a b").is_err());
        assert!(normalize(Url, "1http://evil.com").is_err());
    }

    #[test]
    fn inference() {
        assert_eq!(i("1.2.3.4"), (Ip, "1.2.3.4".into()));
        assert_eq!(i("[::1]"), (Ip, "::1".into()));
        assert_eq!(i("10.1.0.0/16"), (Cidr, "10.1.0.0/16".into()));
        assert_eq!(i("2001:db8::/32"), (Cidr, "2001:db8::/32".into()));
        assert_eq!(i(&"A".repeat(32)), (Md5, "a".repeat(32)));
        assert_eq!(i(&"1".repeat(40)), (Sha1, "1".repeat(40)));
        assert_eq!(i(&"f".repeat(64)), (Sha256, "f".repeat(64)));
        assert_eq!(i("hxxp://x"), (Url, "hxxp://x".into()));
        assert_eq!(i("HTTPS://EVIL.com/"), (Url, "https://evil.com".into()));
        assert_eq!(i("Evil.Com"), (Domain, "evil.com".into()));
        assert_eq!(i("*.evil.com."), (Domain, "evil.com".into()));
        assert_eq!(i("a_b.evil-x.co.uk"), (Domain, "a_b.evil-x.co.uk".into()));
        for bad in [
            "foo bar",
            "localhost",
            "1.2.3",
            "1.2.3.4.5",
            "abc",
            "evil.com/path",
            "10.0.0.0/40",
            &"a".repeat(33),
        ] {
            let e = infer(bad).unwrap_err();
            assert!(
                e.starts_with("cannot infer indicator type of")
                    || bad.contains("/40")
                    || e.contains("domain"),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            infer("foo bar").unwrap_err(),
            "cannot infer indicator type of 'foo bar'"
        );
        assert!(infer("").is_err());
    }
}
