//! Tenants from the control plane: inherited policies compiled once per
//! layer and shared, exceptions and disables applied by the engine, changes
//! recompiling only what they touch.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use warden_archive::TenantId;
use warden_control::{Entry, Op, Override, Policy, Quotas, State, Status};
use warden_ingest::tenants::{DetectScratch, Tenants};

fn tid(s: &str) -> TenantId {
    TenantId::new(s).expect("tenant id")
}

fn packs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/packs")
}

fn apply(s: &State, op: Op) -> State {
    let e = Entry {
        version: s.version + 1,
        at_ms: 0,
        actor: "test".into(),
        key_id: None,
        op,
    };
    s.applied(&e).expect("applies")
}

fn create(id: &str, parent: Option<&str>) -> Op {
    Op::CreateTenant {
        id: tid(id),
        name: id.into(),
        parent: parent.map(tid),
        status: Status::Active,
        retention_days: None,
        quotas: Quotas::default(),
        mapping: None,
    }
}

fn rule(id: &str, word: &str) -> String {
    format!(
        "title: {word} seen\nid: {id}\nlevel: high\nlogsource:\n  product: test\ndetection:\n  sel:\n    msg|contains: {word}\n  condition: sel\n"
    )
}

fn policy(id: &str, tenant: &str, rules: Vec<String>) -> Op {
    Op::PutPolicy {
        policy: Policy {
            id: id.into(),
            tenant: tid(tenant),
            name: id.into(),
            locked: false,
            rule_packs: Vec::new(),
            rules,
            indicators: Vec::new(),
            version: 0,
        },
    }
}

/// Rule ids (and indicator values) raised for `msg` in `tenant`.
fn fired(t: &Tenants, tenant: &str, msg: &str) -> Vec<String> {
    let (_, det) = t.resolve(tenant).expect("served");
    let raw = serde_json::json!({ "msg": msg }).to_string();
    let ev = warden_detect::event::parse(raw.as_bytes()).expect("json");
    let mut sc = DetectScratch::default();
    t.detect(det, &ev.doc(), &mut sc);
    let mut out: Vec<String> = sc
        .hits
        .iter()
        .map(|h| h.rule.meta.id.clone().unwrap_or_default())
        .collect();
    for (layer, h) in &sc.ind_hits {
        let m = t.layer(*layer).indicators.as_ref().expect("matcher");
        out.push(m.alert(h).rule_id);
    }
    out.sort();
    out
}

/// msp ─┬─ acme (own policy "extra": beta; and the baseline again)
///      ├─ initech (excepts "alpha-ok" from the baseline)
///      ├─ hooli (disables the baseline)
///      └─ umbrella (suspended)
fn tree() -> State {
    let mut s = State::default();
    for op in [
        create("msp", None),
        create("acme", Some("msp")),
        create("initech", Some("msp")),
        create("hooli", Some("msp")),
        create("umbrella", Some("msp")),
        policy("baseline", "msp", vec![rule("r-alpha", "alpha")]),
        policy(
            "extra",
            "acme",
            vec![rule("r-beta", "beta"), rule("r-alpha", "alpha")],
        ),
        Op::PutOverride {
            ov: Override {
                tenant: tid("initech"),
                policy: "baseline".into(),
                disabled: false,
                exceptions: vec![
                    "title: ok\nlogsource:\n  product: test\nfilter:\n  rules: [r-alpha]\n  sel:\n    msg|contains: alpha-ok\n  condition: not sel\n".into(),
                ],
                version: 0,
            },
        },
        Op::PutOverride {
            ov: Override {
                tenant: tid("hooli"),
                policy: "baseline".into(),
                disabled: true,
                exceptions: Vec::new(),
                version: 0,
            },
        },
        Op::UpdateTenant {
            id: tid("umbrella"),
            name: None,
            status: Some(Status::Suspended),
            retention_days: None,
            quotas: None,
            mapping: None,
        },
    ] {
        s = apply(&s, op);
    }
    s
}

#[test]
fn inherited_policies_exceptions_and_disables_decide_what_fires() {
    let t = Tenants::from_control(&tree(), &packs(), None);
    assert_eq!(t.version(), Some(10));
    assert_eq!(fired(&t, "msp", "alpha"), ["r-alpha"]);
    // Inherited, plus its own policy; the rule in both layers fires once.
    assert_eq!(fired(&t, "acme", "alpha"), ["r-alpha"]);
    assert_eq!(fired(&t, "acme", "beta"), ["r-beta"]);
    assert_eq!(fired(&t, "acme", "alpha beta"), ["r-alpha", "r-beta"]);
    // A sibling's policy does not reach initech; its exception narrows the baseline.
    assert_eq!(fired(&t, "initech", "beta"), Vec::<String>::new());
    assert_eq!(fired(&t, "initech", "alpha"), ["r-alpha"]);
    assert_eq!(fired(&t, "initech", "alpha-ok"), Vec::<String>::new());
    // The exception is initech's alone.
    assert_eq!(fired(&t, "msp", "alpha-ok"), ["r-alpha"]);
    assert_eq!(fired(&t, "hooli", "alpha"), Vec::<String>::new());
    // baseline, baseline with initech's exception, extra.
    assert_eq!(t.layers().len(), 3);
    assert_eq!(t.len(), 4);
    let (class, reason) = t.resolve("umbrella").expect_err("suspended");
    assert_eq!(class, "suspended_tenant", "{reason}");
    assert_eq!(
        t.resolve("globex").expect_err("unknown").0,
        "unknown_tenant"
    );
    assert_eq!(
        t.resolve("../msp").expect_err("invalid").0,
        "invalid_tenant"
    );
}

