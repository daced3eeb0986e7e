//! Dev-only helpers the labs' tests share, so every lab's tests read the same way.
//!
//! Take this crate under `[dev-dependencies]` only. Its normal dependencies are std and
//! proptest, so a pure core crate can use it without pulling an async runtime in.
//!
//! - [`seeded`]: a property-test runner with a fixed seed that it prints, replayable from
//!   the `PROPTEST_SEED` environment variable.
//! - [`ansi`]: strip terminal colour codes from captured output.
//! - [`process`]: a child process killed and reaped when the test ends, its output shown
//!   when the test fails.
//! - [`listen`]: start a service process on a free port and wait until it listens.
//! - [`services`]: a test's service processes by name, their logs shown if it fails.
//! - [`transcript`]: a demo's output made stable for a snapshot (colours, ports, durations
//!   and temporary paths normalised).
//! - [`wait`]: wait for a condition with a bounded number of tries instead of sleeping and
//!   checking (`wait_until_async` with the `tokio` feature).

pub mod ansi;
pub mod listen;
pub mod process;
pub mod seeded;
pub mod services;
pub mod transcript;
pub mod wait;

pub use ansi::strip_ansi;
pub use listen::{Listening, free_port, start_listening};
pub use process::{ChildGuard, LoggedChild};
pub use seeded::check_property;
pub use services::Services;
pub use transcript::Transcript;
pub use wait::wait_until;
#[cfg(feature = "tokio")]
pub use wait::wait_until_async;
