//! Text as users save it: UTF-8 with or without a byte order mark, or
//! UTF-16 (Windows PowerShell 5's `>` and `Out-File` write UTF-16LE with a
//! mark; Notepad's "Unicode" is the same).
//!
//! Rule, mapping and placeholder files are read with [`read_text`]; the
//! command line reads its event input through [`decoding_reader`]. Nothing
//! is decoded loosely: a byte sequence that is not valid in the file's
//! encoding is an error naming its offset, never a replacement character.

use std::io::{self, Cursor, Read};
use std::path::Path;

/// The encodings a text file or stream is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf16Le => "UTF-16LE",
            Encoding::Utf16Be => "UTF-16BE",
        }
    }
}

#[cfg(test)]
const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// The encoding the first bytes of a text say, and the length of its byte
/// order mark (0 when there is none).
///
/// Without a mark, UTF-16 is recognised by its zero bytes (RFC 4627's
/// rule for JSON; YAML's is the same): text that starts with an ASCII
/// character has a zero beside it in UTF-16 and never in UTF-8.
pub fn sniff(head: &[u8]) -> (Encoding, usize) {
    match head {
        [0xef, 0xbb, 0xbf, ..] => (Encoding::Utf8, 3),
        [0xff, 0xfe, ..] => (Encoding::Utf16Le, 2),
        [0xfe, 0xff, ..] => (Encoding::Utf16Be, 2),
        [a, 0, ..] if *a != 0 => (Encoding::Utf16Le, 0),
        [0, b, ..] if *b != 0 => (Encoding::Utf16Be, 0),
        _ => (Encoding::Utf8, 0),
    }
}

