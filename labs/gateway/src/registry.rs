//! Upstreams found in a service registry: a Consul blocking-query watch, the passing
//! instances it returns, one connection pool per instance, and a balancer over them.
//!
//! An upstream configured with `service` and `registry` instead of `url` keeps a task that
//! asks the registry `GET /v1/health/service/<name>?passing&index=N&wait=…` (Consul's own
//! API, so it works against the discovery lab's registry and against a real Consul agent).
//! The registry holds the request until the service's index moves past `N`, then answers
//! with the passing instances; the task swaps them in and asks again with the new index.
//! When the registry is down or answers nonsense, the task backs off and the gateway keeps
//! routing to the last set it knew: a registry outage must not become an outage of every
//! service behind the gateway.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, Uri};
use discovery_core::{Balancer, Millis, Strategy};
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::Value;

use crate::config::Balance;
use crate::pool::Pool;

/// How long one blocking query may wait in the registry (Consul's default is 5 min; a
/// shorter wait notices a silently dead registry connection sooner).
const WAIT: Duration = Duration::from_secs(60);
/// The first pause after a failed query; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest pause between two failed queries.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Where an upstream's requests go: one fixed address, or a registry service's instances.
#[derive(Debug)]
pub enum Endpoints {
    /// One address from the configuration, one pool.
    Fixed(Arc<Pool>),
    /// The passing instances of a registry service, kept up to date by a watch.
    Discovered(Discovered),
}

impl Endpoints {
    // ANCHOR: pick
    /// The pool of the instance the next call goes to, avoiding `avoid` (the instance that
    /// just failed) when there is another; `None` when the service has no passing instance.
    pub fn pick(&self, avoid: Option<&str>) -> Option<Arc<Pool>> {
        match self {
            Endpoints::Fixed(pool) => Some(Arc::clone(pool)),
            Endpoints::Discovered(discovered) => {
                let mut set = discovered.set.lock();
                let tries = set.pools.len();
                let mut pick = None;
                for _ in 0..tries.max(1) {
                    pick = set.balancer.pick().map(str::to_owned);
                    if pick.as_deref() != avoid || tries < 2 {
                        break;
                    }
                }
                // Two choices may keep drawing the failed one; then any other will do.
                if tries >= 2 && pick.is_some() && pick.as_deref() == avoid {
                    pick = set
                        .pools
                        .keys()
                        .find(|authority| Some(authority.as_str()) != avoid)
                        .cloned();
                }
                pick.and_then(|authority| set.pools.get(&authority).cloned())
            }
        }
    }
    // ANCHOR_END: pick

    /// Feeds the latency of a call to `authority` to the balancer (what two choices compares).
    pub fn record(&self, authority: &str, took: Millis) {
        if let Endpoints::Discovered(discovered) = self {
            discovered.set.lock().balancer.record(authority, took);
        }
    }

    /// How many instances there are to choose from now.
    pub fn len(&self) -> usize {
        match self {
            Endpoints::Fixed(_) => 1,
            Endpoints::Discovered(discovered) => discovered.set.lock().pools.len(),
        }
    }

    /// Whether there is no instance to call.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `host:port` of every instance, in order.
    pub fn instances(&self) -> Vec<String> {
        self.pools()
            .iter()
            .map(|pool| pool.authority().to_owned())
            .collect()
    }

    /// The registry index of the last set the watch applied (0 for a fixed upstream, or
    /// before the first answer).
    pub fn index(&self) -> u64 {
        match self {
            Endpoints::Fixed(_) => 0,
            Endpoints::Discovered(discovered) => discovered.set.lock().index,
        }
    }

    /// Connections opened by the pools of the current instances.
    pub fn connections_opened(&self) -> u64 {
        self.pools()
            .iter()
            .map(|pool| pool.connections_opened())
            .sum()
    }

    /// Idle connections in the pools of the current instances.
    pub fn idle(&self) -> usize {
        self.pools().iter().map(|pool| pool.idle()).sum()
    }

    fn pools(&self) -> Vec<Arc<Pool>> {
        match self {
            Endpoints::Fixed(pool) => vec![Arc::clone(pool)],
            Endpoints::Discovered(discovered) => {
                discovered.set.lock().pools.values().cloned().collect()
            }
        }
    }
}

/// A registry service's instances and the task that watches them (stopped when dropped).
#[derive(Debug)]
pub struct Discovered {
    set: Arc<Mutex<InstanceSet>>,
    task: tokio::task::AbortHandle,
}

