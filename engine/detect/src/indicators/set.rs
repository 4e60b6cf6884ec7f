//! An indexed set of indicators for fast lookups.

use std::collections::hash_map::Entry;
use std::mem::size_of;
use std::net::IpAddr;

use super::normalize::{
    UrlParts, normalize_domain, normalize_url, parse_ip_or_net, split_host_port, split_url,
};
use super::{Indicator, IndicatorKind};
use crate::ip::{FastState, PrefixTable, parse_ip_lenient};
type HashMap<K, V> = std::collections::HashMap<K, V, FastState>;

/// A file hash as a map key: the decoded digest and its length in bytes
/// (16, 20 or 32).  Equivalent to keying by lowercase hex, at less than
/// half the memory and without a heap allocation per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct HashKey {
    len: u8,
    bytes: [u8; 32],
}

/// Hex digit values; 0xff for a non-hex byte.  A table keeps scanning and
/// decoding branch-free on random hex (branchy decoding mispredicts a lot).
static HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

#[inline]
fn is_hex(b: u8) -> bool {
    HEX[b as usize] != 0xff
}

impl HashKey {
    /// Decodes 32, 40 or 64 hex digits (any case).
    fn from_hex(hex: &[u8]) -> Option<HashKey> {
        IndicatorKind::hash_from_hex_len(hex.len())?;
        let mut bytes = [0u8; 32];
        let mut bad = 0u8;
        for (out, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let (hi, lo) = (HEX[pair[0] as usize], HEX[pair[1] as usize]);
            bad |= hi | lo;
            *out = (hi << 4) | (lo & 0x0f);
        }
        if bad & 0xf0 != 0 {
            return None;
        }
        Some(HashKey {
            len: (hex.len() / 2) as u8,
            bytes,
        })
    }
}

/// Indicators indexed for lookup by IP, domain, URL and hash.
///
/// Build it once with [`IndicatorSet::build`]; lookups take `&self`, so a
/// set can be shared between threads.  Lookup functions *append* the
/// indices of matching indicators to `out` (they never clear it); resolve an
/// index with [`IndicatorSet::get`].
///
/// Lookups do not allocate, except that `match_domain` / `match_url` copy an
/// input containing ASCII uppercase into the caller's `scratch` string
/// (which reuses its capacity), and `out` may grow.
#[derive(Clone)]
pub struct IndicatorSet {
    indicators: Vec<Indicator>,
    ips: HashMap<IpAddr, u32>,
    cidrs: PrefixTable<u32>,
    domains: HashMap<Box<str>, u32>,
    urls: HashMap<Box<str>, u32>,
    hashes: HashMap<HashKey, u32>,
    counts: [usize; 7],
    duplicates: usize,
    invalid: usize,
    /// Heap bytes of the boxed string keys.
    key_heap: usize,
}

impl std::fmt::Debug for IndicatorSet {
    /// A summary, not the contents.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndicatorSet")
            .field("len", &self.len())
            .field("counts_by_kind", &self.counts_by_kind())
            .field("duplicates", &self.duplicates)
            .field("invalid", &self.invalid)
            .finish_non_exhaustive()
    }
}

impl Default for IndicatorSet {
    fn default() -> Self {
        IndicatorSet::build(Vec::new())
    }
}

