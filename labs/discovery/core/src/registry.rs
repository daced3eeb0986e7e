//! The registry as a [`Machine`]: instances and their checks, per-service indexes, TTL
//! expiry, HTTP probes asked of the driver, the reaper, and blocking queries.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use sansio_core::{Machine, Millis};
use serde::{Deserialize, Serialize};

use crate::health::{
    check_status, fresh_until, instance_passing, probe_status, reap_at, wait_deadline, watch_due,
};
use crate::rng::SplitMix;
use crate::types::{CheckKind, CheckState, ProbeOutcome, ServiceSpec, Status};

// ANCHOR: io
/// What the driver tells the registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// Add an instance, or replace the one with the same id (its checks start over).
    Register(ServiceSpec),
    /// Bring back an instance persisted before a restart: its checks start critical until a
    /// heartbeat or a probe proves them.
    Restore(ServiceSpec),
    /// Remove an instance and its checks.
    Deregister {
        /// The instance's id.
        id: String,
    },
    /// A TTL check's report (pass, warn or fail), which also restarts its TTL.
    Report {
        /// The TTL check reported on.
        check_id: String,
        /// What the instance says.
        status: Status,
        /// Its note.
        note: String,
    },
    /// The result of an HTTP probe the registry asked for.
    Probed {
        /// The HTTP check probed.
        check_id: String,
        /// What came back.
        outcome: ProbeOutcome,
    },
    /// A blocking query on `service` that has seen `index`, waiting at most `wait`.
    Watch {
        /// The driver's name for this query, echoed in [`Output::Answered`].
        watch: u64,
        /// The service watched.
        service: String,
        /// The last index the caller saw (0: answer at once).
        index: u64,
        /// How long to wait (default five minutes, capped at ten).
        wait: Option<Millis>,
    },
    /// The caller went away: forget its query.
    Unwatch {
        /// The query's name.
        watch: u64,
    },
}

/// What the registry asks of its driver or tells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// GET `url`, giving up after `timeout`, and feed the outcome back as [`Input::Probed`].
    Probe {
        /// The check to report for.
        check_id: String,
        /// What to GET.
        url: String,
        /// How long the probe may take.
        timeout: Millis,
    },
    /// Answer this blocking query now: its service is at `index`.
    Answered {
        /// The query's name.
        watch: u64,
        /// The service watched.
        service: String,
        /// The service's index now.
        index: u64,
    },
    /// The reaper removed this instance: it stayed critical for its check's
    /// `deregister_after`.
    Reaped {
        /// The instance's id.
        id: String,
    },
}
// ANCHOR_END: io

/// Inputs the registry refuses; a refused input changes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryError {
    /// A registration without a service name.
    MissingName,
    /// A check that is neither a TTL check nor an HTTP check with an interval, or a duplicate
    /// check id.
    InvalidCheck(String),
    /// No instance with this id.
    UnknownService(String),
    /// No check with this id.
    UnknownCheck(String),
    /// A heartbeat for a check that is not a TTL check.
    NotTtl(String),
    /// The registry holds its configured maximum of instances.
    Full {
        /// The configured maximum.
        limit: usize,
    },
    /// A blocking query named like one still waiting.
    DuplicateWatch(u64),
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryError::MissingName => f.write_str("Missing service name"),
            RegistryError::InvalidCheck(why) => write!(f, "Invalid check: {why}"),
            RegistryError::UnknownService(id) => write!(f, "Unknown service ID {id:?}"),
            RegistryError::UnknownCheck(id) => write!(f, "Unknown check ID {id:?}"),
            RegistryError::NotTtl(id) => write!(f, "CheckID {id:?} does not have associated TTL"),
            RegistryError::Full { limit } => {
                write!(f, "Registry full: at most {limit} service instances")
            }
            RegistryError::DuplicateWatch(watch) => write!(f, "watch {watch} is already waiting"),
        }
    }
}

impl std::error::Error for RegistryError {}

/// How a registry is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The most instances it holds; a registration beyond is refused.
    pub max_instances: usize,
    /// The seed of the blocking queries' jitter.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_instances: 10_000,
            seed: 0x5eed,
        }
    }
}