/// Decodes a whole file's bytes: UTF-8 (a leading byte order mark
/// dropped) or UTF-16. An invalid sequence is an error naming its byte
/// offset in `bytes` and its line.
pub fn decode(bytes: Vec<u8>) -> Result<String, String> {
    let (enc, bom) = sniff(&bytes);
    match enc {
        Encoding::Utf8 => {
            let mut bytes = bytes;
            bytes.drain(..bom);
            String::from_utf8(bytes).map_err(|e| {
                let at = e.utf8_error().valid_up_to();
                let line = 1 + memchr::memchr_iter(b'\n', &e.as_bytes()[..at]).count();
                format!("invalid UTF-8 at byte {} (line {line})", at + bom)
            })
        }
        Encoding::Utf16Le | Encoding::Utf16Be => {
            let body = &bytes[bom..];
            let mut out = String::with_capacity(body.len() / 2);
            let units = body.chunks(2).map(|c| match (c, enc) {
                ([a, b], Encoding::Utf16Le) => u16::from_le_bytes([*a, *b]),
                ([a, b], _) => u16::from_be_bytes([*a, *b]),
                // An odd last byte: not a code unit (a lone low surrogate
                // stands in for it, so that it fails below).
                _ => 0xdc00,
            });
            // Code units read so far, for the offset of an invalid one.
            let mut unit = 0;
            for c in char::decode_utf16(units) {
                match c {
                    Ok(c) => {
                        out.push(c);
                        unit += c.len_utf16();
                    }
                    Err(_) => {
                        let line = 1 + out.matches('\n').count();
                        return Err(format!(
                            "invalid {} at byte {} (line {line})",
                            enc.name(),
                            bom + 2 * unit
                        ));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// Reads a text file in any of the [`Encoding`]s; errors name the file.
pub fn read_text(path: &Path) -> crate::Result<String> {
    let bytes = std::fs::read(path).map_err(|e| crate::Error::io(path, e))?;
    decode(bytes)
        .map_err(|msg| crate::Error::io(path, io::Error::new(io::ErrorKind::InvalidData, msg)))
}

/// Wraps a byte stream so that it reads as UTF-8: a UTF-8 byte order mark
/// is dropped and UTF-16 is transcoded as it arrives. Returns the encoding
/// found. Reads at most the first three bytes before returning (it waits
/// for two unless the stream ends), so a live stream is not held up.
///
/// In UTF-16 input, a unit that is not part of a valid character (a lone
/// surrogate, an odd last byte) becomes the byte 0xFF, which is never
/// valid UTF-8: the line holding it then fails UTF-8 validation and is
/// reported like any other malformed line, instead of being altered.
pub fn decoding_reader<R: Read + Send + 'static>(
    mut inner: R,
) -> io::Result<(Box<dyn Read + Send>, Encoding)> {
    let mut head = Vec::with_capacity(3);
    let want = |head: &[u8]| match head.first() {
        None => 2,
        Some(0xef) => 3,
        Some(_) => 2,
    };
    while head.len() < want(&head) {
        let mut b = [0u8; 1];
        match inner.read(&mut b) {
            Ok(0) => break,
            Ok(_) => head.push(b[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let (enc, bom) = sniff(&head);
    // A UTF-8 mark is only a mark if all three bytes are there.
    let bom = if enc == Encoding::Utf8 && head.len() < 3 {
        0
    } else {
        bom
    };
    head.drain(..bom);
    let rest = Cursor::new(head).chain(inner);
    Ok(match enc {
        Encoding::Utf8 => (Box::new(rest), enc),
        _ => (
            Box::new(Utf16Reader::new(rest, enc == Encoding::Utf16Be)),
            enc,
        ),
    })
}

/// UTF-16 in, UTF-8 out, as the bytes arrive.
struct Utf16Reader<R> {
    inner: R,
    be: bool,
    raw: Vec<u8>,
    /// A byte read but not yet paired.
    odd: Option<u8>,
    /// A high surrogate waiting for its low half.
    high: Option<u16>,
    out: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read> Utf16Reader<R> {
    fn new(inner: R, be: bool) -> Self {
        Utf16Reader {
            inner,
            be,
            raw: vec![0; 32 << 10],
            odd: None,
            high: None,
            out: Vec::with_capacity(64 << 10),
            pos: 0,
            eof: false,
        }
    }

    fn push_char(&mut self, c: char) {
        let mut b = [0u8; 4];
        self.out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
    }

    fn unit(&mut self, u: u16) {
        if let Some(h) = self.high.take() {
            if (0xdc00..0xe000).contains(&u) {
                let c = 0x10000 + ((u32::from(h) - 0xd800) << 10) + (u32::from(u) - 0xdc00);
                self.push_char(char::from_u32(c).unwrap_or('\u{fffd}'));
                return;
            }
            self.out.push(0xff);
        }
        match u {
            0xd800..0xdc00 => self.high = Some(u),
            0xdc00..0xe000 => self.out.push(0xff),
            _ => self.push_char(char::from_u32(u32::from(u)).unwrap_or('\u{fffd}')),
        }
    }

    /// Decodes the next block of input into `out`; false at the end.
    fn fill(&mut self) -> io::Result<bool> {
        self.out.clear();
        self.pos = 0;
        while self.out.is_empty() {
            if self.eof {
                return Ok(false);
            }
            let n = match self.inner.read(&mut self.raw) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.eof = true;
                if self.odd.take().is_some() || self.high.take().is_some() {
                    self.out.push(0xff);
                }
                continue;
            }
            let raw = std::mem::take(&mut self.raw);
            let mut bytes = &raw[..n];
            if let Some(a) = self.odd.take() {
                let u = self.pair(a, bytes[0]);
                self.unit(u);
                bytes = &bytes[1..];
            }
            let mut pairs = bytes.chunks_exact(2);
            for p in &mut pairs {
                let u = self.pair(p[0], p[1]);
                self.unit(u);
            }
            self.odd = pairs.remainder().first().copied();
            self.raw = raw;
        }
        Ok(true)
    }

    fn pair(&self, a: u8, b: u8) -> u16 {
        if self.be {
            u16::from_be_bytes([a, b])
        } else {
            u16::from_le_bytes([a, b])
        }
    }
}

impl<R: Read> Read for Utf16Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.out.len() && !self.fill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str, be: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let units = bom.then_some(0xfeff).into_iter().chain(s.encode_utf16());
        for u in units {
            out.extend(if be { u.to_be_bytes() } else { u.to_le_bytes() });
        }
        out
    }

    /// Reads everything, handing the reader `step`-byte pieces of input.
    fn read_all(bytes: Vec<u8>, step: usize) -> (Vec<u8>, Encoding) {
        struct Trickle(Vec<u8>, usize, usize);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.2).min(self.0.len() - self.1);
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let (mut r, enc) = decoding_reader(Trickle(bytes, 0, step)).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        (out, enc)
    }

    const TEXT: &str = "{\"a\":\"x\"}\r\n{\"CommandLine\":\"C:\\\\Ärger\\\\😀 İ\"}\n";

    #[test]
    fn every_encoding_reads_as_the_same_utf8() {
        let cases = [
            (TEXT.as_bytes().to_vec(), Encoding::Utf8),
            ([UTF8_BOM, TEXT.as_bytes()].concat(), Encoding::Utf8),
            (utf16(TEXT, false, true), Encoding::Utf16Le),
            (utf16(TEXT, false, false), Encoding::Utf16Le),
            (utf16(TEXT, true, true), Encoding::Utf16Be),
            (utf16(TEXT, true, false), Encoding::Utf16Be),
        ];
        for (bytes, want) in cases {
            assert_eq!(decode(bytes.clone()).as_deref(), Ok(TEXT), "{want:?}");
            // Pieces of 1, 3 and 7 bytes split code units and surrogate
            // pairs across reads.
            for step in [1, 3, 7, 1 << 20] {
                let (out, enc) = read_all(bytes.clone(), step);
                assert_eq!(enc, want);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    TEXT,
                    "{want:?} step {step}"
                );
            }
        }
    }

    #[test]
    fn short_inputs_are_not_mistaken_for_marks() {
        for s in ["", "{", "{}", "\u{feff}"] {
            let want = s.strip_prefix('\u{feff}').unwrap_or(s);
            assert_eq!(read_all(s.as_bytes().to_vec(), 1).0, want.as_bytes());
        }
        // Two bytes of a UTF-8 mark are not a mark: they stay, and fail
        // UTF-8 validation downstream.
        assert_eq!(read_all(vec![0xef, 0xbb], 1).0, vec![0xef, 0xbb]);
    }

    #[test]
    fn invalid_utf16_is_named_not_replaced() {
        // A lone high surrogate in the second line, after a pair (two
        // units, one character), and an odd last byte.
        let mut bytes = utf16("{\"a\":1}\n{\"b\":\"😀", false, true);
        bytes.extend([0x00, 0xd8]);
        bytes.extend(utf16("\"}\n", false, false));
        let err = decode(bytes.clone()).unwrap_err();
        assert_eq!(err, "invalid UTF-16LE at byte 34 (line 2)");
        let (out, _) = read_all(bytes, 5);
        let want = [&b"{\"a\":1}\n{\"b\":\""[..], "😀".as_bytes(), b"\xff\"}\n"].concat();
        assert_eq!(out, want);
        assert!(std::str::from_utf8(&out).is_err());

        let mut odd = utf16("{}", true, true);
        odd.push(0x41);
        assert_eq!(
            decode(odd.clone()).unwrap_err(),
            "invalid UTF-16BE at byte 6 (line 1)"
        );
        assert_eq!(read_all(odd, 1).0, b"{}\xff");
    }

    #[test]
    fn invalid_utf8_names_its_byte_and_line() {
        let bytes = [UTF8_BOM, b"a: 1\nb: \xff\n"].concat();
        assert_eq!(
            decode(bytes).unwrap_err(),
            "invalid UTF-8 at byte 11 (line 2)"
        );
    }
}
