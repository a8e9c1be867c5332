//! Per-component settings from the spec: the knobs cases read (timing tolerances, the bad
//! ETag, delivery timeouts, fault budgets).

use serde::{Deserialize, Serialize};

/// Per-component settings from the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// A syntactically valid ETag that is never current (Dapr's `badEtag`).
    #[serde(default = "default_bad_etag")]
    pub bad_etag: String,
    /// Extra seconds a TTL may overrun before the item must be gone.
    #[serde(default = "default_ttl_slack")]
    pub ttl_slack_seconds: u64,
    /// Pub/sub: the component's configured delivery attempts before dead-lettering; when
    /// given, a message always retried must be delivered exactly this often.
    #[serde(default)]
    pub max_delivery_attempts: Option<u32>,
    /// Pub/sub and input bindings: how long sent messages may take to arrive.
    #[serde(default = "default_delivery_timeout")]
    pub delivery_timeout_seconds: u64,
    /// Output bindings: the request metadata naming the item (`key` for Redis, `fileName`
    /// for local storage).
    #[serde(default = "default_binding_key")]
    pub binding_key: String,
    /// Fault scenarios: how long a component may take to work again after a fault ends.
    #[serde(default = "default_recovery_budget")]
    pub recovery_budget_seconds: u64,
    /// Fault scenarios: how long one call may take to fail while the network is broken.
    #[serde(default = "default_fault_call_timeout")]
    pub fault_call_timeout_seconds: u64,
    /// Locks: how far from its expiry a lock may be freed, in milliseconds.
    #[serde(default = "default_lock_tolerance")]
    pub lock_expiry_tolerance_ms: u64,
    /// How long a case watches, at least, for what must not arrive (a dropped message's
    /// redelivery, an update after an unsubscribe), in milliseconds. Cases watch longer when
    /// the component shows it is slower (a control message's redelivery). Dapr's own suite
    /// waits 30 s for the unsubscribe.
    #[serde(default = "default_quiet")]
    pub quiet_ms: u64,
    /// Jobs: how early a trigger may come before its due time, in milliseconds (clocks and
    /// timers round).
    #[serde(default = "default_job_early")]
    pub job_early_ms: u64,
    /// Jobs: how late a trigger may come after its due time, in milliseconds (daprd's rule
    /// says 1 s).
    #[serde(default = "default_job_late")]
    pub job_late_ms: u64,
}

fn default_job_early() -> u64 {
    100
}

fn default_job_late() -> u64 {
    1000
}

fn default_quiet() -> u64 {
    2000
}

fn default_recovery_budget() -> u64 {
    15
}

fn default_fault_call_timeout() -> u64 {
    30
}

fn default_lock_tolerance() -> u64 {
    200
}

fn default_binding_key() -> String {
    "key".into()
}

fn default_delivery_timeout() -> u64 {
    30
}

fn default_bad_etag() -> String {
    "bad-etag".into()
}

fn default_ttl_slack() -> u64 {
    1
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bad_etag: default_bad_etag(),
            ttl_slack_seconds: default_ttl_slack(),
            max_delivery_attempts: None,
            delivery_timeout_seconds: default_delivery_timeout(),
            binding_key: default_binding_key(),
            lock_expiry_tolerance_ms: default_lock_tolerance(),
            recovery_budget_seconds: default_recovery_budget(),
            fault_call_timeout_seconds: default_fault_call_timeout(),
            quiet_ms: default_quiet(),
            job_early_ms: default_job_early(),
            job_late_ms: default_job_late(),
        }
    }
}

impl Settings {
    /// [`Settings::quiet_ms`] as a duration.
    pub fn quiet(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.quiet_ms)
    }
}
