//! What the control plane holds, and the operations that change it.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use warden_archive::TenantId;

/// A role granted on a tenant; it cascades to the tenant's subtree.
/// Ordered by power: `Viewer < Analyst < Admin < Owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read only: tenants, the queue, stats.
    Viewer,
    /// Queue, alert detail, triage, SQL.
    Analyst,
    /// Manage tenants, policies, keys and grants (up to admin); no delete.
    Admin,
    /// Everything, including delete and granting owner.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Whether a holder of `self` may grant `other` (owner: any role;
    /// admin: admin, analyst, viewer).
    pub fn may_grant(self, other: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => other <= Role::Admin,
            _ => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an API key may be used for, on top of its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `POST /v1/ingest`.
    Ingest,
    /// Reading: tenants, queue, alert detail, SQL, stats.
    Query,
    /// Changing an alert's status, assignee, note.
    Triage,
    /// Tenants, keys, grants, policies, audit.
    Manage,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Query => "query",
            Scope::Triage => "triage",
            Scope::Manage => "manage",
        }
    }

    pub const ALL: [Scope; 4] = [Scope::Ingest, Scope::Query, Scope::Triage, Scope::Manage];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Active,
    /// Ingest is refused; data stays readable.
    Suspended,
}

/// Per-tenant limits (absent: unlimited).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ingest_body_bytes: Option<u64>,
}

/// A tenant: a node of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// `None` only for the root.
    pub parent: Option<TenantId>,
    #[serde(default)]
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    #[serde(default)]
    pub quotas: Quotas,
    /// Field mapping of this tenant's events (`windows`, `ecs`); absent:
    /// inherited from the parent (none at the root: rule fields address
    /// events directly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A principal's role on a tenant (and its subtree).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub principal: String,
    pub tenant: TenantId,
    pub role: Role,
    pub granted_by: String,
    pub at_ms: i64,
}

/// An API key as stored: never the secret, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub principal: String,
    pub tenant: TenantId,
    pub role: Role,
    pub scopes: BTreeSet<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    #[serde(default)]
    pub revoked: bool,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// A detection policy attached to a tenant; it applies to the tenant and
/// all its descendants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub id: String,
    pub tenant: TenantId,
    #[serde(default)]
    pub name: String,
    /// Locked: no descendant may disable it or add exceptions.
    #[serde(default)]
    pub locked: bool,
    /// Shipped rule packs by name (`rules/packs/<name>`).
    #[serde(default)]
    pub rule_packs: Vec<String>,
    /// Sigma rules inline (YAML documents).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Indicators inline, one value per line (type inferred; `type,value`
    /// also accepted).
    #[serde(default)]
    pub indicators: Vec<String>,
    /// Set by the log: the version of the entry that last wrote it.
    #[serde(default)]
    pub version: u64,
}

/// A descendant's narrowing of an inherited, unlocked policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub tenant: TenantId,
    pub policy: String,
    /// The policy does not apply here and below.
    #[serde(default)]
    pub disabled: bool,
    /// Sigma filter documents (`filter:` with `rules:`), applied as AND NOT
    /// to the inherited rules they name, here and below.
    #[serde(default)]
    pub exceptions: Vec<String>,
    #[serde(default)]
    pub version: u64,
}

/// One change. A batch is applied all or nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    CreateTenant {
        id: TenantId,
        name: String,
        parent: Option<TenantId>,
        #[serde(default)]
        status: Status,
        #[serde(default)]
        retention_days: Option<u32>,
        #[serde(default)]
        quotas: Quotas,
        #[serde(default)]
        mapping: Option<String>,
    },
    UpdateTenant {
        id: TenantId,
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
    },
    MoveTenant {
        id: TenantId,
        parent: TenantId,
    },
    DeleteTenant {
        id: TenantId,
        #[serde(default)]
        force: bool,
    },
    Batch {
        ops: Vec<Op>,
    },
    CreateKey {
        key: ApiKey,
    },
    RevokeKey {
        id: String,
    },
    PutGrant {
        principal: String,
        tenant: TenantId,
        role: Role,
    },
    RevokeGrant {
        principal: String,
        tenant: TenantId,
    },
    PutPolicy {
        policy: Policy,
    },
    DeletePolicy {
        id: String,
    },
    PutOverride {
        #[serde(rename = "override")]
        ov: Override,
    },
    DeleteOverride {
        tenant: TenantId,
        policy: String,
    },
}

/// One object of the log: `_control/log/<version>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub version: u64,
    pub at_ms: i64,
    /// The principal who made the change.
    pub actor: String,
    /// The key it used (none for `warden admin bootstrap`).
    #[serde(default)]
    pub key_id: Option<String>,
    pub op: Op,
}

impl Op {
    /// Tenants an operation touches (for the audit view: a caller sees the
    /// entries that touch a tenant it may see).
    pub fn tenants(&self, out: &mut Vec<TenantId>) {
        match self {
            Op::CreateTenant { id, parent, .. } => {
                out.push(id.clone());
                out.extend(parent.iter().cloned());
            }
            Op::UpdateTenant { id, .. } | Op::DeleteTenant { id, .. } => out.push(id.clone()),
            Op::MoveTenant { id, parent } => {
                out.push(id.clone());
                out.push(parent.clone());
            }
            Op::Batch { ops } => ops.iter().for_each(|o| o.tenants(out)),
            Op::CreateKey { key } => out.push(key.tenant.clone()),
            Op::PutGrant { tenant, .. }
            | Op::RevokeGrant { tenant, .. }
            | Op::DeleteOverride { tenant, .. } => out.push(tenant.clone()),
            Op::PutPolicy { policy } => out.push(policy.tenant.clone()),
            Op::PutOverride { ov } => out.push(ov.tenant.clone()),
            Op::RevokeKey { .. } | Op::DeletePolicy { .. } => {}
        }
    }
}

/// Validates a name used for policies, rule packs and principals: the
/// tenant-id alphabet plus `.`, `@` and `:` for principals, never `/`.
pub fn check_name(what: &str, s: &str, extra: &[u8]) -> Result<(), String> {
    if s.is_empty() || s.len() > 128 {
        return Err(format!("{what} must be 1 to 128 characters"));
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(format!("{what} {s:?} must start with a-z or 0-9"));
    }
    if let Some(b) = s.bytes().find(|b| {
        !(b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || *b == b'-'
            || *b == b'_'
            || extra.contains(b))
    }) {
        return Err(format!(
            "{what} {:?} holds {:?}: only a-z, 0-9, '-', '_'{} are allowed",
            s.chars().take(80).collect::<String>(),
            b as char,
            if extra.is_empty() {
                String::new()
            } else {
                format!(" and {:?}", String::from_utf8_lossy(extra))
            }
        ));
    }
    Ok(())
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 (UTC) of a millisecond timestamp.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Parses an RFC 3339 time to milliseconds.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))
}
