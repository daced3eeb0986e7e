//! The graded tests of the Discovery lab: the specification of the graded module, `health`.
//!
//! `cargo xtask grade discovery` runs them against the learner's copy (`--features exercise`);
//! `cargo test -p discovery-core --test graded` against the reference. Every assertion says what it
//! checks and why, so a failure reads as a sentence.

use std::collections::BTreeMap;

use discovery_core::{
    Balancer, CheckKind, CheckSpec, Config, Input, Machine, Millis, Output, ProbeOutcome, Registry,
    ServiceSpec, Status, Strategy,
};
use lab_test_support::check_property;
use proptest::prelude::*;

const TTL: Millis = Millis(10_000);

/// An instance of `name` with one TTL check, `service:<id>`, starting critical as in Consul.
fn ttl_instance(id: &str, name: &str, ttl: Millis) -> ServiceSpec {
    instance(id, name, vec![check(id, CheckKind::Ttl { ttl })])
}

fn check(id: &str, kind: CheckKind) -> CheckSpec {
    CheckSpec {
        id: format!("service:{id}"),
        name: format!("{id} check"),
        kind,
        deregister_after: None,
        initial: Status::Critical,
    }
}

fn instance(id: &str, name: &str, checks: Vec<CheckSpec>) -> ServiceSpec {
    ServiceSpec {
        id: id.to_owned(),
        name: name.to_owned(),
        address: "127.0.0.1".to_owned(),
        port: 8080,
        tags: Vec::new(),
        meta: BTreeMap::new(),
        checks,
    }
}

fn report(registry: &mut Registry, now: Millis, id: &str, status: Status) {
    registry
        .handle_input(
            now,
            Input::Report {
                check_id: format!("service:{id}"),
                status,
                note: String::new(),
            },
        )
        .expect("the check exists and is a TTL check");
}

fn register(registry: &mut Registry, now: Millis, spec: ServiceSpec) {
    registry
        .handle_input(now, Input::Register(spec))
        .expect("a valid registration");
}

fn outputs(registry: &mut Registry) -> Vec<Output> {
    std::iter::from_fn(|| registry.poll_output()).collect()
}

fn answered(outputs: &[Output]) -> Vec<u64> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Answered { watch, .. } => Some(*watch),
            _ => None,
        })
        .collect()
}

fn watch(registry: &mut Registry, now: Millis, watch: u64, service: &str, index: u64, wait: u64) {
    registry
        .handle_input(
            now,
            Input::Watch {
                watch,
                service: service.to_owned(),
                index,
                wait: Some(Millis(wait)),
            },
        )
        .expect("a new watch");
}

// ANCHOR: first_test
#[test]
fn a_registered_instance_with_a_passing_check_is_returned() {
    let mut registry = Registry::new(Config::default());
    register(
        &mut registry,
        Millis(0),
        ttl_instance("user-1", "user", TTL),
    );
    assert_eq!(
        registry.passing("user", Millis(0)),
        Vec::<String>::new(),
        "a new check starts critical: the instance gets no traffic before its first heartbeat"
    );
    report(&mut registry, Millis(100), "user-1", Status::Passing);
    assert_eq!(
        registry.passing("user", Millis(100)),
        vec!["user-1".to_owned()],
        "after a passing heartbeat the instance is returned as passing"
    );
    assert_eq!(
        registry.health("user", false, Millis(100)).len(),
        1,
        "without the passing filter it is listed too"
    );
}
// ANCHOR_END: first_test

#[test]
fn an_instance_passes_only_when_every_check_passes() {
    let mut registry = Registry::new(Config::default());
    let mut spec = ttl_instance("user-1", "user", TTL);
    let mut second = check("user-1:2", CheckKind::Ttl { ttl: TTL });
    second.initial = Status::Passing;
    spec.checks.push(second);
    register(&mut registry, Millis(0), spec);
    report(&mut registry, Millis(0), "user-1", Status::Passing);
    assert_eq!(
        registry.passing("user", Millis(0)).len(),
        1,
        "both checks pass"
    );
    report(&mut registry, Millis(1), "user-1:2", Status::Warning);
    assert!(
        registry.passing("user", Millis(1)).is_empty(),
        "a warning on one check is not passing: the passing filter wants every check passing"
    );
    report(&mut registry, Millis(2), "user-1:2", Status::Critical);
    assert!(
        registry.passing("user", Millis(2)).is_empty(),
        "a critical check keeps the instance out"
    );
    assert_eq!(
        registry.health("user", false, Millis(2)).len(),
        1,
        "a failing instance is still listed without the passing filter"
    );
}

