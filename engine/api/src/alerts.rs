//! The unified alert queue, alert detail, triage, SQL and stats. Every
//! read runs in a query session whose tables cover only the tenants the
//! caller may see with the role the call needs.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMillisecondType};
use axum::Json;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use warden_archive::{AlertId, TenantId, layout};
use warden_control::model::{now_ms, parse_rfc3339, rfc3339};
use warden_control::{Role, Scope};
use warden_query::datafusion::datasource::MemTable;
use warden_query::datafusion::prelude::{SessionContext, col, lit};
use warden_query::datafusion::scalar::ScalarValue;

use crate::{ApiError, ApiResult, Auth, Shared, authenticate, body};

const LEVELS: [&str; 5] = ["critical", "high", "medium", "low", "informational"];
const STATUSES: [&str; 5] = [
    "new",
    "acknowledged",
    "in_progress",
    "resolved",
    "false_positive",
];

fn priority(level: &str) -> usize {
    LEVELS
        .iter()
        .position(|l| *l == level)
        .unwrap_or(LEVELS.len())
}

/// The latest triage record of an alert.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Triage {
    status: String,
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    note: Option<String>,
    by: String,
    at: String,
}

/// One queue row: no technical origin (no host, user, IP, command line or
/// raw event).
#[derive(Debug, Clone, Serialize)]
struct Row {
    tenant: String,
    alert_id: String,
    rule_id: String,
    rule_title: String,
    level: String,
    event_time: String,
    #[serde(skip)]
    event_ms: i64,
    status: String,
    assignee: Option<String>,
}

fn strings<'a>(b: &'a RecordBatch, name: &str) -> ApiResult<&'a StringArray> {
    b.column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("column {name}")))
}

fn times<'a>(b: &'a RecordBatch, name: &str) -> ApiResult<&'a TimestampMillisecondArray> {
    b.column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("column {name}")))
}

