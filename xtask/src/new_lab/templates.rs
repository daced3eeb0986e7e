//! The files of a new lab's skeleton, as text with the lab's names filled in.
//!
//! The placeholder pattern is a one-shot timer: small enough to read in a minute, yet it has
//! everything a lab's core has (inputs, outputs, a deadline the driver must honour through
//! `poll_timeout`) and a graded function whose every mutant a graded test catches. A lab's
//! author replaces it piece by piece, keeping the files where they are.

use super::Names;

/// The placeholders a template may hold, longest first where one starts another (`{lab_snake}`
/// before `{lab}`), so each is replaced whole.
pub const PLACEHOLDERS: &[&str] = &[
    "{lab_snake}",
    "{lab}",
    "{core_snake}",
    "{core}",
    "{kebab}",
    "{snake}",
    "{title}",
    "{page}",
    "{up}",
];

/// What a placeholder stands for: the lab's names, the chapter's page (`{page}`, without
/// `.md`) or the way from the chapter's folder up to the workspace root (`{up}`).
fn value(placeholder: &str, names: &Names, chapter: &str) -> String {
    match placeholder {
        "{lab_snake}" => format!("lab_{}", names.snake),
        "{lab}" => names.lab_crate(),
        "{core_snake}" => names.core_snake(),
        "{core}" => names.core_crate(),
        "{kebab}" => names.kebab.clone(),
        "{snake}" => names.snake.clone(),
        "{title}" => names.title.clone(),
        "{page}" => chapter.trim_end_matches(".md").to_owned(),
        "{up}" => "../".repeat(chapter.matches('/').count() + 2),
        _ => placeholder.to_owned(),
    }
}

/// Replaces every placeholder of [`PLACEHOLDERS`] in `template`.
fn fill(template: &str, names: &Names, chapter: &str) -> String {
    PLACEHOLDERS
        .iter()
        .fold(template.to_owned(), |text, placeholder| {
            text.replace(placeholder, &value(placeholder, names, chapter))
        })
}

/// `(path, contents)` of every file, paths relative to the workspace root.
pub fn files(names: &Names, chapter: &str) -> Vec<(String, String)> {
    let dir = chapter.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
    let book_dir = if dir.is_empty() {
        "book/src".to_owned()
    } else {
        format!("book/src/{dir}")
    };
    let k = &names.kebab;
    [
        (format!("labs/{k}/core/Cargo.toml"), CORE_CARGO),
        (format!("labs/{k}/core/src/lib.rs"), CORE_LIB),
        (format!("labs/{k}/core/src/timer.rs"), CORE_TIMER),
        (format!("labs/{k}/core/src/deadline.rs"), CORE_DEADLINE),
        (format!("labs/{k}/exercise/deadline.rs"), EXERCISE_DEADLINE),
        (format!("labs/{k}/core/tests/graded.rs"), GRADED_TESTS),
        (format!("labs/{k}/grading.toml"), GRADING),
        (format!("labs/{k}/lab.toml"), LAB_TOML),
        (format!("labs/{k}/Cargo.toml"), LAB_CARGO),
        (format!("labs/{k}/src/lib.rs"), LAB_LIB),
        (format!("labs/{k}/src/main.rs"), LAB_MAIN),
        (format!("labs/{k}/tests/service.rs"), LAB_TESTS),
        (format!("{book_dir}/{k}-lab.md"), BOOK_FRAGMENT),
        (format!("{book_dir}/{k}-solution.md"), BOOK_SOLUTION),
    ]
    .into_iter()
    .map(|(path, template)| (path, fill(template, names, chapter)))
    .collect()
}

/// What to do after the skeleton is written, one line each.
pub fn next_steps(names: &Names) -> Vec<String> {
    let k = &names.kebab;
    vec![
        format!("cargo test -p {} -p {}          # the skeleton's tests pass", names.core_crate(), names.lab_crate()),
        format!("cargo xtask grade {k} --reference    # reference 1/1, untouched exercise 0/1"),
        format!("cargo xtask mutants {k}              # again after every change to the graded module"),
        "then follow ARCHITECTURE.md, \"How to add a lab\": core first, then the exercise, services, narration, tests, benches, the chapter".to_owned(),
    ]
}

const CORE_CARGO: &str = r#"[package]
name = "{core}"
version = "0.1.0"
description = "The {title} lab's core: its logic as a pure state machine, time passed in."
edition.workspace = true
license.workspace = true
publish.workspace = true

[features]
# Swap the graded module for the learner's copy in labs/{kebab}/exercise/.
exercise = []