#[test]
fn an_instance_without_checks_is_passing() {
    let mut registry = Registry::new(Config::default());
    register(&mut registry, Millis(0), instance("db-1", "db", Vec::new()));
    assert_eq!(
        registry.passing("db", Millis(0)),
        vec!["db-1".to_owned()],
        "with no check saying otherwise, an instance is passing (as in Consul)"
    );
}

// ANCHOR: ttl_test
#[test]
fn a_ttl_check_goes_critical_once_its_ttl_passes_without_a_heartbeat() {
    let mut registry = Registry::new(Config::default());
    register(
        &mut registry,
        Millis(0),
        ttl_instance("user-1", "user", TTL),
    );
    report(&mut registry, Millis(1_000), "user-1", Status::Passing);
    assert_eq!(
        registry.passing("user", Millis(11_000)).len(),
        1,
        "a heartbeat at 1 s with a 10 s TTL holds through 11 s"
    );
    assert!(
        registry.passing("user", Millis(11_001)).is_empty(),
        "one millisecond past the TTL, with no heartbeat, the instance is not passing, \
         even before any timeout ran"
    );
    registry.handle_timeout(Millis(11_001));
    let check = registry
        .check("service:user-1", Millis(11_001))
        .expect("the check is still registered");
    assert_eq!(
        check.status,
        Status::Critical,
        "the expired check reads critical"
    );
}
// ANCHOR_END: ttl_test

#[test]
fn each_heartbeat_restarts_the_ttl() {
    let mut registry = Registry::new(Config::default());
    register(
        &mut registry,
        Millis(0),
        ttl_instance("user-1", "user", TTL),
    );
    for at in [0, 9_000, 18_000, 27_000] {
        report(&mut registry, Millis(at), "user-1", Status::Passing);
    }
    assert_eq!(
        registry.passing("user", Millis(36_999)).len(),
        1,
        "heartbeats every 9 s keep a 10 s TTL fresh: the last one, at 27 s, holds to 37 s"
    );
    report(&mut registry, Millis(37_000), "user-1", Status::Warning);
    assert_eq!(
        registry
            .check("service:user-1", Millis(46_000))
            .map(|c| c.status),
        Some(Status::Warning),
        "a warn report restarts the TTL too, and the check reads warning until it runs out"
    );
    assert_eq!(
        registry
            .check("service:user-1", Millis(47_001))
            .map(|c| c.status),
        Some(Status::Critical),
        "past the TTL of the warn report, the check is critical"
    );
}

// ANCHOR: boundary_test
#[test]
fn a_heartbeat_exactly_at_the_ttl_boundary_is_in_time() {
    let mut registry = Registry::new(Config::default());
    register(
        &mut registry,
        Millis(0),
        ttl_instance("user-1", "user", TTL),
    );
    report(&mut registry, Millis(0), "user-1", Status::Passing);
    let index = registry.index("user");
    report(&mut registry, Millis(10_000), "user-1", Status::Passing);
    assert_eq!(
        registry.passing("user", Millis(10_000)).len(),
        1,
        "a report at 0 with a 10 s TTL still holds at exactly 10 s"
    );
    assert_eq!(
        registry.index("user"),
        index,
        "a heartbeat exactly at the boundary found the check passing: nothing changed, \
         so the index did not move and no watcher woke"
    );
    assert_eq!(
        registry.passing("user", Millis(20_000)).len(),
        1,
        "the heartbeat at 10 s holds to 20 s"
    );
}
// ANCHOR_END: boundary_test

