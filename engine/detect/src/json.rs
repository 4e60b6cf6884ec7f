//! A validating JSON parser built for events: one pass over the bytes into
//! a flat *tape* of tokens that detection walks without a DOM.
//!
//! - Every value is one token; an object's members are a key token followed
//!   by the value's tokens; every token knows the index after its last
//!   descendant, so a subtree nobody reads is skipped in O(1).
//! - Strings without escapes point into the input; escaped ones are
//!   unescaped once, during the parse, into the tape's arena. Either way a
//!   string reads as a `&str` with no further work.
//! - The input is checked in full (RFC 8259: grammar, escapes, surrogate
//!   pairs, UTF-8, nesting depth); an error names what was wrong and where
//!   (line, column, byte offset).
//! - A [`Tape`] is reused from event to event: after the first few events
//!   parsing allocates nothing.

use std::fmt;

/// Containers nested deeper than this are refused (the walkers recurse).
pub const MAX_DEPTH: usize = 256;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Tok {
    kind: Kind,
    /// Strings: the text lives in the arena (the input had escapes).
    /// Bools: the value.
    flag: bool,
    /// Numbers: written without fraction or exponent.
    int: bool,
    /// Strings: an object key.
    key: bool,
    /// Strings: text start (input or arena); numbers and containers: the
    /// byte offset where the value starts in the input.
    start: u32,
    /// Exclusive end, in the same space as `start` (containers: just
    /// after the closing bracket).
    end: u32,
    /// Index of the first token after this value and its contents.
    next: u32,
}

impl Tok {
    #[inline]
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// An object key (not a value).
    #[inline]
    pub(crate) fn is_key(&self) -> bool {
        self.key
    }
}

/// Why an input is not a JSON document, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    what: &'static str,
    offset: usize,
    line: usize,
    column: usize,
}

impl JsonError {
    fn at(input: &[u8], offset: usize, what: &'static str) -> JsonError {
        let offset = offset.min(input.len());
        let before = &input[..offset];
        let line = 1 + memchr::memchr_iter(b'\n', before).count();
        let column = 1 + offset - memchr::memrchr(b'\n', before).map_or(0, |p| p + 1);
        JsonError {
            what,
            offset,
            line,
            column,
        }
    }

    /// What was wrong.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// Byte offset into the input (0-based).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Line (1-based).
    pub fn line(&self) -> usize {
        self.line
    }

    /// Column (1-based, in bytes).
    pub fn column(&self) -> usize {
        self.column
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {}, column {} (byte {})",
            self.what, self.line, self.column, self.offset
        )
    }
}

impl std::error::Error for JsonError {}

/// Reusable parse buffers; [`Tape::parse`] yields a [`Doc`] borrowing them.
#[derive(Debug, Default)]
pub struct Tape {
    toks: Vec<Tok>,
    /// How many tokens are containers, and how many are keys.
    containers: u32,
    keys: u32,
    /// Unescaped strings (valid UTF-8 once a parse has succeeded).
    arena: Vec<u8>,
    stack: Vec<u32>,
    hidden_text: bool,
    /// The strings' bytes ORed eight at a time (a high bit set: some byte
    /// was not ASCII).
    seen: u64,
    /// Every key's text in document order, each after its length
    /// ([`push_key`]), in `keytext[..keytext_len]`; the buffer only grows,
    /// so that writing a key is one fixed-size copy.
    keytext: Vec<u8>,
    keytext_len: usize,
}

/// Where a document's containers and keys are ([`Doc::shape`]).
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    len: u32,
    /// (token, is an array, subtree end).
    containers: Box<[(u32, bool, u32)]>,
    /// The keys' text, as [`Doc`] keeps it.
    keytext: Box<[u8]>,
}

/// A key's length byte saying that four bytes of length follow.
const LONG_KEY: u8 = 0xFF;

/// A parsed document: the input, its tokens and its unescaped strings.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    text: &'a str,
    toks: &'a [Tok],
    containers: u32,
    keys: u32,
    /// Every key's text in document order, each after its length.
    keytext: &'a [u8],
    arena: &'a str,
    hidden_text: bool,
    non_ascii: bool,
}

impl Tape {
    pub fn new() -> Tape {
        Tape::default()
    }

    /// Parses one JSON document (any value; surrounding whitespace allowed).
    pub fn parse<'a>(&'a mut self, input: &'a [u8]) -> Result<Doc<'a>, JsonError> {
        self.toks.clear();
        self.arena.clear();
        self.stack.clear();
        self.containers = 0;
        self.keys = 0;
        self.hidden_text = false;
        self.seen = 0;
        self.keytext_len = 0;
        if input.len() >= u32::MAX as usize {
            return Err(JsonError::at(input, 0, "document larger than 4 GiB"));
        }
        // Room for every key of a document like most: a key of `n` bytes
        // takes `n + 1` here and at least `n + 3` in the input (a huge
        // document's keys grow it as they come).
        let room = (input.len() + 32).min(1 << 16);
        if self.keytext.len() < room {
            self.keytext.resize(room, 0);
        }
        // A UTF-8 byte order mark before the document is ignored (RFC 8259
        // section 8.1 allows it; Windows tools write one). Errors still
        // count bytes from the start of the input.
        let whole = input;
        let input = input.strip_prefix(b"\xef\xbb\xbf").unwrap_or(input);
        let bom = whole.len() - input.len();
        let parsed = self.run(input);
        // UTF-8 is validated only when a string held a non-ASCII byte (or
        // the parse failed, so that an invalid byte is reported before the
        // grammar error it may have caused): every byte outside strings was
        // checked by the grammar to be ASCII, and every byte of a string's
        // text is ORed into `seen`. Most events are ASCII, and validating
        // them again was a fifth of the parse.
        let non_ascii = self.non_ascii();
        if (non_ascii || parsed.is_err()) && simdutf8::basic::from_utf8(input).is_err() {
            // The standard library says where it failed.
            let at = std::str::from_utf8(input)
                .err()
                .map_or(0, |e| e.valid_up_to());
            self.arena.clear();
            return Err(JsonError::at(whole, bom + at, "invalid UTF-8"));
        }
        if let Err((at, what)) = parsed {
            self.arena.clear();
            return Err(JsonError::at(whole, bom + at, what));
        }
        debug_assert!(non_ascii || input.is_ascii());
        debug_assert!(std::str::from_utf8(&self.arena).is_ok());
        // SAFETY: the input is valid UTF-8: either validated just above, or
        // all ASCII (see above). The arena holds runs of that input cut at
        // ASCII bytes (so at character boundaries) and characters encoded
        // by `char::encode_utf8`, so it is valid UTF-8 too.
        #[allow(unsafe_code)]
        let (text, arena) = unsafe {
            (
                std::str::from_utf8_unchecked(input),
                std::str::from_utf8_unchecked(&self.arena),
            )
        };
        Ok(Doc {
            text,
            toks: &self.toks,
            containers: self.containers,
            keys: self.keys,
            keytext: &self.keytext[..self.keytext_len],
            arena,
            hidden_text: self.hidden_text,
            non_ascii,
        })
    }