/// An instance and the ids of its checks.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    spec: ServiceSpec,
    modify_index: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Waiting {
    service: String,
    seen: u64,
    deadline: Millis,
}

/// An instance as a read returns it: its registration, its checks and its status now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceView<'a> {
    /// The registration (its `checks` are the specs).
    pub spec: &'a ServiceSpec,
    /// Each check's state, with its status at the read's `now` in `status`.
    pub checks: Vec<CheckState>,
    /// The index at which the instance last changed.
    pub modify_index: u64,
}

/// The service registry.
#[derive(Debug)]
pub struct Registry {
    config: Config,
    entries: BTreeMap<String, Entry>,
    checks: BTreeMap<String, CheckState>,
    next_probe: BTreeMap<String, Millis>,
    /// Each check's next moment of interest (its TTL running out, its probe, its reaping),
    /// ordered, so a timeout or an input looks at the due checks only, not at every check.
    timers: BTreeSet<(Millis, String)>,
    /// The moment each check is filed under in `timers`.
    timer_of: BTreeMap<String, Millis>,
    indexes: BTreeMap<String, u64>,
    last_index: u64,
    watches: BTreeMap<u64, Waiting>,
    /// The waiting queries of each service, so a change looks at its own watchers only.
    watchers_of: BTreeMap<String, BTreeSet<u64>>,
    /// The waiting queries by deadline, so a timeout looks at the due ones only.
    deadlines: BTreeSet<(Millis, u64)>,
    rng: SplitMix,
    outputs: VecDeque<Output>,
}

impl Registry {
    /// An empty registry.
    pub fn new(config: Config) -> Registry {
        Registry {
            rng: SplitMix::new(config.seed),
            config,
            entries: BTreeMap::new(),
            checks: BTreeMap::new(),
            next_probe: BTreeMap::new(),
            timers: BTreeSet::new(),
            timer_of: BTreeMap::new(),
            indexes: BTreeMap::new(),
            last_index: 0,
            watches: BTreeMap::new(),
            watchers_of: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            outputs: VecDeque::new(),
        }
    }

    /// The index of `service`: moved by every change to one of its instances, and only by
    /// those. At least 1, so a caller that saw 0 is always answered at once.
    pub fn index(&self, service: &str) -> u64 {
        self.indexes.get(service).copied().unwrap_or(1).max(1)
    }

    /// The highest index of any service (the index of reads that span them all).
    pub fn last_index(&self) -> u64 {
        self.last_index.max(1)
    }

    /// The number of instances registered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no instance is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every instance, by id.
    pub fn instances(&self) -> impl Iterator<Item = &ServiceSpec> {
        self.entries.values().map(|entry| &entry.spec)
    }

    /// One instance by id.
    pub fn instance(&self, id: &str) -> Option<&ServiceSpec> {
        self.entries.get(id).map(|entry| &entry.spec)
    }

    /// Every check, with its status at `now`.
    pub fn checks(&self, now: Millis) -> Vec<CheckState> {
        self.checks.values().map(|c| at(c, now)).collect()
    }

    /// One check, with its status at `now`.
    pub fn check(&self, id: &str, now: Millis) -> Option<CheckState> {
        self.checks.get(id).map(|c| at(c, now))
    }

    /// The names of the services with at least one instance, each with the union of its
    /// instances' tags.
    pub fn services(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut services: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for entry in self.entries.values() {
            let tags = services.entry(entry.spec.name.as_str()).or_default();
            for tag in &entry.spec.tags {
                if !tags.contains(&tag.as_str()) {
                    tags.push(tag);
                }
            }
        }
        services
    }