#[test]
fn a_change_recompiles_only_the_layers_it_touches() {
    let s1 = tree();
    let before = Tenants::from_control(&s1, &packs(), None);
    let mut s2 = apply(&s1, create("globex", Some("msp")));
    s2 = apply(&s2, policy("gx", "globex", vec![rule("r-gamma", "gamma")]));
    // A new version of a policy is a new layer.
    s2 = apply(&s2, policy("extra", "acme", vec![rule("r-delta", "delta")]));
    let after = Tenants::from_control(&s2, &packs(), Some(&before));
    let find = |t: &Tenants, key_part: &str| {
        t.layers()
            .iter()
            .find(|l| l.key.contains(key_part) && !l.key.contains('+'))
            .cloned()
            .expect("layer")
    };
    assert!(Arc::ptr_eq(
        &find(&before, "|baseline@"),
        &find(&after, "|baseline@")
    ));
    assert!(!Arc::ptr_eq(
        &find(&before, "|extra@"),
        &find(&after, "|extra@")
    ));
    assert_eq!(
        fired(&after, "globex", "gamma alpha"),
        ["r-alpha", "r-gamma"]
    );
    assert_eq!(fired(&after, "acme", "beta delta"), ["r-delta"]);

    // Scratch carried across the swap still detects correctly.
    let mut sc = DetectScratch::default();
    let raw = br#"{"msg":"alpha"}"#;
    let ev = warden_detect::event::parse(raw).expect("json");
    let (_, d) = before.resolve("msp").expect("msp");
    before.detect(d, &ev.doc(), &mut sc);
    after.carry_scratch(&before, &mut sc);
    let (_, d) = after.resolve("msp").expect("msp");
    after.detect(d, &ev.doc(), &mut sc);
    assert_eq!(sc.hits.len(), 1);
}

#[test]
fn packs_and_inline_indicators_compile_into_the_layer() {
    let mut s = apply(&State::default(), create("msp", None));
    s = apply(
        &s,
        Op::PutPolicy {
            policy: Policy {
                id: "starter".into(),
                tenant: tid("msp"),
                name: "starter".into(),
                locked: true,
                rule_packs: vec!["warden-starter".into(), "no-such-pack".into()],
                rules: vec!["title: broken\ndetection: [".into()],
                indicators: vec!["203.0.113.66".into(), "evil.example.com".into()],
                version: 0,
            },
        },
    );
    let t = Tenants::from_control(&s, &packs(), None);
    assert_eq!(t.layers().len(), 1);
    let layer = t.layer(0);
    // The shipped pack's rules compile; the missing pack and the broken
    // inline rule are reported, not fatal.
    assert!(
        layer.engine.rules().len() >= 8,
        "{}",
        layer.engine.rules().len()
    );
    assert!(layer.rejected >= 1);
    let hits = fired(&t, "msp", "evil.example.com");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(hits[0].starts_with("indicator:policy:starter:"), "{hits:?}");
}

#[test]
fn ten_thousand_tenants_under_one_policy_cost_one_compiled_set() {
    let mut s = apply(&State::default(), create("msp", None));
    let rules: Vec<String> = (0..300)
        .map(|i| rule(&format!("r-{i}"), &format!("word{i}x")))
        .collect();
    s = apply(&s, policy("baseline", "msp", rules));
    let ops: Vec<Op> = (0..10_000)
        .map(|i| create(&format!("client-{i:05}"), Some("msp")))
        .collect();
    s = apply(&s, Op::Batch { ops });
    let t = Tenants::from_control(&s, &packs(), None);
    assert_eq!(t.len(), 10_001);
    assert_eq!(t.layers().len(), 1);
    assert_eq!(t.detectors().len(), 1);
    let one = t.layer(0).engine.memory_usage();
    let total = t.memory_usage();
    // Each tenant adds its map entry, not a copy of the rules.
    let per_tenant = (total - one) / 10_001;
    assert!(per_tenant < 200, "{per_tenant} bytes per tenant");
    assert!(total < 2 * one + 2_000_000, "{total} vs one set {one}");
    assert_eq!(fired(&t, "client-09999", "a word299x here"), ["r-299"]);
}