/// Latest triage record per alert of `tenants`.
async fn triage_state(app: &Shared, tenants: &[TenantId]) -> ApiResult<BTreeMap<String, Triage>> {
    let mut latest: BTreeMap<String, (String, object_store::path::Path)> = BTreeMap::new();
    for t in tenants {
        let prefix = layout::tenant_prefix(t).join("triage");
        let objects: Vec<_> = app.store.list(Some(&prefix)).try_collect().await?;
        for o in objects {
            let parts: Vec<_> = o.location.parts().collect();
            let n = parts.len();
            if n < 2 {
                continue;
            }
            let (alert, file) = (
                parts[n - 2].as_ref().to_owned(),
                parts[n - 1].as_ref().to_owned(),
            );
            let e = latest
                .entry(alert)
                .or_insert_with(|| (String::new(), o.location.clone()));
            if file > e.0 {
                *e = (file, o.location.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    for (alert, (_, path)) in latest {
        let bytes = app.store.get(&path).await?.bytes().await?;
        if let Ok(t) = serde_json::from_slice::<Triage>(&bytes) {
            out.insert(alert, t);
        }
    }
    Ok(out)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueParams {
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    offset: Option<usize>,
}

/// Tenants the call reads: the caller's visible ones with `role`, or the
/// one it names (403 when it may not see it, whether or not it exists).
fn scope_tenants(a: &Auth, role: Role, tenant: Option<&str>) -> ApiResult<Vec<TenantId>> {
    a.scope(Scope::Query)?;
    match tenant {
        Some(t) => {
            let t = Auth::tenant_arg(t)?;
            a.require(&t, role, Scope::Query)?;
            Ok(vec![t])
        }
        None => {
            let v = a.state.visible(&a.caller, role);
            if v.is_empty() {
                return Err(ApiError::forbidden());
            }
            Ok(v)
        }
    }
}

fn ts(ms: i64) -> ScalarValue {
    ScalarValue::TimestampMillisecond(Some(ms), Some("UTC".into()))
}

async fn rows(
    app: &Shared,
    ctx: &SessionContext,
    tenants: &[TenantId],
    p: &QueueParams,
) -> ApiResult<Vec<Row>> {
    let mut df = ctx
        .table("alerts")
        .await
        .map_err(warden_query::Error::from)?;
    let mut filters = Vec::new();
    if let Some(l) = &p.level {
        if !LEVELS.contains(&l.as_str()) {
            return Err(ApiError::bad(format!(
                "level: expected one of {}",
                LEVELS.join(", ")
            )));
        }
        filters.push(col("level").eq(lit(l.as_str())));
    }
    if let Some(r) = &p.rule {
        filters.push(col("rule_id").eq(lit(r.as_str())));
    }
    if let Some(f) = &p.from {
        let ms = parse_rfc3339(f).map_err(|e| ApiError::bad(format!("from: {e}")))?;
        filters.push(col("event_time").gt_eq(lit(ts(ms))));
    }
    if let Some(t) = &p.to {
        let ms = parse_rfc3339(t).map_err(|e| ApiError::bad(format!("to: {e}")))?;
        filters.push(col("event_time").lt(lit(ts(ms))));
    }
    for f in filters {
        df = df.filter(f).map_err(warden_query::Error::from)?;
    }
    let df = df
        .select_columns(&[
            "alert_id",
            "org_id",
            "rule_id",
            "rule_title",
            "level",
            "event_time",
        ])
        .map_err(warden_query::Error::from)?;
    let batches = df.collect().await.map_err(warden_query::Error::from)?;
    let triage = triage_state(app, tenants).await?;
    let mut out = Vec::new();
    for b in &batches {
        let (id, org, rule, title, level) = (
            strings(b, "alert_id")?,
            strings(b, "org_id")?,
            strings(b, "rule_id")?,
            strings(b, "rule_title")?,
            strings(b, "level")?,
        );
        let time = times(b, "event_time")?;
        for i in 0..b.num_rows() {
            let t = triage.get(id.value(i));
            out.push(Row {
                tenant: org.value(i).to_owned(),
                alert_id: id.value(i).to_owned(),
                rule_id: rule.value(i).to_owned(),
                rule_title: title.value(i).to_owned(),
                level: level.value(i).to_owned(),
                event_ms: time.value(i),
                event_time: rfc3339(time.value(i)),
                status: t.map_or_else(|| "new".to_owned(), |t| t.status.clone()),
                assignee: t.and_then(|t| t.assignee.clone()),
            });
        }
    }
    if let Some(s) = &p.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(ApiError::bad(format!(
                "status: expected one of {}",
                STATUSES.join(", ")
            )));
        }
        out.retain(|r| &r.status == s);
    }
    out.sort_by(|a, b| {
        priority(&a.level)
            .cmp(&priority(&b.level))
            .then(b.event_ms.cmp(&a.event_ms))
            .then(a.alert_id.cmp(&b.alert_id))
    });
    Ok(out)
}

pub async fn queue(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Query(p): Query<QueueParams>,
) -> ApiResult<Json<Value>> {
    let a = authenticate(&app, &headers)?;
    let tenants = scope_tenants(&a, Role::Viewer, p.tenant.as_deref())?;
    let ctx = app.archive.session(Some(&tenants)).await?;
    let all = rows(&app, &ctx, &tenants, &p).await?;
    let limit = p.limit.unwrap_or(50).clamp(1, app.limits.max_page);
    let offset = p.offset.unwrap_or(0);
    let page: Vec<&Row> = all.iter().skip(offset).take(limit).collect();
    let next = (offset + page.len() < all.len()).then_some(offset + page.len());
    Ok(Json(
        json!({"total": all.len(), "offset": offset, "next_offset": next, "alerts": page}),
    ))
}

/// Finds an alert among the tenants where the caller is an analyst: its
/// tenant, its validated id and its row.
async fn find(app: &Shared, a: &Auth, id: &str) -> ApiResult<(TenantId, AlertId, RecordBatch)> {
    let id = AlertId::new(id).map_err(|_| ApiError::not_found())?;
    a.scope(Scope::Query).map_err(|_| ApiError::not_found())?;
    let tenants = a.state.visible(&a.caller, Role::Analyst);
    if tenants.is_empty() {
        return Err(ApiError::not_found());
    }
    let ctx = app.archive.session(Some(&tenants)).await?;
    let df = ctx
        .table("alerts")
        .await
        .and_then(|df| df.filter(col("alert_id").eq(lit(id.as_str()))))
        .map_err(warden_query::Error::from)?;
    let batches = df.collect().await.map_err(warden_query::Error::from)?;
    let b = batches
        .into_iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(ApiError::not_found)?;
    let tenant =
        TenantId::new(strings(&b, "org_id")?.value(0)).map_err(|_| ApiError::not_found())?;
    if !tenants.contains(&tenant) {
        return Err(ApiError::not_found());
    }
    Ok((tenant, id, b.slice(0, 1)))
}

async fn history(
    app: &Shared,
    tenant: &TenantId,
    id: &AlertId,
) -> ApiResult<Vec<(String, Triage)>> {
    let prefix = layout::triage_prefix(tenant, id);
    let mut objects: Vec<_> = app.store.list(Some(&prefix)).try_collect().await?;
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    let mut out = Vec::new();
    for o in objects {
        let bytes = app.store.get(&o.location).await?.bytes().await?;
        if let Ok(t) = serde_json::from_slice::<Triage>(&bytes) {
            out.push((o.location.filename().unwrap_or_default().to_owned(), t));
        }
    }
    Ok(out)
}

pub async fn detail(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let a = authenticate(&app, &headers)?;
    let (tenant, alert_id, b) = find(&app, &a, &id).await?;
    let s = |n: &str| {
        strings(&b, n).map(|c| {
            if c.is_null(0) {
                None
            } else {
                Some(c.value(0).to_owned())
            }
        })
    };
    let hist: Vec<Value> = history(&app, &tenant, &alert_id)
        .await?
        .into_iter()
        .map(|(_, t)| json!(t))
        .collect();
    let parse = |v: Option<String>| -> Value {
        v.map(|x| serde_json::from_str(&x).unwrap_or(Value::String(x)))
            .unwrap_or(Value::Null)
    };
    let tags = b
        .column_by_name("tags")
        .and_then(|c| c.as_list_opt::<i32>())
        .map(|l| {
            let v = l.value(0);
            v.as_string_opt::<i32>()
                .map(|s| s.iter().flatten().map(str::to_owned).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let latest = hist.last().cloned();
    Ok(Json(json!({
        "tenant": tenant,
        "alert_id": id,
        "rule_id": s("rule_id")?,
        "rule_title": s("rule_title")?,
        "level": s("level")?,
        "tags": tags,
        "source": s("source")?,
        "event_time": rfc3339(times(&b, "event_time")?.value(0)),
        "detection_time": rfc3339(times(&b, "detection_time")?.value(0)),
        "host": s("host")?,
        "user": s("user")?,
        "matched": parse(s("matched")?),
        "event": parse(s("raw")?),
        "origin": {"topic": s("topic")?, "partition": b.column_by_name("partition").and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int32Type>()).map(|c| c.value(0)), "offset": b.column_by_name("offset").and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>()).map(|c| c.value(0))},
        "status": latest.as_ref().and_then(|t| t.get("status").cloned()).unwrap_or(json!("new")),
        "assignee": latest.as_ref().and_then(|t| t.get("assignee").cloned()).unwrap_or(Value::Null),
        "history": hist,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriageBody {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

pub async fn triage(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(v): Json<Value>,
) -> ApiResult<Json<Value>> {
    let a = authenticate(&app, &headers)?;
    let body: TriageBody = body(v)?;
    let (tenant, alert_id, _) = find(&app, &a, &id).await?;
    a.require(&tenant, Role::Analyst, Scope::Triage)?;
    if let Some(s) = &body.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::bad(format!(
            "status: expected one of {}",
            STATUSES.join(", ")
        )));
    }
    if body.status.is_none() && body.assignee.is_none() && body.note.is_none() {
        return Err(ApiError::bad(
            "nothing to change: give status, assignee or note",
        ));
    }
    // Append-only: the next sequence number, created only if absent, so two
    // analysts racing cannot overwrite each other's step.
    for _ in 0..16 {
        let hist = history(&app, &tenant, &alert_id).await?;
        let prev = hist.last().map(|(_, t)| t.clone());
        let seq = hist.len() as u64 + 1;
        let rec = Triage {
            status: body
                .status
                .clone()
                .or_else(|| prev.as_ref().map(|p| p.status.clone()))
                .unwrap_or_else(|| "new".into()),
            assignee: body
                .assignee
                .clone()
                .or_else(|| prev.as_ref().and_then(|p| p.assignee.clone())),
            note: body.note.clone(),
            by: a.caller.principal.clone(),
            at: rfc3339(now_ms()),
        };
        let bytes = serde_json::to_vec(&rec).map_err(|e| ApiError::bad(e.to_string()))?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match app
            .store
            .put_opts(
                &layout::triage_object(&tenant, &alert_id, seq),
                PutPayload::from(bytes),
                opts,
            )
            .await
        {
            Ok(_) => {
                return Ok(Json(
                    json!({"alert_id": id, "tenant": tenant, "seq": seq, "triage": rec}),
                ));
            }
            Err(object_store::Error::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "too many concurrent triage updates; retry",
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlBody {
    sql: String,
}

/// The `alert_queue` table: the queue rows with their latest status.
fn queue_table(rows: &[Row]) -> ApiResult<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("org_id", DataType::Utf8, false),
        Field::new("alert_id", DataType::Utf8, false),
        Field::new("rule_id", DataType::Utf8, false),
        Field::new("rule_title", DataType::Utf8, false),
        Field::new("level", DataType::Utf8, false),
        Field::new(
            "event_time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("status", DataType::Utf8, false),
        Field::new("assignee", DataType::Utf8, true),
    ]));
    let s = |f: fn(&Row) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let cols: Vec<ArrayRef> = vec![
        s(|r| &r.tenant),
        s(|r| &r.alert_id),
        s(|r| &r.rule_id),
        s(|r| &r.rule_title),
        s(|r| &r.level),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.event_ms))
                .with_timezone("UTC"),
        ),
        s(|r| &r.status),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.assignee.as_deref()),
        )),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    MemTable::try_new(schema, vec![vec![batch]])
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

pub async fn query(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Json(v): Json<Value>,
) -> ApiResult<Json<Value>> {
    let a = authenticate(&app, &headers)?;
    let body: SqlBody = body(v)?;
    let tenants = scope_tenants(&a, Role::Analyst, None)?;
    let ctx = app.archive.session(Some(&tenants)).await?;
    let queue = rows(&app, &ctx, &tenants, &QueueParams::default()).await?;
    ctx.register_table("alert_queue", Arc::new(queue_table(&queue)?))
        .map_err(warden_query::Error::from)?;
    let batches = app.archive.run_sql(&ctx, &body.sql).await?;
    let text = warden_query::render(&batches, warden_query::Format::Json)?;
    let rows: Value = serde_json::from_str(&text).unwrap_or(Value::Array(vec![]));
    Ok(Json(json!({ "rows": rows })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    month: String,
}

pub async fn stats(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Query(p): Query<StatsParams>,
) -> ApiResult<Response> {
    let a = authenticate(&app, &headers)?;
    let m = p.month.as_bytes();
    let valid = m.len() == 7
        && m[4] == b'-'
        && m.iter()
            .enumerate()
            .all(|(i, b)| i == 4 || b.is_ascii_digit())
        && (b"01".as_slice()..=b"12".as_slice()).contains(&&m[5..]);
    if !valid {
        return Err(ApiError::bad(format!(
            "month {:?}: expected YYYY-MM",
            p.month
        )));
    }
    let tenants = scope_tenants(&a, Role::Viewer, None)?;
    let ctx = app.archive.session(Some(&tenants)).await?;
    // `month` is validated digits: safe to place in the statement.
    let events = app
        .archive
        .run_sql(&ctx, &format!("SELECT org_id, count(*) AS n, sum(octet_length(raw)) AS bytes FROM events WHERE dt LIKE '{}-%' GROUP BY org_id", p.month))
        .await?;
    let alerts = app
        .archive
        .run_sql(&ctx, &format!("SELECT org_id, count(*) AS n, 0 AS bytes FROM alerts WHERE dt LIKE '{}-%' GROUP BY org_id", p.month))
        .await?;
    let mut per: BTreeMap<String, (i64, i64, i64)> =
        tenants.iter().map(|t| (t.to_string(), (0, 0, 0))).collect();
    for (batches, is_events) in [(&events, true), (&alerts, false)] {
        for b in batches.iter() {
            let org = strings(b, "org_id")?;
            let n = b
                .column_by_name("n")
                .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>());
            let bytes = b
                .column_by_name("bytes")
                .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>());
            for i in 0..b.num_rows() {
                let e = per.entry(org.value(i).to_owned()).or_default();
                let n = n.map_or(0, |c| c.value(i));
                if is_events {
                    e.0 = n;
                    e.1 = bytes.map_or(0, |c| if c.is_null(i) { 0 } else { c.value(i) });
                } else {
                    e.2 = n;
                }
            }
        }
    }
    let csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if csv {
        let mut out = String::from("month,tenant,events,bytes,alerts\n");
        for (t, (e, b, al)) in &per {
            out.push_str(&format!("{},{t},{e},{b},{al}\n", p.month));
        }
        return Ok(([(header::CONTENT_TYPE, "text/csv")], out).into_response());
    }
    let tenants: Vec<Value> = per
        .iter()
        .map(|(t, (e, b, al))| json!({"tenant": t, "events": e, "bytes": b, "alerts": al}))
        .collect();
    Ok(Json(json!({"month": p.month, "tenants": tenants, "count": per.len()})).into_response())
}