    /// Whether a string of the last document parsed held a non-ASCII byte
    /// (only strings can).
    fn non_ascii(&self) -> bool {
        self.seen & 0x8080_8080_8080_8080 != 0
    }

    #[inline(always)]
    fn push(&mut self, kind: Kind, start: usize, end: usize) -> u32 {
        self.push_as(kind, start, end, false)
    }

    /// [`Tape::push`], marking the token as an object key when `key`.
    #[inline(always)]
    fn push_as(&mut self, kind: Kind, start: usize, end: usize, key: bool) -> u32 {
        let idx = self.toks.len() as u32;
        self.toks.push(Tok {
            kind,
            flag: false,
            int: false,
            key,
            start: start as u32,
            end: end as u32,
            next: idx + 1,
        });
        idx
    }

    fn close(&mut self, idx: u32, end: usize) {
        let next = self.toks.len() as u32;
        let t = &mut self.toks[idx as usize];
        t.end = end as u32;
        t.next = next;
    }

    fn open(&mut self, kind: Kind, at: usize) -> Result<u32, (usize, &'static str)> {
        if self.stack.len() >= MAX_DEPTH {
            return Err((at, "containers nested too deeply"));
        }
        let idx = self.push(kind, at, at);
        self.stack.push(idx);
        self.containers += 1;
        Ok(idx)
    }

    /// The parser: an explicit stack of open containers, no recursion.
    fn run(&mut self, b: &[u8]) -> Result<(), (usize, &'static str)> {
        let mut i = skip_ws(b, 0);
        if i == b.len() {
            return Err((i, "empty document: expected a value"));
        }
        'value: loop {
            // A value starts at `i` (whitespace skipped).
            match b.get(i) {
                None => return Err((i, "unexpected end of input: expected a value")),
                Some(b'{') => {
                    let idx = self.open(Kind::Object, i)?;
                    i = skip_ws(b, i + 1);
                    if b.get(i) == Some(&b'}') {
                        i += 1;
                        self.stack.pop();
                        self.close(idx, i);
                    } else {
                        i = self.key(b, i)?;
                        continue 'value;
                    }
                }
                Some(b'[') => {
                    let idx = self.open(Kind::Array, i)?;
                    i = skip_ws(b, i + 1);
                    if b.get(i) == Some(&b']') {
                        i += 1;
                        self.stack.pop();
                        self.close(idx, i);
                    } else {
                        continue 'value;
                    }
                }
                Some(b'"') => i = self.string::<false>(b, i)?,
                Some(b't') => i = self.literal(b, i, b"true", Kind::Bool, true)?,
                Some(b'f') => i = self.literal(b, i, b"false", Kind::Bool, false)?,
                Some(b'n') => i = self.literal(b, i, b"null", Kind::Null, false)?,
                Some(b'-' | b'0'..=b'9') => i = self.number(b, i)?,
                Some(_) => return Err((i, "expected a value")),
            }
            // After a value: close containers or go on to the next member.
            loop {
                let Some(&top) = self.stack.last() else {
                    i = skip_ws(b, i);
                    if i != b.len() {
                        return Err((i, "trailing characters after the document"));
                    }
                    return Ok(());
                };
                let object = self.toks[top as usize].kind == Kind::Object;
                // Compact JSON: the next member's key right after the comma.
                if object && let Some(&[b',', b'"']) = b.get(i..i + 2) {
                    i = self.key(b, i + 1)?;
                    continue 'value;
                }
                i = skip_ws(b, i);
                match b.get(i) {
                    Some(b',') => {
                        i = skip_ws(b, i + 1);
                        if object {
                            i = self.key(b, i)?;
                        }
                        continue 'value;
                    }
                    Some(b'}') if object => {
                        i += 1;
                        self.stack.pop();
                        self.close(top, i);
                    }
                    Some(b']') if !object => {
                        i += 1;
                        self.stack.pop();
                        self.close(top, i);
                    }
                    None if object => {
                        return Err((i, "unexpected end of input: expected ',' or '}'"));
                    }
                    None => return Err((i, "unexpected end of input: expected ',' or ']'")),
                    Some(_) if object => return Err((i, "expected ',' or '}'")),
                    Some(_) => return Err((i, "expected ',' or ']'")),
                }
            }
        }
    }

    /// A member's key and its colon; returns where the value starts.
    #[inline(always)]
    fn key(&mut self, b: &[u8], i: usize) -> Result<usize, (usize, &'static str)> {
        if b.get(i) != Some(&b'"') {
            return Err((i, "expected a string key"));
        }
        let i = self.string::<true>(b, i)?;
        self.keys += 1;
        // Compact JSON: the colon right after the key, the value right
        // after the colon (one bounds check for both).
        if let Some(&[b':', c]) = b.get(i..i + 2)
            && c > b' '
        {
            return Ok(i + 1);
        }
        let i = skip_ws(b, i);
        if b.get(i) != Some(&b':') {
            return Err((i, "expected ':' after an object key"));
        }
        Ok(skip_ws(b, i + 1))
    }

    fn literal(
        &mut self,
        b: &[u8],
        i: usize,
        word: &[u8],
        kind: Kind,
        value: bool,
    ) -> Result<usize, (usize, &'static str)> {
        if !b[i..].starts_with(word) {
            return Err((i, "invalid literal (expected true, false or null)"));
        }
        let idx = self.push(kind, i, i + word.len());
        self.toks[idx as usize].flag = value;
        Ok(i + word.len())
    }

    fn number(&mut self, b: &[u8], start: usize) -> Result<usize, (usize, &'static str)> {
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits(b, i + 1),
            _ => return Err((i, "invalid number: expected a digit")),
        }
        let mut int = true;
        if b.get(i) == Some(&b'.') {
            int = false;
            if !b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                return Err((i + 1, "invalid number: expected a digit after '.'"));
            }
            i = digits(b, i + 1);
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            int = false;
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !b.get(i).is_some_and(u8::is_ascii_digit) {
                return Err((i, "invalid number: expected a digit in the exponent"));
            }
            i = digits(b, i);
            // Read as its shortest decimal form: 1e3 is "1000".
            self.hidden_text = true;
        }
        // Up to 15 significant digits survive f64 exactly, so a plain
        // decimal's text is the input less trailing zeros: a substring.
        if !int && b[start..i].iter().filter(|c| c.is_ascii_digit()).count() > 15 {
            self.hidden_text = true;
        }
        let idx = self.push(Kind::Number, start, i);
        self.toks[idx as usize].int = int;
        Ok(i)
    }

    /// A string starting at the quote `b[q]`; returns the offset after its
    /// closing quote. `KEY`: the string is an object key, whose text also
    /// goes to the keys' text.
    #[inline(always)]
    fn string<const KEY: bool>(
        &mut self,
        b: &[u8],
        q: usize,
    ) -> Result<usize, (usize, &'static str)> {
        let start = q + 1;
        let j = scan_plain(b, start, &mut self.seen);
        match b.get(j) {
            Some(b'"') => {
                self.push_as(Kind::String, start, j, KEY);
                if KEY {
                    push_key(&mut self.keytext, &mut self.keytext_len, b, start, j);
                }
                Ok(j + 1)
            }
            Some(b'\\') => {
                let end = self.escaped(b, start, j)?;
                if KEY && let Some(t) = self.toks.last_mut() {
                    t.key = true;
                    let key = &self.arena[t.start as usize..t.end as usize];
                    push_key_slow(&mut self.keytext, &mut self.keytext_len, key);
                }
                Ok(end)
            }
            Some(_) => Err((j, "control character in a string (it must be escaped)")),
            None => Err((q, "unterminated string")),
        }
    }

    /// The rest of a string whose first escape is at `j`: unescaped into the arena.
    #[inline(never)]
    fn escaped(
        &mut self,
        b: &[u8],
        start: usize,
        mut j: usize,
    ) -> Result<usize, (usize, &'static str)> {
        let a0 = self.arena.len();
        // The text not yet copied starts here. An escape of `\\`, `"` or
        // `/` stands for the byte after its backslash, so that byte is left
        // to start the next run: a Windows path (`C:\\Windows\\...`) is
        // copied in one run per separator, not one per character.
        // Run boundaries sit on ASCII bytes, so they are char boundaries.
        let mut run = start;
        loop {
            // b[j] is a backslash.
            let (c, len) = match b.get(j + 1) {
                Some(&q @ (b'"' | b'\\' | b'/')) => {
                    // `\/` spells a `/` the raw line does not show as such.
                    self.hidden_text |= q == b'/';
                    copy_run(&mut self.arena, b, run, j);
                    run = j + 1;
                    j += 2;
                    self.continue_run(b, &mut j);
                    match self.after_run(b, a0, start, &mut run, j)? {
                        Some(end) => return Ok(end),
                        None => continue,
                    }
                }
                Some(b'b') => ('\u{8}', 2),
                Some(b'f') => ('\u{c}', 2),
                Some(b'n') => ('\n', 2),
                Some(b'r') => ('\r', 2),
                Some(b't') => ('\t', 2),
                Some(b'u') => {
                    let (c, len) = unicode_escape(b, j)?;
                    // The raw text shows every ASCII run of the decoded
                    // text unless the escape spells an ASCII character
                    // (or one whose lowercase is ASCII): `\u00e9` for `é`
                    // hides nothing a printable ASCII search could find.
                    if c.is_ascii() || crate::glob::LOWERS_TO_ASCII.contains(&c) {
                        self.hidden_text = true;
                    }
                    (c, len)
                }
                Some(_) => return Err((j, "invalid escape in a string")),
                None => return Err((start - 1, "unterminated string")),
            };
            copy_run(&mut self.arena, b, run, j);
            // An ASCII character (`\r\n` and `\t` fill forwarded messages)
            // is its byte, pushed as it is rather than encoded and copied.
            if c.is_ascii() {
                self.arena.push(c as u8);
            } else {
                self.arena
                    .extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
            j += len;
            run = j;
            self.continue_run(b, &mut j);
            if let Some(end) = self.after_run(b, a0, start, &mut run, j)? {
                return Ok(end);
            }
        }
    }

    /// Moves `j` to the next quote, backslash or control byte.
    #[inline(always)]
    fn continue_run(&mut self, b: &[u8], j: &mut usize) {
        *j = scan_plain(b, *j, &mut self.seen);
    }

    /// At `j` (where a run of plain text stops): the string's end, whose
    /// text is copied and its token pushed (`Some(offset after the
    /// quote)`), or another escape (`None`).
    #[inline(always)]
    fn after_run(
        &mut self,
        b: &[u8],
        a0: usize,
        start: usize,
        run: &mut usize,
        j: usize,
    ) -> Result<Option<usize>, (usize, &'static str)> {
        match b.get(j) {
            Some(b'"') => {
                copy_run(&mut self.arena, b, *run, j);
                *run = j;
                let idx = self.push(Kind::String, a0, self.arena.len());
                self.toks[idx as usize].flag = true;
                Ok(Some(j + 1))
            }
            Some(b'\\') => Ok(None),
            Some(_) => Err((j, "control character in a string (it must be escaped)")),
            None => Err((start - 1, "unterminated string")),
        }
    }
}

