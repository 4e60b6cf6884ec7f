//! Writes the benchmark workload as JSON lines, so other engines can be
//! measured on exactly the same events: `gen_events N SEED > events.jsonl`.

use std::io::Write;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(42);
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    for e in warden_benches::windows_events(n, seed) {
        out.write_all(e.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
