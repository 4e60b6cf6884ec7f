//! The tenant boundary through every endpoint, calling the router directly.
//!
//! Tree: msp → {acme → acme-eu, globex}. Each tenant has archived events and
//! one alert whose rule title and host name carry the tenant's name, so any
//! leak shows up as the other tenant's name in a body.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use warden_api::{App, Limits, router};
use warden_archive::batch::{AlertRow, AlertsBuilder, EventsBuilder, Origin, to_parquet};
use warden_archive::layout::{Hour, Table, data_object};
use warden_archive::schema::PROMOTED;
use warden_archive::{TenantId, Topic, alert_id};
use warden_control::{ControlPlane, bootstrap};
use warden_query::Archive;

const T0: i64 = 1_763_900_000_000; // 2025-11-23

fn tid(s: &str) -> TenantId {
    TenantId::new(s).expect("tenant id")
}

struct Env {
    _dir: tempfile::TempDir,
    app: axum::Router,
    root: String,
    alerts: std::collections::BTreeMap<String, String>,
}

async fn write_tenant_data(
    store: &Arc<dyn object_store::ObjectStore>,
    tenant: &str,
    offset: i64,
) -> String {
    use object_store::ObjectStoreExt;
    let t = tid(tenant);
    let topic = Topic::new("events").expect("topic");
    let origin = Origin {
        topic: &topic,
        partition: 0,
        offset,
        ingest_time: T0,
    };
    let raw = json!({"org_id": tenant, "host": format!("host-of-{tenant}"), "CommandLine": format!("secret-cmd-{tenant}")}).to_string();
    let mut ev = EventsBuilder::default();
    let promoted: [Option<&str>; PROMOTED.len()] = std::array::from_fn(|_| None);
    ev.append(&t, origin, T0, &promoted, &raw);
    let id = alert_id(&topic, 0, offset, "rule-1");
    let mut al = AlertsBuilder::default();
    let host = format!("host-of-{tenant}");
    al.append(
        &AlertRow {
            alert_id: &id,
            org_id: &t,
            rule_id: "rule-1",
            rule_title: &format!("Suspicious thing at {tenant}"),
            level: if tenant == "globex" {
                "critical"
            } else {
                "high"
            },
            tags: &["attack.t1059".to_string()],
            source: "sigma",
            event_time: T0,
            detection_time: T0,
            matched: r#"[{"field":"CommandLine","value":"x"}]"#,
            host: Some(&host),
            user: None,
            raw: &raw,
        },
        origin,
    );
    for (table, batch) in [
        (Table::Events, ev.finish().expect("events")),
        (Table::Alerts, al.finish().expect("alerts")),
    ] {
        let path = data_object(&t, table, Hour::of_millis(T0), &topic, 0, offset);
        store
            .put(&path, to_parquet(&batch).expect("parquet").into())
            .await
            .expect("put");
    }
    id
}

async fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = warden_archive::store::open(&dir.path().display().to_string()).expect("store");
    let cp = Arc::new(ControlPlane::open(store.clone()).await.expect("control"));
    let (_, root) = bootstrap(&cp, &tid("msp"), "The MSP")
        .await
        .expect("bootstrap");
    let app = router(Arc::new(App {
        control: cp,
        archive: Archive::new(store.clone()),
        store: store.clone(),
        sink: None,
        limits: Limits::default(),
        usage: Default::default(),
    }));
    let mut alerts = std::collections::BTreeMap::new();
    for (i, t) in ["acme", "acme-eu", "globex"].iter().enumerate() {
        alerts.insert(
            t.to_string(),
            write_tenant_data(&store, t, i as i64 * 10).await,
        );
    }
    let env = Env {
        _dir: dir,
        app,
        root,
        alerts,
    };
    for (id, parent) in [("acme", "msp"), ("acme-eu", "acme"), ("globex", "msp")] {
        let (s, _) = env
            .call(
                Method::POST,
                "/v1/tenants",
                &env.root,
                Some(json!({"id": id, "name": id, "parent": parent})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "create {id}");
    }
    env
}

