//! The development broker: librdkafka's mock cluster, a real Kafka protocol
//! server running in this process, for the demo, tests and local work.
//!
//! The mock cluster listens on a random loopback port. To honour a fixed
//! `--listen` address, a TCP relay listens there and the broker advertises
//! the relay's address in its metadata, so clients only ever use the
//! address they were given. Limits: one broker, in memory, about 5 MiB or
//! 100k message sets kept per partition (older ones are dropped); for
//! local work and tests only.
#![allow(unsafe_code)] // two librdkafka calls the Rust wrapper does not expose

use std::ffi::CString;
use std::net::SocketAddr;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};

use crate::{Error, Result};

/// A running development broker.
pub struct DevBroker {
    producer: BaseProducer,
    bootstrap: String,
    relay: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for DevBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevBroker")
            .field("bootstrap", &self.bootstrap)
            .finish()
    }
}

impl DevBroker {
    /// Starts a one-broker mock cluster. With `listen`, it is reached at
    /// that address through a relay running on `rt`.
    pub fn start(listen: Option<SocketAddr>, rt: &tokio::runtime::Handle) -> Result<DevBroker> {
        let producer: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .set("log_level", "3")
            .create()?;
        let native = producer.client().native_ptr();
        // SAFETY: `native` is the live handle owned by `producer`, which
        // outlives these calls; the mock cluster pointer it returns is owned
        // by that handle and checked for null before use.
        let mock = unsafe { rdkafka::bindings::rd_kafka_handle_mock_cluster(native) };
        if mock.is_null() {
            return Err(Error::Other(
                "librdkafka did not create a mock cluster".into(),
            ));
        }
        // SAFETY: `mock` is non-null and owned by `producer` (above).
        unsafe { rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(mock, 0) };
        let inner = producer
            .client()
            .mock_cluster()
            .ok_or_else(|| Error::Other("librdkafka did not create a mock cluster".into()))?
            .bootstrap_servers();
        let (bootstrap, relay) = match listen {
            None => (inner.clone(), None),
            Some(addr) => {
                let listener = rt
                    .block_on(tokio::net::TcpListener::bind(addr))
                    .map_err(|e| Error::Io {
                        what: format!("dev broker listen {addr}"),
                        source: e,
                    })?;
                let local = listener.local_addr().map_err(|e| Error::Io {
                    what: "dev broker listener".into(),
                    source: e,
                })?;
                let host = CString::new(local.ip().to_string())
                    .map_err(|e| Error::Other(e.to_string()))?;
                // SAFETY: as above; `host` is a valid C string for the call.
                unsafe {
                    rdkafka::bindings::rd_kafka_mock_broker_set_host_port(
                        mock,
                        1,
                        host.as_ptr(),
                        i32::from(local.port()),
                    )
                };
                let target = inner.clone();
                let relay = rt.spawn(async move {
                    loop {
                        let Ok((mut client, _)) = listener.accept().await else {
                            continue;
                        };
                        let target = target.clone();
                        tokio::spawn(async move {
                            if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                                let _ = client.set_nodelay(true);
                                let _ = server.set_nodelay(true);
                                let _ =
                                    tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        });
                    }
                });
                (local.to_string(), Some(relay))
            }
        };
        Ok(DevBroker {
            producer,
            bootstrap,
            relay,
        })
    }

    /// The address clients bootstrap from.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Creates a topic (the mock cluster has no admin API).
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        let mc = self
            .producer
            .client()
            .mock_cluster()
            .ok_or_else(|| Error::Other("mock cluster is gone".into()))?;
        mc.create_topic(name, partitions, 1)?;
        Ok(())
    }

    /// Fault injection for tests: the broker answers the next
    /// `errors.len()` requests of `api` with these errors, in order.
    pub fn fail_requests(
        &self,
        api: rdkafka::types::RDKafkaApiKey,
        errors: &[rdkafka::types::RDKafkaRespErr],
    ) -> Result<()> {
        self.producer
            .client()
            .mock_cluster()
            .ok_or_else(|| Error::Other("mock cluster is gone".into()))?
            .request_errors(api, errors);
        Ok(())
    }

    /// Ends [`DevBroker::fail_requests`] for `api`.
    pub fn clear_failures(&self, api: rdkafka::types::RDKafkaApiKey) -> Result<()> {
        self.producer
            .client()
            .mock_cluster()
            .ok_or_else(|| Error::Other("mock cluster is gone".into()))?
            .clear_request_errors(api);
        Ok(())
    }
}

impl Drop for DevBroker {
    fn drop(&mut self) {
        if let Some(r) = self.relay.take() {
            r.abort();
        }
        let _ = self.producer.flush(Duration::from_millis(100));
    }
}