#[test]
fn http_probe_outcomes_set_the_check_status() {
    let mut registry = Registry::new(Config::default());
    let http = CheckKind::Http {
        url: "http://127.0.0.1:8080/health".to_owned(),
        interval: Millis(5_000),
        timeout: Millis(1_000),
    };
    register(
        &mut registry,
        Millis(0),
        instance("web-1", "web", vec![check("web-1", http)]),
    );
    registry.handle_timeout(Millis(0));
    assert!(
        outputs(&mut registry)
            .iter()
            .any(|o| matches!(o, Output::Probe { check_id, timeout, .. }
                if check_id == "service:web-1" && *timeout == Millis(1_000))),
        "a new HTTP check is probed at once, with its timeout"
    );
    let cases = [
        (ProbeOutcome::Response(200), Status::Passing),
        (ProbeOutcome::Response(299), Status::Passing),
        (ProbeOutcome::Response(429), Status::Warning),
        (ProbeOutcome::Response(300), Status::Critical),
        (ProbeOutcome::Response(199), Status::Critical),
        (ProbeOutcome::Response(503), Status::Critical),
        (ProbeOutcome::Response(428), Status::Critical),
        (ProbeOutcome::TimedOut, Status::Critical),
        (ProbeOutcome::Unreachable, Status::Critical),
    ];
    for (outcome, expected) in cases {
        registry
            .handle_input(
                Millis(1),
                Input::Probed {
                    check_id: "service:web-1".to_owned(),
                    outcome,
                },
            )
            .expect("the check exists");
        assert_eq!(
            registry.check("service:web-1", Millis(1)).map(|c| c.status),
            Some(expected),
            "a probe that got {outcome:?} makes the check {expected:?} (2xx passing, 429 warning, \
             anything else critical)"
        );
    }
    assert_eq!(
        registry
            .check("service:web-1", Millis(999_999))
            .map(|c| c.status),
        Some(Status::Critical),
        "an HTTP check never goes stale on its own: it holds its last probe's verdict"
    );
}

#[test]
fn http_checks_are_probed_on_their_interval() {
    let mut registry = Registry::new(Config::default());
    let http = CheckKind::Http {
        url: "http://127.0.0.1:8080/health".to_owned(),
        interval: Millis(5_000),
        timeout: Millis(1_000),
    };
    register(
        &mut registry,
        Millis(0),
        instance("web-1", "web", vec![check("web-1", http)]),
    );
    let mut probes = Vec::new();
    while let Some(due) = registry.poll_timeout().filter(|due| *due <= Millis(12_000)) {
        registry.handle_timeout(due);
        for output in outputs(&mut registry) {
            if let Output::Probe { .. } = output {
                probes.push(due);
            }
        }
    }
    assert_eq!(
        probes,
        vec![Millis(0), Millis(5_000), Millis(10_000)],
        "a 5 s interval probes at 0, 5 s and 10 s"
    );
}

// ANCHOR: reaper_test
#[test]
fn the_reaper_removes_an_instance_critical_for_deregister_critical_service_after() {
    let mut registry = Registry::new(Config::default());
    let mut spec = ttl_instance("user-1", "user", TTL);
    spec.checks[0].deregister_after = Some(Millis(60_000));
    register(&mut registry, Millis(0), spec);
    report(&mut registry, Millis(0), "user-1", Status::Passing);
    // Silent from now: critical from 10.001 s, reaped 60 s later.
    assert_eq!(
        registry.poll_timeout(),
        Some(Millis(10_001)),
        "the registry wants the clock when the TTL runs out"
    );
    registry.handle_timeout(Millis(10_001));
    outputs(&mut registry);
    assert_eq!(
        registry.poll_timeout(),
        Some(Millis(70_001)),
        "the reaper's deadline: critical since 10.001 s, plus 60 s"
    );
    registry.handle_timeout(Millis(70_000));
    assert!(
        registry.instance("user-1").is_some(),
        "one millisecond before the deadline the instance is still registered"
    );
    registry.handle_timeout(Millis(70_001));
    assert!(
        registry.instance("user-1").is_none(),
        "at the deadline the reaper removes it"
    );
    assert!(
        outputs(&mut registry).contains(&Output::Reaped {
            id: "user-1".to_owned()
        }),
        "the reaper says what it removed"
    );
}
// ANCHOR_END: reaper_test

