//! `warden detect`: offline detection over JSON lines.

use std::io::{BufRead, BufWriter, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result};
use serde::Serialize;
use warden_detect::event::Tape;
use warden_detect::indicators::{IndicatorMatcher, IndicatorScratch, IndicatorSet, load_path};
use warden_detect::{Mapping, MatchedField};

use crate::DetectArgs;
use crate::rules::load_engine;

#[derive(Serialize)]
struct Alert<'a> {
    rule_id: &'a str,
    rule_title: &'a str,
    level: &'a str,
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    org_id: Option<&'a str>,
    matched: &'a [MatchedField],
    line: u64,
}

/// Writes one alert line: `alert`'s fields, then `"event"` with the input
/// line's JSON as it was (already validated by the parser).
fn write_alert(
    out: &mut impl Write,
    buf: &mut Vec<u8>,
    alert: &Alert<'_>,
    event: &str,
) -> Result<()> {
    buf.clear();
    serde_json::to_writer(&mut *buf, alert)?;
    // The struct serialises as an object: reopen it for the event.
    buf.pop();
    buf.extend_from_slice(b",\"event\":");
    buf.extend_from_slice(event.as_bytes());
    buf.extend_from_slice(b"}\n");
    out.write_all(buf)?;
    Ok(())
}

/// Lines per chunk handed to a worker (and at most [`CHUNK_BYTES`]): small
/// enough that a chunk is still in the caches when its worker parses it.
const CHUNK_LINES: usize = 256;
const CHUNK_BYTES: usize = 256 << 10;

/// Consecutive input lines, whole.
struct Chunk {
    seq: u64,
    /// Line number of the first line (1-based).
    first_line: u64,
    data: Vec<u8>,
}

/// What detection made of one chunk: its alert lines, its diagnostics (in
/// line order) and its counts.
#[derive(Default)]
struct Done {
    seq: u64,
    out: Vec<u8>,
    errs: String,
    events: u64,
    malformed: u64,
    alerts: u64,
    /// A malformed line looked like part of pretty-printed JSON.
    pretty: bool,
}

/// One worker's engine state.
struct Worker<'a> {
    engine: &'a warden_detect::Engine,
    indicators: Option<&'a IndicatorMatcher>,
    input_name: &'a str,
    scratch: warden_detect::Scratch,
    hits: Vec<warden_detect::RuleHit>,
    ind_scratch: IndicatorScratch,
    ind_hits: Vec<warden_detect::indicators::IndicatorHit>,
    tape: Tape,
    line_out: Vec<u8>,
}

impl<'a> Worker<'a> {
    fn new(
        engine: &'a warden_detect::Engine,
        indicators: Option<&'a IndicatorMatcher>,
        input_name: &'a str,
    ) -> Worker<'a> {
        Worker {
            engine,
            indicators,
            input_name,
            scratch: engine.scratch(),
            hits: Vec::new(),
            ind_scratch: IndicatorScratch::default(),
            ind_hits: Vec::new(),
            tape: Tape::new(),
            line_out: Vec::with_capacity(4096),
        }
    }

    /// Detection over every line of `chunk`, output in line order.
    fn run(&mut self, chunk: &Chunk, done: &mut Done) -> Result<()> {
        done.seq = chunk.seq;
        let data = chunk.data.as_slice();
        let mut start = 0;
        for line_no in chunk.first_line.. {
            if start == data.len() {
                break;
            }
            let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i + 1);
            let line = trim(&data[start..end]);
            if !line.is_empty() {
                self.line(line, line_no, done)?;
            }
            start = end;
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8], line_no: u64, done: &mut Done) -> Result<()> {
        use std::fmt::Write as _;
        let input = self.input_name;
        let ev = match self.tape.parse(line) {
            Ok(v) if v.root().is_object() => v,
            Ok(_) => {
                done.malformed += 1;
                let _ = writeln!(done.errs, "warden: {input}:{line_no}: not a JSON object");
                return Ok(());
            }
            Err(e) => {
                done.malformed += 1;
                done.pretty |= looks_pretty(line);
                let _ = writeln!(done.errs, "warden: {input}:{line_no}: invalid JSON: {e}");
                return Ok(());
            }
        };
        done.events += 1;
        self.engine.detect(&ev, &mut self.scratch, &mut self.hits);
        if let Some(m) = self.indicators {
            m.scan(&ev, &mut self.ind_scratch, &mut self.ind_hits);
        }
        if self.hits.is_empty() && self.ind_hits.is_empty() {
            return Ok(());
        }
        let root = ev.root();
        let org_id = root.get("org_id").and_then(|v| v.as_str());
        let raw = ev.text();
        for h in &self.hits {
            let meta = &h.rule.meta;
            let alert = Alert {
                rule_id: meta.id.as_deref().unwrap_or(meta.title.as_str()),
                rule_title: &meta.title,
                level: meta.level.as_deref().unwrap_or("medium"),
                tags: &meta.tags,
                org_id,
                matched: &h.matched,
                line: line_no,
            };
            write_alert(&mut done.out, &mut self.line_out, &alert, raw)?;
            done.alerts += 1;
        }
        if let Some(m) = self.indicators {
            for h in &self.ind_hits {
                let a = m.alert(h);
                let alert = Alert {
                    rule_id: &a.rule_id,
                    rule_title: &a.title,
                    level: a.level,
                    tags: &a.tags,
                    org_id,
                    matched: &a.matched,
                    line: line_no,
                };
                write_alert(&mut done.out, &mut self.line_out, &alert, raw)?;
                done.alerts += 1;
            }
        }
        Ok(())
    }
}

