//! A lab binary's logs: `tracing` events to standard error, filtered by `RUST_LOG`.
//!
//! Standard output belongs to the narration, so a piped timeline carries no log lines; the
//! logs are coloured only when standard error is a terminal and `NO_COLOR` is unset.

use crate::palette::Palette;

/// Installs the global subscriber: `RUST_LOG` if set, else `default_filter` (such as
/// `"warn"`). Call it once, first thing in `main`.
pub fn init(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(Palette::detect_stderr().color)
        .init();
}