impl Drop for Discovered {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The instances the last good answer named, a pool and a balancer slot for each.
#[derive(Debug)]
struct InstanceSet {
    balancer: Balancer,
    /// By `host:port`: an instance's pool lives exactly as long as it is passing.
    pools: BTreeMap<String, Arc<Pool>>,
    index: u64,
    max_idle: usize,
}

impl InstanceSet {
    // ANCHOR: apply
    /// Makes `authorities` the instances: a pool for each new one, the pool of each gone
    /// one dropped (closing its idle connections); the ones that stay keep their pool and
    /// their latency average.
    fn apply(&mut self, authorities: Vec<String>, index: u64) {
        let mut pools = BTreeMap::new();
        for authority in authorities {
            let pool = match self.pools.remove(&authority) {
                Some(pool) => pool,
                None => match Pool::new(&authority, self.max_idle) {
                    Ok(pool) => Arc::new(pool),
                    Err(error) => {
                        tracing::warn!(%error, "the registry named an unusable address");
                        continue;
                    }
                },
            };
            pools.insert(authority, pool);
        }
        self.balancer.set_instances(pools.keys().cloned());
        self.pools = pools;
        self.index = index;
    }
    // ANCHOR_END: apply
}

impl Discovered {
    /// Watches `service` in the registry at `registry` (`http://host:port`). Needs a tokio
    /// runtime: the watch is a task of its own.
    pub fn start(
        upstream: &str,
        service: &str,
        registry: &str,
        balance: Balance,
        max_idle: usize,
    ) -> Result<Self, String> {
        if service.is_empty()
            || !service
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(format!(
                "service name {service:?} must be letters, digits, '-', '_' or '.'"
            ));
        }
        let uri: Uri = registry
            .parse()
            .map_err(|error| format!("registry {registry:?}: {error}"))?;
        let authority = match (uri.scheme_str(), uri.authority()) {
            (Some("http"), Some(authority)) => authority.as_str().to_owned(),
            _ => return Err(format!("registry {registry:?} is not http://host:port")),
        };
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "a registry upstream needs a tokio runtime to watch from".to_owned())?;
        let strategy = match balance {
            Balance::RoundRobin => Strategy::RoundRobin,
            Balance::TwoChoices => Strategy::TwoChoices,
        };
        // The seed only spreads two choices' draws; any fixed value keeps runs repeatable.
        let seed = upstream.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let set = Arc::new(Mutex::new(InstanceSet {
            balancer: Balancer::new(strategy, seed),
            pools: BTreeMap::new(),
            index: 0,
            max_idle,
        }));
        let registry = Pool::new(&authority, 1)?;
        let task = runtime
            .spawn(watch(
                Arc::clone(&set),
                registry,
                service.to_owned(),
                upstream.to_owned(),
            ))
            .abort_handle();
        Ok(Self { set, task })
    }
}

