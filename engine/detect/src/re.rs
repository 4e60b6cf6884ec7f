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
}
