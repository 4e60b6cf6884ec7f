//! `POST /v1/ingest`: NDJSON in, one Kafka record per event, keyed by the
//! key's tenant. The tenant comes from the key only: an `org_id` in the
//! payload is overwritten, never trusted.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};
use warden_archive::TenantId;
use warden_control::{Quotas, Role, Scope, Status};

use crate::{ApiError, ApiResult, App, Shared, authenticate};

const DAY_MS: i64 = 86_400_000;

/// Events and bytes (of the events as archived) accepted per tenant on the
/// current UTC day, for the daily quotas. The first ingest of a tenant on a
/// day seeds its count from the archive, so a restart does not reset it;
/// from then on this process counts what it accepts. Several API replicas
/// each count their own share on top of what was archived when they
/// seeded, so they may admit up to one replica's share each beyond the quota.
#[derive(Debug, Default)]
pub struct Usage(tokio::sync::Mutex<HashMap<TenantId, Day>>);

#[derive(Debug, Clone, Copy)]
pub struct Day {
    day: i64,
    events: u64,
    bytes: u64,
}

impl Usage {
    /// Reserves a batch against the tenant's daily quotas, or refuses it
    /// whole with 429 and the seconds until the next UTC day.
    async fn reserve(
        &self,
        app: &App,
        tenant: &TenantId,
        quotas: &Quotas,
        events: u64,
        bytes: u64,
        now_ms: i64,
    ) -> ApiResult<i64> {
        let day = now_ms.div_euclid(DAY_MS);
        let known = self
            .0
            .lock()
            .await
            .get(tenant)
            .is_some_and(|d| d.day == day);
        if !known {
            let seeded = archived_on(app, tenant, now_ms).await;
            let mut m = self.0.lock().await;
            let fresh = m.get(tenant).is_none_or(|d| d.day != day);
            if fresh {
                m.insert(
                    tenant.clone(),
                    Day {
                        day,
                        events: seeded.0,
                        bytes: seeded.1,
                    },
                );
            }
        }
        let mut m = self.0.lock().await;
        let d = m.get_mut(tenant).ok_or_else(|| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "quota bookkeeping lost")
        })?;
        let over = [
            (
                "max_events_per_day",
                quotas.max_events_per_day,
                d.events,
                events,
            ),
            (
                "max_bytes_per_day",
                quotas.max_bytes_per_day,
                d.bytes,
                bytes,
            ),
        ]
        .into_iter()
        .find(|(_, limit, used, add)| limit.is_some_and(|l| used + add > l));
        if let Some((name, limit, used, add)) = over {
            let limit = limit.unwrap_or_default();
            let retry = (((day + 1) * DAY_MS - now_ms + 999) / 1000).max(1) as u64;
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "daily quota {name} of {limit} for tenant {tenant}: {used} used today, this batch needs {add}; nothing ingested"
                ),
            )
            .with(json!({ "quota": name, "limit": limit, "used": used, "batch": add }));
            e.retry_after = Some(retry);
            return Err(e);
        }
        d.events += events;
        d.bytes += bytes;
        Ok(day)
    }

    /// Gives back what was reserved but not accepted.
    async fn release(&self, tenant: &TenantId, day: i64, events: u64, bytes: u64) {
        if let Some(d) = self.0.lock().await.get_mut(tenant)
            && d.day == day
        {
            d.events = d.events.saturating_sub(events);
            d.bytes = d.bytes.saturating_sub(bytes);
        }
    }
}

/// Events and bytes archived for `tenant` on the UTC day of `now_ms`
/// (zero if the archive cannot say: the quota then counts from now).
async fn archived_on(app: &App, tenant: &TenantId, now_ms: i64) -> (u64, u64) {
    // `YYYY-MM-DD` from a formatted timestamp: digits only, safe in SQL.
    let date: String = warden_control::model::rfc3339(now_ms)
        .chars()
        .take(10)
        .collect();
    let sql = format!(
        "SELECT count(*) AS n, sum(octet_length(raw)) AS bytes FROM events WHERE dt = '{date}'"
    );
    let run = async {
        let ctx = app
            .archive
            .session(Some(std::slice::from_ref(tenant)))
            .await?;
        app.archive.run_sql(&ctx, &sql).await
    };
    match run.await {
        Ok(batches) => {
            use arrow::array::{Array, AsArray};
            let mut out = (0, 0);
            for b in &batches {
                for (i, slot) in [(0usize, &mut out.0), (1, &mut out.1)] {
                    if let Some(c) = b
                        .columns()
                        .get(i)
                        .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>())
                        && b.num_rows() > 0
                        && !c.is_null(0)
                    {
                        *slot += c.value(0).max(0) as u64;
                    }
                }
            }
            out
        }
        Err(e) => {
            tracing::warn!(tenant = %tenant, "quota: today's archived usage unknown: {e}");
            (0, 0)
        }
    }
}

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
    let quotas = &t.quotas;
    let limited = quotas.max_events_per_day.is_some() || quotas.max_bytes_per_day.is_some();
    let bytes: u64 = events.iter().map(|e| e.len() as u64).sum();
    let day = if limited {
        let now = warden_control::model::now_ms();
        Some(
            app.usage
                .reserve(&app, &tenant, quotas, events.len() as u64, bytes, now)
                .await?,
        )
    } else {
        None
    };
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
    if let Some(day) = day
        && !failed.is_empty()
    {
        let lost: u64 = results
            .iter()
            .zip(&events)
            .filter(|(r, _)| r.is_err())
            .map(|(_, e)| e.len() as u64)
            .sum();
        app.usage
            .release(&tenant, day, failed.len() as u64, lost)
            .await;
    }
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
