//! Sigma regular expressions, compiled with the meaning Sigma gives them.
//!
//! Sigma's `re` values follow PCRE, where `\w`, `\d`, `\s` and `\b` are
//! ASCII classes unless a pattern opts into Unicode properties (PCRE2 without
//! `UCP`): `\w` is `[0-9A-Za-z_]`, `\d` is `[0-9]`, `\s` is
//! `[\t\n\v\f\r ]`, and `\b` sits between such a word byte and anything else.
//! regex-syntax reads them as Unicode classes, which match more (`\d`
//! matches Arabic-Indic digits) and make automata much larger (`\w{1,64}`
//! exhausts the lazy DFA's cache and falls back to the PikeVM). Every place
//! that compiles a rule's regex goes through [`translate`], so the one
//! meaning is used for matching, gating and explaining. Case-insensitive
//! matching (`(?i)`, the `|i` modifier) keeps Unicode simple case folding,
//! as PCRE does in UTF mode; `\pL` and other Unicode classes stay Unicode.

use regex_syntax::ast::{
    self, Assertion, AssertionKind, Ast, ClassAscii, ClassAsciiKind, ClassBracketed, ClassPerl,
    ClassPerlKind, ClassSet, ClassSetItem, Flag, Flags, FlagsItem, FlagsItemKind, Group, GroupKind,
};
use regex_syntax::hir::{Hir, HirKind, Repetition};

