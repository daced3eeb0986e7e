//! The narrated demo's scenario: user-service instances heartbeating into the registry, an
//! order service watching it with a blocking query and balancing its calls, on a simulated
//! clock, so every run prints the same timeline.
//!
//! The registry and the balancer are the real core ([`Registry`], [`Balancer`]); the
//! instances and the order service are simulated around them: an instance "killed" stops
//! heartbeating and answering, exactly what a crashed process does to its registry.

use std::collections::BTreeMap;

use discovery_core::{
    Balancer, CheckKind, CheckSpec, Config, Input, Machine, Millis, Output, Registry, ServiceSpec,
    Status, Strategy,
};
use lab_runtime::Narrator;
use lab_runtime::palette::Tone;

/// The TTL each user instance registers with.
const TTL: Millis = Millis(10_000);
/// How often a live instance heartbeats.
const HEARTBEAT: u64 = 3_000;
/// The order service's call rate: one call every this many ms.
const CALL_EVERY: u64 = 100;
/// One row of the timeline every this many ms.
const ROW_EVERY: u64 = 2_000;

/// A simulated user-service instance.
#[derive(Debug)]
struct Instance {
    id: String,
    alive: bool,
    registered: bool,
    last_heartbeat: Option<u64>,
    latency: Millis,
    calls: u64,
    calls_in_row: u64,
    lost_in_row: u64,
}

/// What the demo counted, for its summary and its tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Calls each instance answered.
    pub calls: BTreeMap<String, u64>,
    /// Calls sent to the killed instance between its crash and its eviction.
    pub lost: u64,
    /// When the killed instance left the passing list (ms).
    pub evicted_at: Option<u64>,
    /// When the new instance got its first call (ms).
    pub joined_at: Option<u64>,
    /// Calls the slow instance got out of 300, under round-robin and under two choices.
    pub slow_share: (u64, u64),
}

struct World {
    registry: Registry,
    balancer: Balancer,
    instances: Vec<Instance>,
    index: u64,
    next_watch: u64,
    lines: Vec<String>,
    narrator: Narrator,
    summary: Summary,
}

fn spec(id: &str) -> ServiceSpec {
    ServiceSpec {
        id: id.to_owned(),
        name: "user".to_owned(),
        address: "127.0.0.1".to_owned(),
        port: 0,
        tags: Vec::new(),
        meta: BTreeMap::new(),
        checks: vec![CheckSpec {
            id: format!("service:{id}"),
            name: "heartbeat".to_owned(),
            kind: CheckKind::Ttl { ttl: TTL },
            deregister_after: Some(Millis(60_000)),
            initial: Status::Critical,
        }],
    }
}

impl World {
    fn new(narrator: Narrator, strategy: Strategy) -> World {
        World {
            registry: Registry::new(Config::default()),
            balancer: Balancer::new(strategy, 7),
            instances: Vec::new(),
            index: 0,
            next_watch: 1,
            lines: Vec::new(),
            narrator,
            summary: Summary::default(),
        }
    }

    fn say(&mut self, now: u64, who: &str, text: &str) {
        let line = self.narrator.at(Millis(now), who, text);
        self.lines.push(line);
    }

    fn add(&mut self, now: u64, id: &str, latency: Millis) {
        self.instances.push(Instance {
            id: id.to_owned(),
            alive: true,
            registered: false,
            last_heartbeat: None,
            latency,
            calls: 0,
            calls_in_row: 0,
            lost_in_row: 0,
        });
        self.registry
            .handle_input(Millis(now), Input::Register(spec(id)))
            .ok();
        if let Some(instance) = self.instances.last_mut() {
            instance.registered = true;
        }
        self.heartbeat(now, id);
        self.say(now, id, "registers (TTL 10s) and sends its first heartbeat");
    }

    fn heartbeat(&mut self, now: u64, id: &str) {
        self.registry
            .handle_input(
                Millis(now),
                Input::Report {
                    check_id: format!("service:{id}"),
                    status: Status::Passing,
                    note: String::new(),
                },
            )
            .ok();
        if let Some(instance) = self.instances.iter_mut().find(|i| i.id == id) {
            instance.last_heartbeat = Some(now);
        }
    }

