//! The condition grammar.
//!
//! Precedence, loosest first: `or`, `and`, `not`; parentheses group.
//! `1 of X`, `any of X`, `all of X` take an identifier pattern (with `*`
//! wildcards) or `them`.

/// How many of the selected searches must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfQuantifier {
    /// `1 of` / `any of`.
    Any,
    /// `all of`.
    All,
}

/// A parsed condition expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Ident(String),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    /// `1 of pattern` / `all of pattern`; `None` is `them`.
    Of(OfQuantifier, Option<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Word(String),
}

fn tokenize(s: &str) -> Result<Vec<(usize, Tok)>, String> {
    let mut toks = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                toks.push((i, Tok::LParen));
                i += 1;
            }
            b')' => {
                toks.push((i, Tok::RParen));
                i += 1;
            }
            b'|' => {
                return Err(format!(
                    "aggregation expression at offset {i} ('{}') is deprecated sigma v1 syntax and not supported; use a correlation rule",
                    s[i..].trim()
                ));
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r' | b'(' | b')' | b'|')
                {
                    i += 1;
                }
                let word = &s[start..i];
                if !word
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '*' | '.'))
                {
                    return Err(format!("unexpected '{word}' at offset {start}"));
                }
                toks.push((start, Tok::Word(word.to_string())));
            }
        }
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    len: usize,
}

impl Parser {
    fn peek_word(&self) -> Option<String> {
        match self.toks.get(self.pos) {
            Some((_, Tok::Word(w))) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map(|(o, _)| *o).unwrap_or(self.len)
    }

    fn or(&mut self) -> Result<Condition, String> {
        let mut items = vec![self.and()?];
        while self.peek_word().as_deref() == Some("or") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Condition::Or(items)
        })
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut items = vec![self.not()?];
        while self.peek_word().as_deref() == Some("and") {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Condition::And(items)
        })
    }

    fn not(&mut self) -> Result<Condition, String> {
        if self.peek_word().as_deref() == Some("not") {
            self.pos += 1;
            return Ok(Condition::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Condition, String> {
        let offset = self.offset();
        match self.toks.get(self.pos).cloned() {
            None => Err(format!("unexpected end of condition at offset {offset}")),
            Some((_, Tok::RParen)) => Err(format!("unexpected ')' at offset {offset}")),
            Some((_, Tok::LParen)) => {
                self.pos += 1;
                let inner = self.or()?;
                match self.toks.get(self.pos) {
                    Some((_, Tok::RParen)) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err(format!("missing ')' at offset {}", self.offset())),
                }
            }
            Some((_, Tok::Word(w))) => {
                let lower = w.to_ascii_lowercase();
                let quant = match lower.as_str() {
                    "1" | "any" => Some(OfQuantifier::Any),
                    "all" => Some(OfQuantifier::All),
                    _ => None,
                };
                if let Some(q) = quant
                    && matches!(self.toks.get(self.pos + 1), Some((_, Tok::Word(of))) if of.eq_ignore_ascii_case("of"))
                {
                    self.pos += 2;
                    let target_offset = self.offset();
                    return match self.toks.get(self.pos).cloned() {
                        Some((_, Tok::Word(t))) => {
                            self.pos += 1;
                            if t.eq_ignore_ascii_case("them") {
                                Ok(Condition::Of(q, None))
                            } else {
                                Ok(Condition::Of(q, Some(t)))
                            }
                        }
                        _ => Err(format!(
                            "expected an identifier pattern or 'them' after 'of' at offset {target_offset}"
                        )),
                    };
                }
                if matches!(lower.as_str(), "and" | "or" | "not" | "of" | "them") {
                    return Err(format!("unexpected '{w}' at offset {offset}"));
                }
                if w.contains('*') {
                    return Err(format!(
                        "wildcard identifier '{w}' at offset {offset} is only allowed after '1 of' or 'all of'"
                    ));
                }
                self.pos += 1;
                Ok(Condition::Ident(w))
            }
        }
    }
}

/// Parses one condition string.
pub fn parse_condition(s: &str) -> Result<Condition, String> {
    let toks = tokenize(s)?;
    if toks.is_empty() {
        return Err("empty condition".into());
    }
    let mut p = Parser {
        toks,
        pos: 0,
        len: s.len(),
    };
    let c = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected token at offset {}", p.offset()));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Condition {
        Condition::Ident(s.into())
    }

    #[test]
    fn precedence_not_and_or() {
        let c = parse_condition("a or not b and c").unwrap();
        assert_eq!(
            c,
            Condition::Or(vec![
                id("a"),
                Condition::And(vec![Condition::Not(Box::new(id("b"))), id("c")])
            ])
        );
    }

    #[test]
    fn parens_and_of() {
        let c = parse_condition("(sel1 or sel2) and not 1 of filter_* and all of them").unwrap();
        assert_eq!(
            c,
            Condition::And(vec![
                Condition::Or(vec![id("sel1"), id("sel2")]),
                Condition::Not(Box::new(Condition::Of(
                    OfQuantifier::Any,
                    Some("filter_*".into())
                ))),
                Condition::Of(OfQuantifier::All, None),
            ])
        );
    }

    #[test]
    fn errors_name_offsets() {
        assert!(
            parse_condition("a and")
                .unwrap_err()
                .contains("end of condition")
        );
        assert!(
            parse_condition("(a or b")
                .unwrap_err()
                .contains("missing ')'")
        );
        assert!(parse_condition("a b").unwrap_err().contains("offset 2"));
        assert!(
            parse_condition("sel | count() > 5")
                .unwrap_err()
                .contains("aggregation")
        );
        assert!(parse_condition("sel*").unwrap_err().contains("wildcard"));
    }
}
