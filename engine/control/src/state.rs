//! The control plane's state: the fold of every log entry, with the checks
//! each change must pass, and the questions the API and the engine ask of
//! it (who may do what where; what policies apply to a tenant).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use warden_archive::TenantId;

use crate::keys;
use crate::model::{ApiKey, Entry, Grant, Op, Override, Policy, Role, Scope, Status, Tenant};

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
}

/// The state at one version of the log.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub version: u64,
    pub root: Option<TenantId>,
    pub tenants: BTreeMap<TenantId, Tenant>,
    pub keys: BTreeMap<String, ApiKey>,
    /// (principal, tenant) → grant.
    pub grants: BTreeMap<(String, TenantId), Grant>,
    /// Shared: a state is cloned per log entry, and a policy may carry thousands of rules.
    pub policies: BTreeMap<String, Arc<Policy>>,
    /// (tenant, policy) → override.
    pub overrides: BTreeMap<(TenantId, String), Override>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    pub principal: String,
    pub tenant: TenantId,
    pub role: Role,
    pub scopes: BTreeSet<Scope>,
}

/// One policy as it applies to a tenant, and where it comes from.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub policy: Arc<Policy>,
    /// The tenant it is attached to (the tenant itself or an ancestor).
    pub from: TenantId,
    /// The tenant whose override disables it here, if any.
    pub disabled_by: Option<TenantId>,
    /// Exceptions from the tenant or its ancestors below `from`.
    pub exceptions: Vec<AppliedException>,
    /// Overrides that a lock made void.
    pub ignored_overrides: Vec<TenantId>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppliedException {
    pub tenant: TenantId,
    pub filter: String,
}

/// What applies to a tenant.
#[derive(Debug, Clone, Serialize)]
pub struct Effective {
    pub tenant: TenantId,
    /// Root first.
    pub ancestry: Vec<TenantId>,
    /// The field mapping and the tenant it is set on.
    pub mapping: Option<(String, TenantId)>,
    pub policies: Vec<Applied>,
}

impl Effective {
    /// A key equal for two tenants exactly when the same rules, exceptions,
    /// indicators and mapping apply: tenants sharing it share one compiled
    /// detector.
    pub fn compile_key(&self) -> String {
        let mut k = String::new();
        if let Some((m, _)) = &self.mapping {
            k.push_str(m);
        }
        for a in self.policies.iter().filter(|a| a.disabled_by.is_none()) {
            k.push_str(&format!("|{}@{}", a.policy.id, a.policy.version));
            for e in &a.exceptions {
                k.push_str(&format!("+{}:{}", e.tenant, keys::digest(&e.filter)));
            }
        }
        k
    }
}

const MAPPINGS: [&str; 2] = ["windows", "ecs"];

impl State {
    /// The state after `e` (validated by [`State::check`] when it was
    /// written; checked again here so every reader folds the same state).
    /// All or nothing: on a refusal `self` is untouched.
    pub fn applied(&self, e: &Entry) -> Result<State, Refused> {
        let mut next = self.clone();
        next.apply_op(&e.op, e)?;
        next.version = e.version;
        Ok(next)
    }

    /// Whether `op` would apply on top of this state.
    pub fn check(&self, op: &Op, actor: &str) -> Result<(), Refused> {
        let e = Entry {
            version: self.version + 1,
            at_ms: crate::model::now_ms(),
            actor: actor.to_owned(),
            key_id: None,
            op: op.clone(),
        };
        self.applied(&e).map(drop)
    }

