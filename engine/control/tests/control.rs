//! The control plane against a real (local) object store: the tree's checks,
//! racing writers, roles and keys, inherited policies.

use std::collections::BTreeSet;
use std::sync::Arc;

use warden_archive::TenantId;
use warden_control::{
    ControlPlane, Op, Override, Policy, Quotas, Refused, Role, Scope, State, Status, bootstrap,
    new_key,
};

fn tid(s: &str) -> TenantId {
    TenantId::new(s).expect("tenant id")
}

fn create(id: &str, parent: &str) -> Op {
    Op::CreateTenant {
        id: tid(id),
        name: id.to_uppercase(),
        parent: Some(tid(parent)),
        status: Status::Active,
        retention_days: None,
        quotas: Quotas::default(),
        mapping: None,
    }
}

async fn plane() -> (tempfile::TempDir, Arc<ControlPlane>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = warden_archive::store::open(&dir.path().display().to_string()).expect("store");
    let cp = Arc::new(ControlPlane::open(store).await.expect("open"));
    let (_, key) = bootstrap(&cp, &tid("msp"), "The MSP")
        .await
        .expect("bootstrap");
    (dir, cp, key)
}

async fn tree(cp: &ControlPlane) {
    let ops = vec![
        create("acme", "msp"),
        create("acme-eu", "acme"),
        create("acme-us", "acme"),
        create("globex", "msp"),
    ];
    cp.commit("root-owner", None, Op::Batch { ops })
        .await
        .expect("tree");
}