impl IndicatorSet {
    /// Indexes `indicators`.
    ///
    /// Values are re-checked (and normalised if needed, so hand-built
    /// indicators work too); an indicator whose value is invalid for its
    /// kind is dropped and counted in [`IndicatorSet::invalid`].
    /// Duplicates (same kind and normalised value, e.g. from several feeds)
    /// keep the first occurrence and are counted in
    /// [`IndicatorSet::duplicates`].  Indices are `u32`: indicators beyond
    /// `u32::MAX` are dropped as invalid.
    pub fn build(indicators: Vec<Indicator>) -> IndicatorSet {
        let mut per_kind = [0usize; 7];
        for i in &indicators {
            per_kind[i.kind.index()] += 1;
        }
        let mut set = IndicatorSet {
            indicators: Vec::with_capacity(indicators.len()),
            ips: HashMap::with_capacity_and_hasher(
                per_kind[IndicatorKind::Ip.index()],
                FastState::default(),
            ),
            cidrs: PrefixTable::new(),
            domains: HashMap::with_capacity_and_hasher(
                per_kind[IndicatorKind::Domain.index()],
                FastState::default(),
            ),
            urls: HashMap::with_capacity_and_hasher(
                per_kind[IndicatorKind::Url.index()],
                FastState::default(),
            ),
            hashes: HashMap::with_capacity_and_hasher(
                per_kind[IndicatorKind::Md5.index()]
                    + per_kind[IndicatorKind::Sha1.index()]
                    + per_kind[IndicatorKind::Sha256.index()],
                FastState::default(),
            ),
            counts: [0; 7],
            duplicates: 0,
            invalid: 0,
            key_heap: 0,
        };
        for ind in indicators {
            set.add(ind);
        }
        set.cidrs.shrink_to_fit();
        set.indicators.shrink_to_fit();
        set
    }

    fn add(&mut self, mut ind: Indicator) {
        let Ok(idx) = u32::try_from(self.indicators.len()) else {
            self.invalid += 1;
            return;
        };
        let is_new = match ind.kind {
            IndicatorKind::Ip | IndicatorKind::Cidr => match parse_ip_or_net(&ind.value) {
                Ok(Ok(addr)) => {
                    ind.kind = IndicatorKind::Ip;
                    insert_new(&mut self.ips, addr, idx)
                }
                Ok(Err(net)) => {
                    ind.kind = IndicatorKind::Cidr;
                    if self.cidrs.exact(&net).next().is_some() {
                        false
                    } else {
                        self.cidrs.insert(net, idx);
                        true
                    }
                }
                Err(_) => {
                    self.invalid += 1;
                    return;
                }
            },
            IndicatorKind::Domain => {
                let Ok(d) = normalize_domain(&ind.value, false) else {
                    self.invalid += 1;
                    return;
                };
                if d != ind.value {
                    ind.value.clone_from(&d);
                }
                let new = insert_new(&mut self.domains, d.clone().into_boxed_str(), idx);
                if new {
                    self.key_heap += d.len();
                }
                new
            }
            IndicatorKind::Url => {
                let Ok(u) = normalize_url(&ind.value) else {
                    self.invalid += 1;
                    return;
                };
                if u != ind.value {
                    ind.value.clone_from(&u);
                }
                let len = u.len();
                let new = insert_new(&mut self.urls, u.into_boxed_str(), idx);
                if new {
                    self.key_heap += len;
                }
                new
            }
            IndicatorKind::Md5 | IndicatorKind::Sha1 | IndicatorKind::Sha256 => {
                let hex = ind.value.trim();
                let key = match HashKey::from_hex(hex.as_bytes()) {
                    Some(k) if Some(hex.len()) == ind.kind.hash_hex_len() => k,
                    _ => {
                        self.invalid += 1;
                        return;
                    }
                };
                if hex.len() != ind.value.len() || hex.bytes().any(|b| b.is_ascii_uppercase()) {
                    ind.value = hex.to_ascii_lowercase();
                }
                insert_new(&mut self.hashes, key, idx)
            }
        };
        if is_new {
            self.counts[ind.kind.index()] += 1;
            self.indicators.push(ind);
        } else {
            self.duplicates += 1;
        }
    }

    /// Number of (distinct, valid) indicators.
    pub fn len(&self) -> usize {
        self.indicators.len()
    }