#[test]
fn a_check_that_recovers_before_the_reaper_deadline_is_kept() {
    let mut registry = Registry::new(Config::default());
    let mut spec = ttl_instance("user-1", "user", TTL);
    spec.checks[0].deregister_after = Some(Millis(30_000));
    register(&mut registry, Millis(0), spec);
    report(&mut registry, Millis(0), "user-1", Status::Passing);
    report(&mut registry, Millis(5_000), "user-1", Status::Critical);
    report(&mut registry, Millis(34_999), "user-1", Status::Passing);
    registry.handle_timeout(Millis(35_000));
    assert!(
        registry.instance("user-1").is_some(),
        "critical from 5 s, passing again at 34.999 s: the reaper's 30 s never ran out"
    );
    report(&mut registry, Millis(36_000), "user-1", Status::Critical);
    registry.handle_timeout(Millis(65_999));
    assert!(
        registry.instance("user-1").is_some(),
        "critical again from 36 s: the count starts over, so at 65.999 s it is kept"
    );
    registry.handle_timeout(Millis(66_000));
    assert!(
        registry.instance("user-1").is_none(),
        "and it is reaped at 66 s"
    );
}

#[test]
fn a_check_without_deregister_after_is_never_reaped() {
    let mut registry = Registry::new(Config::default());
    register(
        &mut registry,
        Millis(0),
        ttl_instance("user-1", "user", TTL),
    );
    registry.handle_timeout(Millis(10_000_000));
    assert!(
        registry.instance("user-1").is_some(),
        "without DeregisterCriticalServiceAfter a critical instance stays registered"
    );
    assert_eq!(
        registry.poll_timeout(),
        None,
        "and the registry wants no timeout for it"
    );
}

// ANCHOR: watch_test
#[test]
fn a_watcher_is_answered_when_its_service_index_moves() {
    let mut registry = Registry::new(Config::default());
    register(
        &mut registry,
        Millis(0),
        ttl_instance("user-1", "user", TTL),
    );
    let index = registry.index("user");
    watch(&mut registry, Millis(10), 1, "user", index, 60_000);
    assert!(
        answered(&outputs(&mut registry)).is_empty(),
        "nothing changed since the index it saw: the query waits"
    );
    report(&mut registry, Millis(20), "user-1", Status::Passing);
    let out = outputs(&mut registry);
    assert_eq!(
        answered(&out),
        vec![1],
        "the check turned passing, the service's index moved: the query is answered"
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Answered { index: i, .. } if *i > index)),
        "with the new index"
    );
    assert_eq!(registry.watching(), 0, "an answered query is gone");
}
// ANCHOR_END: watch_test

// ANCHOR: churn_test
#[test]
fn a_watcher_is_not_woken_by_another_services_churn() {
    let mut registry = Registry::new(Config::default());
    register(
        &mut registry,
        Millis(0),
        ttl_instance("user-1", "user", TTL),
    );
    let index = registry.index("user");
    watch(&mut registry, Millis(0), 1, "user", index, 60_000);
    for n in 0..5 {
        register(
            &mut registry,
            Millis(n),
            ttl_instance(&format!("pay-{n}"), "payment", TTL),
        );
        report(
            &mut registry,
            Millis(n),
            &format!("pay-{n}"),
            Status::Passing,
        );
    }
    registry
        .handle_input(Millis(9), Input::Deregister { id: "pay-0".into() })
        .expect("registered");
    assert!(
        answered(&outputs(&mut registry)).is_empty(),
        "churn in `payment` moved payment's index, not user's: the user watcher sleeps on"
    );
    assert_eq!(registry.index("user"), index, "user's index did not move");
}
// ANCHOR_END: churn_test