[dependencies]
sansio-core.workspace = true
serde.workspace = true

[dev-dependencies]
proptest.workspace = true

[lints]
workspace = true
"#;

const CORE_LIB: &str = r#"//! The {title} core: the lab's logic as a pure, deterministic state machine.
//!
//! Nothing here does I/O, reads a clock or spawns a task, so it builds for
//! `wasm32-unknown-unknown` and its tests drive it through hours in microseconds. The lab
//! (`{lab}`) puts it behind real sockets; the graded exercise replaces [`deadline`] with the
//! learner's copy (`--features exercise`).
//!
//! - [`Timer`] — the placeholder machine: armed with a delay, it fires once at its deadline;
//! - [`due_at`] — when an armed timer fires (graded).

mod timer;

// The graded module: the reference, or the learner's copy with `--features exercise`.
#[cfg_attr(feature = "exercise", path = "../../exercise/deadline.rs")]
mod deadline;

pub use deadline::due_at;
pub use sansio_core::{Machine, Millis};
pub use timer::{Fired, Input, Timer, TimerError};
"#;

const CORE_TIMER: &str = r#"//! The placeholder machine: a one-shot timer, in the vocabulary every core shares.
//!
//! Armed with a delay, it asks its driver to call back at the deadline (`poll_timeout`) and
//! emits [`Fired`] once when `handle_timeout` finds the deadline passed. Replace it with the
//! lab's pattern; keep the shape: inputs in with `now`, outputs drained with `poll_output`.

use std::collections::VecDeque;

use sansio_core::{Machine, Millis};
use serde::{Deserialize, Serialize};

use crate::deadline::due_at;

// ANCHOR: types
/// What the driver tells the timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// Fire once, `after` from now (re-arming replaces the previous deadline).
    Arm {
        /// How long from now.
        after: Millis,
    },
    /// Forget the deadline; nothing fires.
    Disarm,
}

/// What the timer tells its driver: it fired at `at` (its deadline, not the driver's late `now`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    /// The deadline that passed.
    pub at: Millis,
}
// ANCHOR_END: types

/// Inputs the timer refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerError {
    /// A zero delay would fire before anyone could see it armed.
    ZeroDelay,
}

impl std::fmt::Display for TimerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimerError::ZeroDelay => f.write_str("a timer needs a delay of at least 1 ms"),
        }
    }
}

impl std::error::Error for TimerError {}

/// A one-shot timer.
#[derive(Debug, Default)]
pub struct Timer {
    deadline: Option<Millis>,
    outputs: VecDeque<Fired>,
}

impl Timer {
    /// A timer that is not armed.
    pub fn new() -> Timer {
        Timer::default()
    }
}

impl Machine for Timer {
    type Input = Input;
    type Output = Fired;
    type Error = TimerError;

    fn handle_input(&mut self, now: Millis, input: Input) -> Result<(), TimerError> {
        self.handle_timeout(now);
        match input {
            Input::Arm { after } if after == Millis::ZERO => return Err(TimerError::ZeroDelay),
            Input::Arm { after } => self.deadline = Some(due_at(now, after)),
            Input::Disarm => self.deadline = None,
        }
        Ok(())
    }

    fn handle_timeout(&mut self, now: Millis) {
        if let Some(at) = self.deadline.filter(|&at| at <= now) {
            self.deadline = None;
            self.outputs.push_back(Fired { at });
        }
    }

    fn poll_output(&mut self) -> Option<Fired> {
        self.outputs.pop_front()
    }

    fn poll_timeout(&self) -> Option<Millis> {
        self.deadline
    }
}
"#;

const CORE_DEADLINE: &str = r#"//! When an armed timer fires: the lab's graded module (the learner's copy is
//! `labs/{kebab}/exercise/deadline.rs`).

use sansio_core::Millis;

// ANCHOR: due_at
/// The deadline of a timer armed at `now` with a delay of `after`: `now + after`, saturating
/// at the end of time rather than wrapping round to the past.
pub fn due_at(now: Millis, after: Millis) -> Millis {
    now + after
}
// ANCHOR_END: due_at
"#;

const EXERCISE_DEADLINE: &str = r#"//! Exercise: when does an armed timer fire?
//!
//! This is your copy of the graded module. `cargo xtask grade {kebab}` runs
//! `labs/{kebab}/core/tests/graded.rs` against it. The signature must stay as it is: the timer
//! calls it. Replace the `todo!()`.
//! Read: book chapter {page}.md (section "Exercise").

// The parameters are unused until you write the body.
#![allow(unused_variables)]

