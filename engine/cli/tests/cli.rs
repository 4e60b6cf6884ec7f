#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

//! The `warden` command line as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn alerts(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `warden detect` with the shipped packs, the windows mapping and the
/// sample indicators, then `args`.
fn detect_with_packs(args: &[&str]) -> Output {
    let mut all = vec![
        "detect",
        "--rules",
        "rules/packs",
        "--mapping",
        "windows",
        "--indicators",
        "tests/data/indicators.csv",
    ];
    all.extend_from_slice(args);
    warden(&all)
}

#[test]
fn detect_sample_raises_planted_attacks_and_reports_malformed_lines() {
    let out = detect_with_packs(&["--input", "tests/data/windows-sample.jsonl"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("windows-sample.jsonl:13: invalid JSON"),
        "{stderr}"
    );
    assert!(stderr.contains("1 malformed lines"), "{stderr}");
    let alerts = alerts(&out);
    let ids: Vec<&str> = alerts
        .iter()
        .map(|a| a["rule_id"].as_str().unwrap())
        .collect();
    for want in [
        "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e01",
        "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e02",
        "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e03",
        "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e04",
        "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e05",
        "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e06",
        "indicator:indicators:198.51.100.23",
        "indicator:indicators:bad-updates.example",
        "indicator:indicators:203.0.113.0/24",
    ] {
        assert!(ids.contains(&want), "missing {want} in {ids:?}");
    }
    // Benign events raise nothing: every alert is one of the planted ones.
    assert_eq!(alerts.len(), 9, "{ids:?}");
    let mimikatz = alerts
        .iter()
        .find(|a| a["rule_id"] == "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e01")
        .unwrap();
    assert_eq!(mimikatz["org_id"], "tenant-002");
    assert_eq!(mimikatz["level"], "critical");
    assert_eq!(mimikatz["matched"][0]["field"], "CommandLine");
    assert!(
        mimikatz["event"]["Event"]["EventData"]["CommandLine"]
            .as_str()
            .unwrap()
            .contains("sekurlsa")
    );
    assert!(
        mimikatz["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "attack.t1003.001")
    );
}

#[test]
fn empty_rules_directory_parses_events_and_raises_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = warden(&[
        "detect",
        "--rules",
        dir.path().to_str().unwrap(),
        "--input",
        "tests/data/windows-sample.jsonl",
    ]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("54 events, 1 malformed lines, 0 alerts, 0 rules loaded"),
        "{stderr}"
    );
}

#[test]
fn rules_check_reports_rejections_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.yml"),
        "title: ok\nid: 1\nlogsource: {product: windows}\ndetection:\n  sel:\n    a: b\n  condition: sel\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("badmod.yml"),
        "title: bad\nid: 2\nlogsource: {product: windows}\ndetection:\n  sel:\n    a|frobnicate: b\n  condition: sel\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("broken.yml"),
        "title: x\ndetection:\n  sel: [a\n",
    )
    .unwrap();
    let p = dir.path().to_str().unwrap();
    let out = warden(&["rules", "check", p, "--format", "json"]);
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["loaded"], 1);
    assert_eq!(report["rejected"], 2);
    let rej = report["rejections"].as_array().unwrap();
    let bad = rej.iter().find(|r| r["rule_id"] == "2").unwrap();
    assert!(
        bad["reason"]
            .as_str()
            .unwrap()
            .contains("unknown modifier 'frobnicate'")
    );
    assert!(bad["file"].as_str().unwrap().ends_with("badmod.yml"));
    let broken = rej
        .iter()
        .find(|r| r["file"].as_str().unwrap().ends_with("broken.yml"))
        .unwrap();
    assert!(
        broken["reason"].as_str().unwrap().contains("broken.yml:4"),
        "{broken}"
    );

    let strict = warden(&["rules", "check", p, "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    let good_only = warden(&[
        "rules",
        "check",
        dir.path().join("good.yml").to_str().unwrap(),
        "--strict",
    ]);
    assert_eq!(good_only.status.code(), Some(0));
}

