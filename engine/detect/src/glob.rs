//! Sigma string patterns: literals with `*` and `?` wildcards.
//!
//! A Sigma string is parsed once into tokens; escapes (`\*`, `\?`, `\\`)
//! are resolved here and nowhere else. Literals are bytes because the
//! encoding modifiers (`utf16le`, `base64`, ...) produce bytes.

/// Every character outside ASCII whose lowercase form holds an ASCII
/// character (a test checks the list against the whole of Unicode): where
/// one of them is, the ASCII-lowercased raw text does not show every
/// lowercased value.
pub(crate) const LOWERS_TO_ASCII: [char; 2] = ['\u{130}', '\u{212A}'];

/// One token of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tok {
    Lit(Vec<u8>),
    /// `*`: any sequence, including the empty one.
    Star,
    /// `?`: exactly one character.
    One,
}

/// A parsed Sigma string pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern {
    toks: Vec<Tok>,
}

/// The shape of a pattern, which decides how it is indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape<'a> {
    /// No wildcard: the whole value must equal the literal.
    Exact(&'a [u8]),
    /// `lit*`
    Prefix(&'a [u8]),
    /// `*lit`
    Suffix(&'a [u8]),
    /// `*lit*`
    Contains(&'a [u8]),
    /// Only `*`: any value.
    Any,
    /// Anything else: checked with [`Pattern::matches`], gated on a literal if it has one.
    General,
}

impl Pattern {
    /// Parses a Sigma string, interpreting `*`, `?` and backslash escapes.
    ///
    /// `\*`, `\?` and `\\` are escapes; a backslash before any other
    /// character (or at the end) is a literal backslash.
    pub fn parse(s: &str) -> Pattern {
        let mut p = Pattern { toks: Vec::new() };
        let bytes = s.as_bytes();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => match bytes.get(i + 1) {
                    Some(&c @ (b'*' | b'?' | b'\\')) => {
                        lit.push(c);
                        i += 2;
                    }
                    _ => {
                        lit.push(b'\\');
                        i += 1;
                    }
                },
                b'*' => {
                    p.flush(&mut lit);
                    p.push_star();
                    i += 1;
                }
                b'?' => {
                    p.flush(&mut lit);
                    p.toks.push(Tok::One);
                    i += 1;
                }
                c => {
                    lit.push(c);
                    i += 1;
                }
            }
        }
        p.flush(&mut lit);
        p
    }

    /// A pattern from tokens (merging adjacent literals and stars).
    pub fn from_toks(toks: Vec<Tok>) -> Pattern {
        let mut p = Pattern { toks: Vec::new() };
        for t in toks {
            match t {
                Tok::Lit(mut l) => p.flush(&mut l),
                Tok::Star => p.push_star(),
                Tok::One => p.toks.push(Tok::One),
            }
        }
        p
    }

    /// A pattern matching exactly these bytes.
    pub fn literal(bytes: Vec<u8>) -> Pattern {
        let mut p = Pattern { toks: Vec::new() };
        let mut lit = bytes;
        p.flush(&mut lit);
        p
    }

    fn flush(&mut self, lit: &mut Vec<u8>) {
        if lit.is_empty() {
            return;
        }
        if let Some(Tok::Lit(prev)) = self.toks.last_mut() {
            prev.append(lit);
        } else {
            self.toks.push(Tok::Lit(std::mem::take(lit)));
        }
    }

    fn push_star(&mut self) {
        if self.toks.last() != Some(&Tok::Star) {
            self.toks.push(Tok::Star);
        }
    }

    /// The tokens.
    pub fn toks(&self) -> &[Tok] {
        &self.toks
    }

    /// Whether the pattern has any wildcard.
    pub fn has_wildcards(&self) -> bool {
        self.toks.iter().any(|t| !matches!(t, Tok::Lit(_)))
    }

    /// The literal bytes if the pattern has no wildcard.
    pub fn as_literal(&self) -> Option<Vec<u8>> {
        match self.toks.as_slice() {
            [] => Some(Vec::new()),
            [Tok::Lit(l)] => Some(l.clone()),
            _ => None,
        }
    }

    /// `*` + self + `*` (no doubled stars).
    pub fn contains(mut self) -> Pattern {
        if self.toks.first() != Some(&Tok::Star) {
            self.toks.insert(0, Tok::Star);
        }
        self.push_star();
        self
    }

    /// self + `*`.
    pub fn startswith(mut self) -> Pattern {
        self.push_star();
        self
    }

    /// `*` + self.
    pub fn endswith(mut self) -> Pattern {
        if self.toks.first() != Some(&Tok::Star) {
            self.toks.insert(0, Tok::Star);
        }
        self
    }

    /// Lowercases every literal (Unicode-aware when the literal is UTF-8).
    pub fn lowercase(mut self) -> Pattern {
        for t in &mut self.toks {
            if let Tok::Lit(l) = t {
                *l = lowercase_bytes(l);
            }
        }
        self
    }

    /// Classifies the pattern.
    pub fn shape(&self) -> Shape<'_> {
        match self.toks.as_slice() {
            [] => Shape::Exact(&[]),
            [Tok::Lit(l)] => Shape::Exact(l),
            [Tok::Lit(l), Tok::Star] => Shape::Prefix(l),
            [Tok::Star, Tok::Lit(l)] => Shape::Suffix(l),
            [Tok::Star, Tok::Lit(l), Tok::Star] => Shape::Contains(l),
            [Tok::Star] => Shape::Any,
            _ => Shape::General,
        }
    }

    /// The longest literal run, used to gate general patterns on an automaton.
    pub fn longest_literal(&self) -> Option<&[u8]> {
        self.toks
            .iter()
            .filter_map(|t| match t {
                Tok::Lit(l) => Some(l.as_slice()),
                _ => None,
            })
            .max_by_key(|l| l.len())
    }

    /// Full match of `hay` against the pattern (the caller lowercases both
    /// sides for case-insensitive matching).
    pub fn matches(&self, hay: &[u8]) -> bool {
        let n = 1 + self.toks.iter().filter(|t| **t == Tok::Star).count();
        let mut segs = self.toks.split(|t| *t == Tok::Star);
        let first = segs.next().unwrap_or(&[]);
        if n == 1 {
            return match_seg_at(first, hay, 0) == Some(hay.len());
        }
        // First segment anchored at the start.
        let Some(mut pos) = match_seg_at(first, hay, 0) else {
            return false;
        };
        // Middle segments: leftmost occurrence (greedy is exact for star-separated segments).
        for seg in segs.by_ref().take(n - 2) {
            match find_seg(seg, hay, pos) {
                Some(end) => pos = end,
                None => return false,
            }
        }
        // Last segment anchored at the end: try the positions whose match ends at hay.len().
        let last = segs.next().unwrap_or(&[]);
        if last.is_empty() {
            return true;
        }
        let mut start = pos;
        while start <= hay.len() {
            if may_start(last, hay, start) && match_seg_at(last, hay, start) == Some(hay.len()) {
                return true;
            }
            start += 1;
        }
        false
    }
}

