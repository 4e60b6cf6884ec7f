//! Regexes that are a fixed sequence of byte classes, matched by shift-and.
//!
//! Many Sigma regexes have no alternation and no open repetition: a GUID
//! (`[A-F0-9]{8}-[A-F0-9]{4}-…`), a colon followed by anything but a
//! backslash (`:[^\\]`), a flag between spaces (`\s-k\s`). Each position of
//! such a pattern accepts a set of bytes, and the bit-parallel string
//! algorithms work on such sets as well as on single bytes:
//!
//! - a position accepting at most three bytes (`:`) is searched with
//!   memchr's SIMD search, and the pattern checked around each hit;
//! - otherwise a pattern of six positions or more is searched by BNDM,
//!   which reads each window backwards only while what it read occurs in
//!   the pattern and then skips past it (a 36-byte GUID pattern looks at a
//!   few bytes per 36 of a text without one);
//! - anything shorter by shift-and (Baeza-Yates and Gonnet): one state bit
//!   per position, shifted and masked at each byte.
//!
//! None of them pays for a general regex engine's search setup per call.
//!
//! Only patterns whose every position is one byte qualify: literals (any
//! bytes), ASCII classes, fixed repetitions of those, `^`/`$` at the ends.
//! A class holding characters outside ASCII would need to match a
//! multi-byte character in one position; the one exception is a last
//! position that holds every character outside ASCII (`[^\\]`), where
//! whether a match exists is decided by the character's first byte alone.
//! Anything else (alternation, `*`, `{1,5}`, `\b`, multi-line anchors) is
//! left to regex-automata.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// Longest pattern handled (one state bit per position).
const MAX_LEN: usize = 128;
/// Patterns at least this long are searched by BNDM, which skips.
const BNDM_MIN: usize = 6;
/// Patterns at least this long are searched by BNDM even when they have a
/// rare position: it skips most of a text, while a byte such as `-` (in a
/// GUID) is common enough in command lines to make many candidates.
const BNDM_FIRST: usize = 16;

/// A compiled fixed-length pattern.
#[derive(Debug, Clone)]
pub(crate) struct ShiftAnd {
    masks: Masks,
    /// Pattern length (positions).
    len: usize,
    /// A position accepting at most three bytes, and those bytes: a text
    /// is searched for them first (`:` of `:[^\\]`), and the pattern
    /// checked around each.
    rare: Option<(usize, Vec<u8>)>,
    /// `^`: only a match starting at the first byte counts.
    start: bool,
    /// `$`: only a match ending at the last byte counts.
    end: bool,
}

/// Per byte value: the positions that accept it, in the narrowest word
/// that holds the pattern: bit `i` for position `i` (`fwd`), and bit
/// `len - 1 - i` (`rev`, for BNDM's backward reading).
#[derive(Debug, Clone)]
enum Masks {
    W64 {
        fwd: Box<[u64; 256]>,
        rev: Box<[u64; 256]>,
    },
    W128 {
        fwd: Box<[u128; 256]>,
        rev: Box<[u128; 256]>,
    },
}

/// A state word of shift-and.
trait Word:
    Copy
    + Eq
    + std::ops::Shl<u32, Output = Self>
    + std::ops::BitOr<Output = Self>
    + std::ops::BitAnd<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
}

impl Word for u64 {
    const ZERO: u64 = 0;
    const ONE: u64 = 1;
}

impl Word for u128 {
    const ZERO: u128 = 0;
    const ONE: u128 = 1;
}

/// Whether the pattern matches the `len` bytes of `text` at `at`.
#[inline(always)]
fn matches_at<W: Word>(fwd: &[W; 256], len: usize, text: &[u8], at: usize) -> bool {
    text[at..at + len]
        .iter()
        .enumerate()
        .all(|(i, &b)| fwd[b as usize] & (W::ONE << i as u32) != W::ZERO)
}

/// Whether the pattern occurs anywhere in `text`, by shift-and: one pass,
/// a few instructions a byte.
#[inline(always)]
fn shift_and<W: Word>(fwd: &[W; 256], len: usize, text: &[u8]) -> bool {
    let last = W::ONE << (len as u32 - 1);
    let mut d = W::ZERO;
    for &b in text {
        d = ((d << 1) | W::ONE) & fwd[b as usize];
        if d & last != W::ZERO {
            return true;
        }
    }
    false
}

