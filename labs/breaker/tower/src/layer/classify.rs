//! What counts as a failure for an HTTP client: 5xx and errors (timeouts!) do, 4xx do not.
//!
//! A breaker that counted 404s and 422s would let one client's bad requests cut every
//! client off from a perfectly healthy service. The rule lives in the core
//! ([`breaker_core::classify_http_status`]); this adapter applies it to the `Result` a
//! tower HTTP service returns. Any `Fn(&Result<Response, Error>) -> Outcome` is a
//! classifier too, for rules of your own (say, a 429 that should count).

use breaker_core::{Classify, Outcome, classify_http_status};

/// 5xx responses and every `Err` (transport errors, timeouts) are failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpClassifier;

impl<B, E> Classify<Result<http::Response<B>, E>> for HttpClassifier {
    fn classify(&self, result: &Result<http::Response<B>, E>) -> Outcome {
        match result {
            Ok(response) => classify_http_status(response.status().as_u16()),
            Err(_) => Outcome::Failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16) -> Result<http::Response<()>, ()> {
        let mut response = http::Response::new(());
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
        Ok(response)
    }

    #[test]
    fn server_errors_and_transport_errors_fail_client_errors_do_not() {
        assert_eq!(HttpClassifier.classify(&response(200)), Outcome::Success);
        assert_eq!(HttpClassifier.classify(&response(402)), Outcome::Success);
        assert_eq!(HttpClassifier.classify(&response(404)), Outcome::Success);
        assert_eq!(HttpClassifier.classify(&response(500)), Outcome::Failure);
        assert_eq!(HttpClassifier.classify(&response(503)), Outcome::Failure);
        assert_eq!(
            HttpClassifier.classify(&Err::<http::Response<()>, _>(())),
            Outcome::Failure
        );
    }
}