#[test]
fn a_watcher_with_an_older_index_is_answered_at_once() {
    let mut registry = Registry::new(Config::default());
    register(
        &mut registry,
        Millis(0),
        ttl_instance("user-1", "user", TTL),
    );
    watch(&mut registry, Millis(0), 1, "user", 0, 60_000);
    let older = registry.index("user") - 1;
    watch(&mut registry, Millis(0), 2, "user", older, 60_000);
    assert_eq!(
        answered(&outputs(&mut registry)),
        vec![1, 2],
        "a caller that saw 0 or an older index has something to read now"
    );
}

// ANCHOR: wait_test
#[test]
fn a_watcher_is_answered_when_its_wait_ends_with_at_most_a_sixteenth_of_jitter() {
    let mut registry = Registry::new(Config::default());
    register(
        &mut registry,
        Millis(0),
        ttl_instance("user-1", "user", TTL),
    );
    let index = registry.index("user");
    let mut deadlines = Vec::new();
    for id in 1..=20 {
        watch(&mut registry, Millis(0), id, "user", index, 16_000);
        let due = registry
            .poll_timeout()
            .expect("a waiting query wants a timeout");
        deadlines.push(due);
        registry.handle_timeout(due - Millis(1));
        assert!(
            answered(&outputs(&mut registry)).is_empty(),
            "query {id} is not answered before its deadline {due}"
        );
        registry.handle_timeout(due);
        assert_eq!(
            answered(&outputs(&mut registry)),
            vec![id],
            "query {id} is answered at its deadline {due}"
        );
        assert!(
            (Millis(16_000)..=Millis(17_000)).contains(&(due - Millis(0))),
            "a 16 s wait ends between 16 s and 17 s (a sixteenth of jitter), not at {due}"
        );
        // Start the next one from the same clock.
        registry = Registry::new(Config {
            seed: id,
            ..Config::default()
        });
        register(
            &mut registry,
            Millis(0),
            ttl_instance("user-1", "user", TTL),
        );
    }
    deadlines.sort();
    deadlines.dedup();
    assert!(
        deadlines.len() > 1,
        "the jitter spreads the deadlines: {deadlines:?}"
    );
}
// ANCHOR_END: wait_test

#[test]
fn the_wait_defaults_to_five_minutes_and_is_capped_at_ten() {
    use discovery_core::health::wait_deadline;
    assert_eq!(
        wait_deadline(Millis(1_000), None, 0),
        Millis(1_000 + 300_000),
        "no wait given: five minutes (and no jitter with a random 0)"
    );
    assert_eq!(
        wait_deadline(Millis(0), Some(Millis(3_600_000)), 0),
        Millis(600_000),
        "an hour is capped at ten minutes"
    );
    assert_eq!(
        wait_deadline(Millis(0), Some(Millis(16_000)), 1_000),
        Millis(17_000),
        "the jitter reaches a sixteenth of the wait"
    );
    assert_eq!(
        wait_deadline(Millis(0), Some(Millis(16_000)), 1_001),
        Millis(16_000),
        "and no more: the random number is taken modulo one more than a sixteenth"
    );
    assert_eq!(
        wait_deadline(Millis(0), Some(Millis(600_000)), 37_500),
        Millis(637_500),
        "the jitter is a sixteenth of the capped wait"
    );
}

// ANCHOR: round_robin_test
#[test]
fn round_robin_takes_turns_over_the_passing_instances() {
    let mut balancer = Balancer::new(Strategy::RoundRobin, 1);
    assert_eq!(balancer.pick(), None, "no instance, no pick");
    balancer.set_instances(["a", "b", "c"].map(String::from));
    let picks: Vec<String> = (0..7)
        .filter_map(|_| balancer.pick().map(str::to_owned))
        .collect();
    assert_eq!(
        picks,
        ["a", "b", "c", "a", "b", "c", "a"],
        "each instance in turn, wrapping round"
    );
    balancer.set_instances(["a", "c"].map(String::from));
    let picks: Vec<String> = (0..3)
        .filter_map(|_| balancer.pick().map(str::to_owned))
        .collect();
    assert_eq!(
        picks.len(),
        3,
        "a shorter list after a watch's answer still gives a pick every time"
    );
    assert!(
        picks.iter().all(|p| p != "b"),
        "an instance gone from the list is never picked"
    );
    assert_ne!(picks[0], picks[1], "and turns are still taken");
}
// ANCHOR_END: round_robin_test

