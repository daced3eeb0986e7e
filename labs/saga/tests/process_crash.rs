//! The orchestrated saga survives real process crashes, not just a dropped runtime.
//!
//! The services run as separate OS processes of the compiled `lab-saga` binary, each on its
//! own loopback port, all on one data directory. The first test freezes shipping (SIGSTOP) so
//! that every saga waits on it, kills the order process with SIGKILL, lets shipping go on
//! (it may now do the work the dead orchestrator asked for, and answer nobody), and restarts
//! the order process on the same data directory, twice. Every order must end exactly once:
//! money and stock taken at most once, given back if and only if the order failed.
//!
//! The second test uses the demo's `--crash-at`: the process exits at a known step, right
//! after the participant did the work and before the reply is logged; a second run of the
//! binary resumes the saga and must not do the work again.
//!
//! Nothing here asserts how long something took: waits poll for a condition until a
//! generous deadline. Every child process is killed when a test ends, pass or fail.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use lab_saga::line::OrderLine;
use lab_saga::order::OrderView;
use lab_saga::participant::Participant;
use lab_saga::system::{CUSTOMER, Options, Place, SKU, System, fresh_dir, order_line};
use lab_saga::{db::Storage, inventory, payment, shipping};
use lab_test_support::{Services, wait_until_async};
use rusqlite::OptionalExtension;
use saga_core::{Event, OrderStatus};

const BIN: &str = env!("CARGO_BIN_EXE_lab-saga");

/// How many pauses of [`lab_test_support::wait::PAUSE`] (20 ms) a service gets to start
/// listening (the machine may be busy): 10 s.
const STARTUP_TRIES: u32 = 500;
/// How many pauses of [`lab_test_support::wait::PAUSE`] (20 ms) the sagas get to reach the
/// frozen shipping step before the crash: 30 s.
const READY_TRIES: u32 = 1_500;
/// How long every saga may take to end after the last restart.
const SETTLE: Duration = Duration::from_secs(30);

/// Environment variables the binary reads; the test passes everything explicitly.
const SAGA_ENV: [&str; 8] = [
    "LAB_ROLE",
    "LAB_PORT",
    "SAGA_PAYMENT_URL",
    "SAGA_INVENTORY_URL",
    "SAGA_SHIPPING_URL",
    "SAGA_STYLE",
    "SAGA_DATA_DIR",
    "NATS_URL",
];

fn lab_saga() -> Command {
    let mut command = Command::new(BIN);
    for name in SAGA_ENV {
        command.env_remove(name);
    }
    command.stdin(Stdio::null());
    command
}

/// A scratch directory for one test under cargo's target tmp directory, emptied first.
fn scratch(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("saga-process-crash-{name}-{}", std::process::id()));
    fresh_dir(&root).expect("cannot create the scratch directory");
    root
}

/// Sends `signal` (`STOP`, `CONT`) to a process with the system's `kill`.
fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("cannot run `kill`");
    assert!(status.success(), "kill -{signal} {pid} failed: {status}");
}

/// The child processes of one test, on the shared [`Services`] group: dropping it SIGKILLs
/// and reaps whatever still runs (also when an assertion failed), prints the services' logs
/// if the test is failing, and removes the scratch directory if it passed.
struct Processes {
    services: Services,
}

impl Processes {
    fn new(name: &str) -> Processes {
        Processes {
            services: Services::new(scratch(name)),
        }
    }

    fn data(&self) -> PathBuf {
        self.services.root().join("data")
    }

    /// Starts `--role role` on a free port with the data directory, waits until it listens
    /// and returns its base URL. Its stdout and stderr go to a log file in the scratch
    /// directory (a pipe nobody reads would block the narrating order service).
    fn start(&mut self, role: &str, extra: &[&str]) -> String {
        let data = self.data();
        self.services.start(role, STARTUP_TRIES, |port| {
            let mut command = lab_saga();
            command
                .args(["--role", role, "--port", &port.to_string(), "--data-dir"])
                .arg(&data)
                .args(extra);
            command
        })
    }

    fn signal(&self, name: &str, signal: &str) {
        send_signal(self.services.get(name).id(), signal);
    }

