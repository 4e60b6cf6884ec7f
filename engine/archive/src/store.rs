//! Opening the object store named by a URL.
//!
//! - `file://DIR` or a plain `DIR` (relative or absolute): a local directory,
//!   created if missing. Objects are written to a temporary file and renamed
//!   into place, so a crashed process never leaves a half-written object.
//! - `s3://BUCKET[/PREFIX]`: S3 or any S3-compatible service, configured
//!   from the usual environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!   `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL` or `AWS_ENDPOINT`,
//!   `AWS_ALLOW_HTTP=true` for a local test server).
//! - `memory://`: in memory, for tests.
//!
//! Everything above the returned store's root is out of reach: callers use
//! the relative paths from [`crate::layout`].

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;

use crate::{Error, Result};

/// A parsed store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
    Memory,
}

impl Location {
    pub fn parse(url: &str) -> Result<Location> {
        let bad = |reason: &str| Error::Store {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket name after s3://"));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        if url == "memory://" || url == "memory:" {
            return Ok(Location::Memory);
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        if path.contains("://") {
            return Err(bad(
                "unsupported scheme (use file://DIR, a directory, s3://BUCKET/PREFIX or memory://)",
            ));
        }
        if path.is_empty() {
            return Err(bad("empty path"));
        }
        Ok(Location::Local(PathBuf::from(path)))
    }
}

/// Opens the store at `url`.
pub fn open(url: &str) -> Result<Arc<dyn ObjectStore>> {
    let err = |reason: String| Error::Store {
        url: url.to_owned(),
        reason,
    };
    match Location::parse(url)? {
        Location::Local(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
            let dir = dir
                .canonicalize()
                .map_err(|e| err(format!("cannot resolve {}: {e}", dir.display())))?;
            let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| err(e.to_string()))?;
            Ok(Arc::new(fs))
        }
        Location::S3 { bucket, prefix } => {
            let mut b = AmazonS3Builder::from_env().with_bucket_name(&bucket);
            // `from_env` reads AWS_ENDPOINT; accept the AWS SDKs' name too.
            if let Ok(ep) = std::env::var("AWS_ENDPOINT_URL") {
                b = b.with_endpoint(ep);
            }
            if std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v == "true" || v == "1") {
                b = b.with_allow_http(true);
            }
            let s3 = b.build().map_err(|e| err(e.to_string()))?;
            if prefix.is_empty() {
                Ok(Arc::new(s3))
            } else {
                Ok(Arc::new(PrefixStore::new(s3, prefix.as_str())))
            }
        }
        Location::Memory => Ok(Arc::new(InMemory::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!(
            Location::parse("file://./data").expect("ok"),
            Location::Local("./data".into())
        );
        assert_eq!(
            Location::parse("/tmp/x").expect("ok"),
            Location::Local("/tmp/x".into())
        );
        assert_eq!(
            Location::parse("s3://b/p/q/").expect("ok"),
            Location::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert!(Location::parse("s3:///x").is_err());
        assert!(Location::parse("gs://b").is_err());
        assert!(Location::parse("").is_err());
    }
}
