//! End-to-end tests of the streaming pipeline through the `warden` binary:
//! a dev broker in its own process, the generator, `warden run`, and
//! `warden query` to check what landed in the archive.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_warden");

/// AWS settings for `s3://` stores (set by the S3 test only).
static S3_ENV: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

/// A `warden` command; `s3://` stores get the local S3 server's settings.
fn warden(store: &str) -> Command {
    let mut cmd = Command::new(BIN);
    if store.starts_with("s3://") {
        for (k, v) in S3_ENV.get().expect("S3 settings") {
            cmd.env(k, v);
        }
    }
    cmd
}

struct Broker {
    child: Child,
    addr: String,
}

impl Broker {
    fn start(topic: &str, partitions: u32) -> Broker {
        let mut child = Command::new(BIN)
            .args(["dev-broker", "--listen", "127.0.0.1:0", "--topic", topic])
            .args(["--partitions", &partitions.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dev broker");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("broker address");
        let addr = line.trim().to_owned();
        assert!(
            addr.starts_with("127.0.0.1:"),
            "dev broker printed {addr:?}"
        );
        Broker { child, addr }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_tenants(dir: &Path, n: usize) -> std::path::PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rules = repo.join("rules/packs/warden-starter");
    let ind = repo.join("rules/indicators/demo.csv");
    let mut s = String::new();
    for i in 0..n {
        let mapping = if i % 3 == 1 { "ecs" } else { "windows" };
        s.push_str(&format!(
            "[[tenant]]\nid = \"tenant-{i:03}\"\nrules = [{:?}]\nindicators = [{:?}]\nmapping = \"{mapping}\"\n\n",
            rules.display().to_string(),
            ind.display().to_string()
        ));
    }
    let p = dir.join("tenants.toml");
    std::fs::write(&p, s).expect("tenants file");
    p
}

fn generate(
    broker: &str,
    topic: &str,
    tenants: usize,
    events: u64,
    seed: u64,
    rate: Option<u64>,
) -> Value {
    generate_with(broker, topic, tenants, events, seed, rate, &[])
}

/// [`generate`] with extra `warden gen` arguments (`-X key=value`).
fn generate_with(
    broker: &str,
    topic: &str,
    tenants: usize,
    events: u64,
    seed: u64,
    rate: Option<u64>,
    extra: &[&str],
) -> Value {
    let mut cmd = Command::new(BIN);
    cmd.args(["gen", "--brokers", broker, "--topic", topic])
        .args([
            "--tenants",
            &tenants.to_string(),
            "--events",
            &events.to_string(),
        ])
        .args(["--seed", &seed.to_string(), "--attacks-per-10k", "100"])
        .args(extra);
    if let Some(r) = rate {
        cmd.args(["--rate", &r.to_string()]);
    }
    let out = cmd.output().expect("run gen");
    assert!(
        out.status.success(),
        "gen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("gen prints JSON")
}

fn run_cmd(broker: &str, topic: &str, store: &str, tenants: &Path) -> Command {
    let mut cmd = warden(store);
    cmd.args([
        "run",
        "--brokers",
        broker,
        "--topic",
        topic,
        "--group",
        "e2e",
    ])
    .args(["--store", store, "--listen", ""])
    .arg("--tenants")
    .arg(tenants);
    cmd
}

/// `warden run --until-idle 2`: the run's summary (`{"records": ...}`).
fn run_until_idle(
    broker: &str,
    topic: &str,
    store: &str,
    tenants: &Path,
    config: Option<&Path>,
) -> Value {
    let mut cmd = run_cmd(broker, topic, store, tenants);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd
        .args(["--until-idle", "2"])
        .output()
        .expect("run warden");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "warden run failed: {err}");
    err.lines()
        .find_map(|l| l.strip_prefix("warden: "))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_else(|| panic!("run prints its summary: {err}"))
}

/// A config of small segments, so that a kill lands between, during and
/// after writes.
fn small_segments_config(dir: &Path) -> std::path::PathBuf {
    let cfg = dir.join("warden.toml");
    std::fs::write(
        &cfg,
        "[kafka]\nsession_timeout_ms = 6000\n[pipeline]\nflush_records = 300\nflush_interval_secs = 0.3\n",
    )
    .expect("config");
    cfg
}

/// Starts `warden run` with `cfg` and kills it (SIGKILL: no chance to
/// flush or commit) after `wait`.
fn run_and_kill(
    broker: &str,
    topic: &str,
    store: &str,
    tenants: &Path,
    cfg: &Path,
    wait: Duration,
) {
    let mut child = run_cmd(broker, topic, store, tenants)
        .arg("--config")
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start warden run");
    std::thread::sleep(wait);
    child.kill().expect("kill -9");
    child.wait().expect("reap");
}

fn query(store: &str, tenants: &[&str], sql: &str) -> Vec<Value> {
    let mut cmd = warden(store);
    cmd.args(["query", "--store", store, "--format", "json"]);
    for t in tenants {
        cmd.args(["--tenant", t]);
    }
    let out = cmd.arg(sql).output().expect("run query");
    assert!(
        out.status.success(),
        "query {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).expect("query prints JSON") {
        Value::Array(rows) => rows,
        other => panic!("expected rows, got {other}"),
    }
}

fn counts(rows: &[Value], key: &str, val: &str) -> BTreeMap<String, u64> {
    rows.iter()
        .map(|r| {
            (
                r[key].as_str().expect("key").to_owned(),
                r[val].as_u64().expect("count"),
            )
        })
        .collect()
}

fn expected_per_tenant(summary: &Value) -> BTreeMap<String, u64> {
    summary["per_tenant"]
        .as_object()
        .expect("per_tenant")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().expect("count")))
        .collect()
}

/// Planted attacks per (tenant, rule) must each raise exactly one alert.
fn check_alerts(store: &str, summary: &Value) {
    let rows = query(
        store,
        &[],
        "SELECT org_id, CASE WHEN rule_id LIKE 'indicator:%' THEN 'indicator:' || split_part(rule_id, ':', 3) ELSE rule_id END AS rule, count(*) AS n FROM alerts GROUP BY 1, 2",
    );
    let mut got: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in rows {
        got.insert(
            (
                r["org_id"].as_str().expect("org").to_owned(),
                r["rule"].as_str().expect("rule").to_owned(),
            ),
            r["n"].as_u64().expect("n"),
        );
    }
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (tenant, rules) in summary["planted"].as_object().expect("planted") {
        for (rule, n) in rules.as_object().expect("rules") {
            want.insert((tenant.clone(), rule.clone()), n.as_u64().expect("n"));
        }
    }
    assert!(!want.is_empty(), "the stream planted attacks");
    assert_eq!(got, want, "alerts per (tenant, rule) = planted attacks");
}

fn check_exactly_once(store: &str, expected: &BTreeMap<String, u64>) {
    let per_tenant = counts(
        &query(
            store,
            &[],
            "SELECT org_id, count(*) AS n FROM events GROUP BY org_id",
        ),
        "org_id",
        "n",
    );
    assert_eq!(&per_tenant, expected, "events per tenant = produced");
    // The archived org_id column and the hive prefix agree, and the event's own claim matches.
    let dup = query(
        store,
        &[],
        "SELECT topic, \"partition\", \"offset\", count(*) AS n FROM events GROUP BY 1, 2, 3 HAVING count(*) > 1 LIMIT 5",
    );
    assert!(dup.is_empty(), "records archived twice: {dup:?}");
    let dup = query(
        store,
        &[],
        "SELECT alert_id, count(*) AS n FROM alerts GROUP BY 1 HAVING count(*) > 1 LIMIT 5",
    );
    assert!(dup.is_empty(), "alerts archived twice: {dup:?}");
    let total: u64 = expected.values().sum();
    let offsets = query(
        store,
        &[],
        "SELECT count(DISTINCT (\"partition\", \"offset\")) AS n FROM events",
    );
    assert_eq!(offsets[0]["n"].as_u64(), Some(total));
}

#[test]
fn end_to_end_every_event_once_under_its_tenant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store").display().to_string();
    let broker = Broker::start("events", 3);
    let tenants = write_tenants(dir.path(), 6);
    let summary = generate(&broker.addr, "events", 6, 6000, 11, None);
    run_until_idle(&broker.addr, "events", &store, &tenants, None);
    let expected = expected_per_tenant(&summary);
    assert_eq!(expected.values().sum::<u64>(), 6000);
    check_exactly_once(&store, &expected);
    check_alerts(&store, &summary);
    // Each event sits under its own tenant: the file's org_id, the hive
    // prefix and the event's own org_id all agree.
    let wrong = query(
        &store,
        &[],
        "SELECT count(*) AS n FROM events WHERE raw NOT LIKE '{\"org_id\":\"' || org_id || '\"%'",
    );
    assert_eq!(wrong[0]["n"].as_u64(), Some(0));
    // --tenant registers only that tenant's prefixes.
    let only = query(
        &store,
        &["tenant-002"],
        "SELECT DISTINCT org_id FROM events UNION SELECT DISTINCT org_id FROM alerts",
    );
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["org_id"], "tenant-002");
    // A second run finds nothing new: offsets were committed.
    run_until_idle(&broker.addr, "events", &store, &tenants, None);
    check_exactly_once(&store, &expected);
    // Object names follow the layout.
    let some = walk(&dir.path().join("store/tenants/org_id=tenant-000/events"));
    assert!(!some.is_empty());
    for f in &some {
        let rel = f
            .strip_prefix(dir.path().join("store"))
            .expect("rel")
            .display()
            .to_string();
        let re = regex_lite(&rel);
        assert!(re, "unexpected object name {rel}");
    }
}