    fn watch(&mut self, now: u64) {
        let watch = self.next_watch;
        self.next_watch += 1;
        self.registry
            .handle_input(
                Millis(now),
                Input::Watch {
                    watch,
                    service: "user".to_owned(),
                    index: self.index,
                    wait: Some(Millis(300_000)),
                },
            )
            .ok();
    }

    /// Drains the registry's outputs; a blocking query answered is read and watched again
    /// (and a new watch may be answered at once, when the index moved meanwhile).
    fn drain(&mut self, now: u64) {
        loop {
            let mut woke = false;
            while let Some(output) = self.registry.poll_output() {
                if let Output::Answered { index, .. } = output {
                    self.index = index;
                    woke = true;
                }
            }
            if !woke {
                return;
            }
            let passing = self.registry.passing("user", Millis(now));
            if passing != self.balancer.instances() {
                let text = format!("watch woke (index {}): passing {:?}", self.index, passing);
                self.say(now, "order", &text);
            }
            let dead_left = self
                .instances
                .iter()
                .any(|i| !i.alive && !passing.contains(&i.id));
            if dead_left && self.summary.evicted_at.is_none() {
                self.summary.evicted_at = Some(now);
            }
            self.balancer.set_instances(passing);
            self.watch(now);
        }
    }

    fn tick(&mut self, now: u64) {
        let due: Vec<String> = self
            .instances
            .iter()
            .filter(|i| i.alive && i.last_heartbeat.is_some_and(|at| now >= at + HEARTBEAT))
            .map(|i| i.id.clone())
            .collect();
        for id in due {
            self.heartbeat(now, &id);
        }
        // Every deadline up to now, at its own instant: a TTL runs out at fresh_until + 1 ms.
        while let Some(due) = self.registry.poll_timeout().filter(|due| due.0 <= now) {
            self.registry.handle_timeout(due);
            self.drain(due.0);
        }
        self.drain(now);
    }

    fn call(&mut self, now: u64) {
        let Some(pick) = self.balancer.pick().map(str::to_owned) else {
            return;
        };
        let Some(instance) = self.instances.iter_mut().find(|i| i.id == pick) else {
            return;
        };
        if instance.alive {
            instance.calls += 1;
            instance.calls_in_row += 1;
            let latency = instance.latency;
            self.balancer.record(&pick, latency);
            if pick == "user-4" && self.summary.joined_at.is_none() {
                self.summary.joined_at = Some(now);
                self.say(now, "order", "first call to user-4");
            }
        } else {
            instance.lost_in_row += 1;
            self.summary.lost += 1;
        }
    }

    /// One timeline row: a lane per instance with its TTL left, status and calls since the
    /// last row.
    fn row(&mut self, now: u64) {
        let palette = self.narrator.palette();
        let mut cells = Vec::new();
        for instance in &mut self.instances {
            let passing = self
                .registry
                .check(&format!("service:{}", instance.id), Millis(now))
                .map(|c| c.status);
            let ttl_left = instance
                .last_heartbeat
                .map(|at| (at + TTL.0).saturating_sub(now))
                .unwrap_or(0);
            let (mark, tone) = match (instance.alive, passing) {
                (_, None) => ("gone", Tone::Dim),
                (true, Some(Status::Passing)) => ("up  ", Tone::Green),
                (false, Some(Status::Passing)) => ("dead", Tone::Yellow),
                (_, Some(_)) => ("down", Tone::Red),
            };
            let (word, count) = if instance.alive {
                ("calls", instance.calls_in_row)
            } else {
                ("lost ", instance.lost_in_row)
            };
            let cell = format!(
                "{} ttl {:>5} {word} {count:>3}",
                palette.paint(mark, tone),
                format!("{:.1}s", ttl_left as f64 / 1000.0),
            );
            cells.push(cell);
            instance.calls_in_row = 0;
            instance.lost_in_row = 0;
        }
        let line = self.narrator.at(Millis(now), "lanes", &cells.join(" │ "));
        self.lines.push(line);
    }
}

