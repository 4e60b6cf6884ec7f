//! `POST /v1/ingest`: NDJSON in, one Kafka record per event, keyed by the
//! key's tenant. The tenant comes from the key only: an `org_id` in the
//! payload is overwritten, never trusted.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};
use warden_control::{Role, Scope, Status};

use crate::{ApiError, ApiResult, Shared, authenticate};

pub async fn ingest(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let a = authenticate(&app, &headers)?;
    let tenant = a.caller.tenant.clone();
    a.require(&tenant, Role::Viewer, Scope::Ingest)?;
    let t = a
        .state
        .tenants
        .get(&tenant)
        .ok_or_else(ApiError::forbidden)?;
    if t.status == Status::Suspended {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "tenant suspended"));
    }
    let max_body = t
        .quotas
        .max_ingest_body_bytes
        .map_or(app.limits.max_body_bytes, |q| {
            (q as usize).min(app.limits.max_body_bytes)
        });
    if body.len() > max_body {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body of {} bytes exceeds {max_body}", body.len()),
        ));
    }
    // Validate everything first: a batch with a bad line is refused whole,
    // naming each bad line, so nothing is half-ingested.
    let mut events = Vec::new();
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if line.len() > app.limits.max_event_bytes {
            errors.push(json!({"line": i + 1, "error": format!("event of {} bytes exceeds {}", line.len(), app.limits.max_event_bytes)}));
            continue;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(mut m)) => {
                m.insert("org_id".into(), json!(tenant.as_str()));
                events.push(Value::Object(m).to_string());
                lines.push(i + 1);
            }
            Ok(_) => errors.push(json!({"line": i + 1, "error": "not a JSON object"})),
            Err(e) => errors.push(json!({"line": i + 1, "error": format!("malformed JSON at column {}: {e}", e.column())})),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::bad(format!(
            "nothing ingested: {} bad lines (see lines)",
            errors.len()
        ))
        .with(json!({ "lines": errors })));
    }
    let sink = app.sink.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no Kafka configured for ingest",
        )
    })?;
    // The control version this request was authorised under: a pipeline
    // that has not seen it yet re-reads the control plane before routing.
    let version = a.state.version.to_string();
    let sends = events.iter().map(|e| {
        sink.producer.send(
            FutureRecord::to(&sink.topic)
                .key(tenant.as_str())
                .payload(e.as_str())
                .headers(OwnedHeaders::new().insert(Header {
                    key: warden_control::CONTROL_VERSION_HEADER,
                    value: Some(version.as_str()),
                })),
            Duration::from_secs(10),
        )
    });
    let results = futures::future::join_all(sends).await;
    let failed: Vec<usize> = results
        .iter()
        .zip(&lines)
        .filter(|(r, _)| r.is_err())
        .map(|(_, l)| *l)
        .collect();
    if !failed.is_empty() {
        // Acknowledged events are in Kafka and will be archived: name the
        // lines that were not, so a client resends only those.
        let msg = format!(
            "{} of {} events were not acknowledged by Kafka; resend only failed_lines",
            failed.len(),
            events.len()
        );
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, msg)
            .with(json!({ "accepted": events.len() - failed.len(), "failed_lines": failed })));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": events.len(), "tenant": tenant})),
    ))
}