/// Whether the pattern occurs anywhere in `text`, by BNDM (backward
/// nondeterministic DAWG matching): each window of `len` bytes is read
/// backwards only as long as what was read occurs in the pattern, and the
/// window then moves past the read part, often by nearly its whole length.
#[inline(always)]
fn bndm<W: Word>(rev: &[W; 256], len: usize, text: &[u8]) -> bool {
    let high = W::ONE << (len as u32 - 1);
    let mut pos = 0;
    while pos + len <= text.len() {
        let mut j = len;
        let mut last = len;
        let mut d = rev[text[pos + j - 1] as usize];
        while d != W::ZERO {
            j -= 1;
            if d & high != W::ZERO {
                if j == 0 {
                    return true;
                }
                last = j;
            }
            if j == 0 {
                break;
            }
            d = (d << 1) & rev[text[pos + j - 1] as usize];
        }
        pos += last;
    }
    false
}

impl ShiftAnd {
    fn search<W: Word>(&self, fwd: &[W; 256], rev: &[W; 256], text: &[u8]) -> bool {
        let (n, m) = (text.len(), self.len);
        if n < m {
            return false;
        }
        match (self.start, self.end) {
            (true, true) => return n == m && matches_at(fwd, m, text, 0),
            (true, false) => return matches_at(fwd, m, text, 0),
            (false, true) => return matches_at(fwd, m, text, n - m),
            (false, false) => {}
        }
        if m >= BNDM_FIRST {
            return bndm(rev, m, text);
        }
        if let Some((p, bytes)) = &self.rare {
            // Candidates: where the rare position's bytes sit, far enough
            // from both ends for the whole pattern.
            let hay = &text[*p..n - (m - 1 - p)];
            let check = |i: usize| matches_at(fwd, m, text, i);
            return match bytes[..] {
                [a] => memchr::memchr_iter(a, hay).any(check),
                [a, b] => memchr::memchr2_iter(a, b, hay).any(check),
                [a, b, c, ..] => memchr::memchr3_iter(a, b, c, hay).any(check),
                [] => false,
            };
        }
        if m >= BNDM_MIN {
            bndm(rev, m, text)
        } else {
            shift_and(fwd, m, text)
        }
    }
}

/// Byte sets of the positions of a pattern, while it is taken apart.
type Positions = Vec<[bool; 256]>;

impl ShiftAnd {
    /// The shift-and form of `pattern` (regex syntax, compiled the way
    /// regex-automata's meta regex compiles it), if it has one.
    pub(crate) fn new(pattern: &str) -> Option<ShiftAnd> {
        let hir = regex_syntax::ParserBuilder::new()
            .build()
            .parse(pattern)
            .ok()?;
        let mut items: Vec<&Hir> = Vec::new();
        crate::re::flatten(&hir, &mut items);
        let start = matches!(
            items.first().map(|h| h.kind()),
            Some(HirKind::Look(Look::Start))
        );
        let end = matches!(
            items.last().map(|h| h.kind()),
            Some(HirKind::Look(Look::End))
        );
        let body = &items[usize::from(start)
            ..items.len() - usize::from(end && items.len() > usize::from(start))];
        let mut pos: Positions = Vec::new();
        for (i, h) in body.iter().enumerate() {
            // With `$`, a last multi-byte character would have to end the
            // text: its first byte alone does not decide that.
            let last = i + 1 == body.len() && !end;
            push_item(h, last, &mut pos)?;
            if pos.len() > MAX_LEN {
                return None;
            }
        }
        if pos.is_empty() {
            return None;
        }
        let m = pos.len();
        let mut fwd = Box::new([0u128; 256]);
        let mut rev = Box::new([0u128; 256]);
        for (i, set) in pos.iter().enumerate() {
            for b in 0..256 {
                if set[b] {
                    fwd[b] |= 1 << i;
                    rev[b] |= 1 << (m - 1 - i);
                }
            }
        }
        let rare = pos
            .iter()
            .enumerate()
            .map(|(i, set)| {
                (
                    i,
                    (0..=255u8)
                        .filter(|&b| set[b as usize])
                        .collect::<Vec<u8>>(),
                )
            })
            .filter(|(_, bytes)| bytes.len() <= 3)
            .min_by_key(|(_, bytes)| bytes.len());
        let masks = if m <= 64 {
            Masks::W64 {
                fwd: Box::new(fwd.map(|x| x as u64)),
                rev: Box::new(rev.map(|x| x as u64)),
            }
        } else {
            Masks::W128 { fwd, rev }
        };
        Some(ShiftAnd {
            masks,
            len: m,
            rare,
            start,
            end,
        })
    }

    /// Whether the pattern occurs in `text`.
    #[inline]
    pub(crate) fn is_match(&self, text: &[u8]) -> bool {
        match &self.masks {
            Masks::W64 { fwd, rev } => self.search(fwd, rev, text),
            Masks::W128 { fwd, rev } => self.search(fwd, rev, text),
        }
    }