/// Appends `b[from..to]` to `arena` (`to` is at an ASCII byte, the
/// backslash or quote that ended the run, so the run ends on a character
/// boundary). A run of at most sixteen bytes with sixteen bytes of input
/// there is copied as one sixteen-byte block and the excess cut off again:
/// one store instead of a `memcpy` call for each of a Windows path's
/// separators.
#[inline(always)]
fn copy_run(arena: &mut Vec<u8>, b: &[u8], from: usize, to: usize) {
    let n = to - from;
    match b.get(from..from + 16) {
        Some(block) if n <= 16 => {
            let len = arena.len();
            arena.extend_from_slice(block);
            arena.truncate(len + n);
        }
        _ => arena.extend_from_slice(&b[from..to]),
    }
}

/// `\uXXXX` at `b[j]` (with its low surrogate if it is a high one): the
/// character and the escape's length in bytes.
fn unicode_escape(b: &[u8], j: usize) -> Result<(char, usize), (usize, &'static str)> {
    let hi = hex4(b, j + 2).ok_or((j, "invalid \\u escape: expected four hex digits"))?;
    let (cp, len) = match hi {
        0xD800..=0xDBFF => {
            if b.get(j + 6) != Some(&b'\\') || b.get(j + 7) != Some(&b'u') {
                return Err((j, "invalid \\u escape: unpaired surrogate"));
            }
            let lo =
                hex4(b, j + 8).ok_or((j + 6, "invalid \\u escape: expected four hex digits"))?;
            if !(0xDC00..=0xDFFF).contains(&lo) {
                return Err((j, "invalid \\u escape: unpaired surrogate"));
            }
            (0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00), 12)
        }
        0xDC00..=0xDFFF => return Err((j, "invalid \\u escape: unpaired surrogate")),
        cp => (cp, 6),
    };
    let c = char::from_u32(cp).ok_or((j, "invalid \\u escape"))?;
    Ok((c, len))
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let h = b.get(i..i + 4)?;
    h.iter().try_fold(0u32, |acc, &c| {
        let d = (c as char).to_digit(16)?;
        Some(acc << 4 | d)
    })
}