    fn apply_op(&mut self, op: &Op, e: &Entry) -> Result<(), Refused> {
        match op {
            Op::CreateTenant {
                id,
                name,
                parent,
                status,
                retention_days,
                quotas,
                mapping,
            } => {
                if self.tenants.contains_key(id) {
                    return Err(Refused::Conflict(format!("tenant {id} exists")));
                }
                check_mapping(mapping.as_deref())?;
                match parent {
                    None if self.root.is_some() => {
                        return Err(Refused::Invalid(
                            "a tenant needs a parent (the root exists)".into(),
                        ));
                    }
                    None => self.root = Some(id.clone()),
                    Some(p) if !self.tenants.contains_key(p) => {
                        return Err(Refused::NotFound(format!("parent tenant {p}")));
                    }
                    Some(_) => {}
                }
                self.tenants.insert(
                    id.clone(),
                    Tenant {
                        id: id.clone(),
                        name: name.clone(),
                        parent: parent.clone(),
                        status: *status,
                        retention_days: *retention_days,
                        quotas: quotas.clone(),
                        mapping: mapping.clone(),
                        created_at_ms: e.at_ms,
                        updated_at_ms: e.at_ms,
                    },
                );
            }
            Op::UpdateTenant {
                id,
                name,
                status,
                retention_days,
                quotas,
                mapping,
            } => {
                check_mapping(mapping.as_deref())?;
                let t = self.tenant_mut(id)?;
                if let Some(n) = name {
                    t.name = n.clone();
                }
                if let Some(s) = status {
                    t.status = *s;
                }
                if let Some(r) = retention_days {
                    t.retention_days = Some(*r);
                }
                if let Some(q) = quotas {
                    t.quotas = q.clone();
                }
                if let Some(m) = mapping {
                    t.mapping = Some(m.clone());
                }
                t.updated_at_ms = e.at_ms;
            }
            Op::MoveTenant { id, parent } => {
                self.tenant_mut(id)?;
                if !self.tenants.contains_key(parent) {
                    return Err(Refused::NotFound(format!("parent tenant {parent}")));
                }
                if self.root.as_ref() == Some(id) {
                    return Err(Refused::Invalid("the root cannot be moved".into()));
                }
                if self.is_ancestor_or_self(id, parent) {
                    return Err(Refused::Invalid(format!(
                        "moving {id} under {parent} would make a cycle"
                    )));
                }
                let t = self.tenant_mut(id)?;
                t.parent = Some(parent.clone());
                t.updated_at_ms = e.at_ms;
            }
            Op::DeleteTenant { id, force } => {
                self.tenant_mut(id)?;
                if self.root.as_ref() == Some(id) {
                    return Err(Refused::Invalid("the root cannot be deleted".into()));
                }
                let subtree = self.subtree(id);
                if subtree.len() > 1 && !force {
                    return Err(Refused::Conflict(format!(
                        "tenant {id} has {} descendant(s): delete with force",
                        subtree.len() - 1
                    )));
                }
                for t in &subtree {
                    self.tenants.remove(t);
                }
                let gone = |t: &TenantId| subtree.contains(t);
                self.keys.retain(|_, k| !gone(&k.tenant));
                self.grants.retain(|(_, t), _| !gone(t));
                self.policies.retain(|_, p| !gone(&p.tenant));
                let policies = &self.policies;
                self.overrides
                    .retain(|(t, p), _| !gone(t) && policies.contains_key(p));
            }
            Op::Batch { ops } => {
                for o in ops {
                    if matches!(o, Op::Batch { .. }) {
                        return Err(Refused::Invalid("batches do not nest".into()));
                    }
                    self.apply_op(o, e)?;
                }
            }
            Op::CreateKey { key } => {
                if self.keys.contains_key(&key.id) {
                    return Err(Refused::Conflict(format!("key {} exists", key.id)));
                }
                keys::check_key_id(&key.id).map_err(Refused::Invalid)?;
                crate::model::check_name("principal", &key.principal, b".@:")
                    .map_err(Refused::Invalid)?;
                if !self.tenants.contains_key(&key.tenant) {
                    return Err(Refused::NotFound(format!("tenant {}", key.tenant)));
                }
                if key.hash.len() != 64 {
                    return Err(Refused::Invalid("key hash must be SHA-256 hex".into()));
                }
                self.keys.insert(key.id.clone(), key.clone());
            }
            Op::RevokeKey { id } => {
                let k = self
                    .keys
                    .get_mut(id)
                    .ok_or_else(|| Refused::NotFound(format!("key {id}")))?;
                k.revoked = true;
            }
            Op::PutGrant {
                principal,
                tenant,
                role,
            } => {
                crate::model::check_name("principal", principal, b".@:")
                    .map_err(Refused::Invalid)?;
                self.tenant_mut(tenant)?;
                self.grants.insert(
                    (principal.clone(), tenant.clone()),
                    Grant {
                        principal: principal.clone(),
                        tenant: tenant.clone(),
                        role: *role,
                        granted_by: e.actor.clone(),
                        at_ms: e.at_ms,
                    },
                );
            }
            Op::RevokeGrant { principal, tenant } => {
                if self
                    .grants
                    .remove(&(principal.clone(), tenant.clone()))
                    .is_none()
                {
                    return Err(Refused::NotFound(format!(
                        "grant of {principal} on {tenant}"
                    )));
                }
            }
            Op::PutPolicy { policy } => {
                crate::model::check_name("policy id", &policy.id, b"").map_err(Refused::Invalid)?;
                for p in &policy.rule_packs {
                    crate::model::check_name("rule pack", p, b"").map_err(Refused::Invalid)?;
                }
                self.tenant_mut(&policy.tenant)?;
                if let Some(old) = self.policies.get(&policy.id)
                    && old.tenant != policy.tenant
                {
                    return Err(Refused::Conflict(format!(
                        "policy {} is attached to {}; it cannot move",
                        policy.id, old.tenant
                    )));
                }
                let mut p = policy.clone();
                p.version = e.version;
                self.policies.insert(p.id.clone(), Arc::new(p));
            }
            Op::DeletePolicy { id } => {
                if self.policies.remove(id).is_none() {
                    return Err(Refused::NotFound(format!("policy {id}")));
                }
                self.overrides.retain(|(_, p), _| p != id);
            }
            Op::PutOverride { ov } => {
                self.tenant_mut(&ov.tenant)?;
                let p = self
                    .policies
                    .get(&ov.policy)
                    .ok_or_else(|| Refused::NotFound(format!("policy {}", ov.policy)))?;
                if p.tenant == ov.tenant || !self.is_ancestor_or_self(&p.tenant, &ov.tenant) {
                    return Err(Refused::Invalid(format!(
                        "policy {} is not inherited by {} (it is attached to {}): only a descendant may override it",
                        p.id, ov.tenant, p.tenant
                    )));
                }
                if p.locked {
                    return Err(Refused::Conflict(format!(
                        "policy {} is locked by {}: it cannot be disabled or excepted below",
                        p.id, p.tenant
                    )));
                }
                let mut o = ov.clone();
                o.version = e.version;
                self.overrides
                    .insert((o.tenant.clone(), o.policy.clone()), o);
            }
            Op::DeleteOverride { tenant, policy } => {
                if self
                    .overrides
                    .remove(&(tenant.clone(), policy.clone()))
                    .is_none()
                {
                    return Err(Refused::NotFound(format!(
                        "override of {policy} on {tenant}"
                    )));
                }
            }
        }
        Ok(())
    }