    // ANCHOR: health
    /// The instances of `service` at `now`, with their checks; only those passing every
    /// check when `passing_only`. Read at `now`, so a TTL gone stale counts even before the
    /// driver's timeout runs.
    pub fn health(&self, service: &str, passing_only: bool, now: Millis) -> Vec<InstanceView<'_>> {
        self.entries
            .values()
            .filter(|entry| entry.spec.name == service)
            .filter(|entry| !passing_only || instance_passing(self.checks_of(&entry.spec), now))
            .map(|entry| InstanceView {
                spec: &entry.spec,
                checks: self.checks_of(&entry.spec).map(|c| at(c, now)).collect(),
                modify_index: entry.modify_index,
            })
            .collect()
    }
    // ANCHOR_END: health

    /// The ids of the passing instances of `service` at `now`.
    pub fn passing(&self, service: &str, now: Millis) -> Vec<String> {
        self.health(service, true, now)
            .into_iter()
            .map(|view| view.spec.id.clone())
            .collect()
    }

    /// How many blocking queries are waiting.
    pub fn watching(&self) -> usize {
        self.watches.len()
    }

    fn checks_of<'a>(&'a self, spec: &'a ServiceSpec) -> impl Iterator<Item = &'a CheckState> {
        spec.checks.iter().filter_map(|c| self.checks.get(&c.id))
    }

    /// Moves `service`'s index and answers its blocking queries.
    fn bump(&mut self, service: &str, now: Millis) -> u64 {
        self.last_index += 1;
        let index = self.last_index.max(2);
        self.last_index = index;
        self.indexes.insert(service.to_owned(), index);
        self.answer(now, Some(service));
        index
    }

    /// Answers the due queries: those of `service`, or, for `None`, those whose deadline has
    /// come. Which of them is due is `watch_due`'s to say.
    fn answer(&mut self, now: Millis, service: Option<&str>) {
        let candidates: Vec<u64> = match service {
            Some(service) => self
                .watchers_of
                .get(service)
                .map(|ids| ids.iter().copied().collect())
                .unwrap_or_default(),
            None => self
                .deadlines
                .range(..=(now, u64::MAX))
                .map(|(_, id)| *id)
                .collect(),
        };
        for watch in candidates {
            let due = self
                .watches
                .get(&watch)
                .is_some_and(|w| watch_due(w.seen, self.index(&w.service), w.deadline, now));
            if due && let Some(w) = self.take_watch(watch) {
                let index = self.index(&w.service);
                self.outputs.push_back(Output::Answered {
                    watch,
                    service: w.service,
                    index,
                });
            }
        }
    }

    /// Forgets a waiting query everywhere it is indexed.
    fn take_watch(&mut self, watch: u64) -> Option<Waiting> {
        let waiting = self.watches.remove(&watch)?;
        self.deadlines.remove(&(waiting.deadline, watch));
        if let Some(ids) = self.watchers_of.get_mut(&waiting.service) {
            ids.remove(&watch);
            if ids.is_empty() {
                self.watchers_of.remove(&waiting.service);
            }
        }
        Some(waiting)
    }

    fn register(
        &mut self,
        now: Millis,
        spec: ServiceSpec,
        restored: bool,
    ) -> Result<(), RegistryError> {
        if spec.name.trim().is_empty() {
            return Err(RegistryError::MissingName);
        }
        let replacing = self.entries.contains_key(&spec.id);
        if !replacing && self.entries.len() >= self.config.max_instances {
            return Err(RegistryError::Full {
                limit: self.config.max_instances,
            });
        }
        let mut seen = Vec::new();
        for check in &spec.checks {
            match &check.kind {
                CheckKind::Ttl { ttl } if *ttl == Millis::ZERO => {
                    return Err(RegistryError::InvalidCheck(format!(
                        "check {:?} has a TTL of zero",
                        check.id
                    )));
                }
                CheckKind::Http { interval, .. } if *interval == Millis::ZERO => {
                    return Err(RegistryError::InvalidCheck(format!(
                        "check {:?} has an HTTP URL and no Interval",
                        check.id
                    )));
                }
                _ => {}
            }
            let owned_elsewhere = self
                .checks
                .get(&check.id)
                .is_some_and(|c| c.service_id != spec.id);
            if seen.contains(&&check.id) || owned_elsewhere {
                return Err(RegistryError::InvalidCheck(format!(
                    "check ID {:?} is already in use",
                    check.id
                )));
            }
            seen.push(&check.id);
        }
        let old_name = self.remove(&spec.id);
        for check in &spec.checks {
            let status = if restored {
                Status::Critical
            } else {
                check.initial
            };
            self.checks.insert(
                check.id.clone(),
                CheckState {
                    spec: check.clone(),
                    service_id: spec.id.clone(),
                    status,
                    output: String::new(),
                    fresh_until: fresh_until(&check.kind, now),
                    critical_since: (status == Status::Critical).then_some(now),
                },
            );
            if let CheckKind::Http { .. } = check.kind {
                self.next_probe.insert(check.id.clone(), now);
            }
            self.reschedule(&check.id);
        }
        let name = spec.name.clone();
        self.entries.insert(
            spec.id.clone(),
            Entry {
                spec,
                modify_index: 0,
            },
        );
        if let Some(old) = old_name.filter(|old| *old != name) {
            self.bump(&old, now);
        }
        let index = self.bump(&name, now);
        self.touch_all(&name, index);
        Ok(())
    }

    fn touch_all(&mut self, name: &str, index: u64) {
        for entry in self.entries.values_mut() {
            if entry.spec.name == name && entry.modify_index == 0 {
                entry.modify_index = index;
            }
        }
    }

    /// Removes an instance and its checks; its service's name, if it was there.
    fn remove(&mut self, id: &str) -> Option<String> {
        let entry = self.entries.remove(id)?;
        for check in &entry.spec.checks {
            self.checks.remove(&check.id);
            self.next_probe.remove(&check.id);
            self.reschedule(&check.id);
        }
        Some(entry.spec.name)
    }

    /// When `check` next needs the timeout: the instant its TTL is past (while it is not
    /// critical), its next probe, or its reaping, whichever comes first.
    fn next_moment(&self, id: &str) -> Option<Millis> {
        let check = self.checks.get(id)?;
        let stale = check
            .fresh_until
            .filter(|_| check.status != Status::Critical)
            .map(|until| until + Millis(1));
        let probe = self.next_probe.get(id).copied();
        [stale, probe, reap_at(check)].into_iter().flatten().min()
    }

    /// Files `id` in `timers` under its next moment (or nowhere, once it is gone or needs
    /// no timeout): called after every change to a check or its probe.
    fn reschedule(&mut self, id: &str) {
        let next = self.next_moment(id);
        if self.timer_of.get(id).copied() == next {
            return;
        }
        if let Some(old) = self.timer_of.remove(id) {
            self.timers.remove(&(old, id.to_owned()));
        }
        if let Some(at) = next {
            self.timers.insert((at, id.to_owned()));
            self.timer_of.insert(id.to_owned(), at);
        }
    }

    /// Sets a check's status; moves its service's index when the status at `now` changed.
    fn set_status(&mut self, now: Millis, check_id: &str, status: Status, output: String) {
        let Some(check) = self.checks.get_mut(check_id) else {
            return;
        };
        let before = check_status(check, now);
        if status == Status::Critical {
            if check.status != Status::Critical || before != Status::Critical {
                check.critical_since = Some(now);
            }
        } else {
            check.critical_since = None;
        }
        check.status = status;
        check.output = output;
        check.fresh_until = fresh_until(&check.spec.kind, now);
        let service_id = check.service_id.clone();
        self.reschedule(check_id);
        if before != status {
            self.changed(now, &service_id);
        }
    }

    fn changed(&mut self, now: Millis, service_id: &str) {
        if let Some(name) = self.entries.get(service_id).map(|e| e.spec.name.clone()) {
            let index = self.bump(&name, now);
            if let Some(entry) = self.entries.get_mut(service_id) {
                entry.modify_index = index;
            }
        }
    }
}