/// Runs the scenario and returns its lines and counts.
pub fn run(narrator: Narrator) -> (Vec<String>, Summary) {
    let mut lines = Vec::new();
    lines.push(
        narrator
            .step("1. Three user instances heartbeat; the order service watches and takes turns"),
    );
    lines.push(narrator.detail(
        "lanes: status (up, dead = crashed but still listed, down, gone), TTL left, calls in the last 2 s",
    ));
    let mut world = World::new(narrator, Strategy::RoundRobin);
    world.say(0, "order", "watches user with a blocking query (index 0)");
    world.watch(0);
    for id in ["user-1", "user-2", "user-3"] {
        world.add(0, id, Millis(10));
    }
    world.drain(0);
    for now in (0..=26_000).step_by(CALL_EVERY as usize) {
        if now == 7_000 {
            if let Some(i) = world.instances.iter_mut().find(|i| i.id == "user-2") {
                i.alive = false;
            }
            world.say(now, "user-2", "killed: no more heartbeats, no more answers");
        }
        if now == 20_000 {
            world.add(now, "user-4", Millis(10));
        }
        if (22_000..=25_000).contains(&now) && now % 1_000 == 0 {
            let status = if now % 2_000 == 0 {
                Status::Critical
            } else {
                Status::Passing
            };
            if now == 22_000 {
                world.say(now, "user-3", "flaps: fails and passes each second");
            }
            world
                .registry
                .handle_input(
                    Millis(now),
                    Input::Report {
                        check_id: "service:user-3".to_owned(),
                        status,
                        note: String::new(),
                    },
                )
                .ok();
            world.drain(now);
        }
        world.tick(now);
        if now > 0 {
            world.call(now);
        }
        if now % ROW_EVERY == 0 && now > 0 {
            world.row(now);
        }
    }
    world.summary.calls = world
        .instances
        .iter()
        .map(|i| (i.id.clone(), i.calls))
        .collect();
    lines.append(&mut world.lines);
    let mut summary = world.summary;

    lines.push(
        narrator
            .step("2. user-3 turns slow (200 ms against 10 ms): round-robin against two choices"),
    );
    for strategy in [Strategy::RoundRobin, Strategy::TwoChoices] {
        let mut balancer = Balancer::new(strategy, 42);
        balancer.set_instances(["user-1", "user-3", "user-4"].map(String::from));
        let mut slow = 0;
        for _ in 0..300 {
            let Some(pick) = balancer.pick().map(str::to_owned) else {
                break;
            };
            let latency = if pick == "user-3" { 200 } else { 10 };
            if pick == "user-3" {
                slow += 1;
            }
            balancer.record(&pick, Millis(latency));
        }
        let name = match strategy {
            Strategy::RoundRobin => "round-robin",
            Strategy::TwoChoices => "two choices",
        };
        lines.push(narrator.detail(&format!("{name:<12} user-3 got {slow:>3} of 300 calls")));
        match strategy {
            Strategy::RoundRobin => summary.slow_share.0 = slow,
            Strategy::TwoChoices => summary.slow_share.1 = slow,
        }
    }

    lines.push(narrator.step("Summary"));
    for (id, calls) in &summary.calls {
        lines.push(narrator.detail(&format!("{id:<8} answered {calls:>4} calls")));
    }
    let evicted = summary
        .evicted_at
        .map_or("never".to_owned(), |at| format!("{}", Millis(at)));
    lines.push(narrator.detail(&format!(
        "user-2 crashed at 7s, left the passing list at {evicted}: {} calls lost in between",
        summary.lost
    )));
    let joined = summary
        .joined_at
        .map_or("never".to_owned(), |at| format!("{}", Millis(at)));
    lines.push(narrator.detail(&format!(
        "user-4 registered at 20s, first call at {joined} (one blocking-query wake)"
    )));
    (lines, summary)
}
