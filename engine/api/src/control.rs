//! `/v1/tenants…`, `/v1/keys…`, `/v1/grants…`, `/v1/policies…`, `/v1/audit`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use warden_archive::{TenantId, layout};
use warden_control::model::{parse_rfc3339, rfc3339};
use warden_control::{Op, Override, Policy, Quotas, Role, Scope, Status, Tenant, new_key};

use crate::{ApiError, ApiResult, Auth, Shared, authenticate, body};

fn tenant_json(t: &Tenant) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "parent": t.parent,
        "status": t.status,
        "retention_days": t.retention_days,
        "quotas": t.quotas,
        "mapping": t.mapping,
        "created_at": rfc3339(t.created_at_ms),
        "updated_at": rfc3339(t.updated_at_ms),
    })
}

/// Reading the control plane needs the query or the manage scope.
fn read_scope(a: &Auth) -> ApiResult<Scope> {
    if a.caller.scopes.contains(&Scope::Query) {
        Ok(Scope::Query)
    } else if a.caller.scopes.contains(&Scope::Manage) {
        Ok(Scope::Manage)
    } else {
        Err(ApiError::forbidden())
    }
}

pub async fn list_tenants(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let a = authenticate(&app, &headers)?;
    read_scope(&a)?;
    let tenants: Vec<Value> = a
        .state
        .visible(&a.caller, Role::Viewer)
        .iter()
        .filter_map(|t| a.state.tenants.get(t))
        .map(tenant_json)
        .collect();
    Ok(Json(json!({ "tenants": tenants })))
}

pub async fn get_tenant(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let a = authenticate(&app, &headers)?;
    let id = Auth::tenant_arg(&id)?;
    let scope = read_scope(&a)?;
    a.require(&id, Role::Viewer, scope)?;
    let t = a.state.tenants.get(&id).ok_or_else(ApiError::forbidden)?;
    let mut v = tenant_json(t);
    v["children"] = json!(
        a.state
            .children(&id)
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>()
    );
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    id: TenantId,
    name: String,
    #[serde(default)]
    parent: Option<TenantId>,
    #[serde(default)]
    retention_days: Option<u32>,
    #[serde(default)]
    quotas: Quotas,
    #[serde(default)]
    mapping: Option<String>,
    #[serde(default)]
    status: Status,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    retention_days: Option<u32>,
    #[serde(default)]
    quotas: Option<Quotas>,
    #[serde(default)]
    mapping: Option<String>,
}

fn create_op(a: &Auth, t: NewTenant) -> ApiResult<Op> {
    let parent = t.parent.unwrap_or_else(|| a.caller.tenant.clone());
    a.require(&parent, Role::Admin, Scope::Manage)?;
    Ok(Op::CreateTenant {
        id: t.id,
        name: t.name,
        parent: Some(parent),
        status: t.status,
        retention_days: t.retention_days,
        quotas: t.quotas,
        mapping: t.mapping,
    })
}

fn update_op(a: &Auth, id: TenantId, p: TenantPatch) -> ApiResult<Op> {
    a.require(&id, Role::Admin, Scope::Manage)?;
    // Status, retention and quotas are set from above: by an admin of the
    // parent (or an owner of the root for the root itself).
    if p.status.is_some() || p.retention_days.is_some() || p.quotas.is_some() {
        match a.state.tenants.get(&id).and_then(|t| t.parent.clone()) {
            Some(parent) => a.require(&parent, Role::Admin, Scope::Manage)?,
            None => a.require(&id, Role::Owner, Scope::Manage)?,
        }
    }
    Ok(Op::UpdateTenant {
        id,
        name: p.name,
        status: p.status,
        retention_days: p.retention_days,
        quotas: p.quotas,
        mapping: p.mapping,
    })
}