/// A pattern compiled for repeated matching: its star-separated segments,
/// with a substring searcher built once for each middle segment's leading
/// literal. Agrees with [`Pattern::matches`].
#[derive(Debug, Clone)]
pub struct Glob {
    /// The pattern has no star: the whole value must match this segment.
    whole: Option<Vec<Tok>>,
    first: Vec<Tok>,
    middle: Vec<(Vec<Tok>, Option<memchr::memmem::Finder<'static>>)>,
    last: Vec<Tok>,
}

impl Glob {
    pub fn new(p: &Pattern) -> Glob {
        let segs: Vec<Vec<Tok>> = p
            .toks
            .split(|t| *t == Tok::Star)
            .map(<[Tok]>::to_vec)
            .collect();
        if segs.len() == 1 {
            return Glob {
                whole: segs.into_iter().next(),
                first: Vec::new(),
                middle: Vec::new(),
                last: Vec::new(),
            };
        }
        let n = segs.len();
        let mut it = segs.into_iter();
        let first = it.next().unwrap_or_default();
        let mut middle = Vec::new();
        for _ in 1..n - 1 {
            let seg = it.next().unwrap_or_default();
            let finder = match seg.first() {
                Some(Tok::Lit(l)) => Some(memchr::memmem::Finder::new(l).into_owned()),
                _ => None,
            };
            middle.push((seg, finder));
        }
        let last = it.next().unwrap_or_default();
        Glob {
            whole: None,
            first,
            middle,
            last,
        }
    }