fn refused(r: warden_control::Result<Arc<warden_control::Entry>>) -> Refused {
    match r {
        Err(warden_control::Error::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_tree_refuses_cycles_orphans_and_unforced_deletes() {
    let (_d, cp, _) = plane().await;
    tree(&cp).await;
    let s = cp.state();
    assert_eq!(
        s.ancestry(&tid("acme-eu")),
        vec![tid("msp"), tid("acme"), tid("acme-eu")]
    );
    assert_eq!(s.subtree(&tid("acme")).len(), 3);

    // A cycle, a missing parent, a second root, a duplicate.
    let mv = Op::MoveTenant {
        id: tid("acme"),
        parent: tid("acme-eu"),
    };
    assert!(
        matches!(refused(cp.commit("x", None, mv).await), Refused::Invalid(m) if m.contains("cycle"))
    );
    assert!(matches!(
        refused(cp.commit("x", None, create("a", "nope")).await),
        Refused::NotFound(_)
    ));
    assert!(matches!(
        refused(cp.commit("x", None, create("acme", "msp")).await),
        Refused::Conflict(_)
    ));
    let second_root = Op::CreateTenant {
        id: tid("other"),
        name: "x".into(),
        parent: None,
        status: Status::Active,
        retention_days: None,
        quotas: Quotas::default(),
        mapping: None,
    };
    assert!(matches!(
        refused(cp.commit("x", None, second_root).await),
        Refused::Invalid(_)
    ));

    // A batch is all or nothing.
    let version = cp.state().version;
    let batch = Op::Batch {
        ops: vec![create("b1", "msp"), create("b2", "missing")],
    };
    refused(cp.commit("x", None, batch).await);
    assert_eq!(cp.state().version, version);
    assert!(!cp.state().tenants.contains_key("b1"));

    // Deleting a tenant with children needs force, and takes the subtree.
    let del = Op::DeleteTenant {
        id: tid("acme"),
        force: false,
    };
    assert!(
        matches!(refused(cp.commit("x", None, del).await), Refused::Conflict(m) if m.contains("force"))
    );
    cp.commit(
        "x",
        None,
        Op::DeleteTenant {
            id: tid("acme"),
            force: true,
        },
    )
    .await
    .expect("forced delete");
    let s = cp.state();
    assert!(!s.tenants.contains_key("acme-eu") && !s.tenants.contains_key("acme"));
    assert!(s.tenants.contains_key("globex"));
    let root_del = Op::DeleteTenant {
        id: tid("msp"),
        force: true,
    };
    refused(cp.commit("x", None, root_del).await);

    // A move re-parents a subtree.
    cp.commit("x", None, create("initech", "msp"))
        .await
        .expect("create");
    cp.commit(
        "x",
        None,
        Op::MoveTenant {
            id: tid("initech"),
            parent: tid("globex"),
        },
    )
    .await
    .expect("move");
    assert_eq!(
        cp.state().ancestry(&tid("initech")),
        vec![tid("msp"), tid("globex"), tid("initech")]
    );
}

#[tokio::test]
async fn racing_writers_never_both_win_and_every_reader_folds_the_same_state() {
    let (dir, cp, _) = plane().await;
    let store = warden_archive::store::open(&dir.path().display().to_string()).expect("store");
    let other = Arc::new(ControlPlane::open(store).await.expect("open"));
    let mut tasks = Vec::new();
    for (w, cp) in [cp.clone(), other.clone()].into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for i in 0..15 {
                cp.commit(
                    &format!("writer-{w}"),
                    None,
                    create(&format!("t-{w}-{i}"), "msp"),
                )
                .await
                .expect("commit");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    cp.refresh().await.expect("refresh");
    other.refresh().await.expect("refresh");
    let (a, b) = (cp.state(), other.state());
    assert_eq!(a.version, 31, "bootstrap + 30 creates, none lost");
    assert_eq!(a.version, b.version);
    assert_eq!(a.tenants, b.tenants);
    assert_eq!(a.tenants.len(), 31);
    // The log is the audit trail: each entry names its writer.
    let writers: BTreeSet<String> = cp.entries().iter().map(|e| e.actor.clone()).collect();
    assert!(writers.contains("writer-0") && writers.contains("writer-1"));
    let versions: Vec<u64> = cp.entries().iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=31).collect::<Vec<_>>());
}

#[tokio::test]
async fn roles_cascade_down_and_never_sideways_or_up() {
    let (_d, cp, root_key) = plane().await;
    tree(&cp).await;
    let now = warden_control::model::now_ms();
    let s = cp.state();
    let root = s.authenticate(&root_key, now).expect("root key");
    assert_eq!(
        s.visible(&root, Role::Viewer).len(),
        5,
        "the MSP master view"
    );

    // An analyst key on acme, for a principal granted analyst there.
    let scopes: BTreeSet<Scope> = [Scope::Query, Scope::Triage].into();
    let (secret, key) = new_key(
        "soc@acme",
        &tid("acme"),
        Role::Analyst,
        scopes,
        Some(now + 60_000),
        "root-owner",
    )
    .expect("key");
    let grant = Op::PutGrant {
        principal: "soc@acme".into(),
        tenant: tid("acme"),
        role: Role::Analyst,
    };
    cp.commit(
        "root-owner",
        None,
        Op::Batch {
            ops: vec![grant, Op::CreateKey { key: key.clone() }],
        },
    )
    .await
    .expect("key");
    let s = cp.state();
    let acme = s.authenticate(&secret, now).expect("acme key");
    assert_eq!(
        s.role_on(&acme, &tid("acme-eu")),
        Some(Role::Analyst),
        "cascades to sub-tenants"
    );
    assert_eq!(s.role_on(&acme, &tid("globex")), None, "not a sibling");
    assert_eq!(s.role_on(&acme, &tid("msp")), None, "not the parent");
    assert_eq!(
        s.role_on(&acme, &tid("no-such")),
        None,
        "a missing tenant looks the same"
    );
    assert!(s.allowed(&acme, &tid("acme"), Role::Analyst, Scope::Query));
    assert!(
        !s.allowed(&acme, &tid("acme"), Role::Analyst, Scope::Manage),
        "scope missing"
    );
    assert!(
        !s.allowed(&acme, &tid("acme"), Role::Admin, Scope::Query),
        "role too low"
    );

    // Wrong secret, expiry, revocation, a lowered grant.
    assert!(s.authenticate(&secret.replace('_', "_0"), now).is_none());
    assert!(s.authenticate(&secret, now + 61_000).is_none(), "expired");
    cp.commit(
        "root-owner",
        None,
        Op::PutGrant {
            principal: "soc@acme".into(),
            tenant: tid("acme"),
            role: Role::Viewer,
        },
    )
    .await
    .expect("lower");
    let s = cp.state();
    assert_eq!(
        s.role_on(&acme, &tid("acme")),
        Some(Role::Viewer),
        "capped by the principal's grant"
    );
    cp.commit("root-owner", None, Op::RevokeKey { id: key.id.clone() })
        .await
        .expect("revoke");
    assert!(cp.state().authenticate(&secret, now).is_none(), "revoked");

    assert!(Role::Owner.may_grant(Role::Owner));
    assert!(Role::Admin.may_grant(Role::Admin) && !Role::Admin.may_grant(Role::Owner));
    assert!(!Role::Analyst.may_grant(Role::Viewer));
}

fn policy(id: &str, tenant: &str, locked: bool) -> Op {
    Op::PutPolicy {
        policy: Policy {
            id: id.into(),
            tenant: tid(tenant),
            name: id.into(),
            locked,
            rule_packs: vec!["warden-starter".into()],
            rules: vec![],
            indicators: vec![],
            version: 0,
        },
    }
}

fn ov(tenant: &str, policy: &str, disabled: bool, exceptions: Vec<String>) -> Op {
    Op::PutOverride {
        ov: Override {
            tenant: tid(tenant),
            policy: policy.into(),
            disabled,
            exceptions,
            version: 0,
        },
    }
}

fn applied(s: &State, t: &str) -> Vec<(String, String, bool, usize)> {
    s.effective(&tid(t))
        .expect("tenant")
        .policies
        .iter()
        .map(|a| {
            (
                a.policy.id.clone(),
                a.from.to_string(),
                a.disabled_by.is_some(),
                a.exceptions.len(),
            )
        })
        .collect()
}

#[tokio::test]
async fn policies_inherit_with_locks_disables_exceptions_and_moves() {
    let (_d, cp, _) = plane().await;
    tree(&cp).await;
    for op in [
        policy("baseline", "msp", true),
        policy("noisy", "msp", false),
        policy("acme-own", "acme", false),
        policy("globex-own", "globex", false),
    ] {
        cp.commit("root-owner", None, op).await.expect("policy");
    }
    let s = cp.state();
    assert_eq!(
        applied(&s, "acme-eu"),
        vec![
            ("baseline".into(), "msp".into(), false, 0),
            ("noisy".into(), "msp".into(), false, 0),
            ("acme-own".into(), "acme".into(), false, 0),
        ]
    );
    // Siblings with the same inheritance share one compiled set.
    let key = |s: &State, t: &str| s.effective(&tid(t)).expect("tenant").compile_key();
    assert_eq!(key(&s, "acme-eu"), key(&s, "acme-us"));
    assert_ne!(key(&s, "acme-eu"), key(&s, "globex"));

    // Locked: no disable, no exception below.
    let r = refused(
        cp.commit("x", None, ov("acme", "baseline", true, vec![]))
            .await,
    );
    assert!(matches!(r, Refused::Conflict(m) if m.contains("locked")));
    // Only a descendant may override; the owner edits its own policy instead.
    refused(
        cp.commit("x", None, ov("acme", "acme-own", true, vec![]))
            .await,
    );
    refused(
        cp.commit("x", None, ov("globex", "acme-own", true, vec![]))
            .await,
    );

    // Unlocked: acme disables "noisy"; acme-eu adds an exception to it too.
    cp.commit("x", None, ov("acme", "noisy", true, vec![]))
        .await
        .expect("disable");
    let filter = "title: skip\nlogsource: {product: windows}\nfilter:\n  rules: [x]\n  selection: {User: svc}\n  condition: not selection\n".to_string();
    cp.commit("x", None, ov("acme-eu", "acme-own", false, vec![filter]))
        .await
        .expect("exception");
    let s = cp.state();
    assert_eq!(
        applied(&s, "acme-eu"),
        vec![
            ("baseline".into(), "msp".into(), false, 0),
            ("noisy".into(), "msp".into(), true, 0),
            ("acme-own".into(), "acme".into(), false, 1),
        ]
    );
    assert_ne!(
        key(&s, "acme-eu"),
        key(&s, "acme-us"),
        "the exception makes its own set"
    );
    assert_eq!(
        applied(&s, "globex")[1],
        ("noisy".into(), "msp".into(), false, 0)
    );

    // Locking later voids the overrides below (reported, not applied).
    cp.commit("x", None, policy("noisy", "msp", true))
        .await
        .expect("lock");
    let eff = cp.state().effective(&tid("acme-eu")).expect("tenant");
    let noisy = eff
        .policies
        .iter()
        .find(|a| a.policy.id == "noisy")
        .expect("noisy");
    assert!(noisy.disabled_by.is_none());
    assert_eq!(noisy.ignored_overrides, vec![tid("acme")]);

    // A moved tenant takes its new ancestors' policies and drops the old.
    cp.commit(
        "x",
        None,
        Op::MoveTenant {
            id: tid("acme-us"),
            parent: tid("globex"),
        },
    )
    .await
    .expect("move");
    let ids: Vec<String> = applied(&cp.state(), "acme-us")
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(ids, vec!["baseline", "noisy", "globex-own"]);
}
