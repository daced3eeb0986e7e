//! The `lab-saga` binary as a reader runs it by hand: logs on standard error, plain text in a
//! pipe, flags that do not apply refused, a clear NATS error, fresh books for every demo, and
//! a choreographed demo that is stuck on a locked database (says so) or killed (carries on
//! when run again), and a demo whose standard output is closed (it stops printing and the
//! saga still ends).
//!
//! Each test runs the compiled binary as a child process, with its output in files, and waits
//! for the lines it expects (polling the files up to a generous deadline: nothing here
//! asserts how long something took). Children are SIGKILLed when a test ends.

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lab_saga::bus::Bus;
use lab_saga::choreography::{self, Choreography};
use lab_saga::system::{Options, Place, Seed, System, fresh_dir, order_line};
use lab_test_support::{LoggedChild, Transcript, free_port};
use saga_core::OrderStatus;

const BIN: &str = env!("CARGO_BIN_EXE_lab-saga");

/// How long the binary may take to print what a test waits for (the machine may be busy;
/// a locked database costs each try its 5 s busy timeout).
const PATIENCE: Duration = Duration::from_secs(60);
/// [`PATIENCE`] in pauses of [`lab_test_support::wait::PAUSE`] (20 ms).
const PATIENCE_TRIES: u32 = 3_000;

/// The variables the binary reads, removed so the caller's shell does not leak in.
const SAGA_ENV: [&str; 10] = [
    "LAB_ROLE",
    "LAB_PORT",
    "SAGA_PAYMENT_URL",
    "SAGA_INVENTORY_URL",
    "SAGA_SHIPPING_URL",
    "SAGA_STYLE",
    "SAGA_DATA_DIR",
    "NATS_URL",
    "NO_COLOR",
    "RUST_LOG",
];

/// A scratch directory, emptied first; its `tmp/` is the children's `TMPDIR`.
fn scratch(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("saga-demo-binary-{name}-{}", std::process::id()));
    fresh_dir(&root).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    root
}

fn lab_saga(root: &Path) -> Command {
    let mut command = Command::new(BIN);
    for name in SAGA_ENV {
        command.env_remove(name);
    }
    command.env("TMPDIR", root.join("tmp")).stdin(Stdio::null());
    command
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A demo or a role with stdout and stderr in two files of `root` (the tests check what
/// goes where); SIGKILLed and reaped when dropped, its output printed if the test is failing.
fn spawn(command: Command, root: &Path, name: &str) -> LoggedChild {
    LoggedChild::spawn_apart(
        command,
        root.join(format!("{name}.out")),
        root.join(format!("{name}.err")),
    )
}

/// Both streams of a child so far.
fn streams(child: &LoggedChild) -> (String, String) {
    (child.output(), child.errors())
}

/// A data directory with the default books and `order-1` placed (choreographed) but not yet
/// published: the state a demo killed right after placing its order leaves.
fn placed_but_not_published(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let system = System::start(
            &Place::Dir(dir.to_path_buf()),
            Some(&Seed::default()),
            Options {
                extra_schema: choreography::SCHEMA.to_owned(),
                ..Options::default()
            },
        )
        .unwrap();
        let choreography = Choreography::start(&system, Bus::in_process(), None)
            .await
            .unwrap();
        // No await after this: the relays never run before they are dropped.
        choreography.place(&order_line("order-1", 2)).unwrap();
    });
}

/// Another writer holding `service`'s file (`BEGIN IMMEDIATE`), as the sqlite3 shell would.
fn lock(dir: &Path, service: &str) -> rusqlite::Connection {
    let connection = rusqlite::Connection::open(dir.join(format!("{service}.db"))).unwrap();
    connection.execute_batch("BEGIN IMMEDIATE").unwrap();
    connection
}

fn choreography_demo(root: &Path, dir: &Path) -> Command {
    let mut command = lab_saga(root);
    command
        .args(["--style", "choreography", "--data-dir"])
        .arg(dir);
    command
}

