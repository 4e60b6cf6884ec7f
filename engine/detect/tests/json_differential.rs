//! Warden's JSON parser against serde_json: generated documents and
//! byte-level mutations of them either parse to the same value in both or
//! are refused by both.

use warden_detect::event::{Kind, Node, Tape};
use warden_gen::Rng;

fn to_serde(n: &Node<'_>) -> serde_json::Value {
    use serde_json::Value as V;
    match n.kind() {
        Kind::Null => V::Null,
        Kind::Bool => V::Bool(n.as_bool().expect("bool")),
        Kind::String => V::String(n.as_str().expect("string").to_string()),
        Kind::Number => serde_json::from_str(&n.to_json()).expect("number"),
        Kind::Array => V::Array(n.elements().map(|e| to_serde(&e)).collect()),
        Kind::Object => {
            let mut m = serde_json::Map::new();
            for (k, v) in n.members() {
                // serde_json keeps the last of duplicate keys.
                m.insert(k.to_string(), to_serde(&v));
            }
            V::Object(m)
        }
    }
}

const ATOMS: &[&str] = &[
    "0",
    "-1",
    "12.5",
    "1e3",
    "-0.25E-2",
    "true",
    "false",
    "null",
    r#""""#,
    r#""plain""#,
    r#""a\\b""#,
    r#""q\"q""#,
    r#""\u00e9\ud83d\ude00""#,
    "\"caf\u{e9}\"",
    r#""\n\t\/""#,
    r#""C:\\Windows\\System32\\cmd.exe""#,
    // Escapes back to back, at either end, and mixed with other escapes.
    r#""\\\"\/\\""#,
    r#""\\x\n\\""#,
    r#""\"\u0041\"""#,
    r#""\\\\server\\share\t""#,
];

fn document(r: &mut Rng, depth: u32, out: &mut String) {
    match (depth, r.below(4)) {
        (d, 0) if d < 6 => {
            out.push('[');
            for i in 0..r.below(4) {
                if i > 0 {
                    out.push(',');
                }
                document(r, d + 1, out);
            }
            out.push(']');
        }
        (d, 1) if d < 6 => {
            out.push('{');
            for i in 0..r.below(4) {
                if i > 0 {
                    out.push_str(if r.below(2) == 0 { "," } else { " ,\n " });
                }
                out.push_str(&format!("\"k{}\":", r.below(5)));
                document(r, d + 1, out);
            }
            out.push('}');
        }
        _ => out.push_str(ATOMS[r.below(ATOMS.len())]),
    }
}

#[test]
fn agrees_with_serde_json() {
    let specials: &[u8] = b"{}[],:\"\\ -0.eE+tfnu\x01\x7f\xff\xc3";
    let mut r = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut tape = Tape::new();
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let mut text = String::new();
        document(&mut r, 0, &mut text);
        let mut bytes = text.into_bytes();
        for _ in 0..r.below(3) {
            if bytes.is_empty() {
                break;
            }
            let at = r.below(bytes.len());
            let b = specials[r.below(specials.len())];
            match r.below(3) {
                0 => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, b),
                _ => bytes[at] = b,
            }
        }
        let want = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
        let got = tape.parse(&bytes).ok().map(|d| to_serde(&d.root()));
        assert_eq!(
            got.is_some(),
            want.is_some(),
            "{:?}: ours {got:?}, serde_json {want:?}",
            String::from_utf8_lossy(&bytes)
        );
        if let (Some(g), Some(w)) = (got, want) {
            assert_eq!(g, w, "{:?}", String::from_utf8_lossy(&bytes));
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    // Both kinds were exercised.
    assert!(accepted > 2000 && refused > 2000, "{accepted} / {refused}");
}
