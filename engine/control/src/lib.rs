//! Warden's control plane: the tenant tree (MSP → clients → sub-tenants),
//! roles granted on tenants and cascading to their subtrees, API keys
//! (stored as hashes), and detection policies inherited down the tree.
//!
//! It is an append-only log of versioned JSON objects under
//! `_control/log/<version>.json` in the archive's object store, written
//! with create-if-absent: two writers racing for the same version cannot
//! both win, and the loser re-reads and retries against the new state.
//! Every engine and API server folds the same log into the same
//! [`State`], and the log doubles as the audit trail (who changed what,
//! when).

mod error;
pub mod keys;
pub mod log;
pub mod model;
pub mod state;

pub use error::{Error, Result};

/// The Kafka record header naming the control-plane version an ingest was
/// authorised under: a pipeline behind it re-reads the control plane before
/// routing the record, so a tenant created just before its first events is
/// never sent to the dead letters as unknown.
pub const CONTROL_VERSION_HEADER: &str = "warden-control-version";
pub use log::ControlPlane;
pub use model::{ApiKey, Entry, Grant, Op, Override, Policy, Quotas, Role, Scope, Status, Tenant};
pub use state::{Caller, Effective, Refused, State};

use std::collections::BTreeSet;
use std::sync::Arc;

use warden_archive::TenantId;

/// The principal `warden admin bootstrap` creates as the root's owner.
pub const ROOT_OWNER: &str = "root-owner";

/// A fresh key for `principal` on `tenant`: the secret to show once and the
/// record to store (hash only).
pub fn new_key(
    principal: &str,
    tenant: &TenantId,
    role: Role,
    scopes: BTreeSet<Scope>,
    expires_at_ms: Option<i64>,
    created_by: &str,
) -> Result<(String, ApiKey)> {
    let k = keys::generate().map_err(Error::Other)?;
    let key = ApiKey {
        id: k.id,
        principal: principal.to_owned(),
        tenant: tenant.clone(),
        role,
        scopes,
        expires_at_ms,
        hash: k.hash,
        revoked: false,
        created_by: created_by.to_owned(),
        created_at_ms: model::now_ms(),
    };
    Ok((k.presented, key))
}

/// Creates the root tenant, grants [`ROOT_OWNER`] owner on it and returns
/// that principal's first key (all scopes, no expiry). Refused when a root
/// exists.
pub async fn bootstrap(
    cp: &ControlPlane,
    root: &TenantId,
    name: &str,
) -> Result<(Arc<Entry>, String)> {
    if let Some(r) = &cp.state().root {
        return Err(Refused::Conflict(format!(
            "the control plane already has a root tenant ({r})"
        ))
        .into());
    }
    let (secret, key) = new_key(
        ROOT_OWNER,
        root,
        Role::Owner,
        Scope::ALL.into_iter().collect(),
        None,
        "bootstrap",
    )?;
    let op = Op::Batch {
        ops: vec![
            Op::CreateTenant {
                id: root.clone(),
                name: name.to_owned(),
                parent: None,
                status: Status::Active,
                retention_days: None,
                quotas: Quotas::default(),
                mapping: None,
            },
            Op::PutGrant {
                principal: ROOT_OWNER.into(),
                tenant: root.clone(),
                role: Role::Owner,
            },
            Op::CreateKey { key },
        ],
    };
    let entry = cp.commit("bootstrap", None, op).await?;
    Ok((entry, secret))
}
