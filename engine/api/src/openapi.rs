//! `GET /openapi.json`: the API described as OpenAPI 3.1.

use axum::Json;
use serde_json::{Value, json};

/// (method, path, summary, role and scope needed)
const ROUTES: &[(&str, &str, &str, &str)] = &[
    (
        "get",
        "/v1/tenants",
        "Tenants the caller may see",
        "viewer; query or manage",
    ),
    (
        "post",
        "/v1/tenants",
        "Create a tenant {id, name, parent (default: the caller's tenant), retention_days, quotas, mapping}",
        "admin on the parent; manage",
    ),
    (
        "post",
        "/v1/tenants/batch",
        "Create, update and delete tenants in one all-or-nothing change {create:[], update:[], delete:[]}",
        "as for each operation",
    ),
    (
        "get",
        "/v1/tenants/{id}",
        "A tenant and its children",
        "viewer; query or manage",
    ),
    (
        "patch",
        "/v1/tenants/{id}",
        "Rename, set mapping; status, retention and quotas need admin on the parent",
        "admin; manage",
    ),
    (
        "delete",
        "/v1/tenants/{id}",
        "Delete (?force=true for a tenant with children or archived data)",
        "owner on the parent; manage",
    ),
    (
        "post",
        "/v1/tenants/{id}/move",
        "Move under another parent {parent}",
        "admin on the tenant, its old and new parent; manage",
    ),
    (
        "get",
        "/v1/tenants/{id}/effective-policy",
        "What applies to a tenant and where each part comes from",
        "viewer; query or manage",
    ),
    (
        "post",
        "/v1/tenants/{id}/keys",
        "Create an API key {role, scopes, expires_at, principal}; the secret is answered once as `key`",
        "admin (owner to create owner keys); manage",
    ),
    (
        "put",
        "/v1/tenants/{id}/overrides/{policy}",
        "Disable or add exceptions (Sigma filters) to an inherited unlocked policy {disabled, exceptions}",
        "admin; manage",
    ),
    (
        "delete",
        "/v1/tenants/{id}/overrides/{policy}",
        "Remove an override",
        "admin; manage",
    ),
    (
        "get",
        "/v1/keys",
        "Keys on tenants the caller administers (never secrets or hashes)",
        "admin; manage",
    ),
    (
        "delete",
        "/v1/keys/{id}",
        "Revoke a key",
        "admin able to grant its role, or the key itself",
    ),
    (
        "get",
        "/v1/grants",
        "Grants on tenants the caller administers",
        "admin; manage",
    ),
    (
        "post",
        "/v1/grants",
        "Grant {principal, tenant, role}",
        "owner: any role; admin: admin, analyst, viewer",
    ),
    (
        "delete",
        "/v1/grants",
        "Revoke {principal, tenant}",
        "as for granting that role",
    ),
    (
        "get",
        "/v1/policies",
        "Policies attached to visible tenants and inherited from above, and overrides",
        "viewer; query or manage",
    ),
    (
        "post",
        "/v1/policies",
        "Create or update a policy {id, tenant, name, locked, rule_packs, rules, indicators}",
        "admin on its tenant; manage",
    ),
    (
        "delete",
        "/v1/policies/{id}",
        "Delete a policy",
        "admin on its tenant; manage",
    ),
    (
        "get",
        "/v1/audit",
        "The control-plane log entries touching tenants the caller administers",
        "admin; manage",
    ),
    (
        "post",
        "/v1/ingest",
        "NDJSON events for the key's tenant (org_id overwritten), produced to Kafka. 202 accepted; 400 names the bad lines (nothing ingested); 413 over the body cap; 429 over a daily quota (Retry-After: seconds to the next UTC day; nothing ingested); 503 names failed_lines Kafka did not acknowledge (resend only those)",
        "any role; ingest",
    ),
    (
        "get",
        "/v1/alerts",
        "The unified queue: ?tenant, status, level, rule, from, to, limit, offset; sorted by priority then time",
        "viewer; query",
    ),
    (
        "get",
        "/v1/alerts/{id}",
        "Alert detail: matched fields, raw event, triage history",
        "analyst; query",
    ),
    (
        "patch",
        "/v1/alerts/{id}",
        "Triage {status, assignee, note}, kept as append-only history",
        "analyst; triage",
    ),
    (
        "post",
        "/v1/query",
        "SQL {sql} over events, alerts and alert_queue of the caller's tenants; read-only",
        "analyst; query",
    ),
    (
        "get",
        "/v1/stats",
        "Per-tenant events, bytes and alerts for ?month=YYYY-MM (Accept: text/csv for CSV)",
        "viewer; query",
    ),
];

pub async fn document() -> Json<Value> {
    let mut paths = serde_json::Map::new();
    for (method, path, summary, needs) in ROUTES {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        entry[*method] = json!({
            "summary": summary,
            "description": format!("Requires: {needs}."),
            "parameters": params,
            "security": [{"bearer": []}],
            "responses": {
                "200": {"description": "OK"},
                "400": {"description": "Invalid request (the message names the field)"},
                "401": {"description": "Missing, wrong, expired or revoked key"},
                "403": {"description": "Not permitted (same body whether or not the target exists)"},
            }
        });
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": {"title": "Warden API", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }))
}