    fn tenant_mut(&mut self, id: &TenantId) -> Result<&mut Tenant, Refused> {
        self.tenants
            .get_mut(id)
            .ok_or_else(|| Refused::NotFound(format!("tenant {id}")))
    }

    /// `a` is `b` or one of its ancestors.
    pub fn is_ancestor_or_self(&self, a: &TenantId, b: &TenantId) -> bool {
        let mut cur = Some(b);
        let mut steps = 0;
        while let Some(c) = cur {
            if c == a {
                return true;
            }
            steps += 1;
            if steps > self.tenants.len() {
                return false;
            }
            cur = self.tenants.get(c).and_then(|t| t.parent.as_ref());
        }
        false
    }

    /// The tenant and its ancestors, root first.
    pub fn ancestry(&self, id: &TenantId) -> Vec<TenantId> {
        let mut out = Vec::new();
        let mut cur = self.tenants.get(id);
        while let Some(t) = cur {
            if out.len() > self.tenants.len() {
                break;
            }
            out.push(t.id.clone());
            cur = t.parent.as_ref().and_then(|p| self.tenants.get(p));
        }
        out.reverse();
        out
    }

    /// The tenant and every descendant.
    pub fn subtree(&self, id: &TenantId) -> Vec<TenantId> {
        if !self.tenants.contains_key(id) {
            return Vec::new();
        }
        let mut children: BTreeMap<&TenantId, Vec<&TenantId>> = BTreeMap::new();
        for t in self.tenants.values() {
            if let Some(p) = &t.parent {
                children.entry(p).or_default().push(&t.id);
            }
        }
        let mut out = vec![id.clone()];
        let mut i = 0;
        while i < out.len() {
            if let Some(c) = children.get(&out[i]) {
                out.extend(c.iter().map(|t| (*t).clone()));
            }
            i += 1;
        }
        out
    }

    pub fn children(&self, id: &TenantId) -> Vec<&Tenant> {
        self.tenants
            .values()
            .filter(|t| t.parent.as_ref() == Some(id))
            .collect()
    }