    /// Full match of `hay` (lowercased by the caller when the pattern is).
    /// The segments anchored at either end are checked first: they fail
    /// fast, in time bounded by their own length.
    pub fn matches(&self, hay: &[u8]) -> bool {
        if let Some(seg) = &self.whole {
            return match_seg_at(seg, hay, 0) == Some(hay.len());
        }
        let Some(mut pos) = match_seg_at(&self.first, hay, 0) else {
            return false;
        };
        let Some(limit) = match_seg_back(&self.last, hay, pos) else {
            return false;
        };
        // Middle segments: leftmost occurrence, ending before the last one.
        let hay = &hay[..limit];
        for (seg, finder) in &self.middle {
            let found = match finder {
                Some(f) => {
                    let mut start = pos;
                    loop {
                        let Some(off) = hay.get(start..).and_then(|h| f.find(h)) else {
                            break None;
                        };
                        if let Some(end) = match_seg_at(seg, hay, start + off) {
                            break Some(end);
                        }
                        start += off + 1;
                    }
                }
                None => (pos..=hay.len())
                    .filter(|&s| may_start(seg, hay, s))
                    .find_map(|s| match_seg_at(seg, hay, s)),
            };
            match found {
                Some(end) => pos = end,
                None => return false,
            }
        }
        true
    }

    /// Approximate heap bytes.
    pub fn memory_usage(&self) -> usize {
        let seg = |s: &[Tok]| {
            s.iter()
                .map(|t| match t {
                    Tok::Lit(l) => 32 + l.len(),
                    _ => 32,
                })
                .sum::<usize>()
        };
        self.whole.as_deref().map_or(0, seg)
            + seg(&self.first)
            + seg(&self.last)
            + self
                .middle
                .iter()
                .map(|(s, f)| 56 + seg(s) + f.as_ref().map_or(0, |f| 64 + f.needle().len()))
                .sum::<usize>()
    }

    /// Whether the pattern is anchored at the start or the end (a check
    /// that fails fast, without searching the value).
    pub fn anchored(&self) -> bool {
        self.whole.is_some() || !self.first.is_empty() || !self.last.is_empty()
    }
}

/// Matches a star-free segment ending exactly at the end of `hay` and
/// starting at or after `floor`; returns where it starts. `?` steps back
/// over one UTF-8 character.
fn match_seg_back(seg: &[Tok], hay: &[u8], floor: usize) -> Option<usize> {
    let mut end = hay.len();
    for t in seg.iter().rev() {
        match t {
            Tok::Lit(l) => {
                if end < floor + l.len() || &hay[end - l.len()..end] != l.as_slice() {
                    return None;
                }
                end -= l.len();
            }
            Tok::One => {
                if end <= floor {
                    return None;
                }
                end -= 1;
                while end > floor && (hay[end] & 0xC0) == 0x80 {
                    end -= 1;
                }
            }
            Tok::Star => unreachable!("segments are star-free"),
        }
    }
    Some(end)
}

/// Matches a star-free segment at `at`; returns the end offset.
fn match_seg_at(seg: &[Tok], hay: &[u8], at: usize) -> Option<usize> {
    let mut pos = at;
    for t in seg {
        match t {
            Tok::Lit(l) => {
                if hay.get(pos..pos + l.len())? != l.as_slice() {
                    return None;
                }
                pos += l.len();
            }
            Tok::One => {
                let b = *hay.get(pos)?;
                pos += utf8_len(b);
                if pos > hay.len() {
                    return None;
                }
            }
            Tok::Star => unreachable!("segments are star-free"),
        }
    }
    Some(pos)
}

/// Leftmost occurrence of a star-free segment at or after `from`; returns its end.
fn find_seg(seg: &[Tok], hay: &[u8], from: usize) -> Option<usize> {
    if let Some(Tok::Lit(first)) = seg.first() {
        let mut start = from;
        while let Some(off) = memchr::memmem::find(hay.get(start..)?, first) {
            if let Some(end) = match_seg_at(seg, hay, start + off) {
                return Some(end);
            }
            start += off + 1;
        }
        return None;
    }
    (from..=hay.len())
        .filter(|&s| may_start(seg, hay, s))
        .find_map(|s| match_seg_at(seg, hay, s))
}

/// Whether `seg` may start matching at `s`: a leading `?` is one whole
/// character, so it never starts inside a UTF-8 sequence.
fn may_start(seg: &[Tok], hay: &[u8], s: usize) -> bool {
    seg.first() != Some(&Tok::One) || hay.get(s).is_none_or(|b| b & 0xC0 != 0x80)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xff => 4,
        _ => 1,
    }
}