#[inline(always)]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    // Compact JSON has none: one comparison in the usual case.
    if b.get(i).is_some_and(|&c| c > b' ') {
        return i;
    }
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

#[inline]
fn digits(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// Appends a key, `src[start..end]`, to the keys' text: its length (one
/// byte, or [`LONG_KEY`] and four), then its bytes.
#[inline(always)]
fn push_key(keytext: &mut Vec<u8>, len: &mut usize, src: &[u8], start: usize, end: usize) {
    let (at, n) = (*len, end - start);
    // Most keys are short and followed by `":` and a value in the input,
    // and the buffer has room to spare: one sixteen-byte copy, of which
    // the key's bytes count.
    if n <= 16
        && let Some(c) = src.get(start..start + 16)
        && let Some(dst) = keytext.get_mut(at..at + 17)
    {
        dst[0] = n as u8;
        dst[1..].copy_from_slice(c);
        *len = at + 1 + n;
        return;
    }
    push_key_slow(keytext, len, &src[start..end]);
}

#[cold]
#[inline(never)]
fn push_key_slow(keytext: &mut Vec<u8>, len: &mut usize, key: &[u8]) {
    let at = *len;
    let need = at + 5 + key.len();
    if keytext.len() < need {
        keytext.resize(need, 0);
    }
    let mut w = at;
    if key.len() < LONG_KEY as usize {
        keytext[w] = key.len() as u8;
        w += 1;
    } else {
        keytext[w] = LONG_KEY;
        keytext[w + 1..w + 5].copy_from_slice(&(key.len() as u32).to_le_bytes());
        w += 5;
    }
    keytext[w..w + key.len()].copy_from_slice(key);
    *len = w + key.len();
}

/// The bytes `src[at..end]`, at most eight, as a little-endian word,
/// zero-padded: one load when `src` has eight bytes at `at` (a key in the
/// input is followed by `":` and its value).
#[inline(always)]
fn word_at(src: &[u8], at: usize, end: usize) -> u64 {
    let n = (end - at).min(8);
    match src.get(at..at + 8) {
        Some(c) => {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            if n == 8 {
                w
            } else {
                w & ((1u64 << (n * 8)) - 1)
            }
        }
        None => {
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(&src[at..at + n]);
            u64::from_le_bytes(w)
        }
    }
}

/// The first offset at or after `j` holding `"`, `\` or a control byte
/// (or the end): sixteen bytes at a time with SSE2 (every x86-64 has it),
/// then eight. The bytes looked at are ORed into `seen` (a bit 7 of any of
/// its bytes set: some byte was not ASCII).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unsafe_code)]
fn scan_plain(b: &[u8], mut j: usize, seen: &mut u64) -> usize {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_setzero_si128,
    };
    // SAFETY: SSE2 is part of the x86-64 baseline, so its intrinsics are
    // always available; each load reads the sixteen bytes at `j`, which the
    // loop's condition has just shown to be in `b` (`j <= b.len() - 16`),
    // and has no alignment requirement.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let control = _mm_set1_epi8(0x1f);
        // The blocks' bytes ORed together, reduced to `seen` once.
        let mut all = _mm_setzero_si128();
        let p = b.as_ptr();
        // The last offset with sixteen bytes from it (none: no block).
        let last = b.len().wrapping_sub(16);
        while b.len() >= 16 && j <= last {
            let v = _mm_loadu_si128(p.add(j).cast());
            all = _mm_or_si128(all, v);
            let stop = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                // Unsigned v <= 0x1f.
                _mm_cmpeq_epi8(_mm_min_epu8(v, control), v),
            );
            let m = _mm_movemask_epi8(stop) as u32;
            if m != 0 {
                // Bit 7 of a byte: not ASCII.
                *seen |= u64::from(_mm_movemask_epi8(all) != 0) << 7;
                return j + m.trailing_zeros() as usize;
            }
            j += 16;
        }
        *seen |= u64::from(_mm_movemask_epi8(all) != 0) << 7;
    }
    scan_plain_swar(b, j, seen)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn scan_plain(b: &[u8], j: usize, seen: &mut u64) -> usize {
    scan_plain_swar(b, j, seen)
}