impl Env {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if !key.is_empty() {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("response");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, v)
    }

    async fn key(&self, tenant: &str, role: &str, scopes: &[&str]) -> String {
        let (s, v) = self
            .call(
                Method::POST,
                &format!("/v1/tenants/{tenant}/keys"),
                &self.root,
                Some(json!({"role": role, "scopes": scopes})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["key"].as_str().expect("key").to_owned()
    }
}

const ALL: [&str; 4] = ["ingest", "query", "triage", "manage"];

#[tokio::test]
async fn every_endpoint_keeps_tenant_a_out_of_tenant_b() {
    let e = env().await;
    let acme = e.key("acme", "owner", &ALL).await;
    let globex_alert = e.alerts["globex"].clone();
    let acme_eu_alert = e.alerts["acme-eu"].clone();

    // Reads of another tenant: 403 with the same body as a tenant that does
    // not exist; 404 for alerts, same as a made-up id.
    let (s_other, b_other) = e.call(Method::GET, "/v1/tenants/globex", &acme, None).await;
    let (s_none, b_none) = e
        .call(Method::GET, "/v1/tenants/no-such-tenant", &acme, None)
        .await;
    assert_eq!((s_other, &b_other), (StatusCode::FORBIDDEN, &b_none));
    assert_eq!(s_none, StatusCode::FORBIDDEN);
    for uri in [
        "/v1/tenants/globex/effective-policy",
        "/v1/tenants/msp",
        "/v1/alerts?tenant=globex",
        "/v1/alerts?tenant=msp",
    ] {
        let (s, b) = e.call(Method::GET, uri, &acme, None).await;
        assert_eq!((s, &b), (StatusCode::FORBIDDEN, &b_none), "{uri}");
    }
    let (s, b) = e
        .call(
            Method::GET,
            &format!("/v1/alerts/{globex_alert}"),
            &acme,
            None,
        )
        .await;
    let (s2, b2) = e
        .call(
            Method::GET,
            &format!("/v1/alerts/{}", "0".repeat(32)),
            &acme,
            None,
        )
        .await;
    assert_eq!((s, &b), (StatusCode::NOT_FOUND, &b2));
    assert_eq!(s2, StatusCode::NOT_FOUND);

    // Writes to another tenant.
    let writes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::PATCH,
            "/v1/tenants/globex".into(),
            Some(json!({"name": "pwned"})),
        ),
        (Method::DELETE, "/v1/tenants/globex?force=true".into(), None),
        (
            Method::POST,
            "/v1/tenants".into(),
            Some(json!({"id": "evil", "name": "x", "parent": "globex"})),
        ),
        (
            Method::POST,
            "/v1/tenants/globex/move".into(),
            Some(json!({"parent": "acme"})),
        ),
        (
            Method::POST,
            "/v1/tenants/acme/move".into(),
            Some(json!({"parent": "globex"})),
        ),
        (
            Method::POST,
            "/v1/tenants/globex/keys".into(),
            Some(json!({"role": "owner", "scopes": ["manage"]})),
        ),
        (
            Method::POST,
            "/v1/grants".into(),
            Some(json!({"principal": "me", "tenant": "globex", "role": "viewer"})),
        ),
        (
            Method::POST,
            "/v1/grants".into(),
            Some(json!({"principal": "me", "tenant": "msp", "role": "viewer"})),
        ),
        (
            Method::POST,
            "/v1/policies".into(),
            Some(json!({"id": "p", "tenant": "globex"})),
        ),
        (
            Method::PUT,
            "/v1/tenants/globex/overrides/x".into(),
            Some(json!({"disabled": true})),
        ),
        (
            Method::POST,
            "/v1/tenants/batch".into(),
            Some(
                json!({"create": [{"id": "ok-one", "name": "x", "parent": "acme"}], "delete": [{"id": "globex", "force": true}]}),
            ),
        ),
    ];
    for (m, uri, body) in writes {
        let (s, b) = e.call(m.clone(), &uri, &acme, body).await;
        assert_eq!((s, &b), (StatusCode::FORBIDDEN, &b_none), "{m} {uri}");
    }
    let (s, _) = e
        .call(
            Method::PATCH,
            &format!("/v1/alerts/{globex_alert}"),
            &acme,
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The batch was all or nothing: its allowed half did not land.
    let (s, _) = e
        .call(Method::GET, "/v1/tenants/ok-one", &e.root, None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Globex is untouched.
    let (_, g) = e
        .call(Method::GET, "/v1/tenants/globex", &e.root, None)
        .await;
    assert_eq!(g["name"], "globex");

    // Lists show only acme's subtree.
    let (_, t) = e.call(Method::GET, "/v1/tenants", &acme, None).await;
    let ids: Vec<&str> = t["tenants"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["acme", "acme-eu"]);
    let (_, q) = e.call(Method::GET, "/v1/alerts", &acme, None).await;
    let text = q.to_string();
    assert_eq!(q["total"], 2, "{q}");
    assert!(!text.contains("globex"), "{text}");
    for field in ["host", "user", "raw", "event", "matched", "CommandLine"] {
        assert!(
            q["alerts"][0].get(field).is_none(),
            "queue rows carry no {field}"
        );
    }
    assert!(
        !text.contains("secret-cmd") && !text.contains("host-of"),
        "no technical origin in the queue"
    );
    for uri in [
        "/v1/keys",
        "/v1/grants",
        "/v1/audit",
        "/v1/policies",
        "/v1/stats?month=2025-11",
    ] {
        let (s, b) = e.call(Method::GET, uri, &acme, None).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {b}");
        assert!(!b.to_string().contains("globex"), "{uri} leaks: {b}");
    }

    // A client's sub-tenant key sees neither its parent nor its siblings.
    let eu = e.key("acme-eu", "analyst", &["query", "triage"]).await;
    let (_, q) = e.call(Method::GET, "/v1/alerts", &eu, None).await;
    assert_eq!(q["total"], 1);
    assert_eq!(q["alerts"][0]["tenant"], "acme-eu");
    let (s, _) = e.call(Method::GET, "/v1/tenants/acme", &eu, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, d) = e
        .call(
            Method::GET,
            &format!("/v1/alerts/{acme_eu_alert}"),
            &eu,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        d["event"]["host"], "host-of-acme-eu",
        "detail has the raw event"
    );
    let (s, _) = e
        .call(
            Method::GET,
            &format!("/v1/alerts/{}", e.alerts["acme"]),
            &eu,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The MSP root sees everything, sorted by priority (globex is critical).
    let (_, q) = e.call(Method::GET, "/v1/alerts", &e.root, None).await;
    assert_eq!(q["total"], 3);
    assert_eq!(q["alerts"][0]["tenant"], "globex");
}

#[tokio::test]
async fn keys_roles_and_scopes_are_enforced() {
    let e = env().await;
    // 401: missing, malformed, wrong secret, revoked, expired.
    let (s, _) = e.call(Method::GET, "/v1/tenants", "", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = e
        .call(Method::GET, "/v1/tenants", "wdn_nonsense", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut wrong = e.root.clone();
    let last = wrong.pop().expect("char");
    wrong.push(if last == '0' { '1' } else { '0' });
    let (s, _) = e.call(Method::GET, "/v1/tenants", &wrong, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let viewer = e.key("acme", "viewer", &["query"]).await;
    let (s, _) = e.call(Method::GET, "/v1/alerts", &viewer, None).await;
    assert_eq!(s, StatusCode::OK, "viewers read the queue");
    let (s, _) = e
        .call(
            Method::GET,
            &format!("/v1/alerts/{}", e.alerts["acme"]),
            &viewer,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "detail needs analyst");
    let (s, _) = e
        .call(
            Method::POST,
            "/v1/query",
            &viewer,
            Some(json!({"sql": "SELECT 1"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "SQL needs analyst");

    let analyst = e.key("acme", "analyst", &["query"]).await;
    let (s, _) = e
        .call(
            Method::PATCH,
            &format!("/v1/alerts/{}", e.alerts["acme"]),
            &analyst,
            Some(json!({"status": "acknowledged"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "triage needs the triage scope");
    let (s, _) = e
        .call(
            Method::POST,
            "/v1/tenants",
            &analyst,
            Some(json!({"id": "x1", "name": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "analysts do not manage");

    // Admin: manages, may grant up to admin, may not grant owner or delete.
    let admin = e.key("acme", "admin", &["manage", "query"]).await;
    let (s, _) = e
        .call(
            Method::POST,
            "/v1/tenants/acme/keys",
            &admin,
            Some(json!({"role": "owner", "scopes": ["manage"]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = e.call(Method::POST, "/v1/tenants/acme/keys", &admin, Some(json!({"role": "analyst", "scopes": ["query"], "expires_at": "2099-01-01T00:00:00Z"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let made = v["key"].as_str().expect("key").to_owned();
    let (s, _) = e
        .call(
            Method::POST,
            "/v1/tenants",
            &admin,
            Some(json!({"id": "acme-us", "name": "US"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "parent defaults to the caller's tenant"
    );
    let (s, _) = e
        .call(Method::DELETE, "/v1/tenants/acme-us", &admin, None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "admins do not delete");
    let (s, _) = e
        .call(
            Method::PATCH,
            "/v1/tenants/acme",
            &admin,
            Some(json!({"quotas": {"max_events_per_day": 1}})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a client does not set its own quotas"
    );

    // Keys are never shown again; revocation takes effect at once.
    let (_, keys) = e.call(Method::GET, "/v1/keys", &admin, None).await;
    let text = keys.to_string();
    assert!(
        !text.contains(&made[made.len() - 20..]) && !text.contains("hash"),
        "{text}"
    );
    let made_id = made.split('_').nth(1).expect("id").to_owned();
    let (s, _) = e
        .call(Method::DELETE, &format!("/v1/keys/{made_id}"), &admin, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = e.call(Method::GET, "/v1/alerts", &made, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // The audit log names who did it and hides hashes.
    let (_, audit) = e.call(Method::GET, "/v1/audit", &e.root, None).await;
    let text = audit.to_string();
    assert!(
        text.contains("revoke_key")
            && text.contains("root-owner")
            && !text.contains("\"hash\":\"0"),
        "{text}"
    );
    let (s, _) = e.call(Method::GET, "/openapi.json", "", None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn sql_cannot_leave_the_callers_tenants() {
    let e = env().await;
    let acme = e.key("acme", "analyst", &["query"]).await;
    let (s, v) = e.call(Method::POST, "/v1/query", &acme, Some(json!({"sql": "SELECT org_id, count(*) AS n FROM events GROUP BY org_id ORDER BY org_id"}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["rows"],
        json!([{"org_id": "acme", "n": 1}, {"org_id": "acme-eu", "n": 1}])
    );
    let (s, v) = e
        .call(
            Method::POST,
            "/v1/query",
            &acme,
            Some(json!({"sql": "SELECT count(*) AS n FROM alert_queue WHERE status = 'new'"})),
        )
        .await;
    assert_eq!((s, &v["rows"]), (StatusCode::OK, &json!([{"n": 2}])), "{v}");
    // Filters that name another tenant find nothing: it is not registered.
    let (_, v) = e
        .call(
            Method::POST,
            "/v1/query",
            &acme,
            Some(json!({"sql": "SELECT count(*) AS n FROM events WHERE org_id = 'globex' OR 1=1"})),
        )
        .await;
    assert_eq!(v["rows"], json!([{"n": 2}]));
    let root = e.root.clone();
    let (_, v) = e
        .call(
            Method::POST,
            "/v1/query",
            &root,
            Some(json!({"sql": "SELECT count(*) AS n FROM events"})),
        )
        .await;
    assert_eq!(v["rows"], json!([{"n": 3}]), "the root sees all three");
    let dir = e._dir.path().display().to_string();
    let hostile = [
        "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/'".to_string(),
        format!(
            "CREATE EXTERNAL TABLE g STORED AS PARQUET LOCATION '{dir}/tenants/org_id=globex/events/'"
        ),
        "DROP TABLE events".into(),
        "INSERT INTO events SELECT * FROM events".into(),
        format!("COPY (SELECT * FROM events) TO '{dir}/leak.parquet'"),
        format!("SELECT * FROM '{dir}/tenants/org_id=globex/events/'"),
        "SELECT * FROM read_parquet('/etc/passwd')".into(),
        "SELECT * FROM globex_events".into(),
        "SELECT * FROM events UNION ALL SELECT * FROM deadletters".into(),
        "SELECT * FROM information_schema.tables".into(),
        "SET datafusion.execution.target_partitions = 1".into(),
        "SELECT * FROM events WHERE org_id IN (SELECT org_id FROM other.events)".into(),
    ];
    for sql in hostile {
        let (s, v) = e
            .call(
                Method::POST,
                "/v1/query",
                &acme,
                Some(json!({ "sql": sql })),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{sql}: {v}");
        assert!(!v.to_string().contains("host-of-globex"));
    }
    assert!(!e._dir.path().join("leak.parquet").exists());
}

#[tokio::test]
async fn hostile_ids_and_paths_are_refused() {
    let e = env().await;
    for bad in [
        "..",
        "%2e%2e",
        "a%2Fb",
        "ACME",
        "acme%00",
        "ac%C3%A9",
        "org_id=globex",
    ] {
        let (s, _) = e
            .call(Method::GET, &format!("/v1/tenants/{bad}"), &e.root, None)
            .await;
        assert!(
            s == StatusCode::BAD_REQUEST || s == StatusCode::NOT_FOUND,
            "{bad}: {s}"
        );
        let (s, _) = e
            .call(
                Method::GET,
                &format!("/v1/alerts?tenant={bad}"),
                &e.root,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }
    for bad in [
        "../x",
        "a/b",
        "..",
        "Acme",
        "acmé",
        "",
        "x".repeat(64).as_str(),
    ] {
        let (s, v) = e
            .call(
                Method::POST,
                "/v1/tenants",
                &e.root,
                Some(json!({"id": bad, "name": "x"})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad:?}: {v}");
    }
    let (s, _) = e
        .call(
            Method::PATCH,
            "/v1/alerts/..%2F..%2Fx",
            &e.root,
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = e
        .call(
            Method::POST,
            "/v1/policies",
            &e.root,
            Some(json!({"id": "p", "tenant": "msp", "rule_packs": ["../../etc"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn triage_is_an_append_only_history_and_the_queue_shows_the_latest() {
    let e = env().await;
    let acme = e.key("acme", "analyst", &["query", "triage"]).await;
    let id = e.alerts["acme"].clone();
    for body in [
        json!({"status": "acknowledged", "assignee": "ana"}),
        json!({"status": "in_progress", "note": "looking"}),
        json!({"status": "false_positive"}),
    ] {
        let (s, v) = e
            .call(
                Method::PATCH,
                &format!("/v1/alerts/{id}"),
                &acme,
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, _) = e
        .call(
            Method::PATCH,
            &format!("/v1/alerts/{id}"),
            &acme,
            Some(json!({"status": "maybe"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, d) = e
        .call(Method::GET, &format!("/v1/alerts/{id}"), &acme, None)
        .await;
    assert_eq!(d["history"].as_array().expect("history").len(), 3);
    assert_eq!(d["status"], "false_positive");
    assert_eq!(d["assignee"], "ana", "kept from the earlier step");
    let (_, q) = e
        .call(Method::GET, "/v1/alerts?status=false_positive", &acme, None)
        .await;
    assert_eq!(q["total"], 1);
    assert_eq!(q["alerts"][0]["alert_id"], id);
    let (_, q) = e
        .call(Method::GET, "/v1/alerts?status=new&level=high", &acme, None)
        .await;
    assert_eq!(q["total"], 1, "acme-eu's alert is still new");
    let (_, q) = e.call(Method::GET, "/v1/alerts?limit=1", &acme, None).await;
    assert_eq!(
        (q["alerts"].as_array().map(Vec::len), &q["next_offset"]),
        (Some(1), &json!(1))
    );
}
