//! Warden's streaming pipeline: a Kafka consumer group whose records are
//! routed to their tenant, run through that tenant's detection, and
//! archived as Parquet under the tenant's own prefix, exactly once.
//!
//! - [`config`]: the `warden run` configuration (TOML).
//! - [`tenants`]: tenants and their compiled detectors (shared when equal).
//! - [`segment`]: segments, intents and the exactly-once protocol.
//! - [`pipeline`]: the consuming loop, rebalances, commits, back-pressure.
//! - [`metrics`]: Prometheus metrics and health endpoints.
//! - [`broker`]: the in-process development broker (librdkafka's mock cluster).
//! - [`produce`]: the load generator's producer.

pub mod broker;
pub mod config;
mod error;
pub mod metrics;
pub mod pipeline;
pub mod produce;
pub mod segment;
pub mod tenants;

pub use error::{Error, Result};