    /// True if the set is empty.
    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
    }

    /// The indicator at `idx` (an index from a lookup).
    ///
    /// # Panics
    /// If `idx` did not come from this set.
    pub fn get(&self, idx: u32) -> &Indicator {
        &self.indicators[idx as usize]
    }

    /// All indicators, in index order.
    pub fn indicators(&self) -> &[Indicator] {
        &self.indicators
    }

    /// Number of indicators dropped because the same kind and value was
    /// already present.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// Number of indicators dropped because their value was invalid.
    pub fn invalid(&self) -> usize {
        self.invalid
    }

    /// Number of indicators of each kind, in [`IndicatorKind::ALL`] order.
    pub fn counts_by_kind(&self) -> [(IndicatorKind, usize); 7] {
        IndicatorKind::ALL.map(|k| (k, self.counts[k.index()]))
    }

    /// Approximate heap bytes used by the set: indicators with their
    /// strings, and the indexes.
    pub fn memory_usage(&self) -> usize {
        fn map_bytes<K, V>(m: &HashMap<K, V>) -> usize {
            // hashbrown: one control byte per bucket plus the slot.
            m.capacity() * (size_of::<(K, V)>() + 1)
        }
        let strings: usize = self
            .indicators
            .iter()
            .map(|i| {
                i.value.capacity()
                    + i.source.capacity()
                    + i.description.as_ref().map_or(0, String::capacity)
                    + i.id.as_ref().map_or(0, String::capacity)
            })
            .sum();
        self.indicators.capacity() * size_of::<Indicator>()
            + strings
            + map_bytes(&self.ips)
            + self.cidrs.memory_usage()
            + map_bytes(&self.domains)
            + map_bytes(&self.urls)
            + map_bytes(&self.hashes)
            + self.key_heap
    }

    /// Appends the indices of indicators matching `addr`: the exact IP and
    /// every CIDR containing it (most specific first).  An IPv4-mapped IPv6
    /// address is also matched as IPv4.
    pub fn match_ip(&self, addr: IpAddr, out: &mut Vec<u32>) {
        if !self.ips.is_empty() {
            let canonical = addr.to_canonical();
            if let Some(&i) = self.ips.get(&canonical) {
                out.push(i);
            }
        }
        if !self.cidrs.is_empty() {
            out.extend(self.cidrs.matches(addr).copied());
        }
    }

    /// Appends the indices of domain indicators matching `host`: the host
    /// itself and each parent domain (`a.b.evil.com` checks `a.b.evil.com`,
    /// `b.evil.com`, `evil.com`, `com`), so a listed domain matches all its
    /// subdomains but `notevil.com` does not match `evil.com`.  Surrounding
    /// whitespace and a trailing dot are ignored; ASCII case is ignored
    /// (an input with uppercase is lowercased into `scratch`).
    pub fn match_domain(&self, host: &str, scratch: &mut String, out: &mut Vec<u32>) {
        if self.domains.is_empty() {
            return;
        }
        let h = host.trim();
        let h = h.strip_suffix('.').unwrap_or(h);
        let h = lowercase_in(h, scratch);
        self.match_domain_lower(h, out);
    }

    fn match_domain_lower(&self, host: &str, out: &mut Vec<u32>) {
        if host.is_empty() {
            return;
        }
        let mut s = host;
        loop {
            if let Some(&i) = self.domains.get(s) {
                out.push(i);
            }
            match s.find('.') {
                Some(p) => s = &s[p + 1..],
                None => break,
            }
        }
    }

    /// Appends the indices of indicators matching a URL.
    ///
    /// * URL indicators: the URL is normalised like indicators are (scheme
    ///   and host lowercased, a bare `/` path dropped) and looked up as is;
    ///   then without its fragment, and then without its query string (so
    ///   the indicator `http://evil.com/dl.exe` also matches
    ///   `http://evil.com/dl.exe?x=1`).  No other normalisation (percent
    ///   decoding, default ports, dot segments) is done.
    /// * The host is matched against the domain indicators (with
    ///   subdomains) or, if it is an IP address, against the IP and CIDR
    ///   indicators.
    ///
    /// A string without `scheme://` is taken as `host[:port][/path]`: only
    /// its host is matched.
    pub fn match_url(&self, url: &str, scratch: &mut String, out: &mut Vec<u32>) {
        let u = url.trim();
        let Some(parts) = split_url(u) else {
            let end = u.find(['/', '?', '#']).unwrap_or(u.len());
            let authority = &u[..end];
            let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            // A bare IPv6 address has colons but no port.
            let host = match parse_ip_lenient(hostport) {
                Some(_) => hostport,
                None => split_host_port(hostport).0,
            };
            let host = lowercase_in(host, scratch);
            self.match_host(host, out);
            return;
        };
        let norm: &str = if parts.is_normalized() {
            u
        } else {
            scratch.clear();
            parts.write_normalized(scratch);
            scratch
        };
        if !self.urls.is_empty() {
            self.match_url_normalized(norm, &parts, out);
        }
        let host_start = parts.host_offset();
        let host = norm
            .get(host_start..host_start + parts.host.len())
            .unwrap_or("");
        self.match_host(host, out);
    }

    fn match_url_normalized(&self, norm: &str, parts: &UrlParts<'_>, out: &mut Vec<u32>) {
        let rest_at = parts.rest_offset();
        let lookup = |s: &str, out: &mut Vec<u32>| {
            // A path of just "/" is dropped by normalisation.
            let s = if s.len() == rest_at + 1 && s.ends_with('/') {
                &s[..rest_at]
            } else {
                s
            };
            if let Some(&i) = self.urls.get(s) {
                out.push(i);
            }
        };
        lookup(norm, out);
        let rest = norm.get(rest_at..).unwrap_or("");
        let frag = rest.find('#');
        let query = rest.find('?').filter(|&q| frag.is_none_or(|f| q < f));
        if let Some(f) = frag {
            lookup(&norm[..rest_at + f], out);
        }
        if let Some(q) = query {
            lookup(&norm[..rest_at + q], out);
        }
    }

    /// Matches an already-lowercased URL host: IP (possibly bracketed) or
    /// domain.
    fn match_host(&self, host: &str, out: &mut Vec<u32>) {
        if host.is_empty() {
            return;
        }
        if (host.starts_with('[')
            || host.contains(':')
            || host.ends_with(|c: char| c.is_ascii_digit()))
            && let Some(addr) = parse_ip_lenient(host)
        {
            self.match_ip(addr, out);
            return;
        }
        let host = host.strip_suffix('.').unwrap_or(host);
        self.match_domain_lower(host, out);
    }

    /// Appends the indices of hash indicators found in `text`.
    ///
    /// `text` is split into maximal runs of hex digits; runs of 32, 40 or
    /// 64 digits are looked up (any case) as md5, sha1 and sha256.  So a
    /// bare hash works, and so does Sysmon's
    /// `SHA1=...,MD5=...,SHA256=...,IMPHASH=...`.  Note that the IMPHASH
    /// (32 hex digits) is looked up as an md5 too: it only matches if a
    /// feed lists that exact value as md5, which is harmless.  Each
    /// matching indicator is reported once even if its hash occurs twice.
    pub fn match_hashes(&self, text: &str, out: &mut Vec<u32>) {
        if self.hashes.is_empty() {
            return;
        }
        let start = out.len();
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if !is_hex(b[i]) {
                i += 1;
                continue;
            }
            let run = i;
            while i < b.len() && is_hex(b[i]) {
                i += 1;
            }
            if let Some(key) = HashKey::from_hex(&b[run..i])
                && let Some(&idx) = self.hashes.get(&key)
                && !out[start..].contains(&idx)
            {
                out.push(idx);
            }
        }
    }
}