/// [`scan_plain`] eight bytes at a time.
#[inline(always)]
fn scan_plain_swar(b: &[u8], mut j: usize, seen: &mut u64) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(j..j + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        *seen |= w;
        let q = w ^ (ONES * u64::from(b'"'));
        let s = w ^ (ONES * u64::from(b'\\'));
        // Each term flags its bytes exactly up to the lowest flagged one
        // (borrows only run upwards from a flagged byte), which is all
        // that the lowest set bit needs.
        let m = ((q.wrapping_sub(ONES) & !q)
            | (s.wrapping_sub(ONES) & !s)
            | (w.wrapping_sub(ONES * 0x20) & !w))
            & HIGH;
        if m != 0 {
            return j + (m.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    while let Some(&c) = b.get(j) {
        *seen |= u64::from(c);
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        j += 1;
    }
    j
}

impl<'a> Doc<'a> {
    /// The document's value.
    pub fn root(&self) -> Node<'_> {
        Node { doc: self, i: 0 }
    }

    /// The whole input text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Whether some value's text may not appear in the raw input as
    /// written, as far as printable ASCII searches go: a string used a `\/`
    /// escape, or a `\u` escape of an ASCII character or of one whose
    /// lowercase is ASCII (escapes of other characters, which JSON writers
    /// such as Python's emit for every non-ASCII character, hide no ASCII
    /// run of the text), or a number reads differently from how it is
    /// written (an exponent, or more digits than an f64 keeps).
    pub fn has_hidden_text(&self) -> bool {
        self.hidden_text
    }

    /// Whether some byte of the input is not ASCII.
    pub fn has_non_ascii(&self) -> bool {
        self.non_ascii
    }

    /// Number of tokens (token ids are `0..len`).
    #[inline]
    pub(crate) fn len(&self) -> u32 {
        self.toks.len() as u32
    }

    #[inline]
    pub(crate) fn tok(&self, i: u32) -> &Tok {
        &self.toks[i as usize]
    }

    #[inline]
    pub(crate) fn kind(&self, i: u32) -> Kind {
        self.toks[i as usize].kind
    }

    /// The index after token `i`'s value.
    #[inline]
    pub(crate) fn next(&self, i: u32) -> u32 {
        self.toks[i as usize].next
    }

    /// The text of string token `i`.
    #[inline]
    pub(crate) fn str_at(&self, i: u32) -> &'a str {
        let t = &self.toks[i as usize];
        let src = if t.flag { self.arena } else { self.text };
        &src[t.start as usize..t.end as usize]
    }

    /// This document's shape, as [`Doc::has_shape`] compares it: where its
    /// containers are (with their kind and extent), and the text of its
    /// keys in order.
    pub(crate) fn shape(&self) -> Shape {
        Shape {
            len: self.toks.len() as u32,
            containers: (self.toks.iter().enumerate())
                .filter(|(_, t)| matches!(t.kind, Kind::Object | Kind::Array))
                .map(|(i, t)| (i as u32, t.kind == Kind::Array, t.next))
                .collect(),
            keytext: self.keytext.into(),
        }
    }

    /// Whether this document has shape `sh` (from [`Doc::shape`]): the
    /// same containers with the same extents and the same keys at the same
    /// tokens. Documents of one shape differ only in their scalar values,
    /// so whatever depends on structure and keys alone (which values sit at
    /// which paths) is the same for both.
    ///
    /// With as many tokens in all and the same containers at the same
    /// tokens with the same extents, every other token is a scalar or a
    /// key in both, and the keys are at the same tokens: an object's
    /// members alternate key and value from its first token on, and every
    /// value is one scalar token or a container of known extent. So the
    /// keys' text, which the parser wrote out as it went (each key after
    /// its length, so it also says how many keys there are), is compared
    /// in one piece.
    pub(crate) fn has_shape(&self, sh: &Shape) -> bool {
        if sh.len as usize != self.toks.len()
            || sh.containers.len() != self.containers as usize
            || *sh.keytext != *self.keytext
        {
            return false;
        }
        sh.containers.iter().all(|&(i, array, next)| {
            let t = &self.toks[i as usize];
            t.kind == if array { Kind::Array } else { Kind::Object } && t.next == next
        })
    }

    /// A cheap fingerprint of the shape to look candidate shapes up by
    /// (the last key's last bytes among it).
    pub(crate) fn shape_hint(&self) -> (u32, u32, u32, u64) {
        let k = self.keytext;
        let last = word_at(k, k.len().saturating_sub(8), k.len());
        (self.toks.len() as u32, self.containers, self.keys, last)
    }

    /// A key's bytes and their first eight (zero-padded), read with one load
    /// when the input has eight bytes there (keys are followed by `":`).
    #[inline(always)]
    pub(crate) fn key_head(&self, i: u32) -> (&'a [u8], u64) {
        let t = &self.toks[i as usize];
        let src = if t.flag { self.arena } else { self.text }.as_bytes();
        let (s, e) = (t.start as usize, t.end as usize);
        let key = &src[s..e];
        let mut w = [0u8; 8];
        let head = match src.get(s..s + 8) {
            Some(chunk) => {
                w.copy_from_slice(chunk);
                let w = u64::from_le_bytes(w);
                let len = e - s;
                if len >= 8 {
                    w
                } else {
                    w & ((1u64 << (len * 8)) - 1)
                }
            }
            None => {
                w[..key.len().min(8)].copy_from_slice(&key[..key.len().min(8)]);
                u64::from_le_bytes(w)
            }
        };
        (key, head)
    }

    /// The members of object token `i`: (key token, value token).
    #[inline]
    pub(crate) fn members(&self, i: u32) -> Members<'_, 'a> {
        let t = &self.toks[i as usize];
        Members {
            doc: self,
            at: i + 1,
            end: t.next,
        }
    }

    /// The elements of array token `i`.
    #[inline]
    pub(crate) fn elements(&self, i: u32) -> Elements<'_, 'a> {
        let t = &self.toks[i as usize];
        Elements {
            doc: self,
            at: i + 1,
            end: t.next,
        }
    }

    /// The text a scalar token reads as for matching: strings as they are,
    /// booleans as `true`/`false`, integers as written, other numbers in
    /// their shortest decimal form, evtx_dump's `{"#text": x}` as `x`.
    /// `None` for null, arrays and other objects.
    #[inline]
    pub(crate) fn scalar_text<'b>(&'b self, i: u32, buf: &'b mut String) -> Option<&'b str> {
        let t = &self.toks[i as usize];
        match t.kind {
            Kind::String => Some(self.str_at(i)),
            Kind::Bool => Some(if t.flag { "true" } else { "false" }),
            Kind::Number => Some(self.number_text(i, buf)),
            Kind::Object => {
                let (_, v) = self.members(i).find(|&(k, _)| self.str_at(k) == "#text")?;
                if self.kind(v) == Kind::Object {
                    None
                } else {
                    self.scalar_text(v, buf)
                }
            }
            Kind::Array | Kind::Null => None,
        }
    }

    fn number_text<'b>(&'b self, i: u32, buf: &'b mut String) -> &'b str {
        let t = &self.toks[i as usize];
        let raw = &self.text[t.start as usize..t.end as usize];
        if t.int {
            return if raw == "-0" { "0" } else { raw };
        }
        match raw.parse::<f64>() {
            Ok(f) if f.is_finite() => {
                use std::fmt::Write as _;
                buf.clear();
                let _ = write!(buf, "{f}");
                buf.as_str()
            }
            _ => raw,
        }
    }

    /// The JSON text of token `i`'s value, as written in the input.
    pub(crate) fn raw_json(&self, i: u32) -> &'a str {
        let t = &self.toks[i as usize];
        match t.kind {
            // A string's token holds its text; the quotes sit around it,
            // unless it was unescaped into the arena.
            Kind::String if !t.flag => &self.text[t.start as usize - 1..t.end as usize + 1],
            Kind::String => "",
            _ => &self.text[t.start as usize..t.end as usize],
        }
    }
}

/// Iterator over an object's (key, value) token indices.
#[derive(Debug, Clone)]
pub(crate) struct Members<'d, 'a> {
    doc: &'d Doc<'a>,
    at: u32,
    end: u32,
}

impl Iterator for Members<'_, '_> {
    type Item = (u32, u32);

    #[inline]
    fn next(&mut self) -> Option<(u32, u32)> {
        if self.at >= self.end {
            return None;
        }
        let k = self.at;
        let v = k + 1;
        self.at = self.doc.next(v);
        Some((k, v))
    }
}

/// Iterator over an array's element token indices.
#[derive(Debug, Clone)]
pub(crate) struct Elements<'d, 'a> {
    doc: &'d Doc<'a>,
    at: u32,
    end: u32,
}

impl Iterator for Elements<'_, '_> {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        if self.at >= self.end {
            return None;
        }
        let e = self.at;
        self.at = self.doc.next(e);
        Some(e)
    }
}

/// A value inside a [`Doc`].
#[derive(Debug, Clone, Copy)]
pub struct Node<'d> {
    doc: &'d Doc<'d>,
    i: u32,
}

impl<'d> Node<'d> {
    /// Its token's index: document order.
    #[cfg(test)]
    pub(crate) fn index(&self) -> u32 {
        self.i
    }

    pub fn kind(&self) -> Kind {
        self.doc.kind(self.i)
    }

    pub fn is_object(&self) -> bool {
        self.kind() == Kind::Object
    }

    pub fn is_array(&self) -> bool {
        self.kind() == Kind::Array
    }

