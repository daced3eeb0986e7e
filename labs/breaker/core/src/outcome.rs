//! What a finished call counts as: the breaker only sees `Success`, `Failure` or `Ignored`.
//!
//! Deciding what a failure *is* belongs to the caller, because only the caller knows its
//! results. A [`Classify`] turns a result into an [`Outcome`]; the HTTP helper encodes the
//! usual rule for a breaker in front of a service: a 5xx or a transport error (timeout,
//! refused connection) says the *service* is unwell, a 4xx says the *request* was wrong and
//! must not open the breaker, or one client's bad input would cut everybody off.

use serde::{Deserialize, Serialize};

/// How a finished call counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The callee did its job (slow successes still count towards the slow-call rate).
    Success,
    /// The callee is unwell: counts towards the failure rate.
    Failure,
    /// Says nothing about the callee's health (for example a cancelled request or a
    /// business error): not recorded, and a HalfOpen trial slot it held is freed.
    Ignored,
}

/// Decides how a call's result counts; the service side calls it before recording.
///
/// Any `Fn(&T) -> Outcome` is a classifier, so a one-off rule needs no new type:
///
/// ```
/// use breaker_core::{Classify, Outcome};
/// let only_timeouts_fail = |r: &Result<u16, &str>| match r {
///     Err(e) if *e == "timeout" => Outcome::Failure,
///     _ => Outcome::Success,
/// };
/// assert_eq!(only_timeouts_fail.classify(&Err("timeout")), Outcome::Failure);
/// ```
pub trait Classify<T: ?Sized> {
    /// How `result` counts.
    fn classify(&self, result: &T) -> Outcome;
}

impl<T: ?Sized, F: Fn(&T) -> Outcome> Classify<T> for F {
    fn classify(&self, result: &T) -> Outcome {
        self(result)
    }
}

/// The default rule for any `Result`: `Ok` is a success, `Err` a failure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResultClassifier;

impl<T, E> Classify<Result<T, E>> for ResultClassifier {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

/// The rule for HTTP: 5xx fails, everything else (2xx, 3xx, 4xx) succeeds, and an `Err`
/// (timeout, connection refused, reset) fails.
///
/// Implemented for a bare status code (`u16`) and for `Result<u16, E>`, so a driver maps its
/// response to `Ok(status.as_u16())` and its transport error to `Err(e)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpStatusClassifier;

// ANCHOR: classify_http_status
/// How one HTTP status code counts: 500–599 is a failure, anything else a success.
pub const fn classify_http_status(status: u16) -> Outcome {
    if status >= 500 && status <= 599 {
        Outcome::Failure
    } else {
        Outcome::Success
    }
}

impl Classify<u16> for HttpStatusClassifier {
    fn classify(&self, status: &u16) -> Outcome {
        classify_http_status(*status)
    }
}

impl<E> Classify<Result<u16, E>> for HttpStatusClassifier {
    fn classify(&self, result: &Result<u16, E>) -> Outcome {
        match result {
            Ok(status) => classify_http_status(*status),
            Err(_) => Outcome::Failure,
        }
    }
}
// ANCHOR_END: classify_http_status

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_and_transport_errors_fail_client_errors_do_not() {
        let http = HttpStatusClassifier;
        assert_eq!(http.classify(&200u16), Outcome::Success);
        assert_eq!(http.classify(&404u16), Outcome::Success);
        assert_eq!(http.classify(&429u16), Outcome::Success);
        assert_eq!(http.classify(&500u16), Outcome::Failure);
        assert_eq!(http.classify(&503u16), Outcome::Failure);
        assert_eq!(http.classify(&599u16), Outcome::Failure);
        assert_eq!(http.classify(&600u16), Outcome::Success);
        let timed_out: Result<u16, &str> = Err("timed out");
        assert_eq!(http.classify(&timed_out), Outcome::Failure);
        assert_eq!(http.classify(&Ok::<u16, ()>(201)), Outcome::Success);
    }

    #[test]
    fn results_classify_by_variant() {
        assert_eq!(
            ResultClassifier.classify(&Ok::<(), ()>(())),
            Outcome::Success
        );
        assert_eq!(
            ResultClassifier.classify(&Err::<(), ()>(())),
            Outcome::Failure
        );
    }
}