/// Deleting needs an owner of the parent; a tenant with archived data
/// needs `force` too.
async fn delete_op(app: &Shared, a: &Auth, id: TenantId, force: bool) -> ApiResult<Op> {
    a.require(&id, Role::Viewer, Scope::Manage)?;
    let parent = a
        .state
        .tenants
        .get(&id)
        .and_then(|t| t.parent.clone())
        .ok_or_else(ApiError::forbidden)?;
    a.require(&parent, Role::Owner, Scope::Manage)?;
    if !force {
        for t in a.state.subtree(&id) {
            let prefix = layout::tenant_prefix(&t);
            if app
                .store
                .list(Some(&prefix))
                .next()
                .await
                .transpose()?
                .is_some()
            {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("tenant {t} has archived data: delete with force"),
                ));
            }
        }
    }
    Ok(Op::DeleteTenant { id, force })
}

async fn commit(app: &Shared, a: &Auth, op: Op) -> ApiResult<()> {
    app.control
        .commit(&a.caller.principal, Some(&a.caller.key_id), op)
        .await?;
    Ok(())
}

pub async fn create_tenant(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Json(v): Json<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let a = authenticate(&app, &headers)?;
    let t: NewTenant = body(v)?;
    let id = t.id.clone();
    let op = create_op(&a, t)?;
    commit(&app, &a, op).await?;
    let state = app.control.state();
    let t = state.tenants.get(&id).ok_or_else(|| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "created tenant missing")
    })?;
    Ok((StatusCode::CREATED, Json(tenant_json(t))))
}

pub async fn update_tenant(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(v): Json<Value>,
) -> ApiResult<Json<Value>> {
    let a = authenticate(&app, &headers)?;
    let id = Auth::tenant_arg(&id)?;
    let op = update_op(&a, id.clone(), body(v)?)?;
    commit(&app, &a, op).await?;
    let state = app.control.state();
    let t = state.tenants.get(&id).ok_or_else(ApiError::not_found)?;
    Ok(Json(tenant_json(t)))
}

#[derive(Debug, Deserialize)]
pub struct Force {
    #[serde(default)]
    force: bool,
}

