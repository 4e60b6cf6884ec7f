//! The multi-tenant event stream.

use crate::Rng;

/// The indicator IP the stream plants (listed in `rules/indicators/demo.csv`).
pub const INDICATOR_IP: &str = "198.51.100.23";
/// The indicator domain the stream plants (subdomains are planted too).
pub const INDICATOR_DOMAIN: &str = "bad-updates.example";

/// What a tenant's machines are: it fixes the event shape and so the mapping
/// the tenant needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantKind {
    /// Windows endpoints: Sysmon, Security and PowerShell events in the
    /// evtx_dump layout (`--mapping windows`).
    Windows,
    /// Linux servers and network sensors in ECS (`--mapping ecs`).
    Linux,
}

impl TenantKind {
    /// The built-in mapping that reads this tenant's events.
    pub fn mapping(self) -> &'static str {
        match self {
            TenantKind::Windows => "windows",
            TenantKind::Linux => "ecs",
        }
    }
}

/// The id of the `i`th generated tenant: `tenant-000`, `tenant-001`, ...
pub fn tenant_id(i: usize) -> String {
    format!("tenant-{i:03}")
}

/// Every third tenant (1, 4, 7, ...) runs Linux; the others Windows.
pub fn tenant_kind(i: usize) -> TenantKind {
    if i % 3 == 1 {
        TenantKind::Linux
    } else {
        TenantKind::Windows
    }
}

/// An attack planted in the stream, and what must flag it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Planted {
    CredentialDumping,
    EncodedPowershell,
    OfficeChildShell,
    RunKey,
    TunnelDns,
    ReverseShell,
    CurlPipeShell,
    IndicatorIp,
    IndicatorDomain,
}

impl Planted {
    const WINDOWS: [Planted; 7] = [
        Planted::CredentialDumping,
        Planted::EncodedPowershell,
        Planted::OfficeChildShell,
        Planted::RunKey,
        Planted::TunnelDns,
        Planted::IndicatorIp,
        Planted::IndicatorDomain,
    ];
    const LINUX: [Planted; 4] = [
        Planted::ReverseShell,
        Planted::CurlPipeShell,
        Planted::IndicatorIp,
        Planted::IndicatorDomain,
    ];

    /// The `rule_id` of the alert this event must raise: a starter-pack Sigma
    /// id, or `indicator:<value>` for an indicator hit.
    pub fn rule_id(self) -> &'static str {
        match self {
            Planted::CredentialDumping => "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e01",
            Planted::EncodedPowershell => "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e02",
            Planted::OfficeChildShell => "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e03",
            Planted::RunKey => "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e04",
            Planted::TunnelDns => "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e06",
            Planted::ReverseShell => "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e07",
            Planted::CurlPipeShell => "5a0f1d3e-7b2c-4e0a-9a51-3c8d2f6b1e08",
            Planted::IndicatorIp => "indicator:198.51.100.23",
            Planted::IndicatorDomain => "indicator:bad-updates.example",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// Number of tenants (`tenant-000` ...).
    pub tenants: usize,
    /// The seed: same seed, same stream.
    pub seed: u64,
    /// Event time of the first event, milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// Event time advances by this much per event.
    pub step_ms: i64,
    /// Planted attacks per 10,000 events.
    pub attacks_per_10k: u32,
}

impl Default for StreamSpec {
    fn default() -> Self {
        StreamSpec {
            tenants: 8,
            seed: 1,
            start_ms: 1_795_000_000_000,
            step_ms: 5,
            attacks_per_10k: 20,
        }
    }
}

/// One generated event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Index of the tenant in `0..spec.tenants`.
    pub tenant: usize,
    /// The tenant id, also the Kafka key and the event's `org_id`.
    pub org_id: String,
    /// The event as one line of JSON.
    pub json: String,
    /// The planted attack, if this event is one.
    pub planted: Option<Planted>,
}

/// An endless, deterministic multi-tenant event stream.
#[derive(Debug, Clone)]
pub struct Stream {
    rng: Rng,
    spec: StreamSpec,
    /// Cumulative tenant weights (Zipf-like skew: tenant i ∝ 1/(i+1)).
    cumulative: Vec<u64>,
    n: u64,
}

impl Stream {
    pub fn new(spec: StreamSpec) -> Stream {
        let tenants = spec.tenants.max(1);
        let mut total = 0u64;
        let cumulative = (0..tenants)
            .map(|i| {
                total += 1_000_000 / (i as u64 + 1);
                total
            })
            .collect();
        Stream {
            rng: Rng::new(spec.seed),
            spec: StreamSpec { tenants, ..spec },
            cumulative,
            n: 0,
        }
    }

    fn pick_tenant(&mut self) -> usize {
        let total = *self.cumulative.last().unwrap_or(&1);
        let x = self.rng.next_u64() % total;
        self.cumulative.partition_point(|&c| c <= x)
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

impl Iterator for Stream {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let tenant = self.pick_tenant();
        let org_id = tenant_id(tenant);
        let time = rfc3339(self.spec.start_ms + self.n as i64 * self.spec.step_ms);
        self.n += 1;
        let kind = tenant_kind(tenant);
        let attack = self.rng.below(10_000) < self.spec.attacks_per_10k as usize;
        let planted = attack.then(|| match kind {
            TenantKind::Windows => Planted::WINDOWS[self.rng.below(Planted::WINDOWS.len())],
            TenantKind::Linux => Planted::LINUX[self.rng.below(Planted::LINUX.len())],
        });
        let body = match (kind, planted) {
            (TenantKind::Windows, Some(p)) => {
                crate::windows::windows_attack(&mut self.rng, &time, p)
            }
            (TenantKind::Windows, None) => crate::windows::windows_event_at(&mut self.rng, &time),
            (TenantKind::Linux, Some(p)) => crate::linux::linux_attack(&mut self.rng, &time, p),
            (TenantKind::Linux, None) => crate::linux::linux_event(&mut self.rng, &time),
        };
        // Forwarders stamp the tenant on the event as well as on the Kafka key.
        let mut json = String::with_capacity(body.len() + 24);
        json.push_str("{\"org_id\":\"");
        json.push_str(&org_id);
        json.push_str("\",");
        json.push_str(&body[1..]);
        Some(Event {
            tenant,
            org_id,
            json,
            planted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_valid_json() {
        let spec = StreamSpec {
            tenants: 5,
            attacks_per_10k: 500,
            ..StreamSpec::default()
        };
        let a: Vec<Event> = Stream::new(spec.clone()).take(2000).collect();
        let b: Vec<Event> = Stream::new(spec).take(2000).collect();
        let mut per_tenant = [0usize; 5];
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.json, y.json);
            let v: serde_json::Value = serde_json::from_str(&x.json).expect("valid JSON");
            assert_eq!(v["org_id"], x.org_id.as_str());
            per_tenant[x.tenant] += 1;
        }
        // Skewed: tenant-000 gets the most, every tenant gets some.
        assert!(per_tenant.iter().all(|&n| n > 0));
        assert!(per_tenant[0] > per_tenant[4] * 2, "{per_tenant:?}");
        assert!(a.iter().any(|e| e.planted.is_some()));
    }
}