    pub fn is_null(&self) -> bool {
        self.kind() == Kind::Null
    }

    /// A string's text.
    pub fn as_str(&self) -> Option<&'d str> {
        (self.kind() == Kind::String).then(|| self.doc.str_at(self.i))
    }

    pub fn as_bool(&self) -> Option<bool> {
        let t = self.doc.tok(self.i);
        (t.kind == Kind::Bool).then_some(t.flag)
    }

    /// The text this value reads as for matching (see [`Doc`]'s scalar rules):
    /// strings, booleans, numbers and `{"#text": x}`; `None` otherwise.
    pub fn text<'b>(&'b self, buf: &'b mut String) -> Option<&'b str> {
        self.doc.scalar_text(self.i, buf)
    }

    /// The first member named `key` of an object.
    pub fn get(&self, key: &str) -> Option<Node<'d>> {
        if self.kind() != Kind::Object {
            return None;
        }
        self.doc
            .members(self.i)
            .find(|&(k, _)| self.doc.str_at(k) == key)
            .map(|(_, v)| Node {
                doc: self.doc,
                i: v,
            })
    }

    /// An object's members in order (empty for other values).
    pub fn members(&self) -> impl Iterator<Item = (&'d str, Node<'d>)> + 'd {
        let doc = self.doc;
        let it = (self.kind() == Kind::Object).then(|| doc.members(self.i));
        it.into_iter()
            .flatten()
            .map(move |(k, v)| (doc.str_at(k), Node { doc, i: v }))
    }

    /// An array's elements in order (empty for other values).
    pub fn elements(&self) -> impl Iterator<Item = Node<'d>> + 'd {
        let doc = self.doc;
        let it = (self.kind() == Kind::Array).then(|| doc.elements(self.i));
        it.into_iter().flatten().map(move |i| Node { doc, i })
    }

    /// The value's JSON text as written in the input (a string with
    /// escapes is re-encoded).
    pub fn to_json(&self) -> std::borrow::Cow<'d, str> {
        let raw = self.doc.raw_json(self.i);
        if raw.is_empty() {
            let s = self.doc.str_at(self.i);
            serde_json::to_string(s).map_or(std::borrow::Cow::Borrowed(""), Into::into)
        } else {
            std::borrow::Cow::Borrowed(raw)
        }
    }
}

/// An event parsed on its own, owning its bytes and tape (for tests and
/// one-off use; hot paths reuse a [`Tape`]).
#[derive(Debug)]
pub struct OwnedDoc {
    bytes: Vec<u8>,
    tape: Tape,
}

impl OwnedDoc {
    /// Parses `bytes` (copied).
    pub fn parse(bytes: &[u8]) -> Result<OwnedDoc, JsonError> {
        let mut tape = Tape::new();
        tape.parse(bytes)?;
        // Token offsets count from after a byte order mark.
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        Ok(OwnedDoc {
            bytes: bytes.to_vec(),
            tape,
        })
    }