    /// Which search [`ShiftAnd::is_match`] uses on an unanchored pattern.
    #[cfg(test)]
    fn strategy(&self) -> &'static str {
        match (&self.rare, self.len) {
            (_, m) if m >= BNDM_FIRST => "bndm",
            (Some(_), _) => "rare",
            (None, m) if m >= BNDM_MIN => "bndm",
            (None, _) => "shift-and",
        }
    }

    pub(crate) fn memory_usage(&self) -> usize {
        match &self.masks {
            Masks::W64 { .. } => 2 * 256 * 8 + 48,
            Masks::W128 { .. } => 2 * 256 * 16 + 48,
        }
    }
}

/// Appends the positions of one item; `None` if it is not a fixed run of
/// single-byte positions.
fn push_item(h: &Hir, last: bool, pos: &mut Positions) -> Option<()> {
    match h.kind() {
        HirKind::Literal(l) => {
            for &b in l.0.iter() {
                let mut set = [false; 256];
                set[b as usize] = true;
                pos.push(set);
            }
            Some(())
        }
        HirKind::Class(c) => {
            pos.push(class_bytes(c, last)?);
            Some(())
        }
        HirKind::Capture(c) => push_item(&c.sub, last, pos),
        HirKind::Concat(items) => {
            for (i, it) in items.iter().enumerate() {
                push_item(it, last && i + 1 == items.len(), pos)?;
            }
            Some(())
        }
        HirKind::Repetition(r) if Some(r.min) == r.max && r.min as usize <= MAX_LEN => {
            for i in 0..r.min {
                push_item(&r.sub, last && i + 1 == r.min, pos)?;
                if pos.len() > MAX_LEN {
                    return None;
                }
            }
            Some(())
        }
        _ => None,
    }
}

/// The bytes a one-byte class position accepts: an ASCII class, or (in
/// the last position only) one holding every character outside ASCII.
fn class_bytes(c: &Class, last: bool) -> Option<[bool; 256]> {
    let mut set = [false; 256];
    match c {
        Class::Bytes(b) => {
            for r in b.ranges() {
                for x in r.start()..=r.end() {
                    set[x as usize] = true;
                }
            }
        }
        Class::Unicode(u) => {
            let mut beyond = 0u32;
            for r in u.ranges() {
                let (a, b) = (r.start() as u32, r.end() as u32);
                for x in a..=b.min(0x7f) {
                    set[x as usize] = true;
                }
                if b >= 0x80 {
                    // Characters, not code points: a range spanning the
                    // surrogates does not hold them.
                    let a = a.max(0x80);
                    let gap = b
                        .min(0xDFFF)
                        .saturating_sub(a.max(0xD800))
                        .saturating_add(1);
                    let gap = if a <= 0xDFFF && b >= 0xD800 { gap } else { 0 };
                    beyond += b - a + 1 - gap;
                }
            }
            if beyond > 0 {
                let all = 0x10FFFF - 0x80 + 1 - (0xDFFF - 0xD800 + 1);
                if !last || beyond != all {
                    return None;
                }
                // A character outside ASCII starts with a lead byte.
                set[0xC0..].iter_mut().for_each(|x| *x = true);
            }
        }
    }
    Some(set)
}

#[cfg(test)]
mod tests {
    use warden_gen::Rng;

    use super::{Masks, ShiftAnd};

    /// A text the pattern matches (ASCII bytes a position accepts).
    fn instance(sa: &ShiftAnd, g: &mut Rng) -> Vec<char> {
        let Masks::W64 { fwd, .. } = &sa.masks else {
            panic!("short patterns only")
        };
        (0..sa.len)
            .map(|i| {
                let ok: Vec<char> = (0..128u8)
                    .filter(|&b| fwd[b as usize] & (1 << i) != 0)
                    .map(char::from)
                    .collect();
                ok[g.below(ok.len())]
            })
            .collect()
    }

    fn meta(p: &str) -> regex_automata::meta::Regex {
        regex_automata::meta::Regex::new(p).unwrap()
    }

    #[test]
    fn takes_fixed_patterns_and_leaves_the_rest() {
        for p in [
            r":[^\\]",
            r":[^ \\]",
            r"[A-F0-9]{8}-[A-F0-9]{4}-[A-F0-9]{4}-[A-F0-9]{4}-[A-F0-9]{12}",
            r"\{[a-fA-F0-9]{8}-[a-fA-F0-9]{4}\}",
            r"^ab[0-9]$",
            "café",
            r"é[a-z]",
            &"a".repeat(65),
            &crate::re::translate(r"\s[a-fA-F0-9]{64}\s[a-fA-F0-9]{16}").unwrap(),
        ] {
            assert!(ShiftAnd::new(p).is_some(), "{p}");
        }
        for p in [
            r"a|bc",
            r"a+",
            r"a{1,3}",
            r"\bword",
            r"(?m)^a",
            r"[^\\]x",
            r"a[^\\]$",
            r"[éè]",
            "(?i)k",
            &"a".repeat(129),
            "",
        ] {
            assert!(ShiftAnd::new(p).is_none(), "{p}");
        }
    }