/// `tenants/org_id=tenant-000/events/dt=YYYY-MM-DD/hour=HH/events-<p>-<offset>.parquet`
fn regex_lite(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    parts.len() == 6
        && parts[0] == "tenants"
        && parts[1] == "org_id=tenant-000"
        && parts[2] == "events"
        && parts[3].len() == 13
        && parts[3].starts_with("dt=")
        && parts[4].len() == 7
        && parts[4].starts_with("hour=")
        && parts[5].starts_with("events-")
        && parts[5].ends_with(".parquet")
        && parts[5]
            .trim_start_matches("events-")
            .trim_end_matches(".parquet")
            .split('-')
            .all(|n| n.parse::<u64>().is_ok())
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn crash_at_random_moments_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store").display().to_string();
    let broker = Broker::start("crash", 4);
    let tenants = write_tenants(dir.path(), 5);
    let cfg = small_segments_config(dir.path());
    let producer = {
        let addr = broker.addr.clone();
        std::thread::spawn(move || generate(&addr, "crash", 5, 12_000, 5, Some(4000)))
    };
    // A deterministic "random" schedule (xorshift) of kill -9 moments.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..4 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let wait = Duration::from_millis(1200 + x % 2500);
        run_and_kill(&broker.addr, "crash", &store, &tenants, &cfg, wait);
        eprintln!("round {round}: killed after {wait:?}");
    }
    let summary = producer.join().expect("producer");
    // The killed runs archived part of the stream (so the restarts resumed mid-way).
    let before = query(&store, &[], "SELECT count(*) AS n FROM events");
    let before = before[0]["n"].as_u64().expect("n");
    eprintln!("archived before the final run: {before}");
    assert!(before > 0, "the killed runs made progress");
    run_until_idle(&broker.addr, "crash", &store, &tenants, Some(&cfg));
    let expected = expected_per_tenant(&summary);
    check_exactly_once(&store, &expected);
    check_alerts(&store, &summary);
}