/// `s`, or its ASCII-lowercased copy in `scratch` if it has uppercase.
fn lowercase_in<'a>(s: &'a str, scratch: &'a mut String) -> &'a str {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        scratch.clear();
        scratch.push_str(s);
        scratch.make_ascii_lowercase();
        scratch
    } else {
        s
    }
}

/// Inserts if absent; true if inserted.
fn insert_new<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: K, idx: u32) -> bool {
    match map.entry(key) {
        Entry::Occupied(_) => false,
        Entry::Vacant(e) => {
            e.insert(idx);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::IndicatorKind::*;
    use crate::indicators::{infer, normalize};

    fn ind(kind: IndicatorKind, value: &str) -> Indicator {
        let (kind, value) = normalize(kind, value).unwrap();
        Indicator {
            kind,
            value,
            source: "test".into(),
            description: None,
            id: None,
        }
    }

    fn values(set: &IndicatorSet, idx: &[u32]) -> Vec<String> {
        idx.iter().map(|&i| set.get(i).value.clone()).collect()
    }

    fn dom(set: &IndicatorSet, host: &str) -> Vec<String> {
        let mut out = Vec::new();
        set.match_domain(host, &mut String::new(), &mut out);
        values(set, &out)
    }

    fn url(set: &IndicatorSet, u: &str) -> Vec<String> {
        let mut out = Vec::new();
        set.match_url(u, &mut String::new(), &mut out);
        values(set, &out)
    }

    fn ip(set: &IndicatorSet, a: &str) -> Vec<String> {
        let mut out = Vec::new();
        set.match_ip(a.parse().unwrap(), &mut out);
        values(set, &out)
    }

    fn hashes(set: &IndicatorSet, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        set.match_hashes(text, &mut out);
        values(set, &out)
    }

    #[test]
    fn subdomain_matching() {
        let set = IndicatorSet::build(vec![
            ind(Domain, "evil.com"),
            ind(Domain, "b.evil.com"),
            ind(Domain, "bad.co.uk"),
        ]);
        assert_eq!(dom(&set, "evil.com"), ["evil.com"]);
        assert_eq!(dom(&set, "a.b.evil.com"), ["b.evil.com", "evil.com"]);
        assert_eq!(dom(&set, "x.evil.com"), ["evil.com"]);
        assert_eq!(dom(&set, " WWW.Evil.COM. "), ["evil.com"]);
        assert!(dom(&set, "notevil.com").is_empty());
        assert!(dom(&set, "evil.com.au").is_empty());
        assert!(dom(&set, "evil.co").is_empty());
        assert!(dom(&set, "com").is_empty());
        assert!(dom(&set, "co.uk").is_empty());
        assert_eq!(dom(&set, "x.bad.co.uk"), ["bad.co.uk"]);
        assert!(dom(&set, "").is_empty());
        assert!(dom(&set, ".").is_empty());

        // Scratch is only used for uppercase input.
        let mut scratch = String::new();
        let mut out = Vec::new();
        set.match_domain("x.evil.com", &mut scratch, &mut out);
        assert!(scratch.is_empty());
        set.match_domain("X.EVIL.COM", &mut scratch, &mut out);
        assert_eq!(scratch, "x.evil.com");
        assert_eq!(out.len(), 2, "out is appended to");
    }

    #[test]
    fn ip_matching() {
        let set = IndicatorSet::build(vec![
            ind(Ip, "10.1.2.3"),
            ind(Cidr, "10.0.0.0/8"),
            ind(Cidr, "10.1.0.0/16"),
            ind(Cidr, "0.0.0.0/0"),
            ind(Ip, "2001:db8::1"),
            ind(Cidr, "2001:db8::/32"),
        ]);
        assert_eq!(
            ip(&set, "10.1.2.3"),
            ["10.1.2.3", "10.1.0.0/16", "10.0.0.0/8", "0.0.0.0/0"]
        );
        assert_eq!(
            ip(&set, "::ffff:10.1.2.3"),
            ["10.1.2.3", "10.1.0.0/16", "10.0.0.0/8", "0.0.0.0/0"]
        );
        assert_eq!(ip(&set, "11.0.0.1"), ["0.0.0.0/0"]);
        assert_eq!(ip(&set, "2001:db8::1"), ["2001:db8::1", "2001:db8::/32"]);
        assert_eq!(ip(&set, "2001:db8::2"), ["2001:db8::/32"]);
        assert!(ip(&set, "2001:db9::1").is_empty());
    }

    #[test]
    fn url_matching() {
        let set = IndicatorSet::build(vec![
            ind(Url, "http://evil.com/dl/payload.exe"),
            ind(Url, "https://bad.example/"),
            ind(Url, "http://q.example/a?x=1"),
            ind(Domain, "phish.example"),
            ind(Ip, "192.0.2.1"),
            ind(Cidr, "2001:db8::/32"),
        ]);
        assert_eq!(
            url(&set, "http://evil.com/dl/payload.exe"),
            ["http://evil.com/dl/payload.exe"]
        );
        assert_eq!(
            url(&set, "HTTP://EVIL.COM/dl/payload.exe"),
            ["http://evil.com/dl/payload.exe"]
        );
        assert_eq!(
            url(&set, "http://evil.com/dl/payload.exe?session=42#top"),
            ["http://evil.com/dl/payload.exe"]
        );
        assert!(
            url(&set, "http://evil.com/dl/PAYLOAD.exe").is_empty(),
            "path is case-sensitive"
        );
        assert!(
            url(&set, "https://evil.com/dl/payload.exe").is_empty(),
            "scheme matters"
        );
        assert_eq!(url(&set, "https://bad.example"), ["https://bad.example"]);
        assert_eq!(url(&set, "https://bad.example/"), ["https://bad.example"]);
        assert_eq!(
            url(&set, "https://bad.example/?utm=1"),
            ["https://bad.example"]
        );
        assert_eq!(
            url(&set, "http://q.example/a?x=1"),
            ["http://q.example/a?x=1"]
        );
        assert!(url(&set, "http://q.example/a?x=2").is_empty());
        assert!(url(&set, "http://q.example/a").is_empty());
        // Host checks.
        assert_eq!(
            url(&set, "https://login.PHISH.example/x"),
            ["phish.example"]
        );
        assert_eq!(
            url(&set, "http://user@phish.example:8443/"),
            ["phish.example"]
        );
        assert_eq!(url(&set, "http://192.0.2.1:8080/x"), ["192.0.2.1"]);
        assert_eq!(url(&set, "http://[2001:db8::5]/x"), ["2001:db8::/32"]);
        assert_eq!(url(&set, "phish.example/path"), ["phish.example"]);
        assert_eq!(url(&set, "192.0.2.1:80"), ["192.0.2.1"]);
        assert_eq!(url(&set, "2001:db8::5"), ["2001:db8::/32"]);
        assert_eq!(url(&set, "[2001:db8::5]:443/x"), ["2001:db8::/32"]);
        assert!(url(&set, "http://notphish.example/").is_empty());
        assert!(url(&set, "").is_empty());
        assert!(url(&set, "http://").is_empty());
    }

    #[test]
    fn sysmon_hashes() {
        let md5 = "0cc175b9c0f1b6a831c399e269772661";
        let sha1 = "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8";
        let sha256 = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
        let set = IndicatorSet::build(vec![ind(Md5, md5), ind(Sha1, sha1), ind(Sha256, sha256)]);
        let sysmon = format!(
            "SHA1={},MD5={},SHA256={},IMPHASH=F34D5F2D4577ED6D9CEEC516C1F5A744",
            sha1.to_uppercase(),
            md5.to_uppercase(),
            sha256.to_uppercase()
        );
        assert_eq!(hashes(&set, &sysmon), [sha1, md5, sha256]);
        assert_eq!(hashes(&set, sha256), [sha256]);
        assert_eq!(
            hashes(&set, &format!("{md5} {md5}")),
            [md5],
            "reported once"
        );
        // Runs of other lengths are not hashes: a 64-digit run is not two md5s.
        assert!(hashes(&set, &format!("{md5}{md5}")).is_empty());
        assert!(hashes(&set, &format!("{md5}0")).is_empty());
        assert!(hashes(&set, &md5[1..]).is_empty());
        assert!(hashes(&set, "").is_empty());
        // Kind must agree with length.
        let bad = IndicatorSet::build(vec![Indicator {
            kind: Sha1,
            value: md5.into(),
            source: "t".into(),
            description: None,
            id: None,
        }]);
        assert_eq!(bad.len(), 0);
        assert_eq!(bad.invalid(), 1);
    }

    #[test]
    fn duplicates_and_counts() {
        let mut a = ind(Domain, "evil.com");
        a.source = "feed-a".into();
        let mut b = ind(Domain, "EVIL.com.");
        b.source = "feed-b".into();
        // Hand-built, not normalised: normalised by build.
        let c = Indicator {
            kind: Domain,
            value: "Evil.Com".into(),
            source: "feed-c".into(),
            description: None,
            id: None,
        };
        let d = Indicator {
            kind: Ip,
            value: "10.0.0.0/8".into(),
            source: "feed-c".into(),
            description: None,
            id: None,
        };
        let set = IndicatorSet::build(vec![
            a,
            b,
            c,
            d,
            ind(Cidr, "10.1.0.0/8"),
            ind(Ip, "1.1.1.1"),
            ind(Ip, "::ffff:1.1.1.1"),
            ind(Md5, &"A".repeat(32)),
            ind(Md5, &"a".repeat(32)),
            ind(Url, "http://x.example/"),
        ]);
        assert_eq!(set.len(), 5);
        assert_eq!(set.duplicates(), 5);
        assert_eq!(set.invalid(), 0);
        assert_eq!(dom(&set, "evil.com"), ["evil.com"]);
        let mut out = Vec::new();
        set.match_domain("evil.com", &mut String::new(), &mut out);
        assert_eq!(set.get(out[0]).source, "feed-a");
        assert_eq!(
            set.counts_by_kind(),
            [
                (Ip, 1),
                (Cidr, 1),
                (Domain, 1),
                (Url, 1),
                (Md5, 1),
                (Sha1, 0),
                (Sha256, 0)
            ]
        );
        assert_eq!(set.indicators()[1].kind, Cidr);
        assert!(set.memory_usage() > 0);
        assert!(IndicatorSet::default().is_empty());
    }

    /// Deterministic xorshift generator.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn large_generated_set() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut inds = Vec::with_capacity(200_000);
        for i in 0..200_000u64 {
            let r = rng.next();
            let value = match i % 5 {
                0 => std::net::Ipv4Addr::from((r >> 8) as u32).to_string(),
                1 => format!(
                    "{}/{}",
                    std::net::Ipv4Addr::from((r >> 8) as u32),
                    16 + (r % 13)
                ),
                2 => format!("d{:x}.example{}.com", r, i % 97),
                3 => format!("{:032x}", u128::from(r) << 64 | u128::from(rng.next())),
                _ => format!(
                    "{:016x}{:016x}{:016x}{:016x}",
                    r,
                    rng.next(),
                    rng.next(),
                    rng.next()
                ),
            };
            let (kind, value) = infer(&value).unwrap();
            inds.push(Indicator {
                kind,
                value,
                source: "gen".into(),
                description: None,
                id: None,
            });
        }
        let sample: Vec<Indicator> = inds.iter().step_by(997).cloned().collect();
        let set = IndicatorSet::build(inds);
        assert_eq!(set.len() + set.duplicates(), 200_000);
        assert!(set.duplicates() < 1000, "{}", set.duplicates());
        let counts = set.counts_by_kind();
        assert!(
            counts.iter().all(|&(k, n)| n > 0 || k == Url || k == Sha1),
            "{counts:?}"
        );

        let mut out = Vec::new();
        let mut scratch = String::new();
        for s in &sample {
            out.clear();
            match s.kind {
                Ip => set.match_ip(s.value.parse().unwrap(), &mut out),
                Cidr => {
                    let net = crate::ip::IpNet::parse(&s.value).unwrap();
                    set.match_ip(net.addr(), &mut out)
                }
                Domain => set.match_domain(&format!("www.{}", s.value), &mut scratch, &mut out),
                _ => set.match_hashes(&s.value.to_uppercase(), &mut out),
            }
            assert!(
                out.iter()
                    .any(|&i| set.get(i).value == s.value && set.get(i).kind == s.kind),
                "{s:?} not found"
            );
        }
        // Misses.
        out.clear();
        set.match_domain("nothing.invalid", &mut scratch, &mut out);
        set.match_hashes(&"7".repeat(64), &mut out);
        set.match_url("https://nothing.invalid/x", &mut scratch, &mut out);
        assert!(out.is_empty());
    }
}