    /// SIGKILLs the service (`Child::kill` sends SIGKILL on Unix) and reaps it.
    fn kill(&mut self, name: &str) -> ExitStatus {
        self.services.kill(name)
    }

    /// SIGKILLs and reaps every service still running.
    fn kill_all(&mut self) {
        self.services.kill_all();
    }
}

/// Opens one service's SQLite file (after its process is gone, or while it runs: WAL mode).
fn open_db(data: &Path, service: &str) -> rusqlite::Connection {
    rusqlite::Connection::open(data.join(format!("{service}.db")))
        .unwrap_or_else(|error| panic!("cannot open {service}.db: {error}"))
}

fn query_one<T: rusqlite::types::FromSql>(
    connection: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Option<T> {
    connection
        .query_row(sql, params, |row| row.get(0))
        .optional()
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

fn query_pair<A: rusqlite::types::FromSql, B: rusqlite::types::FromSql>(
    connection: &rusqlite::Connection,
    sql: &str,
    order_id: &str,
) -> Option<(A, B)> {
    connection
        .query_row(sql, [order_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

// The books of the SIGKILL test: fewer couriers than small orders, so that some sagas are
// compensated after payment and inventory both succeeded.
const BALANCE: i64 = 100_000;
const STOCK: i64 = 20;
const COURIERS: i64 = 6;
const SMALL_ORDERS: usize = 12;

/// Creates the participants' databases with the test's books before their processes start
/// (a participant seeds only a database it creates, so these books are kept).
fn seed_books(data: &Path) {
    std::fs::create_dir_all(data).expect("cannot create the data directory");
    let books = || -> anyhow::Result<()> {
        let payment =
            Participant::<payment::Payment>::open(&Storage::file_in(data, "payment"), "")?;
        payment::open_account(&payment.db().lock(), CUSTOMER, BALANCE)?;
        let inventory =
            Participant::<inventory::Inventory>::open(&Storage::file_in(data, "inventory"), "")?;
        inventory::stock(&inventory.db().lock(), SKU, STOCK)?;
        let shipping =
            Participant::<shipping::Shipping>::open(&Storage::file_in(data, "shipping"), "")?;
        shipping::set_free_slots(&shipping.db().lock(), COURIERS)?;
        Ok(())
    };
    books().expect("cannot seed the books");
}

/// Twelve small orders that all reach shipping, one payment refuses (too expensive) and one
/// inventory refuses (too many units).
fn orders() -> Vec<OrderLine> {
    let mut lines: Vec<OrderLine> = (0..SMALL_ORDERS)
        .map(|i| order_line(&format!("small-{i:02}"), 1))
        .collect();
    // 41 books cost more than the balance (and than the stock: payment refuses first).
    lines.push(order_line("too-expensive", BALANCE / 2_500 + 1));
    lines.push(order_line("too-many", STOCK + 1));
    lines
}

fn is_small(line: &OrderLine) -> bool {
    line.order_id.starts_with("small-")
}

async fn view(client: &reqwest::Client, base: &str, order_id: &str) -> Option<OrderView> {
    let response = client
        .get(format!("{base}/orders/{order_id}"))
        .send()
        .await
        .ok()?;
    assert!(
        response.status() != reqwest::StatusCode::NOT_FOUND,
        "order {order_id} was lost"
    );
    response.json().await.ok()
}

/// Every order's view, or `None` while one cannot be read.
async fn fetch_views(
    client: &reqwest::Client,
    base: &str,
    lines: &[OrderLine],
) -> Option<Vec<OrderView>> {
    let mut all = Vec::new();
    for line in lines {
        all.push(view(client, base, &line.order_id).await?);
    }
    Some(all)
}

fn has_started(view: &OrderView, step: usize) -> bool {
    view.log
        .iter()
        .any(|entry| matches!(entry.event, Event::StepStarted { step: s, .. } if s == step))
}

fn has_succeeded(view: &OrderView, step: usize) -> bool {
    view.log
        .iter()
        .any(|entry| matches!(entry.event, Event::StepSucceeded { step: s } if s == step))
}

const PAYMENT_STEP: usize = 1;
const INVENTORY_STEP: usize = 2;
const SHIPPING_STEP: usize = 3;

#[tokio::test]
async fn sigkill_of_the_order_process_mid_saga_loses_no_order_and_does_nothing_twice() {
    let mut processes = Processes::new("sigkill");
    let data = processes.data();
    seed_books(&data);
    let payment = processes.start("payment", &[]);
    let inventory = processes.start("inventory", &[]);
    let shipping = processes.start("shipping", &[]);
    let urls = [
        "--payment-url",
        &payment,
        "--inventory-url",
        &inventory,
        "--shipping-url",
        &shipping,
    ];
    let order = processes.start("order", &urls);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("cannot build an HTTP client");

    // Freeze shipping: its kernel still accepts connections, but nothing answers, so every
    // saga that gets that far waits on it (each try times out after 2 s, three tries).
    processes.signal("shipping", "STOP");
    let lines = orders();
    for line in &lines {
        let response = client
            .post(format!("{order}/orders"))
            .json(line)
            .send()
            .await
            .expect("the order service did not answer");
        assert_eq!(
            response.status(),
            reqwest::StatusCode::ACCEPTED,
            "{}",
            line.order_id
        );
    }
    // Wait until the small orders have asked shipping and the two refused ones are over:
    // the crash comes when every small saga is in flight, however slow the machine is, not
    // after a fixed time. Shipping is frozen, so a small saga stays at that step through its
    // tries (2 s each) and the crash finds it there.
    wait_until_async(
        "every small saga at shipping and the refused ones over",
        READY_TRIES,
        || {
            let (client, order, lines) = (&client, &order, &lines);
            async move {
                let views = fetch_views(client, order, lines).await?;
                lines
                    .iter()
                    .zip(&views)
                    .all(|(line, view)| {
                        if is_small(line) {
                            has_started(view, SHIPPING_STEP)
                        } else {
                            view.status != OrderStatus::Pending
                        }
                    })
                    .then_some(())
            }
        },
    )
    .await;

    // The crash: SIGKILL, no chance to clean up.
    let status = processes.kill("order");
    assert_eq!(status.signal(), Some(9), "the order process was SIGKILLed");
    let pending: i64 = query_one(
        &open_db(&data, "order"),
        "SELECT COUNT(*) FROM orders WHERE status = 'PENDING' AND id LIKE 'small-%'",
        [],
    )
    .expect("a count");
    assert_eq!(
        pending, SMALL_ORDERS as i64,
        "every small saga was in flight when the process died"
    );

    // Shipping wakes up and may now serve the dead orchestrator's requests.
    processes.signal("shipping", "CONT");
    // Restart on the same data directory, and crash once more wherever recovery has got to.
    processes.start("order", &urls);
    let status = processes.kill("order");
    assert_eq!(status.signal(), Some(9));
    let order = processes.start("order", &urls);

    let deadline = Instant::now() + SETTLE;
    let views = loop {
        let views = fetch_views(&client, &order, &lines).await;
        if let Some(views) = &views
            && views.iter().all(|view| view.status != OrderStatus::Pending)
        {
            break views.clone();
        }
        assert!(
            Instant::now() < deadline,
            "sagas still unfinished {SETTLE:?} after the restart: {:?}",
            views.map(|views| views
                .iter()
                .filter(|view| view.status == OrderStatus::Pending)
                .map(|view| view.line.order_id.clone())
                .collect::<Vec<_>>())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Stop everything so the books below are final.
    processes.kill_all();

    let payment_db = open_db(&data, "payment");
    let inventory_db = open_db(&data, "inventory");
    let shipping_db = open_db(&data, "shipping");
    let (mut approved, mut charged, mut units) = (0, 0, 0);
    for (line, view) in lines.iter().zip(&views) {
        let id = line.order_id.as_str();
        assert_eq!(&view.line, line, "{id}: the order as placed");
        let last = view.log.last().map(|entry| &entry.event);
        let hold: Option<(String, i64)> = query_pair(
            &payment_db,
            "SELECT status, amount FROM holds WHERE order_id = ?1",
            id,
        );
        let reservation: Option<(String, i64)> = query_pair(
            &inventory_db,
            "SELECT status, quantity FROM reservations WHERE order_id = ?1",
            id,
        );
        let delivery: Option<String> = query_one(
            &shipping_db,
            "SELECT status FROM deliveries WHERE order_id = ?1",
            [id],
        );
        match view.status {
            OrderStatus::Approved => {
                assert_eq!(last, Some(&Event::SagaCompleted), "{id}");
                assert_eq!(
                    hold,
                    Some(("CAPTURED".to_owned(), line.amount)),
                    "{id}: charged"
                );
                assert_eq!(
                    reservation,
                    Some(("RESERVED".to_owned(), line.quantity)),
                    "{id}: stock reserved"
                );
                assert_eq!(delivery.as_deref(), Some("SCHEDULED"), "{id}: courier");
                approved += 1;
                charged += line.amount;
                units += line.quantity;
            }
            OrderStatus::Cancelled => {
                assert_eq!(last, Some(&Event::SagaCompensated), "{id}");
                // Nothing is held; whatever was taken was given back.
                assert!(
                    hold.as_ref().is_none_or(|(status, _)| status == "REFUNDED"),
                    "{id}: {hold:?}"
                );
                assert!(
                    reservation
                        .as_ref()
                        .is_none_or(|(status, _)| status == "RELEASED"),
                    "{id}: {reservation:?}"
                );
                assert!(
                    delivery
                        .as_deref()
                        .is_none_or(|status| status == "CANCELLED"),
                    "{id}: {delivery:?}"
                );
                if has_succeeded(view, PAYMENT_STEP) {
                    assert_eq!(hold, Some(("REFUNDED".to_owned(), line.amount)), "{id}");
                }
                if has_succeeded(view, INVENTORY_STEP) {
                    assert_eq!(
                        reservation,
                        Some(("RELEASED".to_owned(), line.quantity)),
                        "{id}"
                    );
                }
            }
            status => panic!("{id} ended {status:?}: {:?}", view.log),
        }
        if !is_small(line) {
            assert_eq!(view.status, OrderStatus::Cancelled, "{id} is refused");
        }
    }
    // Conservation: what left the balance, the shelf and the courier pool is exactly what
    // the approved orders hold, so nothing was taken twice and every refund happened.
    let balance: i64 = query_one(
        &payment_db,
        "SELECT balance FROM accounts WHERE customer = ?1",
        [CUSTOMER],
    )
    .expect("the customer's account");
    let sum_of = |status: &str| -> i64 {
        query_one(
            &payment_db,
            "SELECT COALESCE(SUM(amount), 0) FROM holds WHERE status = ?1",
            [status],
        )
        .expect("a sum")
    };
    assert_eq!(
        (balance, sum_of("HELD"), sum_of("CAPTURED")),
        (BALANCE - charged, 0, charged),
        "money: every approved order captured, nothing left held"
    );
    let available: i64 = query_one(
        &inventory_db,
        "SELECT available FROM stock WHERE sku = ?1",
        [SKU],
    )
    .expect("the product's stock");
    assert_eq!(available, STOCK - units, "stock");
    let free_slots: i64 = query_one(
        &shipping_db,
        "SELECT free_slots FROM couriers WHERE id = 1",
        [],
    )
    .expect("the courier pool");
    assert_eq!(free_slots, COURIERS - approved, "couriers");
    assert!(
        (1..=COURIERS).contains(&approved),
        "{approved} approved orders with {COURIERS} couriers"
    );
}

/// Runs the demo (all four services in one process) on `dir`.
fn run_demo(dir: &Path, extra: &[&str]) -> (Output, String) {
    let output = lab_saga()
        .args(["--role", "demo", "--style", "orchestration", "--data-dir"])
        .arg(dir)
        .args(extra)
        .output()
        .expect("cannot run the lab-saga binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

/// The participant a step's command goes to (`None`: the order service's own step).
fn participant_of(step: &str) -> Option<&'static str> {
    match step {
        "reserve_payment" | "capture_payment" => Some("payment"),
        "reserve_inventory" => Some("inventory"),
        "schedule_shipping" => Some("shipping"),
        _ => None,
    }
}

#[test]
fn crash_at_a_known_step_exits_the_process_and_the_next_run_resumes_without_redoing_it() {
    let root = scratch("crash-at");
    let forward = [
        "create_order",
        "reserve_payment",
        "reserve_inventory",
        "schedule_shipping",
        "capture_payment",
        "approve_order",
    ];
    // Without a failure the saga completes; with no courier it is compensated after the
    // shipping refusal (the crash then loses that refusal).
    for (fail_at, steps, outcome) in [
        ("none", &forward[..], OrderStatus::Approved),
        ("shipping", &forward[..4], OrderStatus::Cancelled),
    ] {
        for (index, step) in steps.iter().enumerate() {
            let case = format!("--fail-at {fail_at} --crash-at {step}");
            let dir = root.join(format!("{fail_at}-{step}"));
            let (first, text) = run_demo(&dir, &["--fail-at", fail_at, "--crash-at", step]);
            assert_eq!(first.status.code(), Some(3), "{case}: the crash\n{text}");

            // What the dead process left: the order pending, the step's command answered
            // (the participant stored its reply under the idempotency key), no reply logged.
            let crashed_log = {
                let system = System::start(&Place::Dir(dir.clone()), None, Options::default())
                    .expect("cannot reopen the data directory");
                let view = system
                    .order
                    .view("order-1")
                    .expect("order database")
                    .expect("the order survived the crash");
                assert_eq!(view.status, OrderStatus::Pending, "{case}");
                assert!(has_started(&view, index), "{case}: {:?}", view.log);
                assert!(
                    !view.log.iter().any(|entry| matches!(
                        entry.event,
                        Event::StepSucceeded { step: s } | Event::StepFailed { step: s, .. } if s == index
                    )),
                    "{case}: the reply must not be logged: {:?}",
                    view.log
                );
                view.log
            };
            if let Some(participant) = participant_of(step) {
                let answered: Option<i64> = query_one(
                    &open_db(&dir, participant),
                    "SELECT status FROM idempotency WHERE key = ?1",
                    [format!("order-1:{step}")],
                );
                assert!(answered.is_some(), "{case}: {participant} did the work");
            }

            let (second, text) = run_demo(&dir, &[]);
            assert!(second.status.success(), "{case}: the resume\n{text}");
            assert!(
                text.contains("restarted: 1 unfinished saga(s)"),
                "{case}: the second run resumes\n{text}"
            );

            let system = System::start(&Place::Dir(dir.clone()), None, Options::default())
                .expect("cannot reopen the data directory");
            // The same saga carried on: its log before the crash is where the final log starts.
            let view = system
                .order
                .view("order-1")
                .expect("order database")
                .expect("the order is still there");
            assert!(
                view.log.starts_with(&crashed_log),
                "{case}: resumed, not started again:\nbefore {crashed_log:?}\nafter {:?}",
                view.log
            );
            let balances = system.balances("order-1").expect("balances");
            assert_eq!(balances.order_status, outcome, "{case}: {balances:?}");
            assert!(balances.is_consistent(), "{case}: {balances:?}");
            // Two units at 2 500 cents, taken once (approved) or given back (cancelled).
            let (balance, available, free_slots) = match outcome {
                OrderStatus::Approved => (95_000, 8, 9),
                _ => (100_000, 10, 0),
            };
            assert_eq!(balances.payment["balance"], balance, "{case}: {balances:?}");
            assert_eq!(
                balances.inventory["available"], available,
                "{case}: {balances:?}"
            );
            assert_eq!(
                balances.shipping["free_slots"], free_slots,
                "{case}: {balances:?}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn crash_at_names_a_step_and_refuses_one_that_never_runs() {
    let root = scratch("crash-at-step");
    // Payment refuses, so the saga never reaches reserve_inventory: its third command is
    // the cancellation of the order, which `--crash-at reserve_inventory` must not mean.
    let dir = root.join("payment-inventory");
    let (output, text) = run_demo(
        &dir,
        &["--fail-at", "payment", "--crash-at", "reserve_inventory"],
    );
    assert!(
        !text.contains("cancel replied"),
        "crashed elsewhere:\n{text}"
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "refused as a usage error\n{text}"
    );
    assert!(
        text.contains("reserve_inventory") && text.contains("never runs"),
        "the refusal says why:\n{text}"
    );
    let _ = std::fs::remove_dir_all(&root);
}
