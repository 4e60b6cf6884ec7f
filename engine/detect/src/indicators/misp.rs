//! MISP events (JSON export format).
//!
//! Attributes are taken from `Event.Attribute` and from the `Attribute`
//! lists of every `Event.Object`.  Supported attribute types:
//!
//! | MISP type | indicator |
//! |---|---|
//! | `ip-src`, `ip-dst` | ip (or cidr if the value has a prefix) |
//! | `ip-src\|port`, `ip-dst\|port` | ip part |
//! | `domain`, `hostname` | domain |
//! | `hostname\|port` | domain part |
//! | `domain\|ip` | both: a domain and an ip |
//! | `url` | url |
//! | `md5`, `sha1`, `sha256` | hash |
//! | `filename\|md5`, `filename\|sha1`, `filename\|sha256`, `malware-sample` | hash part |
//!
//! Every other type (including `uri`, which is a path without host, and
//! `link`, which in MISP is a reference to a report) gives a rejection
//! located at the attribute uuid, without failing the load.
//!
//! Choices: an attribute whose `to_ids` field is present and false
//! (`false`, `0`, `"0"`) is skipped, as is one with `deleted: true`; both
//! count in [`Loaded::skipped`].  An attribute without `to_ids` is kept.
//! The description is the attribute `comment`, or else the event `info`.

use serde_json::Value;

use super::normalize::normalize;
use super::{Indicator, IndicatorKind, Loaded};

/// The indicator parts of a MISP attribute value.
fn attribute_parts<'a>(ty: &str, value: &'a str) -> Result<Vec<(IndicatorKind, &'a str)>, String> {
    use IndicatorKind::*;
    let split = || {
        value
            .split_once('|')
            .ok_or_else(|| format!("MISP attribute of type '{ty}' has no '|' in its value"))
    };
    Ok(match ty {
        "ip-src" | "ip-dst" => vec![(Ip, value)],
        "ip-src|port" | "ip-dst|port" => vec![(Ip, split()?.0)],
        "domain" | "hostname" => vec![(Domain, value)],
        "hostname|port" => vec![(Domain, split()?.0)],
        "domain|ip" => {
            let (d, ip) = split()?;
            vec![(Domain, d), (Ip, ip)]
        }
        "url" => vec![(Url, value)],
        "md5" => vec![(Md5, value)],
        "sha1" => vec![(Sha1, value)],
        "sha256" => vec![(Sha256, value)],
        "filename|md5" | "malware-sample" => vec![(Md5, split()?.1)],
        "filename|sha1" => vec![(Sha1, split()?.1)],
        "filename|sha256" => vec![(Sha256, split()?.1)],
        "uri" => {
            return Err(
                "MISP attribute type 'uri' is not supported (a path without host)".to_string(),
            );
        }
        other => return Err(format!("unsupported MISP attribute type '{other}'")),
    })
}

