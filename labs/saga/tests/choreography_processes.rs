//! The choreographed saga survives real process crashes: one `lab-saga --role … --style
//! choreography` process per service, all on one data directory, talking through NATS
//! JetStream. Runs only when `NATS_URL` is set (as `cargo xtask test` does after starting a
//! throwaway `nats-server -js`); otherwise it says so and passes.
//!
//! Inventory is frozen (SIGSTOP) while twelve orders are placed, so payment's events pile up
//! for it, some already handed to its consumer and never acknowledged. Then inventory and the
//! order service are killed with SIGKILL and started again on the same files. Every order
//! must end APPROVED or CANCELLED with the books adding up: nothing lost, nothing done twice,
//! nothing left held. The restarted inventory says that it waits for JetStream's ack wait.
//!
//! Nothing here asserts how long something took: waits poll for a condition until a
//! generous deadline. Every child process is killed when the test ends, pass or fail.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab_saga::choreography;
use lab_saga::line::OrderLine;
use lab_saga::order::OrderView;
use lab_saga::system::{Options, Place, Seed, System, fresh_dir, order_line};
use lab_test_support::Services;
use saga_core::OrderStatus;

const BIN: &str = env!("CARGO_BIN_EXE_lab-saga");
/// How many pauses of [`lab_test_support::wait::PAUSE`] (20 ms) a service gets to start
/// listening: 20 s.
const STARTUP_TRIES: u32 = 1_000;
const SETTLE: Duration = Duration::from_secs(90);
/// The consumers' ack wait: short, so the redelivery after the crash comes soon.
const ACK_WAIT_SECS: &str = "2";
const ORDERS: usize = 12;

/// The test's child processes, on the shared [`Services`] group: SIGKILLed and reaped when
/// dropped (also when an assertion failed), with their logs printed if the test is failing.
struct Processes {
    services: Services,
    nats_url: String,
}

impl Processes {
    fn data(&self) -> PathBuf {
        self.services.root().join("data")
    }

    /// Starts `--role role --style choreography` on a free port, waits until it listens,
    /// and returns its base URL.
    fn start(&mut self, role: &str) -> String {
        let (data, nats_url) = (self.data(), self.nats_url.clone());
        self.services.start(role, STARTUP_TRIES, |port| {
            let mut command = Command::new(BIN);
            for name in [
                "LAB_ROLE",
                "LAB_PORT",
                "SAGA_STYLE",
                "SAGA_DATA_DIR",
                "RUST_LOG",
            ] {
                command.env_remove(name);
            }
            command
                .args(["--role", role, "--style", "choreography", "--port"])
                .arg(port.to_string())
                .arg("--data-dir")
                .arg(&data)
                .args(["--ack-wait-secs", ACK_WAIT_SECS])
                .env("NATS_URL", &nats_url)
                .env("NO_COLOR", "1")
                .stdin(Stdio::null());
            command
        })
    }

    fn pid(&self, role: &str) -> u32 {
        self.services.get(role).id()
    }

    fn log_of(&self, role: &str) -> String {
        self.services.get(role).output()
    }

    /// SIGKILL (`Child::kill` on Unix) and reap.
    fn kill(&mut self, role: &str) {
        self.services.kill(role);
    }

    /// SIGKILLs and reaps every service still running.
    fn kill_all(&mut self) {
        self.services.kill_all();
    }
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn orders() -> Vec<OrderLine> {
    (0..ORDERS)
        .map(|i| order_line(&format!("chor-{i:02}"), 1))
        .collect()
}

async fn view(client: &reqwest::Client, base: &str, id: &str) -> Option<OrderView> {
    let response = client
        .get(format!("{base}/orders/{id}"))
        .send()
        .await
        .ok()?;
    assert_ne!(response.status(), 404, "order {id} was lost");
    response.json().await.ok()
}

/// The durable consumer of `service` for the deployment in `data`.
async fn ack_pending(
    jetstream: &async_nats::jetstream::Context,
    data: &Path,
    service: &str,
) -> usize {
    let deployment = std::fs::read_to_string(data.join("deployment-id")).unwrap();
    let stream = jetstream.get_stream("SAGA_LAB").await.unwrap();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer(&format!("{}-{service}", deployment.trim()))
        .await
        .unwrap();
    consumer.info().await.unwrap().num_ack_pending
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_choreographed_services_mid_saga_loses_no_order_and_does_nothing_twice() {
    let Some(nats_url) = std::env::var("NATS_URL").ok().filter(|url| !url.is_empty()) else {
        println!("choreography processes: skipped (set NATS_URL to run it against NATS)");
        return;
    };
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "saga-choreography-processes-{}",
        std::process::id()
    ));
    fresh_dir(&root).unwrap();
    let mut processes = Processes {
        services: Services::new(root),
        nats_url: nats_url.clone(),
    };
    let data = processes.data();
    processes.start("payment");
    processes.start("inventory");
    processes.start("shipping");
    let order = processes.start("order");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let jetstream = async_nats::jetstream::new(async_nats::connect(&nats_url).await.unwrap());

