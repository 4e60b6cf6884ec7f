//! Event access: paths into parsed JSON events.
//!
//! Events are parsed once with sonic-rs into a [`sonic_rs::Value`]. A Sigma
//! field `a.b.c` addresses nested objects, and a flat key literally named
//! `a.b` or `a.b.c` matches too, so every path is stored as all of its
//! segmentations.

use std::fmt::Write as _;

use sonic_rs::{JsonContainerTrait, JsonNumberTrait, JsonValueTrait, Value};

/// Parses one JSON event.
pub fn parse(bytes: &[u8]) -> Result<Value, sonic_rs::Error> {
    sonic_rs::from_slice(bytes)
}

const MAX_SPLIT_DOTS: usize = 5;

/// Every way of reading a dotted path as nested keys (`a.b` → `[a, b]`, `[a.b]`).
pub fn segmentations(path: &str) -> Vec<Vec<String>> {
    let parts: Vec<&str> = path.split('.').collect();
    let dots = parts.len() - 1;
    if dots == 0 {
        return vec![vec![path.to_string()]];
    }
    if dots > MAX_SPLIT_DOTS {
        return vec![
            parts.iter().map(|s| s.to_string()).collect(),
            vec![path.to_string()],
        ];
    }
    let mut out = Vec::with_capacity(1 << dots);
    for mask in 0..(1u32 << dots) {
        // Bit i set: join parts i and i+1 with a literal dot.
        let mut segs = Vec::new();
        let mut cur = parts[0].to_string();
        for i in 0..dots {
            if mask & (1 << i) != 0 {
                cur.push('.');
                cur.push_str(parts[i + 1]);
            } else {
                segs.push(std::mem::take(&mut cur));
                cur = parts[i + 1].to_string();
            }
        }
        segs.push(cur);
        out.push(segs);
    }
    out
}

/// Collects the values at `segs` (descending into arrays of objects).
pub fn values_at<'a>(v: &'a Value, segs: &[String], out: &mut Vec<&'a Value>) {
    match segs.split_first() {
        None => out.push(v),
        Some((first, rest)) => {
            if let Some(obj) = v.as_object() {
                if let Some(child) = obj.get(first) {
                    values_at(child, rest, out);
                }
            } else if let Some(arr) = v.as_array() {
                for e in arr.iter() {
                    values_at(e, segs, out);
                }
            }
        }
    }
}

/// The text of a scalar value; evtx_dump's `{"#text": x}` objects read as `x`.
/// Returns `None` for null, containers and arrays.
pub fn scalar_text<'a>(v: &'a Value, buf: &'a mut String) -> Option<&'a str> {
    if let Some(s) = v.as_str() {
        return Some(s);
    }
    if let Some(b) = v.as_bool() {
        return Some(if b { "true" } else { "false" });
    }
    if let Some(n) = v.as_number() {
        buf.clear();
        if let Some(u) = n.as_u64() {
            push_u64(buf, u);
        } else if let Some(i) = n.as_i64() {
            buf.push('-');
            push_u64(buf, i.unsigned_abs());
        } else {
            let _ = write!(buf, "{n}");
        }
        return Some(buf.as_str());
    }
    if let Some(obj) = v.as_object()
        && let Some(t) = obj.get(&"#text")
        && !t.is_object()
    {
        return scalar_text(t, buf);
    }
    None
}

/// Appends the decimal digits of `u` (integers are most numbers in logs;
/// this avoids the formatting machinery).
fn push_u64(buf: &mut String, mut u: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        buf.push(d as char);
    }
}

/// Every text value at a field (all segmentations, array elements flattened).
pub fn field_texts(v: &Value, paths: &[Vec<String>]) -> Vec<String> {
    let mut vals = Vec::new();
    for segs in paths {
        values_at(v, segs, &mut vals);
    }
    let mut out = Vec::new();
    let mut buf = String::new();
    for val in vals {
        if let Some(arr) = val.as_array() {
            for e in arr.iter() {
                if let Some(t) = scalar_text(e, &mut buf) {
                    out.push(t.to_string());
                }
            }
        } else if let Some(t) = scalar_text(val, &mut buf) {
            out.push(t.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segmentations_cover_flat_and_nested() {
        let s = segmentations("a.b.c");
        assert_eq!(s.len(), 4);
        assert!(s.contains(&vec!["a".into(), "b".into(), "c".into()]));
        assert!(s.contains(&vec!["a.b.c".into()]));
        assert!(s.contains(&vec!["a.b".into(), "c".into()]));
        assert!(s.contains(&vec!["a".into(), "b.c".into()]));
    }

    #[test]
    fn texts() {
        let v =
            parse(br##"{"a":{"b":[1,"x",{"c":2}], "n": null, "t": {"#text": 4688}}}"##).unwrap();
        let paths = segmentations("a.b");
        assert_eq!(field_texts(&v, &paths), vec!["1", "x"]);
        assert_eq!(field_texts(&v, &segmentations("a.t")), vec!["4688"]);
        assert!(field_texts(&v, &segmentations("a.n")).is_empty());
    }
}