/// A test server binary: from the environment variable `env`, or `name` on
/// the PATH (`.ci/run` installs moto_server from PyPI and tansu with
/// `cargo install tansu@0.6.0 --features dynostore`).
fn find_tool(env: &str, name: &str) -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(p.into());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Starts a server on a free port (`cmd` builds its command line for a
/// port) and waits until it accepts connections: the guard that kills it
/// and its address. A server that exits (another test took the port
/// meanwhile) is started again on another port.
fn start_server(cmd: impl Fn(u16) -> Command) -> (KillOnDrop, String) {
    for _ in 0..5 {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut c = cmd(port);
        let mut guard = KillOnDrop(
            c.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start {c:?}: {e}")),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut up = false;
        while Instant::now() < deadline {
            if guard.0.try_wait().ok().flatten().is_some() {
                break;
            }
            if std::net::TcpStream::connect(&addr).is_ok() {
                // Ours, not another test's server on a reused port.
                std::thread::sleep(Duration::from_millis(300));
                up = guard.0.try_wait().ok().flatten().is_none();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if up {
            return (guard, addr);
        }
    }
    panic!("{:?} did not start", cmd(0));
}

/// A second, independent Kafka implementation (tansu, in memory): the
/// pipeline's group membership, fetches, commits and end-of-partition
/// detection are not tuned to librdkafka's own mock broker. Kills the engine
/// mid-stream, then checks every event once and commits that hold.
#[test]
fn end_to_end_on_a_second_broker_with_a_crash() {
    let Some(tansu) = find_tool("WARDEN_TANSU", "tansu") else {
        eprintln!(
            "SKIPPED end_to_end_on_a_second_broker_with_a_crash: no tansu \
             (cargo install tansu@0.6.0 --locked --features dynostore; .ci/run does)"
        );
        return;
    };
    let (_broker, addr) = start_server(|port| {
        let url = format!("tcp://127.0.0.1:{port}");
        let mut c = Command::new(&tansu);
        c.args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"]);
        c
    });
    let url = format!("tcp://{addr}");
    let created = Command::new(&tansu)
        .args([
            "topic",
            "create",
            "real",
            "--partitions",
            "3",
            "--broker",
            &url,
        ])
        .output()
        .expect("tansu topic create");
    assert!(
        created.status.success(),
        "create topic: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store").display().to_string();
    let tenants = write_tenants(dir.path(), 4);
    let cfg = small_segments_config(dir.path());
    // One record per producer batch: tansu 0.6 answers a fetch at an offset
    // inside a record batch with the next batch (the rest of the batch is
    // never delivered; measured with a plain consumer), so a restart from a
    // commit that falls inside a batch would lose records on that broker.
    let one_per_batch = ["-X", "linger.ms=0", "-X", "batch.num.messages=1"];
    let first = generate_with(&addr, "real", 4, 3000, 31, None, &one_per_batch);
    // Killed mid-stream while a second batch arrives.
    let producer = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            generate_with(&addr, "real", 4, 3000, 32, Some(1000), &one_per_batch)
        })
    };
    run_and_kill(
        &addr,
        "real",
        &store,
        &tenants,
        &cfg,
        Duration::from_millis(2000),
    );
    // Killed mid-stream: part of the stream archived, the rest still to come.
    let before = query(&store, &[], "SELECT count(*) AS n FROM events");
    let before = before[0]["n"].as_u64().expect("n");
    eprintln!("archived before the restart: {before}");
    assert!(before > 0 && before < 6000, "killed mid-stream: {before}");
    let second = producer.join().expect("producer");
    run_until_idle(&addr, "real", &store, &tenants, Some(&cfg));
    let mut expected = expected_per_tenant(&first);
    for (t, n) in expected_per_tenant(&second) {
        *expected.entry(t).or_default() += n;
    }
    assert_eq!(expected.values().sum::<u64>(), 6000);
    check_exactly_once(&store, &expected);
    // The committed offsets hold on this broker: a further run reads nothing.
    let summary = run_until_idle(&addr, "real", &store, &tenants, Some(&cfg));
    assert_eq!(summary["records"], 0, "{summary}");
    check_exactly_once(&store, &expected);
    // Alerts: the planted attacks of both batches, once each.
    let mut planted = serde_json::Map::new();
    for s in [&first, &second] {
        for (tenant, rules) in s["planted"].as_object().expect("planted") {
            let entry = planted
                .entry(tenant.clone())
                .or_insert_with(|| Value::Object(Default::default()));
            for (rule, n) in rules.as_object().expect("rules") {
                let sum = entry[rule].as_u64().unwrap_or(0) + n.as_u64().expect("n");
                entry[rule] = sum.into();
            }
        }
    }
    check_alerts(&store, &serde_json::json!({ "planted": planted }));
}

#[test]
fn dead_letters_unknown_tenants_and_spoofed_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store").display().to_string();
    let broker = Broker::start("mixed", 1);
    let tenants = write_tenants(dir.path(), 3);
    let cfg = dir.path().join("warden.toml");
    std::fs::write(&cfg, "[pipeline]\nmax_event_bytes = 4096\n").expect("config");
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .expect("producer");
    let good = r#"{"org_id":"tenant-000","Event":{"System":{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"WS-1"},"EventData":{"Image":"C:\\x.exe","CommandLine":"sekurlsa::logonpasswords"}}}"#;
    let spoof = good.replace("tenant-000", "tenant-001");
    let big = format!(r#"{{"org_id":"tenant-000","pad":"{}"}}"#, "x".repeat(5000));
    let cases: Vec<(Option<&str>, String)> = vec![
        (Some("tenant-000"), good.to_owned()), // archived, 1 alert
        (
            Some("tenant-000"),
            "{\"org_id\":\"tenant-000\", broken".into(),
        ), // malformed
        (Some("tenant-000"), "[1,2,3]".into()), // not an object
        (Some("tenant-999"), good.to_owned()), // unknown tenant
        (None, good.to_owned()),               // no key
        (Some("../tenant-000"), good.to_owned()), // hostile id
        (Some("TENANT-000"), good.to_owned()), // not a valid id
        (Some("tenant-000"), spoof),           // claims tenant-001, key says tenant-000
        (Some("tenant-000"), big),             // oversized
        (Some("tenant-002"), String::new()),   // empty
    ];
    for (key, payload) in &cases {
        let mut r = BaseRecord::<str, str>::to("mixed").payload(payload.as_str());
        if let Some(k) = key {
            r = r.key(*k);
        }
        p.send(r).expect("send");
    }
    p.flush(Duration::from_secs(10)).expect("flush");
    run_until_idle(&broker.addr, "mixed", &store, &tenants, Some(&cfg));
    // Good and spoofed events land under the key's tenant, nowhere else.
    let ev = query(
        &store,
        &[],
        "SELECT org_id, \"offset\" FROM events ORDER BY \"offset\"",
    );
    let ev: Vec<(String, u64)> = ev
        .iter()
        .map(|r| {
            (
                r["org_id"].as_str().expect("org").to_owned(),
                r["offset"].as_u64().expect("off"),
            )
        })
        .collect();
    assert_eq!(
        ev,
        vec![("tenant-000".to_owned(), 0), ("tenant-000".to_owned(), 7)]
    );
    let t1 = query(&store, &["tenant-001"], "SELECT count(*) AS n FROM events");
    assert_eq!(
        t1[0]["n"].as_u64(),
        Some(0),
        "a spoofed org_id never reaches tenant-001"
    );
    // Everything else is a dead letter with its reason, offset and raw bytes.
    let dl = query(
        &store,
        &[],
        "SELECT \"offset\", reason, claimed_org_id, length(raw) AS len FROM deadletters ORDER BY \"offset\"",
    );
    let got: Vec<(u64, String)> = dl
        .iter()
        .map(|r| {
            (
                r["offset"].as_u64().expect("off"),
                r["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect();
    let offsets: Vec<u64> = got.iter().map(|g| g.0).collect();
    assert_eq!(offsets, vec![1, 2, 3, 4, 5, 6, 8, 9], "{got:#?}");
    let reason = |o: u64| {
        got.iter()
            .find(|g| g.0 == o)
            .map(|g| g.1.clone())
            .unwrap_or_default()
    };
    assert!(reason(1).starts_with("malformed JSON"), "{}", reason(1));
    assert!(reason(2).contains("not a JSON object"), "{}", reason(2));
    assert!(
        reason(3).contains("unknown tenant \"tenant-999\""),
        "{}",
        reason(3)
    );
    assert!(reason(4).contains("no key"), "{}", reason(4));
    assert!(reason(5).contains("invalid tenant id"), "{}", reason(5));
    assert!(reason(6).contains("invalid tenant id"), "{}", reason(6));
    assert!(reason(8).contains("oversized"), "{}", reason(8));
    assert!(reason(9).contains("empty"), "{}", reason(9));
    assert_eq!(dl[7]["len"].as_u64(), Some(0));
    assert!(dl[6]["len"].as_u64().expect("len") > 5000, "raw bytes kept");
    // Nothing of the hostile key escaped into a path.
    let all = walk(&dir.path().join("store"));
    assert!(all.iter().all(|p| !p.display().to_string().contains("..")));
    // The alerts of the good and the spoofed event exist under tenant-000 only.
    let al = query(
        &store,
        &[],
        "SELECT org_id, \"offset\" FROM alerts ORDER BY \"offset\"",
    );
    let al: Vec<(&str, u64)> = al
        .iter()
        .map(|r| {
            (
                r["org_id"].as_str().expect("org"),
                r["offset"].as_u64().expect("off"),
            )
        })
        .collect();
    assert_eq!(al, vec![("tenant-000", 0), ("tenant-000", 7)]);
    // With org_id_mismatch = "deadletter" the spoofed event is a dead letter instead.
    let strict = dir.path().join("strict.toml");
    std::fs::write(&strict, "[routing]\norg_id_mismatch = \"deadletter\"\n").expect("config");
    let store2 = dir.path().join("store2").display().to_string();
    let out = Command::new(BIN)
        .args([
            "run",
            "--brokers",
            &broker.addr,
            "--topic",
            "mixed",
            "--group",
            "strict",
        ])
        .args(["--store", &store2, "--listen", "", "--tenants"])
        .arg(&tenants)
        .arg("--config")
        .arg(&strict)
        .args(["--until-idle", "2"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dl = query(
        &store2,
        &[],
        "SELECT reason FROM deadletters WHERE \"offset\" = 7",
    );
    assert_eq!(dl.len(), 1);
    assert!(
        dl[0]["reason"]
            .as_str()
            .expect("reason")
            .starts_with("org_id mismatch")
    );
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.write_all(request.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn end_to_end_on_s3() {
    let Some(moto) = find_tool("WARDEN_MOTO_SERVER", "moto_server") else {
        eprintln!(
            "SKIPPED end_to_end_on_s3: no moto_server (pip install 'moto[server]'; .ci/run does)"
        );
        return;
    };
    let (_server, addr) = start_server(|port| {
        let mut c = Command::new(&moto);
        c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        c
    });
    let created = http(
        &addr,
        &format!(
            "PUT /warden-e2e HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(
        created.starts_with("HTTP/1.1 200"),
        "create bucket: {created}"
    );
    let _ = S3_ENV.set(vec![
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ENDPOINT_URL".into(), format!("http://{addr}")),
        ("AWS_ALLOW_HTTP".into(), "true".into()),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = "s3://warden-e2e/archive";
    let broker = Broker::start("s3events", 2);
    let tenants = write_tenants(dir.path(), 4);
    let summary = generate(&broker.addr, "s3events", 4, 3000, 21, None);
    run_until_idle(&broker.addr, "s3events", store, &tenants, None);
    let expected = expected_per_tenant(&summary);
    check_exactly_once(store, &expected);
    check_alerts(store, &summary);
    // The objects sit under the bucket prefix in the documented layout.
    let listing = http(
        &addr,
        &format!(
            "GET /warden-e2e?list-type=2&prefix=archive/tenants/org_id=tenant-000/events/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(
        listing.contains("<Key>archive/tenants/org_id=tenant-000/events/dt="),
        "{listing}"
    );
}

#[test]
fn two_instances_in_one_group_with_a_tight_memory_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store").display().to_string();
    let broker = Broker::start("shared", 4);
    let tenants = write_tenants(dir.path(), 5);
    let cfg = dir.path().join("warden.toml");
    std::fs::write(
        &cfg,
        "[kafka]\nsession_timeout_ms = 6000\n[pipeline]\nmax_inflight_bytes = 1048576\nmax_event_bytes = 65536\nflush_interval_secs = 0.5\n",
    )
    .expect("config");
    let producer = {
        let addr = broker.addr.clone();
        std::thread::spawn(move || generate(&addr, "shared", 5, 8000, 9, Some(2500)))
    };
    // The second instance joins while the first consumes: partitions move
    // between them (revoked ones are drained and committed first).
    let spawn = || {
        run_cmd(&broker.addr, "shared", &store, &tenants)
            .arg("--config")
            .arg(&cfg)
            .args(["--until-idle", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start warden run")
    };
    let a = spawn();
    std::thread::sleep(Duration::from_millis(1500));
    let b = spawn();
    let summary = producer.join().expect("producer");
    for c in [a, b] {
        let out = c.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Whatever either instance left (if one idled out early), a last run picks up.
    run_until_idle(&broker.addr, "shared", &store, &tenants, Some(&cfg));
    check_exactly_once(&store, &expected_per_tenant(&summary));
    check_alerts(&store, &summary);
}

#[test]
fn a_tight_memory_cap_pauses_without_losing_anything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store").display().to_string();
    let broker = Broker::start("capped", 4);
    let tenants = write_tenants(dir.path(), 5);
    // A cap far below one segment: consumption pauses and resumes all along.
    let cfg = dir.path().join("warden.toml");
    std::fs::write(
        &cfg,
        "[pipeline]\nmax_inflight_bytes = 1048576\nmax_event_bytes = 65536\nflush_interval_secs = 0.5\n",
    )
    .expect("config");
    let summary = generate(&broker.addr, "capped", 5, 5000, 13, None);
    run_until_idle(&broker.addr, "capped", &store, &tenants, Some(&cfg));
    check_exactly_once(&store, &expected_per_tenant(&summary));
    check_alerts(&store, &summary);
}

/// One HTTP/1.1 request to a real server: (status, body).
fn call(addr: &str, method: &str, path: &str, key: &str, body: &str) -> (u16, String) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let resp = http(addr, &req);
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_owned();
    (status, body)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn api_server_bootstraps_creates_tenants_and_stamps_ingest_with_the_keys_tenant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store").display().to_string();
    let broker = Broker::start("api-events", 2);
    let out = Command::new(BIN)
        .args(["admin", "bootstrap", "--store", &store, "--root", "msp"])
        .output()
        .expect("bootstrap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(root.starts_with("wdn_"), "{root}");
    // A second bootstrap is refused: the root exists.
    let again = Command::new(BIN)
        .args(["admin", "bootstrap", "--store", &store])
        .output()
        .expect("bootstrap");
    assert!(!again.status.success());

    let mut child = Command::new(BIN)
        .args(["serve", "--store", &store, "--brokers", &broker.addr])
        .args(["--topic", "api-events", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address");
    let _server = Server(child);
    let addr = line
        .trim()
        .trim_start_matches("listening on http://")
        .to_owned();

    let (s, b) = call(&addr, "GET", "/v1/tenants", "wdn_bad", "");
    assert_eq!(s, 401, "{b}");
    for (id, parent) in [("acme", "msp"), ("globex", "msp")] {
        let (s, b) = call(
            &addr,
            "POST",
            "/v1/tenants",
            &root,
            &format!(r#"{{"id":"{id}","name":"{id}","parent":"{parent}"}}"#),
        );
        assert_eq!(s, 201, "{b}");
    }
    let (s, b) = call(
        &addr,
        "POST",
        "/v1/tenants/acme/keys",
        &root,
        r#"{"role":"viewer","scopes":["ingest"]}"#,
    );
    assert_eq!(s, 201, "{b}");
    let key: Value = serde_json::from_str(&b).expect("json");
    let acme = key["key"].as_str().expect("key").to_owned();

    // A spoofed org_id is overwritten with the key's tenant.
    let events = (0..5)
        .map(|i| format!(r#"{{"org_id":"globex","n":{i},"msg":"hello"}}"#))
        .collect::<Vec<_>>()
        .join("\n");
    let (s, b) = call(&addr, "POST", "/v1/ingest", &acme, &events);
    assert_eq!(s, 202, "{b}");
    // A bad line refuses the batch and names the line.
    let (s, b) = call(&addr, "POST", "/v1/ingest", &acme, "{\"a\":1}\n{not json\n");
    assert_eq!(s, 400);
    assert!(b.contains("line") && b.contains('2'), "{b}");
    // An ingest-only key reads nothing.
    let (s, _) = call(&addr, "GET", "/v1/alerts", &acme, "");
    assert_eq!(s, 403);

    // No tenants file: the pipeline takes its tenants from the control plane.
    let out = Command::new(BIN)
        .args(["run", "--brokers", &broker.addr, "--topic", "api-events"])
        .args(["--group", "api", "--store", &store, "--listen", ""])
        .arg("--packs")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/packs"))
        .args(["--until-idle", "2"])
        .output()
        .expect("run warden");
    assert!(
        out.status.success(),
        "warden run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = query(&store, &[], "SELECT org_id, raw FROM events");
    assert_eq!(rows.len(), 5, "{rows:?}");
    for r in &rows {
        assert_eq!(r["org_id"], "acme");
        let raw: Value = serde_json::from_str(r["raw"].as_str().expect("raw")).expect("raw json");
        assert_eq!(raw["org_id"], "acme");
    }
}

/// A free port on 127.0.0.1 (for the pipeline's metrics listener).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `warden serve` on a free port: the server and its address.
fn serve(store: &str, broker: &str, topic: &str) -> (Server, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--store", store, "--brokers", broker])
        .args(["--topic", topic, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address");
    let addr = line
        .trim()
        .trim_start_matches("listening on http://")
        .to_owned();
    (Server(child), addr)
}

/// `call`, asserting the status.
fn call_ok(addr: &str, method: &str, path: &str, key: &str, body: &str, want: u16) -> Value {
    let (s, b) = call(addr, method, path, key, body);
    assert_eq!(s, want, "{method} {path}: {b}");
    if b.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&b).expect("json body")
    }
}

fn sigma_rule(id: &str, word: &str) -> String {
    format!(
        "title: {word} seen\nid: {id}\nlevel: high\nlogsource:\n  product: test\ndetection:\n  sel:\n    msg|contains: {word}\n  condition: sel\n"
    )
}

/// Ingests `n` events saying `msg` with `key`.
fn ingest(addr: &str, key: &str, msg: &str, n: usize) {
    let body = (0..n)
        .map(|i| serde_json::json!({ "msg": msg, "n": i }).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    call_ok(addr, "POST", "/v1/ingest", key, &body, 202);
}

/// The pipeline follows the control plane while events flow: a tenant
/// created just before its first events, a policy added and an exception
/// set between two batches, and a tenant created with no ingest to prompt
/// it (picked up by the watcher) all apply without a restart, and every
/// event is archived once under its tenant.
#[test]
fn the_pipeline_follows_control_plane_changes_while_events_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store").display().to_string();
    let topic = "hot-events";
    let broker = Broker::start(topic, 2);
    let out = Command::new(BIN)
        .args(["admin", "bootstrap", "--store", &store, "--root", "msp"])
        .output()
        .expect("bootstrap");
    assert!(out.status.success());
    let root = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (_server, api) = serve(&store, &broker.addr, topic);
    let policy = |id: &str, tenant: &str, rules: &[String]| {
        serde_json::json!({ "id": id, "tenant": tenant, "rules": rules }).to_string()
    };
    call_ok(
        &api,
        "POST",
        "/v1/policies",
        &root,
        &policy("baseline", "msp", &[sigma_rule("r-alpha", "alpha")]),
        201,
    );
    let tenant = |id: &str| {
        call_ok(
            &api,
            "POST",
            "/v1/tenants",
            &root,
            &format!(r#"{{"id":"{id}","name":"{id}"}}"#),
            201,
        );
        let k = call_ok(
            &api,
            "POST",
            &format!("/v1/tenants/{id}/keys"),
            &root,
            r#"{"role":"viewer","scopes":["ingest"]}"#,
            201,
        );
        k["key"].as_str().expect("key").to_owned()
    };
    let acme = tenant("acme");
    let initech = tenant("initech");

    let metrics = format!("127.0.0.1:{}", free_port());
    let packs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/packs");
    // Short segments, so each step is archived before the next change.
    let cfg = dir.path().join("warden.toml");
    std::fs::write(
        &cfg,
        "[pipeline]\nflush_interval_secs = 0.3\n[control]\nrefresh_secs = 4.0\n",
    )
    .expect("config");
    let mut run = Command::new(BIN)
        .args(["run", "--brokers", &broker.addr, "--topic", topic])
        .args(["--group", "hot", "--store", &store, "--listen", &metrics])
        .arg("--packs")
        .arg(&packs)
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("warden run");
    let stderr = run.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });
    // The engine loads its packs and folds the control log before it
    // listens: wait for its metrics endpoint (a loaded machine takes a while).
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(&metrics).is_err() {
        if let Ok(Some(status)) = run.try_wait() {
            panic!(
                "warden run exited ({status}): {}",
                log.join().unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "warden run never listened on {metrics}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let scrape = |name: &str| -> u64 {
        let (_, body) = call(&metrics, "GET", "/metrics", "", "");
        body.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    // Waits until `n` records are archived (as events or dead letters).
    let archived = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = scrape("warden_events_total{") + scrape("warden_deadletters_total{");
            if got >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {got} of {n} records archived"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    // Before "extra" exists, beta raises nothing.
    ingest(&api, &acme, "alpha", 5);
    ingest(&api, &acme, "beta", 2);
    archived(7);
    // Created and fed at once: the records carry the control version the
    // API authorised them under, so the pipeline catches up first.
    let hooli = tenant("hooli");
    ingest(&api, &hooli, "alpha", 5);
    ingest(&api, &hooli, "plain", 5);
    archived(17);
    call_ok(
        &api,
        "POST",
        "/v1/policies",
        &root,
        &policy("extra", "acme", &[sigma_rule("r-beta", "beta")]),
        201,
    );
    call_ok(
        &api,
        "PUT",
        "/v1/tenants/initech/overrides/baseline",
        &root,
        &serde_json::json!({ "exceptions": ["title: ok\nlogsource:\n  product: test\nfilter:\n  rules: [r-alpha]\n  sel:\n    msg|contains: alpha-ok\n  condition: not sel\n"] }).to_string(),
        201,
    );
    ingest(&api, &acme, "beta", 5);
    ingest(&api, &initech, "alpha-ok", 5);
    ingest(&api, &initech, "alpha", 5);
    archived(32);

    // No ingest through the API this time: the watcher must notice.
    tenant("umbrella");
    let version = call_ok(&api, "GET", "/v1/audit", &root, "", 200)["entries"]
        .as_array()
        .and_then(|e| e.iter().filter_map(|x| x["version"].as_u64()).max())
        .expect("audit versions");
    let deadline = Instant::now() + Duration::from_secs(60);
    while scrape("warden_control_version ") < version {
        assert!(
            Instant::now() < deadline,
            "control version never reached {version}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .expect("producer");
    for i in 0..3 {
        let payload = format!(r#"{{"org_id":"umbrella","msg":"alpha {i}"}}"#);
        producer
            .send(BaseRecord::to(topic).key("umbrella").payload(&payload))
            .expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    archived(35);

    // SAFETY-free: the binary treats SIGTERM as a graceful stop.
    let _ = Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status();
    let status = run.wait().expect("wait");
    let log = log.join().expect("log");
    assert!(status.success(), "warden run: {log}");
    assert!(log.contains("control plane change applied"), "{log}");

    let per_tenant = counts(
        &query(
            &store,
            &[],
            "SELECT org_id, count(*) AS n FROM events GROUP BY 1",
        ),
        "org_id",
        "n",
    );
    let want: BTreeMap<String, u64> = [
        ("acme", 12),
        ("hooli", 10),
        ("initech", 10),
        ("umbrella", 3),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(per_tenant, want);
    let dead = query(&store, &[], "SELECT count(*) AS n FROM deadletters");
    assert_eq!(dead[0]["n"].as_u64(), Some(0), "{dead:?}");
    let rows = query(
        &store,
        &[],
        "SELECT org_id || '/' || rule_id AS k, count(*) AS n FROM alerts GROUP BY 1",
    );
    let alerts = counts(&rows, "k", "n");
    let want: BTreeMap<String, u64> = [
        ("acme/r-alpha", 5),
        ("acme/r-beta", 5),
        ("hooli/r-alpha", 5),
        ("initech/r-alpha", 5),
        ("umbrella/r-alpha", 3),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(alerts, want);
}
