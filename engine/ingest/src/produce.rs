//! Producing the generated stream to Kafka (`warden gen`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use warden_gen::{Stream, StreamSpec};

use crate::{Error, Result};

/// Counts delivery failures: a message librdkafka gave up on is an error
/// for the generator, never a silent gap.
#[derive(Debug, Default)]
struct Deliveries {
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = r
            && self.failed.fetch_add(1, Ordering::Relaxed) == 0
        {
            tracing::error!("delivery failed: {e}");
        }
    }
}

/// What was produced.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Produced {
    pub events: u64,
    pub per_tenant: BTreeMap<String, u64>,
    /// Planted attacks per tenant and expected rule id (or indicator value).
    pub planted: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Produces `events` generated events to `topic`, keyed by tenant id, at
/// most `rate` per second when given. Returns once every event is acknowledged.
pub fn produce(
    brokers: &str,
    topic: &str,
    spec: StreamSpec,
    events: u64,
    rate: Option<u64>,
    extra: &[(String, String)],
) -> Result<Produced> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.kbytes", "262144");
    for (k, v) in extra {
        cc.set(k, v);
    }
    let producer: BaseProducer<Deliveries> = cc.create_with_context(Deliveries::default())?;
    let mut out = Produced::default();
    let started = Instant::now();
    for (i, ev) in Stream::new(spec).take(events as usize).enumerate() {
        if let Some(rate) = rate.filter(|r| *r > 0) {
            let due = Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let mut record = BaseRecord::to(topic).key(&ev.org_id).payload(&ev.json);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        producer.poll(Duration::ZERO);
        out.events += 1;
        *out.per_tenant.entry(ev.org_id.clone()).or_default() += 1;
        if let Some(p) = ev.planted {
            *out.planted
                .entry(ev.org_id)
                .or_default()
                .entry(p.rule_id().to_owned())
                .or_default() += 1;
        }
    }
    producer.flush(Duration::from_secs(60))?;
    let failed = producer.context().failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(Error::Other(format!(
            "{failed} of {} events were not delivered",
            out.events
        )));
    }
    Ok(out)
}
