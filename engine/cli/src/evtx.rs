//! Windows event log files (`.evtx`) read as JSON lines, each record
//! rendered as `evtx_dump -o jsonl` renders it (the `evtx` crate is the
//! library behind evtx_dump): `Event.System.*`, `Event.EventData.*`, the
//! layout `--mapping windows` reads.

use std::io::{BufWriter, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use evtx::{EvtxParser, ParserSettings};

/// The first eight bytes of every EVTX file.
pub const MAGIC: &[u8] = b"ElfFile\0";

/// A file header's size; chunks follow it.
const HEADER: u64 = 4096;
/// Every chunk's size.
const CHUNK: u64 = 65536;

/// The records of `parser` (over `len` bytes), in file order, one JSON line
/// each, read from a thread that renders them as they are consumed. What
/// cannot be read is reported on stderr with the file and line, and
/// counted in the number returned with the stream: a record (or a damaged
/// chunk) the library fails on becomes an empty line, so that line N is
/// still the N-th item; a file cut short in a chunk (copied while it was
/// written) counts once for the records of that partial chunk.
pub fn lines<R: Read + std::io::Seek + Send + 'static>(
    parser: EvtxParser<R>,
    name: &str,
    len: u64,
) -> Result<(Box<dyn Read + Send>, Arc<AtomicU64>)> {
    let (reader, writer) = std::io::pipe().context("creating a pipe")?;
    let bad = Arc::new(AtomicU64::new(0));
    let (name, failed) = (name.to_string(), Arc::clone(&bad));
    let settings = ParserSettings::new().indent(false);
    let mut parser = parser.with_configuration(settings);
    std::thread::Builder::new()
        .name("evtx".into())
        .spawn(move || {
            let mut out = BufWriter::with_capacity(1 << 16, writer);
            for (i, record) in parser.records_json().enumerate() {
                let line: &[u8] = match &record {
                    Ok(r) => r.data.as_bytes(),
                    Err(e) => {
                        eprintln!("warden: {name}:{}: unreadable record: {e}", i + 1);
                        failed.fetch_add(1, Ordering::Relaxed);
                        b""
                    }
                };
                // Compact JSON keeps line breaks escaped: one record, one line.
                debug_assert!(!line.contains(&b'\n'));
                if out
                    .write_all(line)
                    .and_then(|()| out.write_all(b"\n"))
                    .is_err()
                {
                    return; // the reader is gone
                }
            }
            let partial = len.saturating_sub(HEADER) % CHUNK;
            if partial != 0 {
                eprintln!(
                    "warden: {name}: the file ends {partial} bytes into a chunk (at offset {}): \
                     the records of that partial chunk cannot be read",
                    len - partial
                );
                failed.fetch_add(1, Ordering::Relaxed);
            }
            let _ = out.flush();
        })
        .context("starting the EVTX reader")?;
    Ok((Box::new(reader), bad))
}