/// The pattern with its Perl classes and word boundaries made ASCII, as
/// text regex-automata compiles. Errors are regex-syntax's parse errors.
pub fn translate(pattern: &str) -> Result<String, String> {
    let mut tree = ast::parse::Parser::new()
        .parse(pattern)
        .map_err(|e| e.to_string())?;
    rewrite(&mut tree);
    let mut out = String::with_capacity(pattern.len() + 16);
    ast::print::Printer::new()
        .print(&tree, &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// A meta regex over [`translate`]'s form of `pattern`.
pub fn compile(
    pattern: &str,
    config: regex_automata::meta::Config,
) -> Result<regex_automata::meta::Regex, String> {
    let text = translate(pattern)?;
    regex_automata::meta::Regex::builder()
        .configure(config)
        .build(&text)
        .map_err(|e| e.to_string())
}

/// A pattern that occurs in exactly the same texts as `pattern` (regex
/// syntax, as [`translate`] gives it), with what an unanchored search for
/// *whether* it occurs never needs taken off: optional elements at either
/// end of the pattern (or of an alternative) go, and a repetition left at
/// an end keeps only its minimum (`-k\s\w{1,64}(\s?-p)?` occurs wherever
/// `-k\s\w` does, and only there). Its matches are matches of `pattern`,
/// so literals every match of `pattern` holds are in every one of its
/// matches too. `None` when nothing comes off (or the pattern does not
/// parse). Shorter patterns are cheaper to run, and some become fixed
/// byte sequences that skip the regex engine ([`crate::shift_and`]).
pub fn for_presence(pattern: &str) -> Option<String> {
    let hir = regex_syntax::parse(pattern).ok()?;
    let trimmed = trim(&hir);
    if trimmed == hir {
        return None;
    }
    // The printer does not bracket a repetition inside another, so an
    // optional `(?:a+)?` left in the middle prints as the lazy `a+?`: keep
    // the least form only when its text reads back as itself.
    let text = trimmed.to_string();
    (regex_syntax::parse(&text).ok()? == trimmed).then_some(text)
}

fn trim(h: &Hir) -> Hir {
    match h.kind() {
        HirKind::Alternation(alts) => Hir::alternation(alts.iter().map(trim).collect()),
        HirKind::Capture(c) => trim(&c.sub),
        HirKind::Concat(_) | HirKind::Repetition(_) => {
            let mut items = Vec::new();
            flatten(h, &mut items);
            trim_ends(items.into_iter().cloned().collect())
        }
        _ => h.clone(),
    }
}

/// [`trim`] on the elements of a concatenation (captures undone).
fn trim_ends(mut items: Vec<Hir>) -> Hir {
    let optional = |h: &Hir| matches!(h.kind(), HirKind::Repetition(r) if r.min == 0);
    // The end of the pattern.
    while items.last().is_some_and(optional) {
        items.pop();
    }
    if let Some(last) = items.last_mut()
        && let HirKind::Repetition(r) = last.kind()
    {
        *last = least(r);
    }
    // Its start.
    let start = items
        .iter()
        .position(|h| !optional(h))
        .unwrap_or(items.len());
    if let Some(HirKind::Repetition(r)) = items.get(start).map(Hir::kind) {
        items[start] = least(r);
    }
    Hir::concat(items.split_off(start))
}

/// The items of `h` in sequence, captures and nested concatenations undone.
pub(crate) fn flatten<'a>(h: &'a Hir, out: &mut Vec<&'a Hir>) {
    match h.kind() {
        HirKind::Concat(items) => items.iter().for_each(|i| flatten(i, out)),
        HirKind::Capture(c) => flatten(&c.sub, out),
        _ => out.push(h),
    }
}

/// Repetition `r` at its minimum count (a single count of a group is the
/// group's items).
fn least(r: &Repetition) -> Hir {
    let h = Hir::repetition(Repetition {
        min: r.min,
        max: Some(r.min),
        greedy: true,
        sub: r.sub.clone(),
    });
    let mut items = Vec::new();
    flatten(&h, &mut items);
    Hir::concat(items.into_iter().cloned().collect())
}

fn ascii_kind(k: &ClassPerlKind) -> ClassAsciiKind {
    match k {
        ClassPerlKind::Digit => ClassAsciiKind::Digit,
        ClassPerlKind::Space => ClassAsciiKind::Space,
        ClassPerlKind::Word => ClassAsciiKind::Word,
    }
}

fn ascii_item(p: &ClassPerl) -> ClassSetItem {
    ClassSetItem::Ascii(ClassAscii {
        span: p.span,
        kind: ascii_kind(&p.kind),
        negated: p.negated,
    })
}

fn rewrite(a: &mut Ast) {
    match a {
        Ast::ClassPerl(p) => {
            // `\w` becomes `[[:word:]]`, `\W` `[[:^word:]]`: POSIX classes
            // are ASCII in regex-syntax whatever the Unicode flag says.
            *a = Ast::class_bracketed(ClassBracketed {
                span: p.span,
                negated: false,
                kind: ClassSet::Item(ascii_item(p)),
            });
        }
        Ast::ClassBracketed(c) => rewrite_set(&mut c.kind),
        Ast::Assertion(x) if is_word_assertion(&x.kind) => {
            let span = x.span;
            let inner = Ast::assertion(Assertion {
                span,
                kind: x.kind.clone(),
            });
            // `(?-u:\b)`: an ASCII word boundary.
            *a = Ast::group(Group {
                span,
                kind: GroupKind::NonCapturing(Flags {
                    span,
                    items: vec![
                        FlagsItem {
                            span,
                            kind: FlagsItemKind::Negation,
                        },
                        FlagsItem {
                            span,
                            kind: FlagsItemKind::Flag(Flag::Unicode),
                        },
                    ],
                }),
                ast: Box::new(inner),
            });
        }
        Ast::Repetition(r) => rewrite(&mut r.ast),
        Ast::Group(g) => rewrite(&mut g.ast),
        Ast::Alternation(x) => x.asts.iter_mut().for_each(rewrite),
        Ast::Concat(x) => x.asts.iter_mut().for_each(rewrite),
        Ast::Empty(_)
        | Ast::Flags(_)
        | Ast::Literal(_)
        | Ast::Dot(_)
        | Ast::Assertion(_)
        | Ast::ClassUnicode(_) => {}
    }
}

fn is_word_assertion(k: &AssertionKind) -> bool {
    !matches!(
        k,
        AssertionKind::StartLine
            | AssertionKind::EndLine
            | AssertionKind::StartText
            | AssertionKind::EndText
    )
}

fn rewrite_set(s: &mut ClassSet) {
    match s {
        ClassSet::Item(i) => rewrite_item(i),
        ClassSet::BinaryOp(op) => {
            rewrite_set(&mut op.lhs);
            rewrite_set(&mut op.rhs);
        }
    }
}

fn rewrite_item(i: &mut ClassSetItem) {
    match i {
        ClassSetItem::Perl(p) => *i = ascii_item(p),
        ClassSetItem::Bracketed(b) => rewrite_set(&mut b.kind),
        ClassSetItem::Union(u) => u.items.iter_mut().for_each(rewrite_item),
        ClassSetItem::Empty(_)
        | ClassSetItem::Literal(_)
        | ClassSetItem::Range(_)
        | ClassSetItem::Ascii(_)
        | ClassSetItem::Unicode(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> regex_automata::meta::Regex {
        compile(p, regex_automata::meta::Config::new()).unwrap()
    }

    #[test]
    fn perl_classes_are_ascii_as_in_pcre() {
        assert_eq!(
            translate(r"\w+\d\s\W").unwrap(),
            r"[[:word:]]+[[:digit:]][[:space:]][[:^word:]]"
        );
        assert_eq!(
            translate(r"[\w.-]+[^\d]").unwrap(),
            r"[[:word:].-]+[^[:digit:]]"
        );
        assert_eq!(translate(r"\bcmd\B").unwrap(), r"(?-u:\b)cmd(?-u:\B)");
        // Arabic-Indic digits and accented letters are not \d / \w in PCRE.
        assert!(!re(r"^\d+$").is_match("\u{0663}\u{0664}"));
        assert!(re(r"^\d+$").is_match("0123456789"));
        assert!(!re(r"^\w+$").is_match("caf\u{e9}"));
        assert!(re(r"^\W$").is_match("\u{e9}"));
        assert!(re(r"^[\w]+$").is_match("Az_09"));
        assert!(re(r"^\s$").is_match("\u{b}"));
        assert!(!re(r"^\s$").is_match("\u{a0}"));
    }

    #[test]
    fn word_boundaries_are_ascii() {
        // A non-ASCII letter is not a word byte: the boundary sits before `x`.
        assert!(re(r"\bx").is_match("\u{e9}x"));
        assert!(re(r"\bnet\b").is_match("C:\\net.exe"));
        assert!(!re(r"\bnet\b").is_match("C:\\dotnet.exe"));
        assert!(re(r"\Bnet").is_match("dotnet"));
    }

    #[test]
    fn everything_else_keeps_its_meaning() {
        for p in [
            r"(?i)^C:\\Windows\\.*\.exe$",
            r"(?s)a.b",
            r"(?m)^x$",
            r"\p{Greek}+",
            r"[a-f0-9]{32}",
            r"(?P<n>ab)|c",
            r"[[:alpha:]&&[^x]]",
            r"a{2,5}?",
            r"\x41\u{42}\.",
        ] {
            let t = translate(p).unwrap();
            assert_eq!(t, p, "only Perl classes and word boundaries change");
        }
        // Case folding stays Unicode (PCRE in UTF mode folds É/é).
        assert!(re(r"(?i)caf\u{e9}").is_match("CAF\u{c9}"));
        assert!(translate("(unclosed").is_err());
    }

    /// The trimmed pattern occurs in exactly the texts the original occurs
    /// in: optional and repeated elements at either end, in alternatives
    /// and groups, next to anchors and word boundaries that must stay,
    /// with case folding and dot-all, over texts built from the patterns'
    /// own pieces.
    #[test]
    fn a_pattern_trimmed_for_presence_occurs_where_the_original_does() {
        let patterns = [
            r"-k\s\w{1,64}(?:\s?(?:-p|-s))?",
            r" [0-7]{7,13}",
            r"ab+",
            r"a+b",
            r"a*",
            r"x?y*z{0,3}",
            r"(ab)+c(de)*",
            r"((a)b?)c?",
            r"^a{2,}b?",
            r"a{2,}b?$",
            r"\ba\w*",
            r"a\w*\b",
            r"(?i)CMD(?:\.exe)?\s+/c",
            r"(?s)a.{0,5}b.*",
            r"(?:ab?|c+d|e*)x",
            r"x(?:ab?|c+d|e*)",
            r"[ab]{2,4}|c{3,}d?",
            r"(?m)^a+$",
            r"a(?:b|c*)?",
            r"(?:a+|b)+",
            r"\Ba+",
            // Left in the middle, a greedy option around a repetition
            // prints as the lazy repetition alone (`a+?`).
            r"x(?:a+)?yb*",
            r"(?i)cmd(?:\s+)?/c.*",
            r"(?:a{2,3})?b+",
        ];
        let alphabet = [
            'a', 'b', 'c', 'd', 'e', 'x', 'y', 'z', 'k', '-', ' ', '\n', '0', '7', 'C', 'M', 'D',
            '/', '.',
        ];
        let mut g = warden_gen::Rng::new(0x7e57);
        let mut changed = 0;
        for p in patterns {
            let text = translate(p).unwrap();
            let Some(short) = for_presence(&text) else {
                continue;
            };
            changed += 1;
            let (a, b) = (re(&text), re(&short));
            for _ in 0..3_000 {
                let n = g.below(12);
                let hay: String = (0..n).map(|_| alphabet[g.below(alphabet.len())]).collect();
                assert_eq!(
                    a.is_match(&hay),
                    b.is_match(&hay),
                    "{p} trimmed to {short} on {hay:?}"
                );
            }
        }
        // All but the five whose ends hold nothing to take off and the
        // two whose least form would not read back.
        assert_eq!(changed, patterns.len() - 7, "patterns trimmed");
        // What comes off.
        let trimmed = |p: &str| for_presence(&translate(p).unwrap());
        let hir = |p: &str| regex_syntax::Parser::new().parse(p).unwrap();
        for (p, least) in [
            (r"ab+", "ab"),
            (r"a*", ""),
            (r"^a{2,}b?", "^a{2}"),
            (r"(x)+y?", "x"),
        ] {
            assert_eq!(hir(&trimmed(p).unwrap()), hir(least), "{p}");
        }
        assert_eq!(trimmed(r"a\w*\b"), None);
        assert_eq!(trimmed(r"x(?:ab?|c+d|e*)"), None);
        assert_eq!(trimmed(r"x(?:a+)?yb*"), None, "does not read back");
        assert_eq!(trimmed(r"abc"), None);
        // Two of SigmaHQ's command-line regexes become fixed byte
        // sequences, which skip the regex engine.
        for p in [r"-k\s\w{1,64}(?:\s?(?:-p|-s))?", r" [0-7]{7,13}"] {
            assert!(crate::shift_and::ShiftAnd::new(&translate(p).unwrap()).is_none());
            assert!(
                crate::shift_and::ShiftAnd::new(&trimmed(p).unwrap()).is_some(),
                "{p}"
            );
        }
    }
}