    // One fixed stream, with limits.
    let mut stream = jetstream.get_stream("SAGA_LAB").await.unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert!(config.max_age > Duration::ZERO, "{config:?}");
    assert!(config.max_messages > 0, "{config:?}");

    signal(processes.pid("inventory"), "STOP");
    let lines = orders();
    for line in &lines {
        let response = client
            .post(format!("{order}/orders"))
            .json(line)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{}", line.order_id);
    }
    // Wait until payment has reserved every order: its events are then on their way to the
    // frozen inventory.
    let payment_db = data.join("payment.db");
    let deadline = Instant::now() + SETTLE;
    loop {
        let held: i64 = rusqlite::Connection::open(&payment_db)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM holds", [], |row| row.get(0))
            .unwrap();
        if held == ORDERS as i64 {
            break;
        }
        assert!(Instant::now() < deadline, "payment reserved {held} orders");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The crash: inventory (frozen, holding messages it never acknowledged) and the order
    // service, both SIGKILLed.
    processes.kill("inventory");
    processes.kill("order");
    let unacknowledged = ack_pending(&jetstream, &data, "inventory").await;
    println!("inventory died with {unacknowledged} unacknowledged message(s)");
    processes.start("inventory");
    let order = processes.start("order");
    if unacknowledged > 0 {
        let mut tries = 0;
        while !processes
            .log_of("inventory")
            .contains("JetStream delivers them again once its ack wait")
        {
            tries += 1;
            assert!(
                tries < STARTUP_TRIES,
                "{unacknowledged} unacknowledged messages, but the restarted inventory does not say it waits for them:\n{}",
                processes.log_of("inventory")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let deadline = Instant::now() + SETTLE;
    let views = loop {
        let mut views = Vec::new();
        for line in &lines {
            if let Some(view) = view(&client, &order, &line.order_id).await {
                views.push(view);
            }
        }
        if views.len() == lines.len()
            && views.iter().all(|view| view.status != OrderStatus::Pending)
        {
            break views;
        }
        assert!(
            Instant::now() < deadline,
            "sagas still unfinished {SETTLE:?} after the restart: {:?}",
            views
                .iter()
                .filter(|view| view.status == OrderStatus::Pending)
                .map(|view| view.line.order_id.clone())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    processes.kill_all();

    let system = System::start(
        &Place::Dir(data.clone()),
        None,
        Options {
            extra_schema: choreography::SCHEMA.to_owned(),
            ..Options::default()
        },
    )
    .unwrap();
    let seed = Seed::default();
    let mut approved = 0;
    for view in &views {
        let balances = system.balances(&view.line.order_id).unwrap();
        assert!(
            balances.is_consistent(),
            "{}: {balances:?}",
            view.line.order_id
        );
        if view.status == OrderStatus::Approved {
            approved += 1;
        }
    }
    // Ten units on the shelf, twelve orders of one: ten approved, two refused by inventory.
    assert_eq!(approved, seed.stock, "{views:?}");
    let totals = system.balances(&views[0].line.order_id).unwrap();
    assert_eq!(
        totals.payment["balance"].as_i64().unwrap(),
        seed.balance - approved * 2_500,
        "money taken once per approved order, refunded otherwise: {totals:?}"
    );
    assert_eq!(
        totals.inventory["available"].as_i64().unwrap(),
        0,
        "{totals:?}"
    );
    assert_eq!(
        totals.shipping["free_slots"].as_i64().unwrap(),
        seed.couriers - approved,
        "{totals:?}"
    );
    let letters: usize = ["order", "payment", "inventory", "shipping"]
        .iter()
        .map(|name| {
            let service = choreography::Service::open_in(&data, name).unwrap();
            choreography::dead_letters_of(&service).unwrap().len()
        })
        .sum();
    assert_eq!(letters, 0, "no dead letters");
}
