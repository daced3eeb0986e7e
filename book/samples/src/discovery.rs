//! A service registry with heartbeats, retold from the guide's Consul sample.
//!
//! Instances register themselves, then prove they are alive with heartbeats; an instance whose
//! last heartbeat is older than the time-to-live is treated as down and no longer handed out.
//! Callers ask the registry for an address and spread their calls over the healthy instances.
//! Time is a parameter (`now_ms`), so expiry is tested by passing a later time, not by sleeping.
//! Consul, Eureka and etcd leases all work on this principle; Kubernetes does the same with
//! readiness probes and Endpoints.

use std::collections::HashMap;

// ANCHOR: registry
/// Why a registry call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// A heartbeat for an instance the registry does not know (never registered, or evicted):
    /// the instance should register again.
    #[error("{service} @ {address} is not registered")]
    UnknownInstance {
        /// Service name.
        service: String,
        /// Instance address.
        address: String,
    },
    /// No healthy instance of the service: the caller should fail fast or fall back.
    #[error("{0} unavailable: no healthy instance")]
    Unavailable(String),
}

#[derive(Debug, Clone)]
struct Instance {
    address: String,
    last_heartbeat_ms: u64,
}

/// The registry: service name → instances, each with the time of its last heartbeat.
#[derive(Debug, Clone)]
pub struct ServiceRegistry {
    ttl_ms: u64,
    services: HashMap<String, Vec<Instance>>,
    // Per-service cursor for round-robin, so load spreads evenly instead of randomly.
    cursors: HashMap<String, usize>,
}

impl ServiceRegistry {
    /// A registry that considers an instance down after `ttl_ms` without a heartbeat
    /// (30 s in the guide, with heartbeats every 10 s: two can be lost before eviction).
    pub fn new(ttl_ms: u64) -> Self {
        Self {
            ttl_ms,
            services: HashMap::new(),
            cursors: HashMap::new(),
        }
    }

    /// `Register: user-service @ 192.168.1.5:3001`. Registering again is harmless: it counts as
    /// a heartbeat, which makes restarts and retried registrations idempotent.
    pub fn register(&mut self, now_ms: u64, service: &str, address: &str) {
        let instances = self.services.entry(service.to_owned()).or_default();
        match instances.iter_mut().find(|i| i.address == address) {
            Some(instance) => instance.last_heartbeat_ms = now_ms,
            None => instances.push(Instance {
                address: address.to_owned(),
                last_heartbeat_ms: now_ms,
            }),
        }
    }

    /// A graceful shutdown deregisters at once instead of waiting for the TTL to expire.
    pub fn deregister(&mut self, service: &str, address: &str) {
        if let Some(instances) = self.services.get_mut(service) {
            instances.retain(|i| i.address != address);
        }
    }
}
// ANCHOR_END: registry

// ANCHOR: heartbeat
impl ServiceRegistry {
    /// `Heartbeat (every 10s)`: the instance is still alive.
    pub fn heartbeat(
        &mut self,
        now_ms: u64,
        service: &str,
        address: &str,
    ) -> Result<(), RegistryError> {
        self.services
            .get_mut(service)
            .and_then(|instances| instances.iter_mut().find(|i| i.address == address))
            .map(|instance| instance.last_heartbeat_ms = now_ms)
            .ok_or_else(|| RegistryError::UnknownInstance {
                service: service.to_owned(),
                address: address.to_owned(),
            })
    }

    /// `No heartbeat for 30s` → `Mark user-service as DOWN`: removes expired instances and
    /// returns them as `(service, address)` so the caller can log the eviction.
    pub fn evict_expired(&mut self, now_ms: u64) -> Vec<(String, String)> {
        let ttl_ms = self.ttl_ms;
        let mut evicted = Vec::new();
        for (service, instances) in &mut self.services {
            instances.retain(|instance| {
                let alive = now_ms.saturating_sub(instance.last_heartbeat_ms) <= ttl_ms;
                if !alive {
                    evicted.push((service.clone(), instance.address.clone()));
                }
                alive
            });
        }
        evicted.sort();
        evicted
    }
}
// ANCHOR_END: heartbeat

