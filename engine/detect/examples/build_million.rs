//! Generates 1,000,000 mixed indicators (IPs, CIDRs, domains, hashes),
//! writes them to a temporary CSV, loads and indexes them, and measures
//! lookups.  Run with `cargo run --release --example build_million`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use warden_detect::indicators::{IndicatorSet, load_path};

/// Deterministic xorshift64 generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const TLDS: [&str; 6] = ["com", "net", "org", "info", "xyz", "ru"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);

    // --- generate -------------------------------------------------------
    let t = Instant::now();
    let mut csv = String::with_capacity(n * 60);
    csv.push_str("type,value,description\n");
    let mut hit_ips = Vec::new();
    let mut hit_domains = Vec::new();
    let mut hit_hashes = Vec::new();
    for i in 0..n {
        let r = rng.next();
        match i % 10 {
            // 30% IPs (one in ten of them IPv6)
            0..=2 => {
                let ip: IpAddr = if r.is_multiple_of(10) {
                    Ipv6Addr::from((0x2001_0db8u128 << 96) | u128::from(rng.next())).into()
                } else {
                    Ipv4Addr::from((r >> 16) as u32).into()
                };
                if i % 101 == 0 {
                    hit_ips.push(ip);
                }
                writeln!(csv, "ip,{ip},generated")?;
            }
            // 10% CIDRs, /16../28
            3 => {
                let len = 16 + (r % 13) as u8;
                let addr = Ipv4Addr::from((r >> 16) as u32);
                writeln!(csv, "cidr,{addr}/{len},generated")?;
            }
            // 30% domains
            4..=6 => {
                let d = format!("x{:x}.{}", r >> 20, TLDS[(r % 6) as usize]);
                if i % 101 == 0 {
                    hit_domains.push(d.clone());
                }
                writeln!(csv, "domain,{d},generated")?;
            }
            // 30% hashes
            _ => {
                let a = rng.next();
                let b = rng.next();
                let c = rng.next();
                let (kind, h) = match r % 3 {
                    0 => ("md5", format!("{r:016x}{a:016x}")),
                    1 => ("sha1", format!("{r:016x}{a:016x}{:08x}", b as u32)),
                    _ => ("sha256", format!("{r:016x}{a:016x}{b:016x}{c:016x}")),
                };
                if i % 101 == 0 {
                    hit_hashes.push(h.clone());
                }
                writeln!(csv, "{kind},{h},generated")?;
            }
        }
    }
    let path =
        std::env::temp_dir().join(format!("warden-build-million-{}.csv", std::process::id()));
    std::fs::File::create(&path)?.write_all(csv.as_bytes())?;
    let file_mb = csv.len() as f64 / 1e6;
    drop(csv);
    println!(
        "generated {n} indicators, {file_mb:.1} MB CSV in {:.2?}",
        t.elapsed()
    );

    // --- load -----------------------------------------------------------
    let t = Instant::now();
    let loaded = load_path(&path);
    let load_time = t.elapsed();
    let _ = std::fs::remove_file(&path);
    let loaded = loaded?;
    println!(
        "load:   {load_time:.2?}  ({} indicators, {} rejected)",
        loaded.indicators.len(),
        loaded.rejected.len()
    );

    // --- build ----------------------------------------------------------
    let t = Instant::now();
    let set = IndicatorSet::build(loaded.indicators);
    let build_time = t.elapsed();
    println!(
        "build:  {build_time:.2?}  ({} distinct, {} duplicates, {} invalid)",
        set.len(),
        set.duplicates(),
        set.invalid()
    );
    let counts: Vec<String> = set
        .counts_by_kind()
        .iter()
        .map(|(k, c)| format!("{k}={c}"))
        .collect();
    println!("counts: {}", counts.join(" "));
    let mem = set.memory_usage();
    println!(
        "memory_usage: {:.1} MB ({:.0} bytes/indicator)",
        mem as f64 / 1e6,
        mem as f64 / set.len().max(1) as f64
    );

    // --- lookups --------------------------------------------------------
    const Q: usize = 2_000_000;
    let mut out = Vec::with_capacity(16);
    let mut scratch = String::new();

    // IPs: every 8th query is a known IP, the rest random.
    let ips: Vec<IpAddr> = (0..Q)
        .map(|i| {
            if i % 8 == 0 && !hit_ips.is_empty() {
                hit_ips[(i / 8) % hit_ips.len()]
            } else {
                Ipv4Addr::from(rng.next() as u32).into()
            }
        })
        .collect();
    let t = Instant::now();
    let mut hits = 0usize;
    for &a in &ips {
        out.clear();
        set.match_ip(a, &mut out);
        hits += usize::from(!out.is_empty());
    }
    report("match_ip", Q, t.elapsed(), hits);

    // Domains: subdomains of known domains and random misses (3-4 labels).
    let hosts: Vec<String> = (0..Q / 4)
        .map(|i| {
            if i % 8 == 0 && !hit_domains.is_empty() {
                format!("www.cdn.{}", hit_domains[(i / 8) % hit_domains.len()])
            } else {
                format!("api.s{:x}.example.com", rng.next())
            }
        })
        .collect();
    let t = Instant::now();
    let mut hits = 0usize;
    for h in &hosts {
        out.clear();
        set.match_domain(h, &mut scratch, &mut out);
        hits += usize::from(!out.is_empty());
    }
    report("match_domain", hosts.len(), t.elapsed(), hits);

    // URLs: host checks through match_url.
    let urls: Vec<String> = hosts
        .iter()
        .map(|h| format!("https://{h}/index.php?id=1"))
        .collect();
    let t = Instant::now();
    let mut hits = 0usize;
    for u in &urls {
        out.clear();
        set.match_url(u, &mut scratch, &mut out);
        hits += usize::from(!out.is_empty());
    }
    report("match_url", urls.len(), t.elapsed(), hits);

    // Hashes: Sysmon-style Hashes fields with 4 hashes each.
    let fields: Vec<String> = (0..Q / 8)
        .map(|i| {
            let sha256 = if i % 8 == 0 && !hit_hashes.is_empty() {
                hit_hashes[(i / 8) % hit_hashes.len()].to_uppercase()
            } else {
                format!("{:016X}{:016X}{:016X}{:016X}", rng.next(), rng.next(), rng.next(), rng.next())
            };
            format!(
                "SHA1={:016X}{:016X}{:08X},MD5={:016X}{:016X},SHA256={sha256},IMPHASH={:016X}{:016X}",
                rng.next(),
                rng.next(),
                rng.next() as u32,
                rng.next(),
                rng.next(),
                rng.next(),
                rng.next()
            )
        })
        .collect();
    let t = Instant::now();
    let mut hits = 0usize;
    for f in &fields {
        out.clear();
        set.match_hashes(f, &mut out);
        hits += usize::from(!out.is_empty());
    }
    report(
        "match_hashes (Sysmon field, 4 hashes)",
        fields.len(),
        t.elapsed(),
        hits,
    );
    Ok(())
}

fn report(what: &str, n: usize, d: std::time::Duration, hits: usize) {
    let per = d.as_nanos() as f64 / n as f64;
    println!(
        "{what}: {n} lookups in {d:.2?}: {:.1} M/s ({per:.0} ns each), {hits} with matches",
        n as f64 / d.as_secs_f64() / 1e6
    );
}
