//! Flat Windows JSON from evtx_dump's nested layout (shared by the tests).

/// An evtx_dump event flattened the way flat forwarders write one: the
/// System, EventData and UserData members at the top level, `#attributes`
/// lifted, `{"#text": x}` as `x`, the provider's name as `Provider_Name`.
pub fn flatten(nested: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let text = |v: &Value| match v.get("#text") {
        Some(t) => t.clone(),
        None => v.clone(),
    };
    let mut out = serde_json::Map::new();
    for (k, v) in nested.as_object().unwrap() {
        if k != "Event" {
            out.insert(k.clone(), v.clone());
        }
    }
    let event = &nested["Event"];
    if let Some(system) = event["System"].as_object() {
        for (k, v) in system {
            match (k.as_str(), v.get("#attributes")) {
                ("Provider", Some(a)) => {
                    out.insert("Provider_Name".into(), a["Name"].clone());
                }
                (_, Some(a)) if v.get("#text").is_none() => {
                    for (ak, av) in a.as_object().unwrap() {
                        out.insert(ak.clone(), av.clone());
                    }
                }
                _ => {
                    out.insert(k.clone(), text(v));
                }
            }
        }
    }
    for part in ["EventData", "UserData"] {
        if let Some(data) = event[part].as_object() {
            for (k, v) in data {
                out.insert(k.clone(), text(v));
            }
        }
    }
    Value::Object(out)
}
