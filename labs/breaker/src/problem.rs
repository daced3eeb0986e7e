//! RFC 9457 "problem details": the one error shape every service in the lab speaks.
//!
//! The shape lives in `lab-http`, shared by every lab; it is re-exported here so the breaker's
//! services and tests keep writing `crate::problem::Problem`. The breaker's one kind of its own,
//! the open-circuit refusal (503 with `Retry-After`), is `rejection.rs`'s conversion into it.

pub use lab_http::{PROBLEM_JSON, Problem, not_found};