// ANCHOR: watch
/// Asks the registry for `service`'s passing instances, again and again, each question
/// parked in the registry until the answer changes. A failed question leaves the set as it
/// was and is asked again after a pause that doubles, up to 10 s.
async fn watch(set: Arc<Mutex<InstanceSet>>, registry: Pool, service: String, upstream: String) {
    let mut index = 0u64;
    let mut backoff = FIRST_BACKOFF;
    loop {
        match blocking_query(&registry, &service, index).await {
            Ok((new_index, authorities)) => {
                backoff = FIRST_BACKOFF;
                // Consul's rule: an index that went backwards (the registry restarted, say)
                // starts the watch over.
                index = if new_index < index { 0 } else { new_index };
                tracing::debug!(%upstream, index, instances = ?authorities, "registry answered");
                set.lock().apply(authorities, new_index);
            }
            Err(error) => {
                tracing::warn!(%upstream, registry = %registry.authority(), %error,
                    "registry query failed; keeping the last known instances");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
// ANCHOR_END: watch

/// One blocking query: the index it returned and the `host:port` of each passing instance.
async fn blocking_query(
    registry: &Pool,
    service: &str,
    index: u64,
) -> Result<(u64, Vec<String>), String> {
    let uri = format!(
        "/v1/health/service/{service}?passing&index={index}&wait={}s",
        WAIT.as_secs()
    );
    let request = Request::get(uri)
        .body(Body::empty())
        .map_err(|error| error.to_string())?;
    // The registry adds up to wait/16 of jitter; past that and a margin, the connection is dead.
    let limit = WAIT + WAIT / 16 + Duration::from_secs(5);
    let response = tokio::time::timeout(limit, registry.send(request))
        .await
        .map_err(|_| format!("no answer within {limit:?}"))?
        .map_err(|error| error.to_string())?;
    let status = response.status();
    let new_index = response
        .headers()
        .get("x-consul-index")
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    let body = tokio::time::timeout(limit, response.into_body().collect())
        .await
        .map_err(|_| "the answer's body did not arrive".to_owned())?
        .map_err(|error| error.to_string())?
        .to_bytes();
    if status != StatusCode::OK {
        return Err(format!(
            "answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    let new_index = new_index.ok_or("the answer carries no X-Consul-Index")?;
    let entries: Value =
        serde_json::from_slice(&body).map_err(|error| format!("not JSON: {error}"))?;
    Ok((new_index, passing_addresses(&entries)?))
}

// ANCHOR: addresses
/// The `host:port` of each entry of a `/v1/health/service` answer, sorted: the service's
/// own address, else its node's (Consul leaves `Service.Address` empty for an instance that
/// lives at its node's address).
fn passing_addresses(entries: &Value) -> Result<Vec<String>, String> {
    let entries = entries.as_array().ok_or("the answer is not a JSON array")?;
    let mut authorities: Vec<String> = entries
        .iter()
        .filter_map(|entry| {
            let service = &entry["Service"];
            let port = service["Port"].as_u64().filter(|port| *port > 0)?;
            let address = service["Address"]
                .as_str()
                .filter(|address| !address.is_empty())
                .or_else(|| entry["Node"]["Address"].as_str())?;
            Some(if address.contains(':') {
                format!("[{address}]:{port}")
            } else {
                format!("{address}:{port}")
            })
        })
        .collect();
    authorities.sort();
    authorities.dedup();
    Ok(authorities)
}
// ANCHOR_END: addresses

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A registry upstream whose set is `authorities`, its watch pointed at a closed port
    /// (it fails and backs off; the set stays as given).
    fn discovered(balance: Balance, authorities: &[&str]) -> Endpoints {
        let discovered =
            Discovered::start("user", "user", "http://127.0.0.1:9", balance, 4).expect("valid");
        discovered
            .set
            .lock()
            .apply(authorities.iter().map(|a| (*a).to_owned()).collect(), 7);
        Endpoints::Discovered(discovered)
    }

    fn picks(endpoints: &Endpoints, n: usize, avoid: Option<&str>) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for _ in 0..n {
            let pool = endpoints.pick(avoid).expect("an instance");
            *counts.entry(pool.authority().to_owned()).or_default() += 1;
        }
        counts
    }

    #[tokio::test]
    async fn two_choices_sends_less_to_the_instance_the_proxied_calls_found_slow() {
        let endpoints = discovered(Balance::TwoChoices, &["127.0.0.1:1", "127.0.0.1:2"]);
        for _ in 0..10 {
            endpoints.record("127.0.0.1:1", Millis(200));
            endpoints.record("127.0.0.1:2", Millis(10));
        }
        let counts = picks(&endpoints, 100, None);
        assert!(
            counts.get("127.0.0.1:1").copied().unwrap_or(0) < 10,
            "{counts:?}"
        );
        let round_robin = discovered(Balance::RoundRobin, &["127.0.0.1:1", "127.0.0.1:2"]);
        let counts = picks(&round_robin, 100, None);
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), [50, 50]);
    }

    #[tokio::test]
    async fn a_retry_avoids_the_instance_that_just_failed_when_there_is_another() {
        let endpoints = discovered(
            Balance::TwoChoices,
            &["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"],
        );
        let counts = picks(&endpoints, 60, Some("127.0.0.1:2"));
        assert!(!counts.contains_key("127.0.0.1:2"), "{counts:?}");
        let alone = discovered(Balance::RoundRobin, &["127.0.0.1:2"]);
        assert_eq!(picks(&alone, 3, Some("127.0.0.1:2"))["127.0.0.1:2"], 3);
        // An instance that left the set loses its pool; an empty set has nothing to pick.
        let Endpoints::Discovered(inner) = &alone else {
            unreachable!()
        };
        inner.set.lock().apply(Vec::new(), 8);
        assert!(alone.pick(None).is_none());
        assert_eq!((alone.index(), alone.instances().len()), (8, 0));
    }

    #[test]
    fn an_instance_without_its_own_address_is_reached_at_its_node() {
        let entries = json!([
            {"Node": {"Address": "10.0.0.9"}, "Service": {"Address": "", "Port": 8080}},
            {"Node": {"Address": "10.0.0.9"}, "Service": {"Address": "127.0.0.1", "Port": 9001}},
            {"Node": {"Address": "10.0.0.9"}, "Service": {"Address": "::1", "Port": 9002}},
            {"Node": {"Address": "10.0.0.9"}, "Service": {"Address": "127.0.0.1", "Port": 0}},
        ]);
        assert_eq!(
            passing_addresses(&entries).expect("an array"),
            ["10.0.0.9:8080", "127.0.0.1:9001", "[::1]:9002"]
        );
        assert!(passing_addresses(&json!({"not": "an array"})).is_err());
    }
}
