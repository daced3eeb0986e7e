//! The seeded property-test runner: every run draws the same cases from a fixed seed, prints
//! the seed it used, and replays another seed when `PROPTEST_SEED` is set.

use std::fmt::Debug;

use proptest::strategy::Strategy;
use proptest::test_runner::{
    Config as ProptestConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};

/// The environment variable that replaces a property test's fixed seed.
pub const SEED_VAR: &str = "PROPTEST_SEED";

/// The seed to run with: `PROPTEST_SEED` when it is set to a number, else `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var(SEED_VAR)
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(default)
}

/// A runner of `cases` cases drawn from `seed`, saving no regression files (the printed seed
/// reproduces a failure).
pub fn runner(cases: u32, seed: u64) -> TestRunner {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    )
}

/// Runs `test` on `cases` inputs drawn from `strategy` with the seed [`seed`] picks from
/// `default_seed`, printing that seed first. A failure panics with the failed invariant's
/// message, the minimal failing input and the seed to replay it.
pub fn check_property<S: Strategy>(
    cases: u32,
    default_seed: u64,
    strategy: &S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: Debug,
{
    let seed = seed(default_seed);
    eprintln!("property test seed: {seed} (replay with {SEED_VAR}={seed})");
    match runner(cases, seed).run(strategy, test) {
        Ok(()) => {}
        Err(TestError::Fail(reason, input)) => panic!(
            "Test failed: {reason}\nminimal failing input: {input:?}\n\
             seed: {seed} (replay with {SEED_VAR}={seed})"
        ),
        Err(TestError::Abort(reason)) => panic!("property test aborted: {reason} (seed {seed})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn one_seed_draws_the_same_cases_every_run() {
        let draw = |seed| {
            let drawn = RefCell::new(Vec::new());
            runner(20, seed)
                .run(&(0u64..1_000_000), |value| {
                    drawn.borrow_mut().push(value);
                    Ok(())
                })
                .expect("the property holds");
            drawn.into_inner()
        };
        assert_eq!(draw(7), draw(7), "the same seed draws the same cases");
        assert_ne!(draw(7), draw(8), "another seed draws other cases");
    }

    #[test]
    fn a_failure_names_the_minimal_input_and_the_seed() {
        let failure = std::panic::catch_unwind(|| {
            check_property(50, 3, &(0u32..100), |value| {
                proptest::prop_assert!(value < 10, "value {value} is 10 or more");
                Ok(())
            })
        })
        .expect_err("the property fails");
        let message = failure
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(
            message.contains("minimal failing input: 10"),
            "the input shrinks to the smallest failing value: {message}"
        );
        assert!(
            message.contains("replay with PROPTEST_SEED="),
            "the message says how to replay: {message}"
        );
    }
}