use sansio_core::Millis;

/// The deadline of a timer armed at `now` with a delay of `after`. `Millis` arithmetic
/// saturates: a deadline past the end of time stays at the end of time.
pub fn due_at(now: Millis, after: Millis) -> Millis {
    todo!("the instant `after` from `now`")
}
"#;

const GRADED_TESTS: &str = r#"//! The graded tests of the {title} lab: the specification of the graded module.
//!
//! `cargo xtask grade {kebab}` runs them against the learner's copy (`--features exercise`);
//! `cargo test -p {core} --test graded` against the reference. Every assertion says what it
//! checks and why, so a failure reads as a sentence.

use {core_snake}::{Fired, Input, Machine, Millis, Timer, due_at};

// ANCHOR: fires_test
#[test]
fn an_armed_timer_fires_once_at_its_deadline() {
    let mut timer = Timer::new();
    timer
        .handle_input(Millis(100), Input::Arm { after: Millis(50) })
        .expect("a 50 ms delay is valid");
    assert_eq!(
        timer.poll_timeout(),
        Some(Millis(150)),
        "armed at 100 ms for 50 ms, the timer wants the clock at 150 ms"
    );
    timer.handle_timeout(Millis(149));
    assert_eq!(timer.poll_output(), None, "at 149 ms the deadline has not passed");
    timer.handle_timeout(Millis(160));
    assert_eq!(
        timer.poll_output(),
        Some(Fired { at: Millis(150) }),
        "a late callback reports the deadline, not the late time"
    );
    assert_eq!(timer.poll_timeout(), None, "a one-shot timer wants nothing more");
    assert_eq!(
        due_at(Millis(u64::MAX - 1), Millis(5)),
        Millis(u64::MAX),
        "a deadline past the end of time saturates instead of wrapping to the past"
    );
}
// ANCHOR_END: fires_test
"#;

const GRADING: &str = r#"# The {title} lab's graded exercise: read by `cargo xtask grade {kebab}`.
# Ids are stable: progress is keyed by them. Never reuse or renumber an id; to rename a
# test, change `name` and keep `id`. Tests are listed in the order of tests/graded.rs.

lab = "{kebab}"
title = "{title}"
package = "{core}"
test_target = "graded"
feature = "exercise"
exercise_files = ["labs/{kebab}/exercise/deadline.rs"]
tests_file = "labs/{kebab}/core/tests/graded.rs"
reference_files = ["labs/{kebab}/core/src/deadline.rs"]
book_page = "{page}.html"

[[test]]
id = "{kebab}-01"
name = "an_armed_timer_fires_once_at_its_deadline"
nudge = "The deadline is the arming time plus the delay; `Millis` has an `Add` that saturates."
pointer = "{page}.html#exercise"
"#;

const LAB_TOML: &str = r#"# What the {title} lab's tests need beyond cargo; `cargo xtask test` provides it
# (see xtask/src/needs.rs). A lab whose tests also run against NATS JetStream adds:
#   [needs.nats]
#   tests = ["the test targets that read NATS_URL"]
package = "{lab}"
"#;

const LAB_CARGO: &str = r#"[package]
name = "{lab}"
version = "0.1.0"
description = "The {title} lab: real services on loopback around {core}, and a narrated demo."
edition.workspace = true
license.workspace = true
publish.workspace = true

[dependencies]
{core}.workspace = true
lab-http.workspace = true
lab-runtime.workspace = true
anyhow.workspace = true
axum.workspace = true
clap.workspace = true
serde.workspace = true
serde_json.workspace = true
tokio.workspace = true
tracing.workspace = true

[dev-dependencies]
http-body-util.workspace = true
tower.workspace = true

[lints]
workspace = true
"#;

const LAB_LIB: &str = r#"//! The {title} lab's services: the core behind real sockets.
//!
//! [`router`] is the service every process of the lab serves: `GET /health`, and a
//! problem+json 404 for anything else (`lab-http`'s fallback). Replace the placeholder with the
//! lab's services, each in its own module with its own SQLite file where it keeps state.

use axum::Router;
use axum::routing::get;

/// The lab's HTTP service.
pub fn router() -> Router {
    Router::new()
        .route("/health", get(health))
        .fallback(lab_http::not_found)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok", "lab": "{kebab}" }))
}
"#;

const LAB_MAIN: &str = r#"//! The {title} lab's demo: `cargo run -p {lab}`.
//!
//! It drives the core through a short script on a simulated clock and narrates each step, so
//! a reader sees the machine work before reading its code. `--role service --port N` serves
//! the lab's router instead. Output has colours only on a terminal and never with `NO_COLOR`.