#[test]
fn two_choices_picks_the_lower_latency_of_two_different_instances() {
    use discovery_core::health::two_choices;
    let latencies = [50.0, 10.0, 30.0];
    assert_eq!(two_choices(&[], 3, 4), None, "no instance, no pick");
    assert_eq!(
        two_choices(&[99.0], 3, 4),
        Some(0),
        "one instance is the pick"
    );
    assert_eq!(
        two_choices(&latencies, 0, 0),
        Some(1),
        "draws 0 and 1 (50 ms and 10 ms): the faster, 1"
    );
    assert_eq!(
        two_choices(&latencies, 0, 1),
        Some(2),
        "draws 0 and 2 (50 ms and 30 ms): 2"
    );
    assert_eq!(
        two_choices(&latencies, 5, 0),
        Some(2),
        "draws 2 and 0: 2, whichever comes first"
    );
    assert_eq!(
        two_choices(&latencies, 4, 1),
        Some(1),
        "draws 1 and 0: the second draw skips the first, so they always differ"
    );
    assert_eq!(
        two_choices(&[20.0, 20.0], 1, 0),
        Some(1),
        "a tie goes to the first draw"
    );
    assert_eq!(
        two_choices(&[20.0, 20.0], 0, 7),
        Some(0),
        "a tie goes to the first draw, whichever it is"
    );
}

#[test]
fn the_latency_average_moves_a_quarter_of_the_way_to_each_sample() {
    use discovery_core::health::ewma;
    assert_eq!(ewma(None, 80.0), 80.0, "the first sample is the average");
    assert_eq!(
        ewma(Some(80.0), 40.0),
        70.0,
        "80 ms, then 40 ms: a quarter of the way down, 70"
    );
    assert_eq!(ewma(Some(10.0), 50.0), 20.0, "and up: 10 → 20");
}

// ANCHOR: p2c_test
#[test]
fn a_slow_instance_gets_less_traffic_under_two_choices_than_round_robin() {
    let latency = |id: &str| if id == "slow" { 200 } else { 10 };
    let mut calls = BTreeMap::new();
    for strategy in [Strategy::RoundRobin, Strategy::TwoChoices] {
        let mut balancer = Balancer::new(strategy, 42);
        balancer.set_instances(["fast-1", "slow", "fast-2"].map(String::from));
        let mut slow = 0;
        for _ in 0..300 {
            let pick = balancer.pick().expect("three instances").to_owned();
            if pick == "slow" {
                slow += 1;
            }
            balancer.record(&pick, Millis(latency(&pick)));
        }
        calls.insert(format!("{strategy:?}"), slow);
    }
    assert_eq!(
        calls["RoundRobin"], 100,
        "round-robin gives each of three a third"
    );
    assert!(
        calls["TwoChoices"] < 20,
        "two choices sends the slow instance only what it draws against nobody faster: {calls:?}"
    );
}
// ANCHOR_END: p2c_test

// ANCHOR: ttl_property
#[test]
fn property_an_instance_past_its_ttl_is_never_passing() {
    // Heartbeats at random times (pass, warn, fail); reads at random times. The model: an
    // instance passes at `t` when its last report at or before `t` was a pass and at most a
    // TTL ago.
    let steps = proptest::collection::vec((1u64..15_000, 0u8..4), 1..40);
    check_property(64, 15, &steps, |steps| {
        let mut registry = Registry::new(Config::default());
        register(&mut registry, Millis(0), ttl_instance("u", "user", TTL));
        let (mut now, mut last): (u64, Option<(u64, Status)>) = (0, None);
        for (gap, action) in steps {
            now += gap;
            let status = match action {
                0 => Some(Status::Passing),
                1 => Some(Status::Warning),
                2 => Some(Status::Critical),
                _ => None,
            };
            if let Some(status) = status {
                report(&mut registry, Millis(now), "u", status);
                last = Some((now, status));
            }
            for probe in [now, now + TTL.0, now + TTL.0 + 1] {
                let expected = last.is_some_and(|(at, status)| {
                    status == Status::Passing && probe <= at + TTL.0 && probe >= at
                });
                let passing = !registry.passing("user", Millis(probe)).is_empty();
                prop_assert_eq!(
                    passing,
                    expected,
                    "invariant: stale_never_passing — at {} (last report {:?}) the instance \
                     passing={}",
                    probe,
                    last,
                    passing
                );
            }
        }
        Ok(())
    });
}
// ANCHOR_END: ttl_property