/// A check with its status at `now` written into `status`.
fn at(check: &CheckState, now: Millis) -> CheckState {
    let mut check = check.clone();
    let status = check_status(&check, now);
    if status != check.status {
        check.critical_since = check.fresh_until.map(|until| until + Millis(1));
        check.output = "TTL expired".to_owned();
        check.status = status;
    }
    check
}

impl Machine for Registry {
    type Input = Input;
    type Output = Output;
    type Error = RegistryError;

    fn handle_input(&mut self, now: Millis, input: Input) -> Result<(), RegistryError> {
        self.handle_timeout(now);
        match input {
            Input::Register(spec) => self.register(now, spec, false),
            Input::Restore(spec) => self.register(now, spec, true),
            Input::Deregister { id } => {
                let name = self.remove(&id).ok_or(RegistryError::UnknownService(id))?;
                self.bump(&name, now);
                Ok(())
            }
            Input::Report {
                check_id,
                status,
                note,
            } => {
                let check = self
                    .checks
                    .get(&check_id)
                    .ok_or_else(|| RegistryError::UnknownCheck(check_id.clone()))?;
                if !matches!(check.spec.kind, CheckKind::Ttl { .. }) {
                    return Err(RegistryError::NotTtl(check_id));
                }
                self.set_status(now, &check_id, status, note);
                Ok(())
            }
            Input::Probed { check_id, outcome } => {
                if !self.checks.contains_key(&check_id) {
                    return Err(RegistryError::UnknownCheck(check_id));
                }
                let output = match outcome {
                    ProbeOutcome::Response(code) => format!("HTTP GET: {code}"),
                    ProbeOutcome::TimedOut => "HTTP GET: timed out".to_owned(),
                    ProbeOutcome::Unreachable => "HTTP GET: connection refused".to_owned(),
                };
                self.set_status(now, &check_id, probe_status(outcome), output);
                Ok(())
            }
            Input::Watch {
                watch,
                service,
                index,
                wait,
            } => {
                if self.watches.contains_key(&watch) {
                    return Err(RegistryError::DuplicateWatch(watch));
                }
                let deadline = wait_deadline(now, wait, self.rng.next_u64());
                self.watches.insert(
                    watch,
                    Waiting {
                        service: service.clone(),
                        seen: index,
                        deadline,
                    },
                );
                self.watchers_of
                    .entry(service.clone())
                    .or_default()
                    .insert(watch);
                self.deadlines.insert((deadline, watch));
                self.answer(now, Some(&service));
                Ok(())
            }
            Input::Unwatch { watch } => {
                self.take_watch(watch);
                Ok(())
            }
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        // Only the checks whose moment has come; each phase takes them in id order.
        let due: BTreeSet<String> = self
            .timers
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| id.clone())
            .collect();
        // TTLs gone stale: the check is critical from the instant after `fresh_until`.
        let stale: Vec<(String, Millis)> = due
            .iter()
            .filter_map(|id| self.checks.get(id).map(|c| (id, c)))
            .filter(|(_, c)| c.status != Status::Critical && check_status(c, now) != c.status)
            .filter_map(|(id, c)| c.fresh_until.map(|until| (id.clone(), until + Millis(1))))
            .collect();
        for (id, since) in stale {
            if let Some(check) = self.checks.get_mut(&id) {
                check.status = Status::Critical;
                check.critical_since = Some(since);
                check.output = "TTL expired".to_owned();
                check.fresh_until = None;
                let service_id = check.service_id.clone();
                self.reschedule(&id);
                self.changed(now, &service_id);
            }
        }
        // Probes due.
        let probes: Vec<String> = due
            .iter()
            .filter(|id| self.next_probe.get(*id).is_some_and(|at| *at <= now))
            .cloned()
            .collect();
        for id in probes {
            if let Some(CheckKind::Http {
                url,
                interval,
                timeout,
            }) = self.checks.get(&id).map(|c| c.spec.kind.clone())
            {
                self.next_probe.insert(id.clone(), now + interval);
                self.reschedule(&id);
                self.outputs.push_back(Output::Probe {
                    check_id: id,
                    url,
                    timeout,
                });
            }
        }
        // The reaper.
        let reap: Vec<String> = due
            .iter()
            .filter_map(|id| self.checks.get(id))
            .filter(|c| reap_at(c).is_some_and(|at| at <= now))
            .map(|c| c.service_id.clone())
            .collect();
        for id in reap {
            if let Some(name) = self.remove(&id) {
                self.bump(&name, now);
                self.outputs.push_back(Output::Reaped { id });
            }
        }
        for id in &due {
            self.reschedule(id);
        }
        // Waits ended.
        self.answer(now, None);
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn poll_timeout(&self) -> Option<Millis> {
        let checks = self.timers.first().map(|(at, _)| *at);
        let waits = self.deadlines.first().map(|(deadline, _)| *deadline);
        checks.into_iter().chain(waits).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::CheckSpec;

    fn spec(id: &str, name: &str) -> ServiceSpec {
        ServiceSpec {
            id: id.to_owned(),
            name: name.to_owned(),
            address: "127.0.0.1".to_owned(),
            port: 1,
            tags: vec!["v1".to_owned()],
            meta: BTreeMap::new(),
            checks: vec![CheckSpec {
                id: format!("service:{id}"),
                name: "ttl".to_owned(),
                kind: CheckKind::Ttl { ttl: Millis(1_000) },
                deregister_after: None,
                initial: Status::Passing,
            }],
        }
    }

    #[test]
    fn refused_registrations_change_nothing() {
        let mut registry = Registry::new(Config {
            max_instances: 1,
            ..Config::default()
        });
        assert_eq!(
            registry.handle_input(Millis(0), Input::Register(spec("x", " "))),
            Err(RegistryError::MissingName)
        );
        registry
            .handle_input(Millis(0), Input::Register(spec("a", "user")))
            .expect("first fits");
        let index = registry.last_index();
        assert_eq!(
            registry.handle_input(Millis(0), Input::Register(spec("b", "user"))),
            Err(RegistryError::Full { limit: 1 })
        );
        registry
            .handle_input(Millis(0), Input::Register(spec("a", "user")))
            .expect("replacing an instance is not a new one");
        let mut stolen = spec("c", "user");
        stolen.checks[0].id = "service:a".to_owned();
        let mut big = Registry::new(Config::default());
        big.handle_input(Millis(0), Input::Register(spec("a", "user")))
            .expect("fits");
        assert!(matches!(
            big.handle_input(Millis(0), Input::Register(stolen)),
            Err(RegistryError::InvalidCheck(_))
        ));
        assert_eq!(big.len(), 1, "nothing half-registered");
        assert!(registry.last_index() > index);
        assert_eq!(registry.len(), 1);
    }

    #[test]
    fn reports_need_a_known_ttl_check() {
        let mut registry = Registry::new(Config::default());
        let mut web = spec("w", "web");
        web.checks[0].kind = CheckKind::Http {
            url: "http://127.0.0.1:1/".to_owned(),
            interval: Millis(1_000),
            timeout: Millis(100),
        };
        registry
            .handle_input(Millis(0), Input::Register(web))
            .expect("valid");
        let report = |id: &str| Input::Report {
            check_id: id.to_owned(),
            status: Status::Passing,
            note: String::new(),
        };
        assert_eq!(
            registry.handle_input(Millis(0), report("nope")),
            Err(RegistryError::UnknownCheck("nope".to_owned()))
        );
        assert_eq!(
            registry.handle_input(Millis(0), report("service:w")),
            Err(RegistryError::NotTtl("service:w".to_owned()))
        );
        assert_eq!(
            registry.handle_input(Millis(0), Input::Deregister { id: "q".into() }),
            Err(RegistryError::UnknownService("q".to_owned()))
        );
    }

    #[test]
    fn a_restored_instance_starts_critical_and_services_list_tags() {
        let mut registry = Registry::new(Config::default());
        registry
            .handle_input(Millis(0), Input::Restore(spec("a", "user")))
            .expect("valid");
        assert!(registry.passing("user", Millis(0)).is_empty());
        assert_eq!(registry.services().get("user"), Some(&vec!["v1"]));
        registry
            .handle_input(
                Millis(1),
                Input::Report {
                    check_id: "service:a".to_owned(),
                    status: Status::Passing,
                    note: "ok".to_owned(),
                },
            )
            .expect("known");
        assert_eq!(registry.passing("user", Millis(1)), vec!["a".to_owned()]);
    }

    #[test]
    fn renaming_an_instance_moves_both_services_indexes() {
        let mut registry = Registry::new(Config::default());
        registry
            .handle_input(Millis(0), Input::Register(spec("a", "user")))
            .expect("valid");
        let (user, order) = (registry.index("user"), registry.index("order"));
        registry
            .handle_input(Millis(0), Input::Register(spec("a", "order")))
            .expect("valid");
        assert!(registry.index("user") > user);
        assert!(registry.index("order") > order);
        assert!(registry.health("user", false, Millis(0)).is_empty());
    }
}