// ANCHOR: discover
impl ServiceRegistry {
    /// Addresses of the instances of `service` that heartbeated within the TTL at `now_ms`.
    ///
    /// Expiry is checked on read as well as by `evict_expired`, so a crashed instance stops
    /// receiving traffic as soon as its TTL runs out, whenever the sweep happens to run.
    pub fn healthy(&self, now_ms: u64, service: &str) -> Vec<&str> {
        self.services
            .get(service)
            .into_iter()
            .flatten()
            .filter(|i| now_ms.saturating_sub(i.last_heartbeat_ms) <= self.ttl_ms)
            .map(|i| i.address.as_str())
            .collect()
    }

    /// `Discover: Where is user-service?`: one healthy address, taking turns (round-robin).
    pub fn discover(&mut self, now_ms: u64, service: &str) -> Result<String, RegistryError> {
        let healthy = self.healthy(now_ms, service);
        if healthy.is_empty() {
            return Err(RegistryError::Unavailable(service.to_owned()));
        }
        let turn = self.cursors.get(service).copied().unwrap_or(0);
        let address = healthy[turn % healthy.len()].to_owned();
        self.cursors
            .insert(service.to_owned(), turn.wrapping_add(1));
        Ok(address)
    }
}

/// The order service's side: resolve `user-service`, then build the URL to call with `reqwest`.
pub fn user_url(
    registry: &mut ServiceRegistry,
    now_ms: u64,
    user_id: u64,
) -> Result<String, RegistryError> {
    let address = registry.discover(now_ms, "user-service")?;
    Ok(format!("http://{address}/users/{user_id}"))
}
// ANCHOR_END: discover

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "user-service";

    #[test]
    fn registered_instance_is_discoverable() {
        let mut registry = ServiceRegistry::new(30_000);
        registry.register(0, USER, "192.168.1.5:3001");
        assert_eq!(
            user_url(&mut registry, 5_000, 123),
            Ok("http://192.168.1.5:3001/users/123".to_owned())
        );
    }

    #[test]
    fn instance_without_heartbeat_for_longer_than_ttl_is_unavailable() {
        let mut registry = ServiceRegistry::new(30_000);
        registry.register(0, USER, "192.168.1.5:3001");
        registry
            .heartbeat(10_000, USER, "192.168.1.5:3001")
            .expect("registered");
        // 30 s after the last heartbeat it is still alive, one millisecond later it is not.
        assert!(registry.discover(40_000, USER).is_ok());
        assert_eq!(
            registry.discover(40_001, USER),
            Err(RegistryError::Unavailable(USER.to_owned()))
        );
        assert_eq!(
            registry.evict_expired(40_001),
            vec![(USER.to_owned(), "192.168.1.5:3001".to_owned())]
        );
        // After eviction a heartbeat is refused: the instance must register again.
        assert!(matches!(
            registry.heartbeat(41_000, USER, "192.168.1.5:3001"),
            Err(RegistryError::UnknownInstance { .. })
        ));
    }

    #[test]
    fn discovery_takes_turns_between_healthy_instances() {
        let mut registry = ServiceRegistry::new(30_000);
        registry.register(0, USER, "10.0.0.1:3001");
        registry.register(0, USER, "10.0.0.2:3001");
        let picks: Vec<String> = (0..4)
            .map(|_| registry.discover(1_000, USER).expect("healthy"))
            .collect();
        assert_eq!(
            picks,
            [
                "10.0.0.1:3001",
                "10.0.0.2:3001",
                "10.0.0.1:3001",
                "10.0.0.2:3001"
            ]
        );
        registry.deregister(USER, "10.0.0.1:3001");
        assert_eq!(registry.healthy(1_000, USER), vec!["10.0.0.2:3001"]);
    }

    #[test]
    fn registering_twice_does_not_duplicate_the_instance() {
        let mut registry = ServiceRegistry::new(30_000);
        registry.register(0, USER, "10.0.0.1:3001");
        registry.register(20_000, USER, "10.0.0.1:3001");
        assert_eq!(registry.healthy(45_000, USER), vec!["10.0.0.1:3001"]);
    }
}