use clap::{Parser, ValueEnum};
use lab_runtime::cli::{Role as LabRole, RoleArgs};
use lab_runtime::Narrator;
use {core_snake}::{Input, Machine, Millis, Timer};

/// Which part of the lab to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum Role {
    /// The narrated demo (the default).
    #[default]
    Demo,
    /// The lab's HTTP service alone, on `--port`.
    Service,
}

impl LabRole for Role {}

/// The lab's command line.
#[derive(Parser, Debug)]
#[command(about = "The {title} lab")]
struct Args {
    #[command(flatten)]
    run: RoleArgs<Role>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lab_runtime::logging::init("warn");
    let args = Args::parse();
    match args.run.role() {
        Role::Demo => demo(Narrator::detect()),
        Role::Service => serve(args.run.port()).await,
    }
}

fn demo(narrator: Narrator) -> anyhow::Result<()> {
    let mut timer = Timer::new();
    let script = [
        (Millis(0), "arm for 1.5 s", Some(Input::Arm { after: Millis(1_500) })),
        (Millis(1_000), "the clock reaches 1 s", None),
        (Millis(2_000), "the clock reaches 2 s", None),
    ];
    println!("{}", narrator.step("A one-shot timer on a simulated clock"));
    for (now, what, input) in script {
        match input {
            Some(input) => timer.handle_input(now, input)?,
            None => timer.handle_timeout(now),
        }
        let mut line = what.to_owned();
        while let Some(fired) = timer.poll_output() {
            line.push_str(&format!("  → fired (deadline {})", fired.at));
        }
        println!("{}", narrator.at(now, "timer", &line));
    }
    Ok(())
}

async fn serve(port: u16) -> anyhow::Result<()> {
    let listener = lab_runtime::serve::bind_loopback(port).await?;
    println!("{kebab} on http://{}", listener.local_addr()?);
    lab_runtime::serve::serve(listener, {lab_snake}::router(), lab_runtime::serve::ctrl_c()).await?;
    Ok(())
}
"#;

const LAB_TESTS: &str = r#"//! The {title} lab's service, through its router (no socket needed).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

#[tokio::test]
async fn health_answers_and_unknown_routes_get_a_problem() {
    let health = {lab_snake}::router()
        .oneshot(Request::get("/health").body(Body::empty()).expect("a request"))
        .await
        .expect("the router answers");
    assert_eq!(health.status(), StatusCode::OK, "GET /health is the liveness check");
    let missing = {lab_snake}::router()
        .oneshot(Request::get("/nowhere").body(Body::empty()).expect("a request"))
        .await
        .expect("the router answers");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND, "an unknown route is a 404");
    assert_eq!(
        missing.headers()[header::CONTENT_TYPE],
        "application/problem+json",
        "every error is problem+json"
    );
    let body = missing.into_body().collect().await.expect("a body").to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains("/nowhere"),
        "the problem's detail names the path"
    );
}
"#;

const BOOK_FRAGMENT: &str = r#"## Run the lab

```sh
cargo run -p {lab}                     # the narrated demo
cargo run -p {lab} -- --role service   # the service alone (prints its address)
```

The demo arms a timer and moves a simulated clock past its deadline. Its core is a `Machine`: it
never reads a clock; the driver passes `now` in and asks `poll_timeout` when to call back.

```rust,noplayground
{{#include {up}labs/{kebab}/core/src/timer.rs:types}}
```

## Exercise

```sh
cargo xtask grade {kebab}            # the scorecard: each graded test, pass or fail, a hint per failure
cargo xtask grade {kebab} --watch    # re-grade every time you save
```

Your copy is `labs/{kebab}/exercise/deadline.rs`: the timer asks it when an armed timer fires. The
graded test is the specification:

```rust,noplayground
{{#include {up}labs/{kebab}/core/tests/graded.rs:fires_test}}
```

The answer is on the [solution page]({kebab}-solution.md); try first.

## In production

Name the production systems and crates a reader would use instead, and how they differ.
"#;

const BOOK_SOLUTION: &str = r#"# {title}: the solution

> **Try the exercise first:** `cargo xtask grade {kebab}`, with your copy in
> `labs/{kebab}/exercise/deadline.rs`. This page is the answer.

```rust,noplayground
{{#include {up}labs/{kebab}/core/src/deadline.rs:due_at}}
```

`Millis`'s `Add` saturates, so a deadline past the end of time stays there instead of wrapping
round to an instant that has already passed, which would fire the timer at once.
"#;