/// Lowercases bytes: Unicode-aware for UTF-8, ASCII otherwise.
pub fn lowercase_bytes(b: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(b) {
        Ok(s) if !s.is_ascii() => lowercase(s).into_bytes(),
        _ => b.to_ascii_lowercase(),
    }
}

/// `s` lowercased, as [`lowercase_append`] does it.
pub fn lowercase(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    lowercase_append(s, &mut out);
    out
}

/// Lowercases `s` into `buf` (cleared first), as [`lowercase_append`] does it.
pub fn lowercase_into(s: &str, buf: &mut String) {
    buf.clear();
    lowercase_append(s, buf);
}

/// Appends `s` lowercased to `buf`, ASCII fast path.
///
/// Rule literals, event values and routing values all go through this one
/// function, character by character: `str::to_lowercase` turns a
/// word-final `Σ` into `ς` depending on what follows it, so a literal
/// lowercased on its own and the same text inside a longer value could
/// differ. The final sigma `ς` is folded to `σ`, so that `ΟΔΟΣ`, `οδος` and
/// `οδοσ` compare equal, as Unicode case folding has them.
pub fn lowercase_append(s: &str, buf: &mut String) {
    if s.is_ascii() {
        let at = buf.len();
        buf.push_str(s);
        buf[at..].make_ascii_lowercase();
    } else {
        for c in s.chars() {
            match c {
                '\u{3c2}' => buf.push('\u{3c3}'),
                c => buf.extend(c.to_lowercase()),
            }
        }
    }
}