    /// The parsed document.
    pub fn doc(&self) -> Doc<'_> {
        Doc {
            text: std::str::from_utf8(&self.bytes).unwrap_or_default(),
            toks: &self.tape.toks,
            containers: self.tape.containers,
            keys: self.tape.keys,
            keytext: &self.tape.keytext[..self.tape.keytext_len],
            arena: std::str::from_utf8(&self.tape.arena).unwrap_or_default(),
            hidden_text: self.tape.hidden_text,
            non_ascii: self.tape.non_ascii(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<serde_json::Value, JsonError> {
        let mut tape = Tape::new();
        let doc = tape.parse(s.as_bytes())?;
        Ok(to_serde(&doc.root()))
    }

    fn to_serde(n: &Node<'_>) -> serde_json::Value {
        use serde_json::Value as V;
        match n.kind() {
            Kind::Null => V::Null,
            Kind::Bool => V::Bool(n.as_bool().unwrap()),
            Kind::String => V::String(n.as_str().unwrap().to_string()),
            Kind::Number => serde_json::from_str(&n.to_json()).unwrap(),
            Kind::Array => V::Array(n.elements().map(|e| to_serde(&e)).collect()),
            Kind::Object => {
                let mut m = serde_json::Map::new();
                for (k, v) in n.members() {
                    m.entry(k.to_string()).or_insert_with(|| to_serde(&v));
                }
                V::Object(m)
            }
        }
    }

    #[test]
    fn flags_say_when_the_raw_text_may_not_show_a_value() {
        let flags = |s: &str| {
            let mut tape = Tape::new();
            let d = tape.parse(s.as_bytes()).unwrap();
            (d.has_hidden_text(), d.has_non_ascii())
        };
        assert_eq!(
            flags(r#"{"a": "plain ascii text", "n": 12, "f": 1.50}"#),
            (false, false)
        );
        // An escaped non-ASCII character hides no ASCII text; an escaped
        // ASCII one, or one lowercasing to ASCII, may.
        assert_eq!(flags(r#"{"a": "caf\u00e9"}"#), (false, false));
        assert_eq!(flags(r#"{"a": "\u0063af"}"#), (true, false));
        assert_eq!(flags(r#"{"a": "\u212aelvin"}"#), (true, false));
        assert_eq!(flags(r#"{"a": "\u0130"}"#), (true, false));
        assert_eq!(flags(r#"{"a": "http:\/\/x"}"#), (true, false));
        assert_eq!(flags(r#"{"n": 1e3}"#), (true, false));
        assert_eq!(flags(r#"{"n": 1.234567890123456}"#), (true, false));
        assert_eq!(flags(r#"{"n": 1.23456789012345}"#), (false, false));
        // Non-ASCII bytes in the eight-byte loop, in the tail and after an escape.
        assert_eq!(
            flags("{\"a\": \"0123456789abcdef\u{e9}0123456789\"}"),
            (false, true)
        );
        assert_eq!(flags("{\"a\": \"\u{e9}\"}"), (false, true));
        assert_eq!(flags("{\"a\": \"x\\n0123456789\u{212A}\"}"), (false, true));
    }

    #[test]
    fn agrees_with_serde_json_on_valid_documents() {
        for s in [
            r#"{"a": 1, "b": [true, false, null, -0.5e-3, 12], "c": {"d": "x\"y\\z\/\n\u00e9\ud83d\ude00"}}"#,
            r#"  [ ]  "#,
            r#"{}"#,
            r#""plain""#,
            "0",
            "-12.5E+3",
            r#"{"k":"C:\\Windows\\System32\\cmd.exe","e":"","u":"\u0041BC","long":"0123456789abcdefghij"}"#,
            "[[[[1]]],[{}],{\"a\":[]}]",
            "{\"x\":\"caf\u{e9} \u{1f600}\"}",
            // Every one-character escape, alone, in runs, at both ends of
            // a string and of a key, and past a sixteen-byte block.
            r#"{"e":"\ba\fb\nc\rd\te\r\n\t","k\t":"\r\n","0123456789abcdef\b":"0123456789abcdefg\f\t\"\\\/"}"#,
        ] {
            let want: serde_json::Value = serde_json::from_str(s).unwrap();
            assert_eq!(parse(s).unwrap(), want, "{s}");
        }
    }

    #[test]
    fn rejects_what_serde_json_rejects_and_says_where() {
        for (s, at) in [
            ("", 0),
            ("{", 1),
            ("{\"a\" 1}", 5),
            ("{\"a\": 1,}", 8),
            ("[1,]", 3),
            ("[1 2]", 3),
            ("{\"a\": tru}", 6),
            ("\"abc", 0),
            ("\"a\tb\"", 2),
            ("\"\\x\"", 1),
            ("\"\\ud800\"", 1),
            ("\"\\udc00\"", 1),
            ("\"\\u12g4\"", 1),
            ("01", 1),
            ("1.", 2),
            ("1e", 2),
            ("-", 1),
            ("{\"a\":1}}", 7),
            ("{1: 2}", 1),
            ("nul", 0),
        ] {
            assert!(serde_json::from_str::<serde_json::Value>(s).is_err(), "{s}");
            let e = parse(s).unwrap_err();
            assert_eq!(e.offset(), at, "{s}: {e}");
        }
        let e = parse("{\n  \"a\": 1,\n  \"b\" 2\n}").unwrap_err();
        assert_eq!((e.line(), e.column()), (3, 7), "{e}");
        assert!(e.to_string().contains("expected ':'"), "{e}");
        // Invalid UTF-8 is refused with its offset.
        let mut tape = Tape::new();
        let e = tape.parse(b"{\"a\": \"\xff\"}").unwrap_err();
        assert_eq!((e.what(), e.offset()), ("invalid UTF-8", 7));
    }

    /// UTF-8 is checked only when a string held a non-ASCII byte, so every
    /// other place a byte can sit is tried here: an invalid byte is
    /// refused wherever it is, with the standard library's offset, even
    /// when it also breaks the grammar; valid non-ASCII text in keys,
    /// values, escaped strings and past the SIMD scan's sixteen-byte blocks
    /// reads back unchanged, and the tape is usable after each refusal.
    #[test]
    fn utf8_is_checked_wherever_a_byte_can_sit() {
        let long = "x".repeat(40);
        let docs = [
            format!("{{\"k\": \"{long}@{long}\"}}"),
            "{\"k@\": \"v\"}".to_string(),
            format!("{{\"k\": \"a\\\\b@c\\n{long}\"}}"),
            format!("{{\"k\": \"\\u00e9{long}@\"}}"),
            "{\"k\":@ 1}".to_string(),
            "{\"k\": 1@}".to_string(),
            "{\"k\": [1, @2]}".to_string(),
            "@{}".to_string(),
            "{}@".to_string(),
            "{\"k\": tr@ue}".to_string(),
        ];
        let mut tape = Tape::new();
        for d in &docs {
            for bad in [
                &b"\xff"[..],
                b"\xc3",
                b"\xe2\x82",
                b"\xed\xa0\x80",
                b"\xc0\xaf",
            ] {
                let mut bytes = d.replace('@', "\u{1}").into_bytes();
                let at = bytes.iter().position(|&c| c == 1).unwrap();
                bytes.splice(at..at + 1, bad.iter().copied());
                let e = tape.parse(&bytes).unwrap_err();
                assert_eq!((e.what(), e.offset()), ("invalid UTF-8", at), "{d} {bad:?}");
            }
            // The same place holding valid text: accepted where the grammar
            // allows it, and read back as written.
            let good = d.replace('@', "\u{e9}\u{1F600}");
            match (
                tape.parse(good.as_bytes()),
                serde_json::from_str::<serde_json::Value>(&good),
            ) {
                (Ok(doc), Ok(want)) => {
                    assert_eq!(doc.text(), good);
                    assert_eq!(
                        serde_json::to_string(&to_serde(&doc.root())).unwrap(),
                        serde_json::to_string(&want).unwrap()
                    );
                }
                (Err(e), Err(_)) => assert_ne!(e.what(), "invalid UTF-8", "{good}"),
                (ours, theirs) => panic!("{good}: {:?} vs {theirs:?}", ours.map(|_| ())),
            }
        }
    }

    /// A UTF-8 byte order mark before a document is ignored: the document
    /// reads as without it, and errors count bytes from the mark.
    #[test]
    fn a_leading_byte_order_mark_is_ignored() {
        let mut tape = Tape::new();
        let doc = tape.parse(b"\xef\xbb\xbf{\"a\": \"x\"}").unwrap();
        assert_eq!(doc.text(), "{\"a\": \"x\"}");
        assert_eq!(doc.root().get("a").and_then(|v| v.as_str()), Some("x"));
        let e = tape.parse(b"\xef\xbb\xbf{\"a\" 1}").unwrap_err();
        assert_eq!((e.offset(), e.column()), (8, 9), "{e}");
        let e = tape.parse(b"\xef\xbb\xbf{\"a\": \"\xff\"}").unwrap_err();
        assert_eq!((e.what(), e.offset()), ("invalid UTF-8", 10));
        // Only before the document: a mark anywhere else is refused, and
        // a mark cut short is invalid UTF-8.
        assert!(tape.parse(b" \xef\xbb\xbf{}").is_err());
        assert!(tape.parse(b"\xef\xbb\xbf\xef\xbb\xbf{}").is_err());
        assert_eq!(
            tape.parse(b"\xef\xbb{}").unwrap_err().what(),
            "invalid UTF-8"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).unwrap_err().what().contains("nested"));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn scalar_texts() {
        let mut tape = Tape::new();
        let doc = tape
            .parse(br##"{"n": 42, "m": -0, "f": 1.50, "e": 1e3, "b": true, "t": {"#text": 4688}, "o": {"x": 1}, "z": null}"##)
            .unwrap();
        let root = doc.root();
        let mut buf = String::new();
        let text = |k: &str, buf: &mut String| root.get(k).unwrap().text(buf).map(str::to_string);
        assert_eq!(text("n", &mut buf).as_deref(), Some("42"));
        assert_eq!(text("m", &mut buf).as_deref(), Some("0"));
        assert_eq!(text("f", &mut buf).as_deref(), Some("1.5"));
        assert_eq!(text("e", &mut buf).as_deref(), Some("1000"));
        assert_eq!(text("b", &mut buf).as_deref(), Some("true"));
        assert_eq!(text("t", &mut buf).as_deref(), Some("4688"));
        assert_eq!(text("o", &mut buf), None);
        assert_eq!(text("z", &mut buf), None);
        assert_eq!(root.get("o").unwrap().to_json(), r#"{"x": 1}"#);
    }

    #[test]
    fn swar_scan_finds_the_first_special_byte() {
        let mut s = vec![b'a'; 40];
        for pos in 0..40 {
            for special in [b'"', b'\\', 0x01, 0x1f] {
                let mut t = s.clone();
                t[pos] = special;
                // A high byte before it must not hide it.
                if pos > 0 {
                    t[pos - 1] = 0xC3;
                }
                assert_eq!(scan_plain(&t, 0, &mut 0), pos, "{special:#x} at {pos}");
            }
        }
        s[39] = 0xff;
        assert_eq!(scan_plain(&s, 0, &mut 0), 40);
    }

    /// The sixteen-byte scan and the eight-byte one agree on where plain
    /// text stops and on whether a non-ASCII byte was seen before it.
    #[test]
    fn both_scans_agree() {
        let mut rng = warden_gen::Rng::new(0x9e37_79b9_7f4a_7c15);
        let mut next = move || rng.next_u64();
        for _ in 0..20_000 {
            let len = (next() % 70) as usize;
            let t: Vec<u8> = (0..len)
                .map(|_| match next() % 40 {
                    0 => b'"',
                    1 => b'\\',
                    2 => (next() % 0x20) as u8,
                    3 => 0x80 | (next() % 0x80) as u8,
                    _ => b' ' + (next() % 0x5f) as u8,
                })
                .collect();
            let from = (next() as usize) % (len + 1);
            let (mut a, mut b) = (0u64, 0u64);
            let at = scan_plain(&t, from, &mut a);
            assert_eq!(at, scan_plain_swar(&t, from, &mut b), "{t:?} from {from}");
            // Whatever else either looked at, a non-ASCII byte before the
            // stop is always seen.
            let high = t[from..at].iter().any(|c| *c >= 0x80);
            assert!(
                !high || (a & 0x8080_8080_8080_8080 != 0),
                "{t:?} from {from}"
            );
            assert!(
                !high || (b & 0x8080_8080_8080_8080 != 0),
                "{t:?} from {from}"
            );
        }
    }

    #[test]
    fn a_tape_is_reused() {
        let mut tape = Tape::new();
        for s in [r#"{"a": "x\\y"}"#, r#"{"b": [1, 2]}"#, r#"{"a": "p"}"#] {
            let doc = tape.parse(s.as_bytes()).unwrap();
            let want: serde_json::Value = serde_json::from_str(s).unwrap();
            assert_eq!(to_serde(&doc.root()), want);
        }
    }

    /// Two documents share a shape exactly when their containers, their
    /// extents and their keys' text agree: the keys' text the parser
    /// writes out cannot make two different key sequences look alike
    /// (keys split differently, a long key, an escaped quote or length
    /// byte, a key at the very end of the input), and the container check
    /// tells nestings with the same keys apart.
    #[test]
    fn shapes_match_exactly_when_structure_and_keys_do() {
        let long = "k".repeat(300);
        let long2 = format!("{}j", "k".repeat(299));
        let (k254, k255) = ("q".repeat(254), "q".repeat(255));
        let pairs: Vec<(String, String, bool)> = vec![
            // Values differ, shape does not (a container's place excepted).
            (
                r#"{"a":1,"b":"x"}"#.into(),
                r#"{"a":"long value","b":null}"#.into(),
                true,
            ),
            (
                r#"{"a":1,"b":"x"}"#.into(),
                r#"{"a":{},"b":"x"}"#.into(),
                false,
            ),
            (r#"{"a":[1,2]}"#.into(), r#"{"a":[1,"2"]}"#.into(), true),
            (r#"{"a":[1,2]}"#.into(), r#"{"a":[[1],2]}"#.into(), false),
            (r#"{"a":[1,2]}"#.into(), r#"{"a":{"b":2}}"#.into(), false),
            // The same key bytes split into other keys.
            (
                r#"{"ab":1,"c":2}"#.into(),
                r#"{"a":1,"bc":2}"#.into(),
                false,
            ),
            // The same keys, nested otherwise.
            (
                r#"{"a":{"b":1},"c":2}"#.into(),
                r#"{"a":{"b":1,"c":2}}"#.into(),
                false,
            ),
            (
                r#"{"a":[{"b":1},{"c":2}]}"#.into(),
                r#"{"a":[{"b":1,"c":2}]}"#.into(),
                false,
            ),
            // Long keys, differing only in their last byte or not at all.
            (
                format!(r#"{{"{long}":1}}"#),
                format!(r#"{{"{long2}":1}}"#),
                false,
            ),
            (
                format!(r#"{{"{long}":1}}"#),
                format!(r#"{{"{long}":"v"}}"#),
                true,
            ),
            // Keys just short of and at the length written in five bytes.
            (
                format!(r#"{{"{k254}":1,"a":2}}"#),
                format!(r#"{{"{k254}":1,"b":2}}"#),
                false,
            ),
            (
                format!(r#"{{"{k255}":1,"a":2}}"#),
                format!(r#"{{"{k255}":1,"b":2}}"#),
                false,
            ),
            (
                format!(r#"{{"{k255}":1,"a":2}}"#),
                format!(r#"{{"{k254}q":1,"a":3}}"#),
                true,
            ),
            (
                format!(r#"{{"{k255}":1}}"#),
                format!(r#"{{"{k254}":1}}"#),
                false,
            ),
            // Escapes: a quote or a control byte inside a key.
            (r#"{"a\"b":1}"#.into(), r#"{"a\"c":1}"#.into(), false),
            (
                r#"{"a\u0001b":1,"c":2}"#.into(),
                r#"{"a":1,"\u0001bc":2}"#.into(),
                false,
            ),
            // An escape spelling the same key: the same text, the same
            // walk.
            (r#"{"\u0061":1}"#.into(), r#"{"a":2}"#.into(), true),
            // Keys at the very end of the input (fewer than sixteen bytes
            // after them).
            (r#"{"k":1}"#.into(), r#"{"k":22}"#.into(), true),
            (r#"{"k":1}"#.into(), r#"{"j":1}"#.into(), false),
            (
                r#"{"a":{"k":[]}}"#.into(),
                r#"{"a":{"k":{}}}"#.into(),
                false,
            ),
        ];
        let (mut t1, mut t2) = (Tape::new(), Tape::new());
        for (a, b, same) in &pairs {
            let (da, db) = (
                t1.parse(a.as_bytes()).unwrap(),
                t2.parse(b.as_bytes()).unwrap(),
            );
            let (sa, sb) = (da.shape(), db.shape());
            assert_eq!(da.has_shape(&sb), *same, "{a} against {b}");
            assert_eq!(db.has_shape(&sa), *same, "{b} against {a}");
            assert!(da.has_shape(&sa) && db.has_shape(&sb), "{a}, {b}");
            if *same {
                assert_eq!(da.shape_hint(), db.shape_hint(), "{a}, {b}");
            }
        }
    }
}
