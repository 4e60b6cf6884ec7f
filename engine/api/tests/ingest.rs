//! `POST /v1/ingest` against an in-process Kafka (librdkafka's mock
//! cluster): what reaches the topic, the control-version header, the daily
//! quotas (seeded from the archive), inline rule checks on policies.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::FutureProducer;
use serde_json::{Value, json};
use tower::ServiceExt;
use warden_api::{App, Limits, Sink, router};
use warden_archive::batch::{EventsBuilder, Origin, to_parquet};
use warden_archive::layout::{Hour, Table, data_object};
use warden_archive::schema::PROMOTED;
use warden_archive::{TenantId, Topic};
use warden_control::{CONTROL_VERSION_HEADER, ControlPlane, bootstrap};
use warden_query::Archive;

const TOPIC: &str = "events";

async fn send(
    app: &axum::Router,
    method: Method,
    uri: &str,
    key: &str,
    body: String,
) -> (u16, Option<String>, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, retry, v)
}

fn ndjson(n: usize, tag: &str) -> String {
    (0..n)
        .map(|i| json!({"org_id": "globex", "msg": tag, "n": i}).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Archives `n` events of `tenant` at the current hour (as the pipeline would).
async fn archive_today(store: &Arc<dyn object_store::ObjectStore>, tenant: &str, n: usize) -> u64 {
    use object_store::ObjectStoreExt;
    let t = TenantId::new(tenant).expect("id");
    let topic = Topic::new(TOPIC).expect("topic");
    let now = warden_control::model::now_ms();
    let mut ev = EventsBuilder::default();
    let promoted: [Option<&str>; PROMOTED.len()] = std::array::from_fn(|_| None);
    let mut bytes = 0;
    for i in 0..n {
        let raw = json!({"org_id": tenant, "i": i}).to_string();
        bytes += raw.len() as u64;
        let origin = Origin {
            topic: &topic,
            partition: 0,
            offset: i as i64,
            ingest_time: now,
        };
        ev.append(&t, origin, now, &promoted, &raw);
    }
    let path = data_object(&t, Table::Events, Hour::of_millis(now), &topic, 0, 0);
    let batch = ev.finish().expect("events");
    store
        .put(&path, to_parquet(&batch).expect("parquet").into())
        .await
        .expect("put");
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_reaches_kafka_stamped_and_daily_quotas_refuse_whole_batches() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 1, 1).expect("topic");
    let servers = cluster.bootstrap_servers();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .create()
        .expect("producer");

    let dir = tempfile::tempdir().expect("tempdir");
    let store = warden_archive::store::open(&dir.path().display().to_string()).expect("store");
    let cp = Arc::new(ControlPlane::open(store.clone()).await.expect("control"));
    let (_, root) = bootstrap(&cp, &TenantId::new("msp").expect("id"), "MSP")
        .await
        .expect("bootstrap");
    let app = router(Arc::new(App {
        control: cp.clone(),
        archive: Archive::new(store.clone()),
        store: store.clone(),
        sink: Some(Sink {
            producer,
            topic: TOPIC.into(),
        }),
        limits: Limits::default(),
        usage: Default::default(),
    }));
    let (s, _, b) = send(
        &app,
        Method::POST,
        "/v1/tenants",
        &root,
        json!({"id": "acme", "name": "Acme"}).to_string(),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, _, b) = send(
        &app,
        Method::POST,
        "/v1/tenants/acme/keys",
        &root,
        json!({"role": "viewer", "scopes": ["ingest"]}).to_string(),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let key = b["key"].as_str().expect("key").to_owned();

    // Two events are already archived today; the quota is five.
    archive_today(&store, "acme", 2).await;
    let (s, _, b) = send(
        &app,
        Method::PATCH,
        "/v1/tenants/acme",
        &root,
        json!({"quotas": {"max_events_per_day": 5}}).to_string(),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let version = cp.state().version;

    let (s, _, b) = send(&app, Method::POST, "/v1/ingest", &key, ndjson(3, "first")).await;
    assert_eq!(s, 202, "{b}");
    let (s, retry, b) = send(&app, Method::POST, "/v1/ingest", &key, ndjson(1, "over")).await;
    assert_eq!(s, 429, "{b}");
    assert_eq!(b["quota"], "max_events_per_day", "{b}");
    assert_eq!(b["used"], 5, "{b}");
    let retry: u64 = retry.expect("Retry-After").parse().expect("seconds");
    assert!((1..=86_400).contains(&retry), "{retry}");

    // A byte quota counts the events as archived (org_id rewritten).
    let (s, _, b) = send(
        &app,
        Method::PATCH,
        "/v1/tenants/acme",
        &root,
        json!({"quotas": {"max_bytes_per_day": 1}}).to_string(),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, _, b) = send(&app, Method::POST, "/v1/ingest", &key, ndjson(1, "bytes")).await;
    assert_eq!(s, 429, "{b}");
    assert_eq!(b["quota"], "max_bytes_per_day", "{b}");

    // Exactly the accepted events are on the topic: the key's tenant, the
    // payload's org_id overwritten, and the control version they were
    // authorised under.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("group.id", "check")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got.len() < 3 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let v: Value = serde_json::from_slice(m.payload().expect("payload")).expect("json");
            let header = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == CONTROL_VERSION_HEADER))
                .and_then(|h| std::str::from_utf8(h.value?).ok()?.parse::<u64>().ok());
            got.push((m.key().map(<[u8]>::to_vec), v, header));
        }
    }
    // Nothing beyond the three.
    let extra = consumer.poll(Duration::from_secs(1));
    assert!(extra.is_none(), "an extra record: {extra:?}");
    drop(consumer);
    assert_eq!(got.len(), 3);
    for (k, v, header) in &got {
        assert_eq!(k.as_deref(), Some(b"acme".as_slice()));
        assert_eq!(v["org_id"], "acme");
        assert_eq!(v["msg"], "first");
        assert!(header.is_some_and(|h| h >= version), "{header:?}");
    }
}