pub async fn delete_tenant(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(f): Query<Force>,
) -> ApiResult<StatusCode> {
    let a = authenticate(&app, &headers)?;
    let id = Auth::tenant_arg(&id)?;
    let op = delete_op(&app, &a, id, f.force).await?;
    commit(&app, &a, op).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveTo {
    parent: TenantId,
}

pub async fn move_tenant(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(v): Json<Value>,
) -> ApiResult<Json<Value>> {
    let a = authenticate(&app, &headers)?;
    let id = Auth::tenant_arg(&id)?;
    let m: MoveTo = body(v)?;
    a.require(&id, Role::Admin, Scope::Manage)?;
    let old = a
        .state
        .tenants
        .get(&id)
        .and_then(|t| t.parent.clone())
        .ok_or_else(ApiError::forbidden)?;
    a.require(&old, Role::Admin, Scope::Manage)?;
    a.require(&m.parent, Role::Admin, Scope::Manage)?;
    commit(
        &app,
        &a,
        Op::MoveTenant {
            id: id.clone(),
            parent: m.parent,
        },
    )
    .await?;
    let state = app.control.state();
    let t = state.tenants.get(&id).ok_or_else(ApiError::not_found)?;
    Ok(Json(tenant_json(t)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    #[serde(default)]
    create: Vec<Value>,
    #[serde(default)]
    update: Vec<BatchUpdate>,
    #[serde(default)]
    delete: Vec<BatchDelete>,
}

#[derive(Debug, Deserialize)]
pub struct BatchUpdate {
    id: TenantId,
    #[serde(flatten)]
    patch: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchDelete {
    id: TenantId,
    #[serde(default)]
    force: bool,
}

/// Creates, updates and deletes in one all-or-nothing entry.
pub async fn batch_tenants(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Json(v): Json<Value>,
) -> ApiResult<Json<Value>> {
    let a = authenticate(&app, &headers)?;
    let b: Batch = body(v)?;
    let mut ops = Vec::new();
    for c in b.create {
        ops.push(create_op(&a, body(c)?)?);
    }
    for u in b.update {
        ops.push(update_op(&a, u.id, body(u.patch)?)?);
    }
    for d in b.delete {
        ops.push(delete_op(&app, &a, d.id, d.force).await?);
    }
    if ops.is_empty() {
        return Err(ApiError::bad("empty batch"));
    }
    let n = ops.len();
    commit(&app, &a, Op::Batch { ops }).await?;
    Ok(Json(
        json!({ "applied": n, "version": app.control.state().version }),
    ))
}

pub async fn effective_policy(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let a = authenticate(&app, &headers)?;
    let id = Auth::tenant_arg(&id)?;
    let scope = read_scope(&a)?;
    a.require(&id, Role::Viewer, scope)?;
    let e = a.state.effective(&id).ok_or_else(ApiError::forbidden)?;
    let mut v = serde_json::to_value(&e).map_err(|e| ApiError::bad(e.to_string()))?;
    v["mapping"] = match &e.mapping {
        Some((m, from)) => json!({ "name": m, "from": from }),
        None => Value::Null,
    };
    v["compile_key"] = json!(e.compile_key());
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    role: Role,
    scopes: BTreeSet<Scope>,
    #[serde(default)]
    expires_at: Option<String>,
    /// Who the key is for; default: a service principal named after the key.
    #[serde(default)]
    principal: Option<String>,
}

pub async fn create_key(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(v): Json<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let a = authenticate(&app, &headers)?;
    let tenant = Auth::tenant_arg(&id)?;
    let k: NewKey = body(v)?;
    grant_allowed(&a, &tenant, k.role)?;
    if k.scopes.is_empty() {
        return Err(ApiError::bad(
            "scopes: at least one of ingest, query, triage, manage",
        ));
    }
    let expires = k
        .expires_at
        .as_deref()
        .map(parse_rfc3339)
        .transpose()
        .map_err(|e| ApiError::bad(format!("expires_at: {e}")))?;
    if expires.is_some_and(|t| t <= warden_control::model::now_ms()) {
        return Err(ApiError::bad("expires_at: in the past"));
    }
    let (secret, mut key) = new_key(
        "pending",
        &tenant,
        k.role,
        k.scopes,
        expires,
        &a.caller.principal,
    )?;
    key.principal = k.principal.unwrap_or_else(|| format!("svc-{}", key.id));
    let mut ops = Vec::new();
    if a.state.principal_role(&key.principal, &tenant) < Some(k.role) {
        ops.push(Op::PutGrant {
            principal: key.principal.clone(),
            tenant: tenant.clone(),
            role: k.role,
        });
    }
    let out = json!({
        "id": key.id,
        "key": secret,
        "principal": key.principal,
        "tenant": tenant,
        "role": key.role,
        "scopes": key.scopes,
        "expires_at": expires.map(rfc3339),
    });
    ops.push(Op::CreateKey { key });
    commit(&app, &a, Op::Batch { ops }).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

pub async fn list_keys(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let a = authenticate(&app, &headers)?;
    a.scope(Scope::Manage)?;
    let admin = a.administered();
    let keys: Vec<Value> = a
        .state
        .keys
        .values()
        .filter(|k| admin.contains(&k.tenant))
        .map(|k| {
            json!({
                "id": k.id, "principal": k.principal, "tenant": k.tenant, "role": k.role,
                "scopes": k.scopes, "expires_at": k.expires_at_ms.map(rfc3339),
                "revoked": k.revoked, "created_by": k.created_by,
                "created_at": rfc3339(k.created_at_ms),
            })
        })
        .collect();
    Ok(Json(json!({ "keys": keys })))
}

pub async fn revoke_key(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let a = authenticate(&app, &headers)?;
    let k = a.state.keys.get(&id).ok_or_else(ApiError::forbidden)?;
    // Any key may revoke itself; otherwise an admin who could have granted it.
    if k.id != a.caller.key_id {
        grant_allowed(&a, &k.tenant, k.role)?;
    }
    commit(&app, &a, Op::RevokeKey { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_grants(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let a = authenticate(&app, &headers)?;
    a.scope(Scope::Manage)?;
    let admin = a.administered();
    let grants: Vec<Value> = a
        .state
        .grants
        .values()
        .filter(|g| admin.contains(&g.tenant))
        .map(|g| {
            json!({"principal": g.principal, "tenant": g.tenant, "role": g.role,
                   "granted_by": g.granted_by, "at": rfc3339(g.at_ms)})
        })
        .collect();
    Ok(Json(json!({ "grants": grants })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    principal: String,
    tenant: TenantId,
    #[serde(default)]
    role: Option<Role>,
}

/// Admin and manage on `tenant`, and a role there that may grant `role`
/// (for grants, and for keys, which carry a role too).
fn grant_allowed(a: &Auth, tenant: &TenantId, role: Role) -> ApiResult<()> {
    a.require(tenant, Role::Admin, Scope::Manage)?;
    let mine = a
        .state
        .role_on(&a.caller, tenant)
        .ok_or_else(ApiError::forbidden)?;
    if mine.may_grant(role) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

pub async fn put_grant(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Json(v): Json<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let a = authenticate(&app, &headers)?;
    let g: GrantBody = body(v)?;
    let role = g.role.ok_or_else(|| ApiError::bad("role: required"))?;
    grant_allowed(&a, &g.tenant, role)?;
    commit(
        &app,
        &a,
        Op::PutGrant {
            principal: g.principal.clone(),
            tenant: g.tenant.clone(),
            role,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"principal": g.principal, "tenant": g.tenant, "role": role})),
    ))
}

pub async fn revoke_grant(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Json(v): Json<Value>,
) -> ApiResult<StatusCode> {
    let a = authenticate(&app, &headers)?;
    let g: GrantBody = body(v)?;
    let existing = a
        .state
        .grants
        .get(&(g.principal.clone(), g.tenant.clone()))
        .map(|x| x.role)
        .unwrap_or(Role::Viewer);
    grant_allowed(&a, &g.tenant, existing)?;
    commit(
        &app,
        &a,
        Op::RevokeGrant {
            principal: g.principal,
            tenant: g.tenant,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Policies the caller may read: those attached to tenants it sees, and
/// those it inherits from above.
pub async fn list_policies(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let a = authenticate(&app, &headers)?;
    read_scope(&a)?;
    let mut readable: BTreeSet<TenantId> = a
        .state
        .visible(&a.caller, Role::Viewer)
        .into_iter()
        .collect();
    readable.extend(a.state.ancestry(&a.caller.tenant));
    let policies: Vec<&Arc<Policy>> = a
        .state
        .policies
        .values()
        .filter(|p| readable.contains(&p.tenant))
        .collect();
    let overrides: Vec<&Override> = a
        .state
        .overrides
        .values()
        .filter(|o| readable.contains(&o.tenant))
        .collect();
    Ok(Json(
        json!({ "policies": policies, "overrides": overrides }),
    ))
}

pub async fn put_policy(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Json(v): Json<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let a = authenticate(&app, &headers)?;
    let p: Policy = body(v)?;
    a.require(&p.tenant, Role::Admin, Scope::Manage)?;
    if let Some(old) = a.state.policies.get(&p.id) {
        // Only where it is attached: a descendant never edits an inherited policy.
        a.require(&old.tenant, Role::Admin, Scope::Manage)?;
    }
    check_sigma(&p.rules, "rules", false)?;
    check_indicators(&p.indicators)?;
    let id = p.id.clone();
    commit(&app, &a, Op::PutPolicy { policy: p }).await?;
    let state = app.control.state();
    Ok((StatusCode::CREATED, Json(json!(state.policies.get(&id)))))
}

/// Refuses Sigma documents the engine could not load, naming each by its
/// place in the list (`rules[2]: ...`): rules (`filters` false) must be
/// detection rules that compile; exceptions must be filter documents.
fn check_sigma(docs: &[String], field: &str, filters: bool) -> ApiResult<()> {
    use warden_detect::sigma::ParsedDocument;
    let mut errors = Vec::new();
    for (i, text) in docs.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let parsed = match warden_detect::sigma::parse_documents(text, std::path::Path::new(&at)) {
            Ok(p) => p,
            Err(e) => {
                errors.push(json!({ "field": at, "error": e.to_string() }));
                continue;
            }
        };
        if parsed.is_empty() {
            errors.push(json!({ "field": at, "error": "no YAML document" }));
        }
        for d in &parsed {
            let problem = match d {
                ParsedDocument::Rejected { reason, .. } => Some(reason.clone()),
                ParsedDocument::Rule(_) if filters => {
                    Some("expected a Sigma filter (`filter:` with `rules:`), found a rule".into())
                }
                ParsedDocument::Filter(_) if !filters => Some(
                    "expected a Sigma rule, found a filter (exceptions belong in an override)"
                        .into(),
                ),
                _ => None,
            };
            if let Some(p) = problem {
                errors.push(json!({ "field": at, "error": p }));
            }
        }
        if !filters && errors.is_empty() {
            let mut b = warden_detect::Engine::builder();
            if b.add_yaml(text, std::path::Path::new(&at)).is_ok() {
                for r in b.build().rejections() {
                    errors.push(json!({ "field": at, "error": r.reason }));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::bad(format!("{} invalid {field}", errors.len()))
            .with(json!({ "errors": errors })))
    }
}

/// Refuses inline indicators that cannot be used, naming the line.
fn check_indicators(lines: &[String]) -> ApiResult<()> {
    let loaded = warden_detect::indicators::parse_plain(&lines.join("\n"), "policy", "indicators");
    if loaded.rejected.is_empty() {
        return Ok(());
    }
    let errors: Vec<Value> = loaded
        .rejected
        .iter()
        .map(|r| json!({ "error": r.to_string() }))
        .collect();
    Err(
        ApiError::bad(format!("{} invalid indicators", errors.len()))
            .with(json!({ "errors": errors })),
    )
}

pub async fn delete_policy(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let a = authenticate(&app, &headers)?;
    let p = a.state.policies.get(&id).ok_or_else(ApiError::forbidden)?;
    a.require(&p.tenant, Role::Admin, Scope::Manage)?;
    commit(&app, &a, Op::DeletePolicy { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    exceptions: Vec<String>,
}

pub async fn put_override(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Path((id, policy)): Path<(String, String)>,
    Json(v): Json<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let a = authenticate(&app, &headers)?;
    let tenant = Auth::tenant_arg(&id)?;
    let o: OverrideBody = body(v)?;
    a.require(&tenant, Role::Admin, Scope::Manage)?;
    check_sigma(&o.exceptions, "exceptions", true)?;
    let ov = Override {
        tenant,
        policy,
        disabled: o.disabled,
        exceptions: o.exceptions,
        version: 0,
    };
    commit(&app, &a, Op::PutOverride { ov: ov.clone() }).await?;
    Ok((StatusCode::CREATED, Json(json!(ov))))
}

pub async fn delete_override(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Path((id, policy)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let a = authenticate(&app, &headers)?;
    let tenant = Auth::tenant_arg(&id)?;
    a.require(&tenant, Role::Admin, Scope::Manage)?;
    commit(&app, &a, Op::DeleteOverride { tenant, policy }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit log: entries touching a tenant the caller administers; an
/// admin of the root sees everything.
pub async fn audit(AxState(app): AxState<Shared>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let a = authenticate(&app, &headers)?;
    a.scope(Scope::Manage)?;
    let admin = a.administered();
    if admin.is_empty() {
        return Err(ApiError::forbidden());
    }
    let root = a.state.root.as_ref().is_some_and(|r| admin.contains(r));
    let mut touched = Vec::new();
    let entries: Vec<Value> = app
        .control
        .entries()
        .iter()
        .filter(|e| {
            touched.clear();
            e.op.tenants(&mut touched);
            root || touched.iter().any(|t| admin.contains(t))
        })
        .map(|e| {
            let mut op = serde_json::to_value(&e.op).unwrap_or(Value::Null);
            redact_hashes(&mut op);
            json!({"version": e.version, "at": rfc3339(e.at_ms), "actor": e.actor,
                   "key_id": e.key_id, "op": op})
        })
        .collect();
    Ok(Json(json!({ "entries": entries })))
}

/// Key hashes stay in the store; the audit view shows that a key was made.
fn redact_hashes(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("hash") {
                m.insert("hash".into(), json!("(redacted)"));
            }
            m.values_mut().for_each(redact_hashes);
        }
        Value::Array(a) => a.iter_mut().for_each(redact_hashes),
        _ => {}
    }
}