#[test]
fn a_saga_stuck_on_a_locked_order_database_is_logged_and_said() {
    let root = scratch("stuck");
    let dir = root.join("data");
    placed_but_not_published(&dir);
    let holder = lock(&dir, "order");
    let mut demo = spawn(choreography_demo(&root, &dir), &root, "demo");
    demo.wait_for(
        "a warning and a progress line about the order database",
        PATIENCE_TRIES,
        |out, err| {
            err.contains("WARN")
                && err.contains("database is locked")
                && err.contains("cannot handle a message yet")
                && out.contains("order cannot handle")
        },
    );
    holder.execute_batch("COMMIT").unwrap();
    let status = demo.wait_exit(PATIENCE_TRIES);
    let (out, err) = streams(&demo);
    assert!(status.success(), "{status}:\n{out}\n{err}");
    assert!(out.contains("APPROVED"), "{out}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_killed_in_process_choreography_demo_carries_the_saga_on_when_run_again() {
    let root = scratch("killed");
    let dir = root.join("data");
    placed_but_not_published(&dir);
    // Inventory's file is held: payment's PaymentReserved is published, taken off the bus by
    // inventory's consumer, and waits there.
    let holder = lock(&dir, "inventory");
    let mut demo = spawn(choreography_demo(&root, &dir), &root, "first");
    demo.wait_for("inventory retrying", PATIENCE_TRIES, |out, _| {
        out.contains("inventory cannot handle")
    });
    demo.kill(); // SIGKILL, and reaped
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);

    let output = choreography_demo(&root, &dir).output().unwrap();
    let (out, err) = text(&output);
    assert!(output.status.success(), "{out}\n{err}");
    assert!(
        out.contains("restarted: 1 unfinished saga(s)"),
        "the second run carries the saga on:\n{out}"
    );
    let system = System::start(
        &Place::Dir(dir.clone()),
        None,
        Options {
            extra_schema: choreography::SCHEMA.to_owned(),
            ..Options::default()
        },
    )
    .unwrap();
    let balances = system.balances("order-1").unwrap();
    assert_eq!(balances.order_status, OrderStatus::Approved, "{out}");
    assert!(balances.is_consistent(), "{balances:?}");
    assert_eq!(
        balances.payment["balance"], 95_000,
        "charged once: {balances:?}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_services_do_not_start_with_the_books_of_the_last_demo() {
    let root = scratch("books");
    let output = lab_saga(&root)
        .args(["--fail-at", "shipping"])
        .output()
        .unwrap();
    let (out, err) = text(&output);
    assert!(output.status.success(), "{out}\n{err}");
    assert!(out.contains("CANCELLED"), "{out}");
    let port = free_port().to_string();
    let mut command = lab_saga(&root);
    command.args(["--role", "shipping", "--port", &port]);
    let mut shipping = spawn(command, &root, "shipping");
    shipping.wait_for("the books", PATIENCE_TRIES, |out, _| out.contains("books"));
    let out = shipping.output();
    assert!(
        out.contains("\"free_slots\":10"),
        "shipping starts with its own fresh books, not the demo's 0 couriers:\n{out}"
    );
    drop(shipping);
    let _ = std::fs::remove_dir_all(&root);
}

/// Runs the binary with `args`, which must be refused: it exits (it must not start serving)
/// with a failure status and a message naming `flag`.
fn assert_refused(root: &Path, args: &[&str], flag: &str) {
    let mut command = lab_saga(root);
    command.args(args);
    let mut running = spawn(command, root, "refused");
    let status = running.wait_exit(PATIENCE_TRIES);
    let (out, err) = streams(&running);
    assert!(!status.success(), "{args:?} must be refused:\n{out}\n{err}");
    assert!(
        err.contains(flag),
        "{args:?}: the message names {flag}:\n{err}"
    );
}

#[test]
fn a_flag_the_role_would_ignore_is_refused() {
    let root = scratch("flags");
    let port = free_port().to_string();
    assert_refused(
        &root,
        &["--role", "order", "--port", &port, "--fail-at", "payment"],
        "--fail-at",
    );
    assert_refused(
        &root,
        &[
            "--role",
            "payment",
            "--port",
            &port,
            "--fail-at",
            "shipping",
        ],
        "--fail-at",
    );
    assert_refused(
        &root,
        &["--role", "payment", "--port", &port, "--quantity", "3"],
        "--quantity",
    );
    assert_refused(
        &root,
        &["--style", "choreography", "--crash-at", "reserve_payment"],
        "--crash-at",
    );
    assert_refused(&root, &["--port", &port], "--port");
    // Choreographed, the order role is honoured, and needs NATS: it says so.
    assert_refused(
        &root,
        &[
            "--role",
            "order",
            "--style",
            "choreography",
            "--port",
            &port,
        ],
        "NATS_URL",
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_nats_error_names_the_url_and_how_to_start_a_server() {
    let root = scratch("nats");
    // A port nobody listens on.
    let url = format!("nats://127.0.0.1:{}", free_port());
    let output = lab_saga(&root)
        .args(["--style", "choreography"])
        .env("NATS_URL", &url)
        .output()
        .unwrap();
    let (out, err) = text(&output);
    assert!(!output.status.success(), "{out}\n{err}");
    assert!(err.contains(&url), "the error names {url}:\n{err}");
    assert!(
        err.contains("nats-server -js"),
        "the error says how to start a server:\n{err}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn piped_output_has_no_colours() {
    let root = scratch("colours");
    for style in ["orchestration", "choreography"] {
        for no_color in [false, true] {
            let mut command = lab_saga(&root);
            command.args(["--style", style, "--fail-at", "inventory"]);
            if no_color {
                command.env("NO_COLOR", "1");
            }
            let output = command.output().unwrap();
            let (out, err) = text(&output);
            assert!(output.status.success(), "{out}\n{err}");
            assert!(out.contains("CANCELLED"), "{out}");
            assert!(
                !out.contains('\u{1b}') && !err.contains('\u{1b}'),
                "{style}, NO_COLOR {no_color}: no escape codes in a pipe:\n{out:?}"
            );
            // Stripping colours from a pipe's output changes nothing: there were none.
            assert_eq!(Transcript::new(&out).text(), out, "{style}");
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// A data directory where payment parked `order-1`'s OrderCreated as a dead letter (its
/// injected fault kept failing), left as a stopped demo leaves it.
fn parked_order_created(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let system = System::start(
            &Place::Dir(dir.to_path_buf()),
            Some(&Seed::default()),
            Options {
                extra_schema: choreography::SCHEMA.to_owned(),
                ..Options::default()
            },
        )
        .unwrap();
        let retry = choreography::RetryPolicy {
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            give_up_after: Duration::from_millis(100),
            redeliver_after: Duration::from_millis(100),
        };
        system
            .payment
            .faults
            .fail_next
            .store(u32::MAX, std::sync::atomic::Ordering::SeqCst);
        let choreography = Choreography::start_with(
            &system,
            Bus::in_process(),
            choreography::Settings {
                retry,
                ..choreography::Settings::default()
            },
        )
        .await
        .unwrap();
        choreography.place(&order_line("order-1", 2)).unwrap();
        let deadline = Instant::now() + PATIENCE;
        while choreography.dead_letters().is_empty() {
            assert!(Instant::now() < deadline, "no dead letter");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
}

#[test]
fn a_dead_letter_is_listed_and_redriven_from_the_command_line() {
    let root = scratch("redrive");
    let dir = root.join("data");
    parked_order_created(&dir);
    let run = |args: &[&str]| {
        let output = lab_saga(&root)
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .unwrap();
        let (out, err) = text(&output);
        assert!(output.status.success(), "{args:?}:\n{out}\n{err}");
        out
    };
    let listed = run(&["dead-letters"]);
    assert!(listed.contains("payment  order-1:OrderCreated"), "{listed}");
    let redriven = run(&["redrive", "payment", "order-1:OrderCreated"]);
    assert!(redriven.contains("re-driven"), "{redriven}");
    let listed = run(&["dead-letters"]);
    assert!(listed.contains("no dead letters"), "{listed}");
    // The demo on the same directory carries the saga on from the re-driven step.
    let out = run(&["--style", "choreography"]);
    assert!(out.contains("restarted: 1 unfinished saga(s)"), "{out}");
    assert!(out.contains("APPROVED"), "{out}");
    // Redriving what is not parked is an error that says so.
    let output = lab_saga(&root)
        .args(["redrive", "payment", "order-1:OrderCreated", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let (_, err) = text(&output);
    assert!(!output.status.success());
    assert!(
        err.contains("no dead letter `order-1:OrderCreated`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// Runs the demo with `args` and a standard output whose reader is already gone (as after
/// `lab-saga | head -1`, here before the very first line, so every write fails with EPIPE);
/// returns its exit status and standard error once it exits.
fn run_with_closed_stdout(root: &Path, args: &[&str]) -> (std::process::ExitStatus, String) {
    use std::os::fd::OwnedFd;
    let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(reader);
    let stderr = root.join("closed-stdout.err");
    let mut child = lab_saga(root)
        .args(args)
        .stdout(Stdio::from(OwnedFd::from(writer)))
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .expect("cannot start the lab-saga binary");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {PATIENCE:?}:\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, std::fs::read_to_string(&stderr).unwrap_or_default())
}

#[test]
fn a_closed_standard_output_stops_the_printing_not_the_saga() {
    let root = scratch("closed-stdout");
    for style in ["orchestration", "choreography"] {
        let dir = root.join(style);
        let dir_arg = dir.to_string_lossy().into_owned();
        let (status, err) =
            run_with_closed_stdout(&root, &["--style", style, "--data-dir", dir_arg.as_str()]);
        assert!(
            status.success(),
            "{style}: a reader that went away is no reason to fail ({status}):\n{err}"
        );
        assert!(!err.contains("panicked"), "{style}:\n{err}");
        let system = System::start(
            &Place::Dir(dir.clone()),
            None,
            Options {
                extra_schema: choreography::SCHEMA.to_owned(),
                ..Options::default()
            },
        )
        .unwrap();
        let balances = system.balances("order-1").unwrap();
        assert_eq!(
            balances.order_status,
            OrderStatus::Approved,
            "{style}: the saga ran to its end: {balances:?}\n{err}"
        );
        assert!(balances.is_consistent(), "{style}: {balances:?}");
    }
    let _ = std::fs::remove_dir_all(&root);
}
