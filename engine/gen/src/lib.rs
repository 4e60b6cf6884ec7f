//! Deterministic security event generator for Warden's demo, load tests and
//! benches.
//!
//! - [`windows_event`] / [`windows_events`]: mostly benign Windows events in
//!   the evtx_dump JSON layout (Sysmon, Security, PowerShell), used by the
//!   detection benches.
//! - [`generated_rules`]: Sigma rules with SigmaHQ's mix of modifiers.
//! - [`Stream`]: a multi-tenant stream (`tenant-000`, `tenant-001`, ... with
//!   a skewed mix) of Windows/Sysmon, Linux and network events, with planted
//!   attacks and threat-indicator hits whose expected rule is reported with
//!   each event, so tests can check what detection must raise.
//!
//! Everything is a pure function of the seed: the same seed gives the same
//! events, byte for byte.

mod linux;
mod rng;
mod sigma;
mod stream;
mod windows;

pub use rng::Rng;
pub use sigma::generated_rules;
pub use stream::{Event, Planted, Stream, StreamSpec, TenantKind, tenant_id, tenant_kind};
pub use windows::{windows_event, windows_event_at, windows_events};

/// Appends `s` to `out` as the inside of a JSON string.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}