/// Events and rules saved by Windows tools: UTF-8 with a byte order mark
/// and CRLF line ends, UTF-16LE with a mark (PowerShell 5's `>`), UTF-16BE
/// without one. Each reads exactly as the plain UTF-8 file: the same
/// alerts on the same lines, the same malformed line.
#[test]
fn events_and_rules_in_windows_encodings_read_as_utf8() {
    let sample = std::fs::read_to_string(repo().join("tests/data/windows-sample.jsonl")).unwrap();
    let utf16 = |s: &str, be: bool, bom: bool| -> Vec<u8> {
        let units = bom.then_some(0xfeffu16).into_iter().chain(s.encode_utf16());
        units
            .flat_map(|u| if be { u.to_be_bytes() } else { u.to_le_bytes() })
            .collect()
    };
    let crlf = sample.replace('\n', "\r\n");
    let dir = tempfile::tempdir().unwrap();
    let inputs = [
        ("plain.jsonl", sample.clone().into_bytes(), None),
        (
            "bom.jsonl",
            [&b"\xef\xbb\xbf"[..], crlf.as_bytes()].concat(),
            None,
        ),
        ("le.jsonl", utf16(&crlf, false, true), Some("UTF-16LE")),
        ("be.jsonl", utf16(&sample, true, false), Some("UTF-16BE")),
    ];
    let summary = |out: &Output| {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        err.lines().last().unwrap().to_string()
    };
    let mut want = None;
    for (name, bytes, note) in inputs {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = detect_with_packs(&["--input", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("{name}:13: invalid JSON")),
            "{name}: {stderr}"
        );
        if let Some(enc) = note {
            assert!(stderr.contains(&format!("reading {enc} input")), "{stderr}");
        }
        let got: Vec<_> = alerts(&out)
            .iter()
            .map(|a| (a["line"].clone(), a["rule_id"].clone(), a["event"].clone()))
            .collect();
        assert!(!got.is_empty());
        let got = (got, summary(&out));
        match &want {
            None => want = Some(got),
            Some(w) => assert_eq!(&got, w, "{name}"),
        }
    }

    // A rule file with a byte order mark and CRLF, and one in UTF-16LE.
    let rule = "title: t\r\nid: 1\r\nlogsource: {product: windows}\r\ndetection:\r\n  sel:\r\n    a: b\r\n  condition: sel\r\n";
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("bom.yml"), format!("\u{feff}{rule}")).unwrap();
    std::fs::write(
        rules.path().join("utf16.yml"),
        utf16(&rule.replace("id: 1", "id: 2"), false, true),
    )
    .unwrap();
    let out = warden(&[
        "rules",
        "check",
        rules.path().to_str().unwrap(),
        "--format",
        "json",
        "--strict",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["loaded"].as_u64(), report["rejected"].as_u64()),
        (Some(2), Some(0)),
        "{report}"
    );
    // A rule file that is not valid UTF-8 is rejected with its byte and
    // line; the others still load.
    std::fs::write(rules.path().join("bad.yml"), b"title: t\nid: \xff\n").unwrap();
    let out = warden(&[
        "rules",
        "check",
        rules.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["loaded"], 2, "{report}");
    let reason = report["rejections"][0]["reason"].as_str().unwrap();
    assert!(
        reason.ends_with("bad.yml: invalid UTF-8 at byte 13 (line 2)"),
        "{reason}"
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Compressed input (gzip, also several members one after another as
/// `cat a.gz b.gz` makes, and zstd) reads as the text inside it, in any of
/// the encodings.
#[test]
fn compressed_input_reads_as_what_it_holds() {
    let sample = std::fs::read(repo().join("tests/data/windows-sample.jsonl")).unwrap();
    let plain = detect_with_packs(&["--input", "tests/data/windows-sample.jsonl"]);
    let want = alerts(&plain);
    assert!(!want.is_empty());
    let half = sample.len() / 2;
    let cut = half + sample[half..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let utf16: Vec<u8> = String::from_utf8(sample.clone())
        .unwrap()
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("a.jsonl.gz", gzip(&sample)),
        (
            "two.gz",
            [gzip(&sample[..cut]), gzip(&sample[cut..])].concat(),
        ),
        ("a.zst", zstd::encode_all(&sample[..], 3).unwrap()),
        ("utf16.gz", gzip(&utf16)),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = detect_with_packs(&["--input", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert_eq!(alerts(&out), want, "{name}: {stderr}");
        assert!(stderr.contains("-compressed input"), "{stderr}");
    }
}

/// Pretty-printed JSON (or `evtx_dump -o json`, with its `Record N`
/// headers) is not JSON lines: every line is reported, and the summary says
/// what the input looks like and what to do. Plain JSON lines get no hint.
#[test]
fn pretty_printed_json_gets_a_hint() {
    let event: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(repo().join("tests/data/windows-sample.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let pretty = serde_json::to_string_pretty(&event).unwrap();
    for input in [
        format!("{pretty}\n{pretty}\n"),
        format!("Record 1\n{pretty}\nRecord 2\n{pretty}\n"),
    ] {
        let out = warden_stdin(&["detect", "--rules", "rules/packs"], &input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("0 events"), "{stderr}");
        assert!(
            stderr.contains("hint: - looks like pretty-printed JSON"),
            "{stderr}"
        );
    }
    let plain = detect_with_packs(&["--input", "tests/data/windows-sample.jsonl"]);
    assert!(!String::from_utf8_lossy(&plain.stderr).contains("hint"));
}

/// A Windows event log file is read directly, record by record in
/// evtx_dump's layout (what `--mapping windows` reads), from a path or from
/// standard input; a damaged chunk and a file cut short are reported and
/// counted, never dropped silently.
#[test]
fn evtx_files_are_read_record_by_record() {
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("user.yml"),
        "title: User created\nid: u1\nlogsource: {product: windows, service: security}\n\
         detection:\n  sel:\n    EventID: 4720\n    TargetUserName: ieuser\n  condition: sel\n",
    )
    .unwrap();
    let r = rules.path().to_str().unwrap();
    let sample = "tests/data/new-user-security.evtx";
    let args = ["detect", "--rules", r, "--mapping", "windows", "--input"];
    let out = warden(&[&args[..], &[sample]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("4 events, 0 malformed lines, 1 alerts"),
        "{stderr}"
    );
    let got = alerts(&out);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["rule_id"], "u1");
    assert_eq!(got[0]["line"], 2, "line N is the N-th record");
    let event = &got[0]["event"]["Event"];
    assert_eq!(event["System"]["Channel"], "Security");
    assert_eq!(event["System"]["EventID"], 4720);
    assert_eq!(event["System"]["EventRecordID"], 112);
    assert_eq!(event["EventData"]["TargetUserName"], "IEUser");

    // The same from standard input.
    let bytes = std::fs::read(repo().join(sample)).unwrap();
    let mut child = spawn_warden(&args[..5], std::process::Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    let feed = bytes.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&feed).unwrap();
    });
    let piped = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(alerts(&piped), got);

    // The same log compressed, as datasets ship them.
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("log.evtx.gz");
    std::fs::write(&gz, gzip(&bytes)).unwrap();
    let out = warden(&[&args[..], &[gz.to_str().unwrap()]].concat());
    assert_eq!(
        alerts(&out),
        got,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A chunk whose header is damaged, and a file cut short inside its
    // only chunk: each reported with the file, and counted.
    let mut damaged = bytes.clone();
    damaged[0x1000..0x1008].copy_from_slice(b"XXXXXXXX");
    let cut = bytes[..0x1000 + 0x300].to_vec();
    for (name, data, says) in [
        ("damaged.evtx", damaged, "damaged.evtx:1: unreadable record"),
        (
            "cut.evtx",
            cut,
            "cut.evtx: the file ends 768 bytes into a chunk",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        let out = warden(&[&args[..], &[path.to_str().unwrap()]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(
            stderr.contains("0 events, 1 malformed lines, 0 alerts"),
            "{stderr}"
        );
    }
}

#[test]
fn unknown_mapping_is_a_clear_error() {
    let out = warden(&["rules", "check", "rules/packs", "--mapping", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown mapping 'nope'"));
}

/// `warden args` started with piped standard input and output.
fn spawn_warden(args: &[&str], stderr: std::process::Stdio) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(repo())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

fn warden_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = spawn_warden(args, std::process::Stdio::piped());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A live stream on standard input gets each alert as soon as its line is
/// read, while the input stays open.
#[test]
fn detect_on_a_live_stream_writes_each_alert_before_more_input_comes() {
    use std::io::{BufRead, BufReader, Write};
    let sample = std::fs::read_to_string(repo().join("tests/data/windows-sample.jsonl")).unwrap();
    let attack = sample.lines().find(|l| l.contains("sekurlsa")).unwrap();
    let mut child = spawn_warden(
        &["detect", "--rules", "rules/packs", "--mapping", "windows"],
        std::process::Stdio::null(),
    );
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    writeln!(stdin, "{attack}").unwrap();
    stdin.flush().unwrap();
    // Generous: this only fails if the alert waits for the end of input.
    let alert = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the alert came out while standard input was still open");
    let alert: serde_json::Value = serde_json::from_str(&alert).unwrap();
    assert_eq!(alert["rule_id"], "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e01");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// Many chunks' worth of lines through several detection threads: the same
/// alerts, diagnostics and summary as one thread, in input order, each
/// alert naming the line it came from.
#[test]
fn detect_on_many_threads_keeps_input_order_and_line_numbers() {
    let sample = std::fs::read_to_string(repo().join("tests/data/windows-sample.jsonl")).unwrap();
    let mut input = String::new();
    let mut copies = 0;
    // More lines than a worker's chunk (4,096), with a blank line and a
    // non-object line between copies.
    while input.lines().count() < 12_000 {
        input.push_str(&sample);
        input.push_str(if copies % 2 == 0 { "\n" } else { "[1,2]\n" });
        copies += 1;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.jsonl");
    std::fs::write(&path, &input).unwrap();
    let run = |threads: &str| {
        let out = detect_with_packs(&["--threads", threads, "--input", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let one = run("1");
    let lines: Vec<&str> = input.lines().collect();
    let alerts1 = alerts(&one);
    assert_eq!(alerts1.len(), 9 * copies, "9 planted alerts per copy");
    for a in &alerts1 {
        let n = a["line"].as_u64().unwrap() as usize;
        let src: serde_json::Value = serde_json::from_str(lines[n - 1]).unwrap();
        assert_eq!(a["event"], src, "alert names line {n}");
    }
    let stderr1 = String::from_utf8_lossy(&one.stderr).into_owned();
    let malformed = copies + copies / 2;
    assert!(
        stderr1.contains(&format!(
            "{malformed} malformed lines, {} alerts",
            9 * copies
        )),
        "{stderr1}"
    );
    for threads in ["2", "3"] {
        let many = run(threads);
        assert!(
            one.stdout == many.stdout,
            "{threads} threads: different alerts"
        );
        assert_eq!(
            stderr1,
            String::from_utf8_lossy(&many.stderr),
            "{threads} threads: different diagnostics"
        );
    }
}

#[test]
fn detect_reads_standard_input_and_stix_indicators() {
    let out = warden_stdin(
        &[
            "detect",
            "--rules",
            "rules/packs",
            "--indicators",
            "engine/detect/testdata/stix_bundle.json",
        ],
        concat!(
            r#"{"org_id":"t1","dst":"198.51.100.23"}"#,
            "\n",
            r#"{"org_id":"t2","q":"www.bad.example.net"}"#,
            "\n",
            r#"{"org_id":"t3","q":"notbad.example.org"}"#,
            "\n",
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts = alerts(&out);
    let by_org: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| {
            (
                a["org_id"].as_str().unwrap(),
                a["rule_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_org.len(), 2, "{by_org:?}");
    assert!(
        by_org.contains(&("t1", "indicator:stix_bundle:198.51.100.23")),
        "{by_org:?}"
    );
    assert!(
        by_org.contains(&("t2", "indicator:stix_bundle:bad.example.net")),
        "{by_org:?}"
    );
}

#[test]
fn placeholders_file_configures_expand() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("r.yml");
    std::fs::write(
        &rule,
        "title: Admin logon from unknown workstation\nid: 7d3c2b1a-0000-4000-8000-00000000abcd\nlogsource: {product: windows}\ndetection:\n  sel:\n    TargetUserName|expand: '%admins%'\n  filter:\n    WorkstationName|expand: '%admin_hosts%'\n  condition: sel and not filter\n",
    )
    .unwrap();
    let ph = dir.path().join("ph.yml");
    std::fs::write(&ph, "admins: [alice, 'adm_*']\nadmin_hosts: PAW-01\n").unwrap();
    let events = concat!(
        r#"{"TargetUserName":"adm_bob","WorkstationName":"WS-7"}"#,
        "\n",
        r#"{"TargetUserName":"alice","WorkstationName":"PAW-01"}"#,
        "\n",
        r#"{"TargetUserName":"carol","WorkstationName":"WS-7"}"#,
        "\n",
    );
    let rule_s = rule.to_str().unwrap();
    let out = warden_stdin(
        &[
            "detect",
            "--rules",
            rule_s,
            "--placeholders",
            ph.to_str().unwrap(),
        ],
        events,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<u64> = alerts(&out)
        .iter()
        .map(|a| a["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![1]);
    // Without the placeholder values the rule is rejected, with the reason.
    let out = warden(&["rules", "check", rule_s, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["loaded"], 0);
    assert!(
        report["rejections"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("placeholder '%admins%' is not configured")
    );
}

/// The README's first command, smaller: every produced event is archived
/// and every planted attack raises exactly one alert (the benign mix raises
/// none with the starter rules).
#[test]
fn demo_archives_every_event_and_alerts_on_every_planted_attack() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let data = data.to_str().unwrap();
    let out = warden(&["demo", "--dir", data, "--events", "6000", "--seed", "11"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{err}\n{text}");
    let number_before = |s: &str, word: &str| -> u64 {
        let at = s.find(word).unwrap_or_else(|| panic!("no {word:?} in {s}"));
        s[..at]
            .split_whitespace()
            .last()
            .and_then(|n| n.trim_matches(',').parse().ok())
            .unwrap_or_else(|| panic!("no number before {word:?} in {s}"))
    };
    assert_eq!(number_before(&err, " events, "), 6000, "{err}");
    let alerts = number_before(&err, " alerts, ");
    let planted: u64 = text
        .split("Planted attacks: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no planted count in {text}"));
    assert!(planted > 0, "{text}");
    assert_eq!(alerts, planted, "{err}\n{text}");
    // Run again over the same directory: it is cleared, not appended to.
    let again = warden(&["demo", "--dir", data, "--events", "6000", "--seed", "11"]);
    assert!(again.status.success());
    assert_eq!(
        number_before(&String::from_utf8_lossy(&again.stderr), " events, "),
        6000
    );
}