/// Reads up to `max_lines` whole lines (and about [`CHUNK_BYTES`]); no
/// chunk at the end of the input. A read error comes with the whole lines
/// read before it, so that they are still checked.
fn read_chunk(
    input: &mut dyn BufRead,
    name: &str,
    (seq, max_lines): (u64, usize),
    line_no: &mut u64,
    mut data: Vec<u8>,
) -> (Option<Chunk>, Option<anyhow::Error>) {
    data.clear();
    let first_line = *line_no + 1;
    let (lines, err) = read_lines(input, &mut data, max_lines);
    *line_no += lines as u64;
    let err = err
        .map(|e| anyhow::Error::new(e).context(format!("{name}: read error after line {line_no}")));
    let chunk = (lines > 0).then_some(Chunk {
        seq,
        first_line,
        data,
    });
    (chunk, err)
}

/// Appends up to `max_lines` whole lines from `input` to `data` (and stops
/// at the first line end past [`CHUNK_BYTES`]); a last line without a
/// newline counts at the end of the input. Lines are found with the SIMD
/// `memchr` and copied a buffer at a time, not byte by byte. On a read
/// error, the part of a line it cut off is dropped and the error returned
/// with the count of whole lines before it.
fn read_lines(
    input: &mut dyn BufRead,
    data: &mut Vec<u8>,
    max_lines: usize,
) -> (usize, Option<std::io::Error>) {
    let mut lines = 0;
    // Where the line being read starts in `data`.
    let mut line_start = data.len();
    while lines < max_lines && (data.len() < CHUNK_BYTES || data.len() > line_start) {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                data.truncate(line_start);
                return (lines, Some(e));
            }
        };
        if buf.is_empty() {
            if data.len() > line_start {
                lines += 1;
            }
            break;
        }
        let mut used = 0;
        for nl in memchr::memchr_iter(b'\n', buf) {
            used = nl + 1;
            lines += 1;
            if lines == max_lines || data.len() + used >= CHUNK_BYTES {
                break;
            }
        }
        if used == 0 {
            // No line end yet: all of it belongs to the current line.
            used = buf.len();
            data.extend_from_slice(buf);
        } else {
            data.extend_from_slice(&buf[..used]);
            line_start = data.len();
        }
        input.consume(used);
    }
    (lines, None)
}

/// Totals over the whole input.
#[derive(Default)]
struct Totals {
    events: u64,
    malformed: u64,
    alerts: u64,
    pretty: bool,
}

impl Totals {
    /// Writes a finished chunk's alerts and diagnostics.
    fn emit(&mut self, out: &mut impl Write, done: &Done) -> Result<()> {
        out.write_all(&done.out)?;
        if !done.errs.is_empty() {
            // Diagnostics go out with the chunk's alerts, so stderr keeps
            // line order relative to stdout's progress.
            out.flush()?;
            eprint!("{}", done.errs);
        }
        self.events += done.events;
        self.malformed += done.malformed;
        self.alerts += done.alerts;
        self.pretty |= done.pretty;
        Ok(())
    }
}