    /// Shift-and agrees with regex-automata on every pattern it takes, on
    /// texts built to hit, nearly hit and miss, with multi-byte characters.
    #[test]
    fn agrees_with_the_regex_engine() {
        let mut g = Rng::new(5);
        let atoms = [
            "a",
            "b",
            "[ab]",
            "[^a]",
            "[0-9]",
            "-",
            r"\\",
            "[A-F0-9]",
            "é",
            ".",
            r"\.",
            "[^ab]",
            "(?i)a",
            "(?i:[a-c])",
            "x{2}",
            "[a-c]{3}",
        ];
        let alphabet = [
            'a', 'b', 'c', 'A', '0', '9', '-', '\\', 'é', 'x', '.', ' ', '\n', '€',
        ];
        let mut taken = 0;
        for _ in 0..3_000 {
            let n = 1 + g.below(5);
            let mut p: String = (0..n).map(|_| atoms[g.below(atoms.len())]).collect();
            if g.below(3) == 0 {
                p = format!("^{p}");
            }
            if g.below(3) == 0 {
                p.push('$');
            }
            let Some(sa) = ShiftAnd::new(&p) else {
                continue;
            };
            taken += 1;
            let re = meta(&p);
            for _ in 0..40 {
                let len = g.below(12);
                let text: String = (0..len)
                    .map(|_| alphabet[g.below(alphabet.len())])
                    .collect();
                assert_eq!(
                    sa.is_match(text.as_bytes()),
                    re.is_match(&text),
                    "{p} on {text:?}"
                );
            }
        }
        assert!(taken > 500, "{taken}");
        // Each search strategy, on long texts full of near misses.
        for (p, strategy) in [
            (r":[^ \\]", "rare"),
            (r"[A-F0-9]{8}-[A-F0-9]{4}-[A-F0-9]{4}", "bndm"),
            (r"[A-F0-9]{4}-[A-F0-9]{4}", "rare"),
            (r"[A-F0-9]{8}[0-9a-c]{3}", "bndm"),
            (r"[c-z]{3}[0-9][a-wyz]{4}", "bndm"),
            (r"[a-f][0-9a-c]", "shift-and"),
        ] {
            let sa = ShiftAnd::new(p).unwrap();
            assert_eq!(sa.strategy(), strategy, "{p}");
            let re = meta(p);
            let alphabet = [
                'A', 'F', '0', '9', 'a', 'c', 'x', 'b', ':', ' ', '\\', '-', 'é',
            ];
            let mut hits = 0;
            for _ in 0..3_000 {
                let mut text = String::new();
                for _ in 0..g.below(4) {
                    let len = g.below(30);
                    text.extend((0..len).map(|_| alphabet[g.below(alphabet.len())]));
                    // An instance of the pattern, or one with a byte off.
                    let mut inst = instance(&sa, &mut g);
                    if g.below(2) == 0 {
                        let k = g.below(inst.len());
                        inst[k] = alphabet[g.below(alphabet.len())];
                    }
                    text.extend(inst);
                }
                let want = re.is_match(&text);
                assert_eq!(sa.is_match(text.as_bytes()), want, "{p} on {text:?}");
                hits += usize::from(want);
            }
            assert!(hits > 30 && hits < 2_970, "{p}: {hits} of 3000 texts match");
        }
        // Patterns longer than 64 positions run on 128-bit state.
        let p = crate::re::translate(r"\s[a-f0-9]{64}\s[a-f0-9]{16}").unwrap();
        let (sa, re) = (ShiftAnd::new(&p).unwrap(), meta(&p));
        let hex: String = (0..64)
            .map(|i| "0123456789abcdef".as_bytes()[i % 16] as char)
            .collect();
        for text in [
            format!("x {hex} {} y", &hex[..16]),
            format!("x {hex} {}", &hex[..15]),
            format!("x {hex}{} {}", &hex[..1], &hex[..16]),
            format!("{hex} {} {hex} {}", &hex[..16], &hex[..16]),
            format!(" {} {}", &hex[..63], &hex[..16]),
        ] {
            assert_eq!(sa.is_match(text.as_bytes()), re.is_match(&text), "{text}");
        }
    }
}