    /// The caller a presented key stands for, or `None` (missing, unknown,
    /// wrong secret, expired, revoked, or its tenant deleted).
    pub fn authenticate(&self, presented: &str, now_ms: i64) -> Option<Caller> {
        let (id, secret) = keys::parse(presented)?;
        let k = self.keys.get(id)?;
        if k.revoked
            || k.expires_at_ms.is_some_and(|t| t <= now_ms)
            || !keys::verify(secret, &k.hash)
            || !self.tenants.contains_key(&k.tenant)
        {
            return None;
        }
        Some(Caller {
            key_id: k.id.clone(),
            principal: k.principal.clone(),
            tenant: k.tenant.clone(),
            role: k.role,
            scopes: k.scopes.clone(),
        })
    }

    /// The strongest role `principal` holds on `target` through grants on
    /// it or an ancestor.
    pub fn principal_role(&self, principal: &str, target: &TenantId) -> Option<Role> {
        self.ancestry(target)
            .iter()
            .filter_map(|t| {
                self.grants
                    .get(&(principal.to_owned(), t.clone()))
                    .map(|g| g.role)
            })
            .max()
    }

    /// The caller's role on `target`: its key's role when `target` is in
    /// the key's subtree, capped by what the key's principal is still
    /// granted there. `None` for a tenant outside it or one that does not
    /// exist: the two are indistinguishable to the caller.
    pub fn role_on(&self, caller: &Caller, target: &TenantId) -> Option<Role> {
        if !self.tenants.contains_key(target) || !self.is_ancestor_or_self(&caller.tenant, target) {
            return None;
        }
        let granted = self.principal_role(&caller.principal, target)?;
        Some(caller.role.min(granted))
    }

    /// Whether the caller may act on `target` with at least `role` and
    /// holds `scope`.
    pub fn allowed(&self, caller: &Caller, target: &TenantId, role: Role, scope: Scope) -> bool {
        caller.scopes.contains(&scope) && self.role_on(caller, target).is_some_and(|r| r >= role)
    }

    /// Every tenant the caller may see with at least `role`.
    pub fn visible(&self, caller: &Caller, role: Role) -> Vec<TenantId> {
        self.subtree(&caller.tenant)
            .into_iter()
            .filter(|t| self.role_on(caller, t).is_some_and(|r| r >= role))
            .collect()
    }

    /// What applies to `tenant`: every policy on its ancestry path, with
    /// the overrides of the tenants between (locked policies ignore them).
    pub fn effective(&self, tenant: &TenantId) -> Option<Effective> {
        self.tenants.get(tenant)?;
        let ancestry = self.ancestry(tenant);
        let mapping = ancestry.iter().rev().find_map(|t| {
            self.tenants
                .get(t)
                .and_then(|x| x.mapping.clone())
                .map(|m| (m, t.clone()))
        });
        let mut policies = Vec::new();
        for (depth, at) in ancestry.iter().enumerate() {
            for p in self.policies.values().filter(|p| &p.tenant == at) {
                let mut a = Applied {
                    policy: p.clone(),
                    from: at.clone(),
                    disabled_by: None,
                    exceptions: Vec::new(),
                    ignored_overrides: Vec::new(),
                };
                for below in &ancestry[depth + 1..] {
                    let Some(o) = self.overrides.get(&(below.clone(), p.id.clone())) else {
                        continue;
                    };
                    if p.locked {
                        a.ignored_overrides.push(below.clone());
                        continue;
                    }
                    if o.disabled && a.disabled_by.is_none() {
                        a.disabled_by = Some(below.clone());
                    }
                    a.exceptions
                        .extend(o.exceptions.iter().map(|f| AppliedException {
                            tenant: below.clone(),
                            filter: f.clone(),
                        }));
                }
                policies.push(a);
            }
        }
        Some(Effective {
            tenant: tenant.clone(),
            ancestry,
            mapping,
            policies,
        })
    }

    /// Active tenants (suspended ones do not ingest).
    pub fn active(&self) -> impl Iterator<Item = &Tenant> {
        self.tenants.values().filter(|t| t.status == Status::Active)
    }
}

fn check_mapping(m: Option<&str>) -> Result<(), Refused> {
    match m {
        Some(m) if !MAPPINGS.contains(&m) => Err(Refused::Invalid(format!(
            "mapping {m:?}: expected one of {}",
            MAPPINGS.join(", ")
        ))),
        _ => Ok(()),
    }
}
