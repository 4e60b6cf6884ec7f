//! API key secrets: generated from the OS's random source, shown once,
//! stored only as a SHA-256 hash.
//!
//! A presented key reads `wdn_<id>_<secret>`: the id (16 hex digits) finds
//! the stored hash, the secret (64 hex digits, 256 bits) is checked against
//! it in constant time.

use sha2::{Digest, Sha256};

const PREFIX: &str = "wdn_";

/// A new key: its id, the full secret to show once, and the hash to store.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub presented: String,
    pub hash: String,
}

/// Generates a key from the operating system's random source.
pub fn generate() -> Result<NewKey, String> {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id).map_err(|e| format!("random source: {e}"))?;
    getrandom::fill(&mut secret).map_err(|e| format!("random source: {e}"))?;
    let (id, secret) = (hex::encode(id), hex::encode(secret));
    Ok(NewKey {
        hash: hash(&secret),
        presented: format!("{PREFIX}{id}_{secret}"),
        id,
    })
}

/// The stored hash of a secret.
pub fn hash(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"warden-api-key-v1:");
    h.update(secret.as_bytes());
    hex::encode(h.finalize())
}

/// A short digest of any text (for compile keys).
pub fn digest(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..12])
}

/// Splits a presented key into (id, secret).
pub fn parse(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (check_key_id(id).is_ok() && secret.len() == 64).then_some((id, secret))
}

pub fn check_key_id(id: &str) -> Result<(), String> {
    if id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(format!("key id {id:?} must be 16 lower-case hex digits"))
    }
}

/// Compares a secret's hash with the stored one in constant time.
pub fn verify(secret: &str, stored: &str) -> bool {
    let h = hash(secret);
    h.len() == stored.len()
        && h.bytes()
            .zip(stored.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_only_the_right_secret_verifies() {
        let k = generate().expect("key");
        let (id, secret) = parse(&k.presented).expect("parses");
        assert_eq!(id, k.id);
        assert!(verify(secret, &k.hash));
        assert!(!k.hash.contains(secret));
        let other = generate().expect("key");
        assert_ne!(k.presented, other.presented);
        let (_, s2) = parse(&other.presented).expect("parses");
        assert!(!verify(s2, &k.hash));
        for bad in [
            "",
            "wdn_",
            "Bearer x",
            "wdn_zz_00",
            &k.presented[..k.presented.len() - 1],
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }
}