// ANCHOR: watch_property
#[test]
fn property_a_watcher_is_answered_exactly_when_its_index_moves_or_its_wait_ends() {
    // Two services, changes to either at random times, watchers on both. The model: after
    // every step, a watcher is answered when its own service's index moved past the one it
    // saw, or its wait (5 s, plus at most 5000/16 ms of jitter) ended, and not otherwise;
    // never twice.
    const WAIT: u64 = 5_000;
    let events = proptest::collection::vec((1u64..3_000, 0u8..6), 1..40);
    check_property(64, 16, &events, |events| {
        let mut registry = Registry::new(Config::default());
        for (id, name) in [("u", "user"), ("p", "pay")] {
            register(&mut registry, Millis(0), ttl_instance(id, name, TTL));
        }
        // watch id → (service, index seen, started at, answered)
        let mut model: BTreeMap<u64, (&str, u64, u64, bool)> = BTreeMap::new();
        let mut next_watch = 1;
        let mut now = 0;
        let check = |registry: &mut Registry,
                     model: &mut BTreeMap<u64, (&str, u64, u64, bool)>,
                     now: u64|
         -> Result<(), TestCaseError> {
            let woken = answered(&outputs(registry));
            for (watch, (service, seen, start, done)) in model.iter_mut() {
                let moved = registry.index(service) > *seen;
                let ended = now >= *start + WAIT;
                let overdue = now > *start + WAIT + WAIT / 16;
                let is_woken = woken.contains(watch);
                prop_assert!(
                    !(is_woken && *done),
                    "invariant: answered_once — watch {} answered twice",
                    watch
                );
                if *done {
                    continue;
                }
                prop_assert!(
                    !is_woken || moved || ended,
                    "invariant: no_early_answer — watch {} on {} answered at {} with its index \
                     unmoved and its wait not over",
                    watch,
                    service,
                    now
                );
                prop_assert!(
                    is_woken || !(moved || overdue),
                    "invariant: answered_when_due — watch {} on {} still waiting at {} \
                     (index moved: {}, wait over: {})",
                    watch,
                    service,
                    now,
                    moved,
                    overdue
                );
                *done = is_woken;
            }
            Ok(())
        };
        for (gap, action) in events {
            // Time passes first, with every deadline on the way.
            let target = now + gap;
            while let Some(due) = registry.poll_timeout().filter(|d| d.0 <= target) {
                registry.handle_timeout(due);
                check(&mut registry, &mut model, due.0)?;
            }
            now = target;
            registry.handle_timeout(Millis(now));
            check(&mut registry, &mut model, now)?;
            let (service, id) = if action % 2 == 0 {
                ("user", "u")
            } else {
                ("pay", "p")
            };
            match action / 2 {
                0 => {
                    let seen = registry.index(service);
                    watch(&mut registry, Millis(now), next_watch, service, seen, WAIT);
                    model.insert(next_watch, (service, seen, now, false));
                    next_watch += 1;
                }
                1 => {
                    let status = if now % 2 == 0 {
                        Status::Passing
                    } else {
                        Status::Critical
                    };
                    report(&mut registry, Millis(now), id, status);
                }
                _ => register(&mut registry, Millis(now), ttl_instance(id, service, TTL)),
            }
            check(&mut registry, &mut model, now)?;
        }
        Ok(())
    });
}
// ANCHOR_END: watch_property