pub fn run(args: DetectArgs) -> Result<ExitCode> {
    let (engine, mapping) = load_engine(&args.rules, &args.opts)?;
    let indicators = load_indicators(&args.indicators, mapping.as_ref())?;
    for r in engine.rejections() {
        eprintln!(
            "warden: rule rejected: {} [{}]: {}",
            r.file.display(),
            r.rule_id.as_deref().unwrap_or("-"),
            r.reason
        );
    }
    let (source, unreadable) = open_input(&args.input).with_context(|| args.input.clone())?;
    let mut input = std::io::BufReader::with_capacity(1 << 20, source);
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    // Standard input may be a live stream (`tail -f ... | warden detect`):
    // one thread then, which writes each alert out before it waits for
    // more input. A file is read on every core.
    let threads = match args.threads {
        None if args.input == "-" => 1,
        None | Some(0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        Some(n) => n,
    };
    let mut totals = Totals::default();
    let name = args.input.as_str();
    if threads == 1 {
        // One core: no hand-off between threads, and each line is parsed
        // right after it is read, while it is in the L1 cache.
        let mut w = Worker::new(&engine, indicators.as_ref(), name);
        let (mut line_no, mut seq, mut data) = (0u64, 0u64, Vec::new());
        let mut done = Done::default();
        loop {
            let (chunk, err) = read_chunk(&mut input, name, (seq, 1), &mut line_no, data);
            let Some(chunk) = chunk else {
                out.flush()?;
                match err {
                    Some(e) => return Err(e),
                    None => break,
                }
            };
            done.out.clear();
            done.errs.clear();
            (done.events, done.malformed, done.alerts, done.pretty) = (0, 0, 0, false);
            w.run(&chunk, &mut done)?;
            totals.emit(&mut out, &done)?;
            if memchr::memchr(b'\n', input.buffer()).is_none() {
                // The next read may wait for more input: what was found so
                // far goes out first.
                out.flush()?;
            }
            data = chunk.data;
            seq += 1;
        }
    } else {
        parallel(
            &engine,
            indicators.as_ref(),
            &mut input,
            name,
            threads,
            &mut out,
            &mut totals,
        )?;
    }
    out.flush()?;
    // EVTX records that could not be read (each an empty line, reported).
    totals.malformed += unreadable.map_or(0, |n| n.load(std::sync::atomic::Ordering::Relaxed));
    eprintln!(
        "warden: {} events, {} malformed lines, {} alerts, {} rules loaded, {} rejected",
        totals.events,
        totals.malformed,
        totals.alerts,
        engine.rules().len(),
        engine.rejections().len()
    );
    if totals.pretty {
        eprintln!(
            "warden: hint: {} looks like pretty-printed JSON (or `evtx_dump -o json`); \
             warden detect reads one JSON object per line: use `evtx_dump -o jsonl`, \
             `jq -c`, or give it the .evtx file itself",
            args.input
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// For an event log input, how many of its records could not be read.
type Unreadable = Option<Arc<AtomicU64>>;

/// The input as JSON lines: a file or standard input, in UTF-8 or UTF-16
/// (Windows PowerShell 5 writes UTF-16), or a Windows event log file
/// (`.evtx`) rendered record by record; any of them may be compressed with
/// gzip or zstd (rotated logs, shared datasets). Formats are recognised by
/// their first bytes, not by the file name. For an event log, also the
/// count of records that could not be read.
fn open_input(name: &str) -> Result<(Box<dyn Read + Send>, Unreadable)> {
    let source: Box<dyn Read + Send> = if name == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(name)?)
    };
    let (source, head) = peek(source)?;
    let (mut source, head, compressed) = match head[..] {
        [0x1f, 0x8b, ..] => {
            eprintln!("warden: {name}: reading gzip-compressed input");
            let (s, h) = peek(Box::new(flate2::read::MultiGzDecoder::new(source)))?;
            (s, h, true)
        }
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            eprintln!("warden: {name}: reading zstd-compressed input");
            let (s, h) = peek(Box::new(zstd::stream::read::Decoder::new(source)?))?;
            (s, h, true)
        }
        _ => (source, head, false),
    };
    if head == crate::evtx::MAGIC {
        let parser = if name == "-" || compressed {
            // The parser seeks: a stream is read whole first.
            let mut all = Vec::new();
            source.read_to_end(&mut all)?;
            let len = all.len() as u64;
            evtx::EvtxParser::from_buffer(all).map(|p| crate::evtx::lines(p, name, len))
        } else {
            let len = std::fs::metadata(name)?.len();
            evtx::EvtxParser::from_path(name).map(|p| crate::evtx::lines(p, name, len))
        };
        let (r, bad) = parser.context("not a readable Windows event log")??;
        eprintln!("warden: {name}: reading Windows event log records (line N is record N)");
        return Ok((r, Some(bad)));
    }
    let (source, encoding) = warden_detect::text::decoding_reader(source)?;
    if encoding != warden_detect::text::Encoding::Utf8 {
        eprintln!("warden: {name}: reading {} input", encoding.name());
    }
    Ok((source, None))
}

/// The first (up to) eight bytes of `r`, and `r` still reading from its
/// start. Waits for eight bytes unless the input ends first: a JSON event
/// line is longer than that.
fn peek(mut r: Box<dyn Read + Send>) -> std::io::Result<(Box<dyn Read + Send>, Vec<u8>)> {
    let mut head = Vec::with_capacity(8);
    (&mut r).take(8).read_to_end(&mut head)?;
    let again = std::io::Cursor::new(head.clone()).chain(r);
    Ok((Box::new(again), head))
}

/// Detection on `threads` workers; this thread reads chunks and writes
/// their results back in input order.
fn parallel(
    engine: &warden_detect::Engine,
    indicators: Option<&IndicatorMatcher>,
    input: &mut (dyn BufRead + Send),
    name: &str,
    threads: usize,
    out: &mut impl Write,
    totals: &mut Totals,
) -> Result<()> {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, mpsc};
    // Chunks read ahead: both channels hold them all, so no send blocks.
    let window = threads.saturating_mul(4);
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Chunk>(window);
    let chunk_rx = Mutex::new(chunk_rx);
    let (done_tx, done_rx) = mpsc::sync_channel::<Result<(Done, Vec<u8>)>>(window);
    std::thread::scope(|s| -> Result<()> {
        for _ in 0..threads {
            let (chunk_rx, done_tx) = (&chunk_rx, done_tx.clone());
            s.spawn(move || {
                let mut w = Worker::new(engine, indicators, name);
                loop {
                    let next = chunk_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok(chunk)) = next else { return };
                    let mut done = Done::default();
                    // A panic must not leave the writer waiting for this
                    // chunk forever: it becomes this chunk's error.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        w.run(&chunk, &mut done)
                    }));
                    let r = match ran {
                        Ok(r) => r.map(|()| (done, chunk.data)),
                        Err(_) => Err(anyhow::anyhow!(
                            "{name}: detection failed in the lines from line {} on",
                            chunk.first_line
                        )),
                    };
                    let failed = r.is_err();
                    if done_tx.send(r).is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        // Read ahead while results come back; write them in order.
        let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
        let (mut next_out, mut seq, mut line_no) = (0u64, 0u64, 0u64);
        let mut spare: Vec<Vec<u8>> = Vec::new();
        let mut in_flight = 0usize;
        let (mut eof, mut write_failed) = (false, false);
        let mut result = Ok(());
        loop {
            while !eof && in_flight < window {
                let buf = spare.pop().unwrap_or_default();
                let (chunk, err) = read_chunk(input, name, (seq, CHUNK_LINES), &mut line_no, buf);
                match chunk {
                    Some(chunk) => {
                        seq += 1;
                        in_flight += 1;
                        if chunk_tx.send(chunk).is_err() {
                            eof = true;
                        }
                    }
                    None => eof = true,
                }
                if let Some(e) = err {
                    eof = true;
                    result = Err(e);
                }
            }
            if in_flight == 0 {
                break;
            }
            let Ok(r) = done_rx.recv() else { break };
            in_flight -= 1;
            match r {
                Ok((done, buf)) => {
                    spare.push(buf);
                    pending.insert(done.seq, done);
                }
                Err(e) => {
                    result = result.and(Err(e));
                    eof = true;
                }
            }
            // Everything read before a read error is still written out;
            // after a write error nothing more is.
            while let Some(done) = pending.remove(&next_out) {
                if !write_failed && let Err(e) = totals.emit(out, &done) {
                    write_failed = true;
                    eof = true;
                    result = result.and(Err(e));
                }
                next_out += 1;
            }
        }
        drop(chunk_tx);
        result
    })
}