#[tokio::test]
async fn policies_with_rules_that_do_not_load_are_refused_naming_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = warden_archive::store::open(&dir.path().display().to_string()).expect("store");
    let cp = Arc::new(ControlPlane::open(store.clone()).await.expect("control"));
    let (_, root) = bootstrap(&cp, &TenantId::new("msp").expect("id"), "MSP")
        .await
        .expect("bootstrap");
    let app = router(Arc::new(App {
        control: cp.clone(),
        archive: Archive::new(store.clone()),
        store,
        sink: None,
        limits: Limits::default(),
        usage: Default::default(),
    }));
    let good =
        "title: t\nlogsource:\n  product: x\ndetection:\n  sel:\n    a: b\n  condition: sel\n";
    let bad_modifier = "title: t\nlogsource:\n  product: x\ndetection:\n  sel:\n    a|nosuch: b\n  condition: sel\n";
    let (s, _, b) = send(
        &app,
        Method::POST,
        "/v1/policies",
        &root,
        json!({"id": "p", "tenant": "msp", "rules": [good, "title: [", bad_modifier]}).to_string(),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    let fields: Vec<&str> = b["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["rules[1]", "rules[2]"], "{b}");
    let (s, _, b) = send(
        &app,
        Method::POST,
        "/v1/policies",
        &root,
        json!({"id": "p", "tenant": "msp", "rules": [good], "indicators": ["sha256,xyz"]})
            .to_string(),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    let version = cp.state().version;
    let (s, _, b) = send(
        &app,
        Method::POST,
        "/v1/policies",
        &root,
        json!({"id": "p", "tenant": "msp", "rules": [good], "indicators": ["203.0.113.9"]})
            .to_string(),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        cp.state().version,
        version + 1,
        "only the valid policy was written"
    );
}