/// Whether a condition identifier pattern (`sel*`, `*filter`) matches `name`.
pub fn ident_matches(pattern: &str, name: &str) -> bool {
    let toks: Vec<Tok> = pattern
        .split('*')
        .enumerate()
        .flat_map(|(i, part)| {
            let mut v = Vec::new();
            if i > 0 {
                v.push(Tok::Star);
            }
            if !part.is_empty() {
                v.push(Tok::Lit(part.as_bytes().to_vec()));
            }
            v
        })
        .collect();
    Pattern { toks }.matches(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_globs_agree_with_patterns() {
        let pats = [
            "*a*b*",
            "a*",
            "*a",
            "a?c",
            "*\\?*.exe*",
            "ab*cd*ef",
            "*x?y*z",
            "??",
            "*",
            "a*a*a",
            "*.e?e",
            "é*?",
            "*ab*ab",
            "a**b",
            "*?",
            "x",
            "*??",
            "*??x*",
            "*?x",
            "?*??",
        ];
        let hays = [
            "",
            "a",
            "ab",
            "abc",
            "aXc",
            "xaby",
            "c:\\x\\y.exe",
            "abcdef",
            "abXcdYef",
            "xqyzz",
            "xyz",
            "aaa",
            "aa",
            "éé",
            "é",
            "abab",
            "zab",
            ".exe",
            "a.eXe",
            "xx",
            "€",
            "€x",
            "a€x",
            "x€€",
            "€€",
        ];
        for p in pats {
            let pat = Pattern::parse(p);
            let g = Glob::new(&pat);
            for h in hays {
                assert_eq!(
                    g.matches(h.as_bytes()),
                    pat.matches(h.as_bytes()),
                    "{p} on {h}"
                );
            }
        }
    }

    fn m(p: &str, h: &str) -> bool {
        Pattern::parse(p).matches(h.as_bytes())
    }

    /// `?` is one character however many bytes it takes, wherever the
    /// segment it starts is searched for.
    #[test]
    fn question_mark_is_one_whole_character() {
        for (p, h, want) in [
            ("*??", "€", false),
            ("*??", "€€", true),
            ("*??x*", "€x", false),
            ("*??x*", "a€x", true),
            ("*?x", "€x", true),
            ("?", "€", true),
        ] {
            let pat = Pattern::parse(p);
            assert_eq!(pat.matches(h.as_bytes()), want, "pattern {p} on {h}");
            assert_eq!(
                Glob::new(&pat).matches(h.as_bytes()),
                want,
                "glob {p} on {h}"
            );
        }
    }

    #[test]
    fn escapes() {
        // pySigma: `\*` escapes the star; `\\*` is a backslash then a wildcard.
        assert_eq!(
            Pattern::parse(r"C:\Windows\*").as_literal(),
            Some(br"C:\Windows*".to_vec())
        );
        assert_eq!(
            Pattern::parse(r"C:\Windows\\*").toks(),
            &[Tok::Lit(br"C:\Windows\".to_vec()), Tok::Star]
        );
        assert_eq!(
            Pattern::parse(r"a\\\*").as_literal(),
            Some(br"a\*".to_vec())
        );
        assert_eq!(Pattern::parse(r"a\*b").as_literal(), Some(b"a*b".to_vec()));
        assert_eq!(Pattern::parse(r"a\\b").as_literal(), Some(br"a\b".to_vec()));
        assert_eq!(Pattern::parse(r"a\?").as_literal(), Some(b"a?".to_vec()));
        assert_eq!(
            Pattern::parse(r"end\").as_literal(),
            Some(br"end\".to_vec())
        );
    }

    #[test]
    fn glob_matching() {
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(m("a*b*c", "abc"));
        assert!(!m("a*b*c", "acb"));
        assert!(m("*.exe", "x.exe"));
        assert!(!m("*.exe", "x.exe.txt"));
        assert!(m("a?c", "abc"));
        assert!(m("a?c", "aéc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*", ""));
        assert!(m("*a*a", "aaa"));
        assert!(m("*ab*ab", "abab"));
        assert!(!m("*ab*ab", "ab"));
        assert!(m("", ""));
        assert!(!m("", "x"));
    }

    #[test]
    fn shapes() {
        assert_eq!(Pattern::parse("ab").shape(), Shape::Exact(b"ab"));
        assert_eq!(
            Pattern::parse("ab").contains().shape(),
            Shape::Contains(b"ab")
        );
        assert_eq!(
            Pattern::parse("*ab*").contains().shape(),
            Shape::Contains(b"ab")
        );
        assert_eq!(
            Pattern::parse("ab").startswith().shape(),
            Shape::Prefix(b"ab")
        );
        assert_eq!(
            Pattern::parse("ab").endswith().shape(),
            Shape::Suffix(b"ab")
        );
        assert_eq!(Pattern::parse("a*b").shape(), Shape::General);
        assert_eq!(Pattern::parse("**").shape(), Shape::Any);
    }

    #[test]
    fn idents() {
        assert!(ident_matches("sel*", "selection"));
        assert!(ident_matches("*_1", "sel_1"));
        assert!(!ident_matches("sel*", "filter"));
        assert!(ident_matches("sel", "sel"));
    }
}
