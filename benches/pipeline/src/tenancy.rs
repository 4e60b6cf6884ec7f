//! Memory of many tenants inheriting one large policy: 10,000 client
//! tenants under an MSP root whose policy holds 3,000 Sigma rules (the
//! first 3,000 of SigmaHQ's rules when `../shared/sigma` is present,
//! generated ones otherwise; no field mapping, so every logsource compiles).
//! Prints the compiled-set size, the total with
//! every tenant, the process's resident memory at each step, and what one
//! compiled set per tenant would cost (measured on 10 separate copies).
//!
//! `cargo bench -p warden-pipeline-bench --bench tenancy`

use std::path::{Path, PathBuf};

use warden_archive::TenantId;
use warden_control::{Entry, Op, Policy, Quotas, State, Status};
use warden_ingest::tenants::Tenants;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TENANTS: usize = 10_000;
const RULES: usize = 3_000;

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn mib(b: usize) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn tid(s: &str) -> TenantId {
    TenantId::new(s).expect("tenant id")
}

fn apply(s: State, op: Op) -> State {
    let e = Entry {
        version: s.version + 1,
        at_ms: 0,
        actor: "bench".into(),
        key_id: None,
        op,
    };
    s.applied(&e).expect("applies")
}

fn create(id: &str, parent: Option<&str>, mapping: Option<&str>) -> Op {
    Op::CreateTenant {
        id: tid(id),
        name: id.into(),
        parent: parent.map(tid),
        status: Status::Active,
        retention_days: None,
        quotas: Quotas::default(),
        mapping: mapping.map(str::to_owned),
    }
}

fn policy(id: &str, tenant: &str) -> Op {
    Op::PutPolicy {
        policy: Policy {
            id: id.into(),
            tenant: tid(tenant),
            name: id.into(),
            locked: true,
            rule_packs: vec!["bench".into()],
            rules: Vec::new(),
            indicators: Vec::new(),
            version: 0,
        },
    }
}

/// A pack directory `bench` under a temporary `packs` dir with RULES rule files.
fn pack(dir: &Path) -> (PathBuf, &'static str) {
    let packs = dir.join("packs");
    let out = packs.join("bench");
    std::fs::create_dir_all(&out).expect("pack dir");
    let mut n = 0;
    let source = if let Some(dirs) = warden_benches::sigmahq_rule_dirs() {
        let mut files = Vec::new();
        for d in dirs {
            walk(&d, &mut files);
        }
        files.sort();
        for f in files.iter().take(RULES) {
            std::fs::copy(f, out.join(format!("{n:05}.yml"))).expect("copy rule");
            n += 1;
        }
        "SigmaHQ"
    } else {
        for r in warden_benches::generated_rules(RULES, 7) {
            std::fs::write(out.join(format!("{n:05}.yml")), r).expect("write rule");
            n += 1;
        }
        "generated"
    };
    (packs, source)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "yml") {
            out.push(p);
        }
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (packs, source) = pack(dir.path());
    let base = rss_bytes();

    // One tenant: the compiled set alone.
    let mut one = apply(State::default(), create("msp", None, None));
    one = apply(one, policy("baseline", "msp"));
    let t1 = Tenants::from_control(&one, &packs, None);
    let rss_one = rss_bytes();
    let layer = t1.layer(0);
    let set = layer.engine.memory_usage();
    println!(
        "tenancy: {} rules from {source} ({} rejected), one compiled set: {} (process grew {})",
        layer.engine.rules().len(),
        layer.rejected,
        mib(set),
        mib(rss_one.saturating_sub(base))
    );

    // 10,000 tenants under the same root and policy.
    let mut many = one.clone();
    let ops = (0..TENANTS)
        .map(|i| create(&format!("client-{i:05}"), Some("msp"), None))
        .collect();
    many = apply(many, Op::Batch { ops });
    let rss_state = rss_bytes();
    let tn = Tenants::from_control(&many, &packs, Some(&t1));
    let rss_many = rss_bytes();
    println!(
        "tenancy: {} tenants: {} layer(s), {} detector(s), total {} ({:.3}x one set); control state grew the process {}, tenants {}",
        tn.len(),
        tn.layers().len(),
        tn.detectors().len(),
        mib(tn.memory_usage()),
        tn.memory_usage() as f64 / set as f64,
        mib(rss_state.saturating_sub(rss_one)),
        mib(rss_many.saturating_sub(rss_state)),
    );
    drop(tn);

    // The naive alternative, measured on 10 tenants with their own copies.
    let mut sep = apply(State::default(), create("msp", None, None));
    for i in 0..10 {
        let id = format!("client-{i}");
        sep = apply(sep, create(&id, Some("msp"), None));
        sep = apply(sep, policy(&format!("copy-{i}"), &id));
    }
    let before = rss_bytes();
    let t10 = Tenants::from_control(&sep, &packs, None);
    let per_copy = t10.memory_usage() / 10;
    println!(
        "tenancy: 10 separate copies: {} ({} each, process grew {}); one per tenant for {TENANTS} tenants would be about {}",
        mib(t10.memory_usage()),
        mib(per_copy),
        mib(rss_bytes().saturating_sub(before)),
        mib(per_copy * TENANTS)
    );
}
