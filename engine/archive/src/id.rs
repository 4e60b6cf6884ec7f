//! Validated identifiers: the only values that may become part of an object path.

use std::fmt;

use crate::{Error, Result};

/// Longest tenant id accepted.
pub const MAX_TENANT_ID_LEN: usize = 63;

/// A tenant id: 1 to 63 characters of `a-z`, `0-9`, `-` and `_`, starting
/// with a letter or digit.
///
/// The alphabet is fixed and small on purpose: no `/`, `.`, `%`, `=`, upper
/// case (case-insensitive file systems would merge `Acme` and `acme`) or
/// non-ASCII look-alikes, so an id can never leave its own prefix, collide
/// with another after normalisation, or change the meaning of a hive path.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// Validates `s` as a tenant id.
    pub fn new(s: &str) -> Result<TenantId> {
        let bad = |reason| Error::InvalidId {
            what: "tenant id",
            value: s.chars().take(80).collect(),
            reason,
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.len() > MAX_TENANT_ID_LEN {
            return Err(bad("longer than 63 characters"));
        }
        let first = s.as_bytes()[0];
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(bad("must start with a-z or 0-9"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(bad("only a-z, 0-9, '-' and '_' are allowed"));
        }
        Ok(TenantId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for TenantId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Deserializing validates: a control-plane object or API body can never
/// carry an id that `TenantId::new` would refuse.
impl<'de> serde::Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<TenantId, D::Error> {
        let s = String::deserialize(d)?;
        TenantId::new(&s).map_err(serde::de::Error::custom)
    }
}

/// Lets maps keyed by tenant id be searched with a `&str` without
/// allocating; equality and hashing are the underlying string's.
impl std::borrow::Borrow<str> for TenantId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

impl std::str::FromStr for TenantId {
    type Err = Error;
    fn from_str(s: &str) -> Result<TenantId> {
        TenantId::new(s)
    }
}

/// A Kafka topic name as Kafka allows it: 1 to 249 characters of
/// `a-zA-Z0-9._-`, and not `.` or `..`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(String);

impl Topic {
    pub fn new(s: &str) -> Result<Topic> {
        let bad = |reason| Error::InvalidId {
            what: "topic",
            value: s.chars().take(80).collect(),
            reason,
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.len() > 249 {
            return Err(bad("longer than 249 characters"));
        }
        if s == "." || s == ".." {
            return Err(bad("'.' and '..' are not topic names"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(bad("only a-z, A-Z, 0-9, '.', '-' and '_' are allowed"));
        }
        Ok(Topic(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids() {
        for ok in ["acme", "tenant-000", "a", "0x", "client_7-eu"] {
            assert_eq!(TenantId::new(ok).expect(ok).as_str(), ok);
        }
        let long = "a".repeat(64);
        for bad in [
            "", "..", ".", "a/b", "../x", "%2e%2e", "a%2fb", "Acme", "acme ", " acme", "-acme",
            "_acme", "acme\0", "ac\nme", "org_id=x", "a.b", "ａcme", "acmé", "a\\b", &long,
        ] {
            let err = TenantId::new(bad).expect_err(bad).to_string();
            assert!(err.starts_with("invalid tenant id"), "{err}");
        }
    }

    #[test]
    fn topics() {
        for ok in ["events", "siem.windows-raw_v2", "A"] {
            Topic::new(ok).expect(ok);
        }
        for bad in ["", ".", "..", "a/b", "a b", "a%2f", "é"] {
            Topic::new(bad).expect_err(bad);
        }
    }
}

/// An alert id as it arrives from a caller: exactly 32 lower-case hex
/// digits (what [`crate::alert_id`] produces), so it can name a triage
/// object without escaping anything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlertId(String);

impl AlertId {
    pub fn new(s: &str) -> Result<AlertId> {
        if s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(AlertId(s.to_owned()))
        } else {
            Err(Error::InvalidId {
                what: "alert id",
                value: s.chars().take(80).collect(),
                reason: "must be 32 lower-case hex digits",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod alert_id_tests {
    use super::*;

    #[test]
    fn alert_ids_are_hex_only() {
        assert!(AlertId::new(&"a".repeat(32)).is_ok());
        for bad in [
            "",
            "../../x",
            &"A".repeat(32),
            &"g".repeat(32),
            &"a".repeat(33),
        ] {
            assert!(AlertId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tenant_ids_are_validated_when_deserialized() {
        let ok: TenantId = serde_json::from_str("\"acme-1\"").expect("valid");
        assert_eq!(ok.as_str(), "acme-1");
        for bad in [
            "\"..\"",
            "\"a/b\"",
            "\"%2e%2e\"",
            "\"Acme\"",
            "\"ac\\u00e9\"",
        ] {
            assert!(serde_json::from_str::<TenantId>(bad).is_err(), "{bad}");
        }
    }
}