/// Loads every indicator file; rejected entries are reported with file and line.
fn load_indicators(
    paths: &[std::path::PathBuf],
    mapping: Option<&Mapping>,
) -> Result<Option<IndicatorMatcher>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut all = Vec::new();
    for p in paths {
        let loaded = load_path(p)?;
        for r in &loaded.rejected {
            eprintln!("warden: indicator rejected: {r}");
        }
        eprintln!(
            "warden: {}: {} indicators, {} rejected, {} skipped",
            p.display(),
            loaded.indicators.len(),
            loaded.rejected.len(),
            loaded.skipped
        );
        all.extend(loaded.indicators);
    }
    let set = IndicatorSet::build(all);
    Ok(Some(IndicatorMatcher::new(
        set,
        mapping.map(|m| &m.indicators),
    )))
}

/// Whether a line that is not JSON looks like a piece of pretty-printed
/// JSON: a lone opening bracket, or evtx_dump's `Record N` header.
fn looks_pretty(line: &[u8]) -> bool {
    let t = trim(line);
    t == b"{"
        || t == b"["
        || t.strip_prefix(b"Record ")
            .is_some_and(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit))
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Read};

    /// Yields its text, then fails.
    struct FailsAfter(&'static [u8]);

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("disk gone"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Yields its text a few bytes per read, as a pipe may.
    struct Trickle(&'static [u8], usize);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.1 = self.1 % 3 + 1;
            let n = buf.len().min(self.0.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Chunks hold whole lines however the input arrives, up to the line
    /// limit, and the last line counts without its newline.
    #[test]
    fn chunks_hold_whole_lines_however_the_input_arrives() {
        let text: &'static [u8] = b"{\"a\":1}\n\n{\"bb\":22}\r\n{\"c\":3}\n{\"d\":4}";
        for cap in [1, 2, 5, 64] {
            let mut input = BufReader::with_capacity(cap, Trickle(text, 0));
            let mut line_no = 0;
            let mut got = Vec::new();
            let mut seq = 0;
            loop {
                let (chunk, err) =
                    super::read_chunk(&mut input, "in", (seq, 2), &mut line_no, Vec::new());
                assert!(err.is_none());
                let Some(c) = chunk else { break };
                got.push((c.first_line, String::from_utf8(c.data).unwrap()));
                seq += 1;
            }
            assert_eq!(
                got,
                [
                    (1, "{\"a\":1}\n\n".to_string()),
                    (3, "{\"bb\":22}\r\n{\"c\":3}\n".to_string()),
                    (5, "{\"d\":4}".to_string()),
                ],
                "buffer of {cap} bytes"
            );
            assert_eq!(line_no, 5);
        }
        // Long lines: a chunk ends at the first line end past CHUNK_BYTES.
        let line = format!("{{\"a\":\"{}\"}}\n", "x".repeat(100 << 10));
        let text: &'static [u8] = line.repeat(7).into_bytes().leak();
        let mut input = BufReader::new(text);
        let mut line_no = 0;
        let (chunk, _) = super::read_chunk(&mut input, "in", (0, 256), &mut line_no, Vec::new());
        assert_eq!(chunk.unwrap().data.len(), 3 * line.len());
        assert_eq!(line_no, 3);
        // A line longer than the limit, carried over several buffers, ends
        // its chunk even when short lines follow it in the same buffer.
        let text: &'static [u8] = format!("{}\n{}", "x".repeat(300_000), "{}\n".repeat(10))
            .into_bytes()
            .leak();
        let mut input = BufReader::new(text);
        let mut line_no = 0;
        let (chunk, _) = super::read_chunk(&mut input, "in", (0, 256), &mut line_no, Vec::new());
        assert_eq!(chunk.unwrap().data.len(), 300_001);
        assert_eq!(line_no, 1);
        let (chunk, _) = super::read_chunk(&mut input, "in", (1, 256), &mut line_no, Vec::new());
        assert_eq!(chunk.unwrap().first_line, 2);
        assert_eq!(line_no, 11);
    }

    /// The whole lines read before a read error are still handed on (and
    /// the cut-off one is not); the error names the last whole line.
    #[test]
    fn a_read_error_keeps_the_lines_before_it() {
        let mut input = BufReader::new(FailsAfter(b"{\"a\":1}\n{\"b\":2}\n{\"c\""));
        let mut line_no = 0;
        let (chunk, err) =
            super::read_chunk(&mut input, "in.jsonl", (0, 256), &mut line_no, Vec::new());
        let chunk = chunk.expect("two whole lines");
        assert_eq!(chunk.first_line, 1);
        assert_eq!(chunk.data, b"{\"a\":1}\n{\"b\":2}\n");
        let err = format!("{:#}", err.expect("the read error"));
        assert!(err.contains("in.jsonl: read error after line 2"), "{err}");
        assert!(err.contains("disk gone"), "{err}");
    }
}
