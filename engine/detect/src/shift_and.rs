//! Regexes that are a fixed sequence of byte classes, matched by shift-and.
//!
//! Many Sigma regexes have no alternation and no open repetition: a GUID
//! (`[A-F0-9]{8}-[A-F0-9]{4}-…`), a colon followed by anything but a
//! backslash (`:[^\\]`), a flag between spaces (`\s-k\s`). Each position of
//! such a pattern accepts a set of bytes, so whether the pattern occurs in
//! a text is one bit-parallel pass: the state keeps one bit per pattern
//! position, shifted and masked by the byte's table entry at each byte
//! (Baeza-Yates and Gonnet's shift-and). That is two or three instructions
//! a byte with no search setup, where a general regex engine pays for its
//! machinery on every call.
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

/// A compiled fixed-length pattern.
#[derive(Debug, Clone)]
pub(crate) struct ShiftAnd {
    masks: Masks,
    /// The bit of the last position.
    last: u128,
    /// `^`: only a match starting at the first byte counts.
    start: bool,
    /// `$`: only a match ending at the last byte counts.
    end: bool,
}

/// Per byte value: the positions that accept it (bit `i`: position `i`),
/// in the narrowest word that holds the pattern.
#[derive(Debug, Clone)]
enum Masks {
    W64(Box<[u64; 256]>),
    W128(Box<[u128; 256]>),
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

/// Whether the pattern of `masks` (last position `last`) occurs in `text`.
#[inline(always)]
fn run<W: Word>(masks: &[W; 256], last: W, start: bool, end: bool, text: &[u8]) -> bool {
    let mut d = W::ZERO;
    if start {
        // Only the state that started at byte 0 survives.
        let mut inject = W::ONE;
        for &b in text {
            d = ((d << 1) | inject) & masks[b as usize];
            inject = W::ZERO;
            if d == W::ZERO {
                return false;
            }
            if d & last != W::ZERO && !end {
                return true;
            }
        }
        return d & last != W::ZERO;
    }
    for &b in text {
        d = ((d << 1) | W::ONE) & masks[b as usize];
        if d & last != W::ZERO && !end {
            return true;
        }
    }
    d & last != W::ZERO
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
        flatten(&hir, &mut items);
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
        let mut masks = Box::new([0u128; 256]);
        for (i, set) in pos.iter().enumerate() {
            for b in 0..256 {
                if set[b] {
                    masks[b] |= 1 << i;
                }
            }
        }
        let masks = if pos.len() <= 64 {
            Masks::W64(Box::new(masks.map(|m| m as u64)))
        } else {
            Masks::W128(masks)
        };
        Some(ShiftAnd {
            masks,
            last: 1 << (pos.len() - 1),
            start,
            end,
        })
    }

    /// Whether the pattern occurs in `text`.
    #[inline]
    pub(crate) fn is_match(&self, text: &[u8]) -> bool {
        match &self.masks {
            Masks::W64(m) => run(m, self.last as u64, self.start, self.end, text),
            Masks::W128(m) => run(m, self.last, self.start, self.end, text),
        }
    }

    pub(crate) fn memory_usage(&self) -> usize {
        match &self.masks {
            Masks::W64(_) => 256 * 8 + 32,
            Masks::W128(_) => 256 * 16 + 32,
        }
    }
}

/// The items of `h` in sequence, captures and nested concatenations undone.
fn flatten<'a>(h: &'a Hir, out: &mut Vec<&'a Hir>) {
    match h.kind() {
        HirKind::Concat(items) => items.iter().for_each(|i| flatten(i, out)),
        HirKind::Capture(c) => flatten(&c.sub, out),
        _ => out.push(h),
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

    use super::ShiftAnd;

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
