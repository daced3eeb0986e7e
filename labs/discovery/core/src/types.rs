//! What the registry stores: a service instance, its checks and their statuses.

use std::collections::BTreeMap;

use sansio_core::Millis;
use serde::{Deserialize, Serialize};

// ANCHOR: status
/// A check's verdict, in Consul's three words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The instance may get traffic.
    Passing,
    /// Alive but degraded: listed, not counted as passing.
    Warning,
    /// Down, or not yet proven up.
    Critical,
}
// ANCHOR_END: status

impl Status {
    /// The word Consul's API uses: `passing`, `warning`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passing => "passing",
            Status::Warning => "warning",
            Status::Critical => "critical",
        }
    }
}

/// How a check learns its status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckKind {
    /// The instance reports (pass, warn, fail); silence for longer than `ttl` is critical.
    Ttl {
        /// How long a report holds.
        ttl: Millis,
    },
    /// The registry probes `url` every `interval`, giving up after `timeout`.
    Http {
        /// What to GET.
        url: String,
        /// Time between probes.
        interval: Millis,
        /// How long one probe may take.
        timeout: Millis,
    },
}

/// A check as registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSpec {
    /// Unique in the registry (`service:<id>` by default).
    pub id: String,
    /// A human name.
    pub name: String,
    /// TTL or HTTP.
    pub kind: CheckKind,
    /// Remove the instance once this check has been critical this long.
    pub deregister_after: Option<Millis>,
    /// The status it starts in (Consul's default: critical).
    pub initial: Status,
}

/// A service instance as registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// The instance's id, unique in the registry.
    pub id: String,
    /// The service it is an instance of.
    pub name: String,
    /// Where it listens.
    pub address: String,
    /// Its port.
    pub port: u16,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Free-form key/value pairs.
    pub meta: BTreeMap<String, String>,
    /// Its checks.
    pub checks: Vec<CheckSpec>,
}

// ANCHOR: check_state
/// A check and what the registry knows of it now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckState {
    /// The check as registered.
    pub spec: CheckSpec,
    /// The instance it belongs to.
    pub service_id: String,
    /// The last status reported (by a heartbeat or a probe), or the initial one.
    pub status: Status,
    /// The note or probe output that came with it.
    pub output: String,
    /// For a TTL check: the last instant the reported status still holds (report time + TTL).
    pub fresh_until: Option<Millis>,
    /// When `status` became critical, if it is critical.
    pub critical_since: Option<Millis>,
}
// ANCHOR_END: check_state

/// What an HTTP probe came back with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeOutcome {
    /// A response with this status code.
    Response(u16),
    /// No response within the check's timeout.
    TimedOut,
    /// No connection at all.
    Unreachable,
}
