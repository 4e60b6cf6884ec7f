//! Warden's HTTP API (axum): the control plane (tenants, keys, grants,
//! policies, audit), ingest, the unified alert queue and triage, SQL and
//! stats. Every call is authenticated with `Authorization: Bearer <key>`;
//! every read is answered from a query session over the caller's permitted
//! tenants only, so isolation holds even where a filter is forgotten.
//!
//! Errors: 401 for a missing, wrong, expired or revoked key; 403 with the
//! same body whether or not the target exists; 404 for an alert that does
//! not exist or that the caller may not see.

mod alerts;
mod control;
mod ingest;
mod openapi;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use rdkafka::producer::FutureProducer;
use serde_json::Value;
use warden_archive::TenantId;
use warden_control::{Caller, ControlPlane, Role, Scope, State};
use warden_query::Archive;

/// Limits of the API.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest ingest body.
    pub max_body_bytes: usize,
    /// Largest single event in an ingest body.
    pub max_event_bytes: usize,
    /// Most rows one queue page returns.
    pub max_page: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_event_bytes: 1 << 20,
            max_page: 500,
        }
    }
}

/// Where `POST /v1/ingest` sends events.
#[derive(Clone)]
pub struct Sink {
    pub producer: FutureProducer,
    pub topic: String,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").field("topic", &self.topic).finish()
    }
}

/// Everything a handler needs.
#[derive(Debug)]
pub struct App {
    pub control: Arc<ControlPlane>,
    pub archive: Archive,
    pub store: Arc<dyn object_store::ObjectStore>,
    pub sink: Option<Sink>,
    pub limits: Limits,
    /// Today's ingest per tenant, for the daily quotas.
    pub usage: ingest::Usage,
}

pub type Shared = Arc<App>;

/// A JSON error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// More fields of the body, beside `error`.
    pub detail: Option<serde_json::Map<String, Value>>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            detail: None,
            retry_after: None,
        }
    }

    /// Adds fields to the body (an object's fields; anything else is ignored).
    pub fn with(mut self, detail: Value) -> ApiError {
        if let Value::Object(m) = detail {
            self.detail = Some(m);
        }
        self
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized")
    }

    /// The one body for every permission failure: it never says whether
    /// the target exists.
    pub fn forbidden() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden")
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not found")
    }

    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.detail.unwrap_or_default();
        body.insert("error".into(), Value::String(self.message));
        let mut r = (self.status, Json(Value::Object(body))).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        r
    }
}

impl From<warden_control::Error> for ApiError {
    fn from(e: warden_control::Error) -> Self {
        use warden_control::Refused;
        match e {
            warden_control::Error::Refused(r) => match r {
                Refused::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
                Refused::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
                Refused::Invalid(m) => ApiError::bad(m),
            },
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

impl From<warden_query::Error> for ApiError {
    fn from(e: warden_query::Error) -> Self {
        match e {
            warden_query::Error::Refused(m) => ApiError::bad(format!("refused: {m}")),
            warden_query::Error::Query(m) => ApiError::bad(format!("query failed: {m}")),
            warden_query::Error::Timeout(t) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("query exceeded its time limit of {t:?}"),
            ),
            warden_query::Error::Store(e) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}"))
            }
        }
    }
}

impl From<object_store::Error> for ApiError {
    fn from(e: object_store::Error) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The authenticated caller and the state it was checked against.
#[derive(Debug)]
pub struct Auth {
    pub caller: Caller,
    pub state: Arc<State>,
}

impl Auth {
    /// Requires `role` and `scope` on `tenant`, else 403.
    pub fn require(&self, tenant: &TenantId, role: Role, scope: Scope) -> ApiResult<()> {
        if self.state.allowed(&self.caller, tenant, role, scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// Requires `scope`, else 403.
    pub fn scope(&self, scope: Scope) -> ApiResult<()> {
        if self.caller.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// Tenants the caller administers (where keys, grants and the audit
    /// log are visible to it).
    pub fn administered(&self) -> std::collections::BTreeSet<TenantId> {
        self.state
            .visible(&self.caller, Role::Admin)
            .into_iter()
            .collect()
    }

    /// A tenant id from the caller; malformed ids are refused with 400
    /// before anything looks them up.
    pub fn tenant_arg(s: &str) -> ApiResult<TenantId> {
        TenantId::new(s).map_err(|e| ApiError::bad(e.to_string()))
    }
}

/// Parses a JSON body into `T`, answering 400 with serde's message (which
/// names the field) instead of axum's plain-text rejection.
pub fn body<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> ApiResult<T> {
    serde_json::from_value(v).map_err(|e| ApiError::bad(format!("body: {e}")))
}

/// Authenticates the request's bearer key against the current state.
pub fn authenticate(app: &App, headers: &HeaderMap) -> ApiResult<Auth> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(ApiError::unauthorized)?;
    let key = value
        .strip_prefix("Bearer ")
        .ok_or_else(ApiError::unauthorized)?
        .trim();
    let state = app.control.state();
    let caller = state
        .authenticate(key, warden_control::model::now_ms())
        .ok_or_else(ApiError::unauthorized)?;
    Ok(Auth { caller, state })
}

/// The router.
pub fn router(app: Shared) -> axum::Router {
    axum::Router::new()
        .route("/openapi.json", get(openapi::document))
        .route(
            "/v1/tenants",
            get(control::list_tenants).post(control::create_tenant),
        )
        .route("/v1/tenants/batch", post(control::batch_tenants))
        .route(
            "/v1/tenants/{id}",
            get(control::get_tenant)
                .patch(control::update_tenant)
                .delete(control::delete_tenant),
        )
        .route("/v1/tenants/{id}/move", post(control::move_tenant))
        .route(
            "/v1/tenants/{id}/effective-policy",
            get(control::effective_policy),
        )
        .route("/v1/tenants/{id}/keys", post(control::create_key))
        .route(
            "/v1/tenants/{id}/overrides/{policy}",
            put(control::put_override).delete(control::delete_override),
        )
        .route("/v1/keys", get(control::list_keys))
        .route("/v1/keys/{id}", axum::routing::delete(control::revoke_key))
        .route(
            "/v1/grants",
            get(control::list_grants)
                .post(control::put_grant)
                .delete(control::revoke_grant),
        )
        .route(
            "/v1/policies",
            get(control::list_policies).post(control::put_policy),
        )
        .route(
            "/v1/policies/{id}",
            axum::routing::delete(control::delete_policy),
        )
        .route("/v1/audit", get(control::audit))
        .route("/v1/ingest", post(ingest::ingest))
        .route("/v1/alerts", get(alerts::queue))
        .route(
            "/v1/alerts/{id}",
            get(alerts::detail).merge(patch(alerts::triage)),
        )
        .route("/v1/query", post(alerts::query))
        .route("/v1/stats", get(alerts::stats))
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(app)
}

/// Serves the API on `listener` until the future ends.
pub async fn serve(listener: tokio::net::TcpListener, app: Shared) -> std::io::Result<()> {
    axum::serve(listener, router(app)).await
}

/// How often a server re-reads the control plane.
pub const CONTROL_REFRESH: Duration = Duration::from_secs(2);