/// True for `false`, `0`, `"0"`, `"false"`.
fn is_false(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_u64() == Some(0),
        Value::String(s) => s == "0" || s.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

/// True for `true`, `1`, `"1"`, `"true"`.
fn is_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_u64() == Some(1),
        Value::String(s) => s == "1" || s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Loads one event object (the value of `"Event"`).
pub(crate) fn load_event(ev: &Value, source: &str, out: &mut Loaded) {
    let info = ev
        .get("info")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let ev_id = ev
        .get("uuid")
        .and_then(Value::as_str)
        .unwrap_or("without uuid");
    if let Some(attrs) = ev.get("Attribute").and_then(Value::as_array) {
        for (i, a) in attrs.iter().enumerate() {
            load_attribute(a, info, source, out, || {
                format!("MISP event {ev_id} Attribute[{i}]")
            });
        }
    }
    if let Some(objects) = ev.get("Object").and_then(Value::as_array) {
        for (j, o) in objects.iter().enumerate() {
            if let Some(attrs) = o.get("Attribute").and_then(Value::as_array) {
                for (i, a) in attrs.iter().enumerate() {
                    load_attribute(a, info, source, out, || {
                        format!("MISP event {ev_id} Object[{j}].Attribute[{i}]")
                    });
                }
            }
        }
    }
}

fn load_attribute(
    a: &Value,
    info: Option<&str>,
    source: &str,
    out: &mut Loaded,
    fallback_location: impl Fn() -> String,
) {
    let uuid = a.get("uuid").and_then(Value::as_str);
    let location = || uuid.map_or_else(&fallback_location, str::to_string);
    if !a.is_object() {
        out.reject(location(), "MISP attribute is not an object");
        return;
    }
    if a.get("to_ids").is_some_and(is_false) || a.get("deleted").is_some_and(is_true) {
        out.skipped += 1;
        return;
    }
    let Some(ty) = a.get("type").and_then(Value::as_str) else {
        out.reject(location(), "MISP attribute has no type");
        return;
    };
    let Some(value) = a.get("value").and_then(Value::as_str) else {
        out.reject(
            location(),
            format!("MISP attribute of type '{ty}' has no value"),
        );
        return;
    };
    let parts = match attribute_parts(ty, value) {
        Ok(p) => p,
        Err(reason) => {
            out.reject(location(), reason);
            return;
        }
    };
    let description = a
        .get("comment")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or(info)
        .map(str::to_string);
    for (kind, part) in parts {
        match normalize(kind, part) {
            Ok((kind, value)) => out.indicators.push(Indicator {
                kind,
                value,
                source: source.to_string(),
                description: description.clone(),
                id: uuid.map(str::to_string),
            }),
            Err(e) => out.reject(location(), format!("MISP attribute of type '{ty}': {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::indicators::IndicatorKind::*;
    use crate::indicators::parse_json;
    use crate::indicators::tests::testdata;

    #[test]
    fn event_with_several_types() {
        let text = std::fs::read_to_string(testdata("misp_event.json")).unwrap();
        let l = parse_json(&text, "misp_event", "misp_event.json").unwrap();
        let got: Vec<_> = l
            .indicators
            .iter()
            .map(|i| (i.kind, i.value.as_str(), i.id.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            [
                (Ip, "203.0.113.10", "5f0e0001-0000-4000-8000-000000000001"),
                (
                    Cidr,
                    "198.51.100.0/24",
                    "5f0e0001-0000-4000-8000-000000000002"
                ),
                (Ip, "192.0.2.55", "5f0e0001-0000-4000-8000-000000000003"),
                (
                    Domain,
                    "malicious.example",
                    "5f0e0001-0000-4000-8000-000000000004"
                ),
                (
                    Domain,
                    "c2.malicious.example",
                    "5f0e0001-0000-4000-8000-000000000005"
                ),
                (
                    Domain,
                    "dual.example",
                    "5f0e0001-0000-4000-8000-000000000006"
                ),
                (Ip, "192.0.2.66", "5f0e0001-0000-4000-8000-000000000006"),
                (
                    Url,
                    "https://malicious.example/gate.php?id=1",
                    "5f0e0001-0000-4000-8000-000000000007"
                ),
                (
                    Md5,
                    "0cc175b9c0f1b6a831c399e269772661",
                    "5f0e0001-0000-4000-8000-000000000008"
                ),
                (
                    Sha1,
                    "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8",
                    "5f0e0001-0000-4000-8000-000000000009"
                ),
                (
                    Sha256,
                    "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb",
                    "5f0e0001-0000-4000-8000-000000000010"
                ),
                (Ip, "2001:db8::66", "5f0e0001-0000-4000-8000-000000000021"),
                (
                    Sha256,
                    "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d",
                    "5f0e0001-0000-4000-8000-000000000022"
                ),
            ]
        );
        assert_eq!(l.indicators[0].description.as_deref(), Some("C2 server"));
        // No comment: the event info.
        assert_eq!(
            l.indicators[2].description.as_deref(),
            Some("Phishing campaign targeting finance")
        );
        let rej: Vec<String> = l.rejected.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            rej,
            [
                "5f0e0001-0000-4000-8000-000000000011: MISP attribute type 'uri' is not supported (a path without host)",
                "5f0e0001-0000-4000-8000-000000000012: unsupported MISP attribute type 'regkey'",
                "5f0e0001-0000-4000-8000-000000000013: MISP attribute of type 'md5': md5 hash 'zzz' has 3 characters, expected 32 hex digits",
                "5f0e0001-0000-4000-8000-000000000023: unsupported MISP attribute type 'filename'",
            ]
        );
        // to_ids false + deleted.
        assert_eq!(l.skipped, 2);
    }

    #[test]
    fn wrappers() {
        let ev = r#"{"info": "x", "uuid": "ev-1", "Attribute": [
            {"type": "domain", "value": "a.example", "to_ids": "1"},
            {"type": "ip-dst", "value": "1.2.3.4", "to_ids": 0},
            {"value": "no-type"},
            "junk"
        ]}"#;
        let single = parse_json(&format!("{{\"Event\": {ev}}}"), "s", "s.json").unwrap();
        let list = parse_json(
            &format!("[{{\"Event\": {ev}}}, {{\"Event\": {ev}}}]"),
            "s",
            "s.json",
        )
        .unwrap();
        let resp = parse_json(
            &format!("{{\"response\": [{{\"Event\": {ev}}}]}}"),
            "s",
            "s.json",
        )
        .unwrap();
        let bare = parse_json(ev, "s", "s.json").unwrap();
        assert_eq!(single.indicators.len(), 1);
        assert_eq!(single.skipped, 1);
        assert_eq!(list.indicators.len(), 2);
        assert_eq!(resp, single);
        assert_eq!(bare, single);
        let rej: Vec<String> = single.rejected.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            rej,
            [
                "MISP event ev-1 Attribute[2]: MISP attribute has no type",
                "MISP event ev-1 Attribute[3]: MISP attribute is not an object",
            ]
        );
    }
}
