//! The saga lab's demo: `cargo run -p lab-saga -- --style orchestration --fail-at inventory`.
//!
//! It starts the four services in this process (each with its SQLite file in the data
//! directory), places one order, narrates every step and compensation as a live sequence
//! and ends with the balances. `--crash-at <step>` makes the orchestrator exit right after
//! that step's participant replied and before the reply is recorded; running the demo again
//! finds the unfinished saga in the order database and resumes it.
//!
//! `--role payment|inventory|shipping|order` starts one service alone on `--port`, so each
//! can run in its own terminal and be killed and restarted by hand. The order role's
//! orchestrator calls the participants over HTTP (`--payment-url` and friends) and resumes
//! any unfinished saga from its log when it starts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, ValueEnum};
use lab_saga::bus::Bus;
use lab_saga::choreography::{self, Choreography};
use lab_saga::db::Storage;
use lab_saga::inventory::{self, Inventory};
use lab_saga::narration;
use lab_saga::order::{self, CrashPlan, Narrator, OrderService};
use lab_saga::participant::{self, Domain, Participant};
use lab_saga::payment::{self, Payment};
use lab_saga::shipping::{self, Shipping};
use lab_saga::system::{
    Balances, CUSTOMER, Options, Place, SKU, Seed, System, fresh_dir, order_line,
};
use lab_saga::transport::Transport;
use owo_colors::OwoColorize;
use saga_core::{RetryPolicy, SagaDefinition};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Style {
    /// An orchestrator in the order service drives the saga and keeps its log.
    Orchestration,
    /// Services react to each other's events (outbox, inbox, dead letters).
    Choreography,
}

/// Which part of the lab to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Role {
    /// All four services in this process and one narrated saga (the default).
    Demo,
    /// Only the order service and its orchestrator (default port 4100).
    Order,
    /// Only the payment participant (default port 4101).
    Payment,
    /// Only the inventory participant (default port 4102).
    Inventory,
    /// Only the shipping participant (default port 4103).
    Shipping,
}

impl Role {
    fn default_port(self) -> u16 {
        match self {
            Role::Demo | Role::Order => 4100,
            Role::Payment => 4101,
            Role::Inventory => 4102,
            Role::Shipping => 4103,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FailAt {
    /// Insufficient funds.
    Payment,
    /// Out of stock.
    Inventory,
    /// No courier available.
    Shipping,
    /// Nothing fails.
    None,
}

/// Run the order saga (create order → reserve payment → reserve inventory → schedule
/// shipping) and watch it succeed, compensate, or survive a crash.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// What to run: the whole demo, or one service alone.
    #[arg(long, value_enum, default_value_t = Role::Demo, env = "SAGA_ROLE")]
    role: Role,
    /// Port of a single role (0: the role's default, 4100 to 4103).
    #[arg(long, default_value_t = 0, env = "SAGA_PORT")]
    port: u16,
    /// Role order: where the payment participant listens.
    #[arg(
        long,
        default_value = "http://127.0.0.1:4101",
        env = "SAGA_PAYMENT_URL"
    )]
    payment_url: String,
    /// Role order: where the inventory participant listens.
    #[arg(
        long,
        default_value = "http://127.0.0.1:4102",
        env = "SAGA_INVENTORY_URL"
    )]
    inventory_url: String,
    /// Role order: where the shipping participant listens.
    #[arg(
        long,
        default_value = "http://127.0.0.1:4103",
        env = "SAGA_SHIPPING_URL"
    )]
    shipping_url: String,
    /// Orchestration or choreography.
    #[arg(long, value_enum, default_value_t = Style::Orchestration, env = "SAGA_STYLE")]
    style: Style,
    /// Which participant refuses (a business failure that triggers compensation). A single
    /// participant role applies it to the books it seeds on first start.
    #[arg(long, value_enum, default_value_t = FailAt::None)]
    fail_at: FailAt,
    /// Exit the orchestrator right after this step's participant replied (before the reply
    /// is logged): create_order, reserve_payment, reserve_inventory, schedule_shipping,
    /// capture_payment or approve_order (a step the scenario never reaches is refused). Run
    /// again without it to resume.
    #[arg(long)]
    crash_at: Option<String>,
    /// Where the four SQLite files live.
    #[arg(long, env = "SAGA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Units to order (2 500 cents each).
    #[arg(long, default_value_t = 2)]
    quantity: i64,
    /// Role order: how many minutes a failing compensation is retried before its saga
    /// stops in NEEDS_ATTENTION (resumed when its participant is back, on restart, or by
    /// `POST /sagas/{id}/resume`).
    #[arg(long, default_value_t = 15)]
    compensation_retry_minutes: u64,
}

/// The participant that refuses under `--fail-at`.
fn refusing(fail_at: FailAt) -> Option<&'static str> {
    match fail_at {
        FailAt::Payment => Some("payment"),
        FailAt::Inventory => Some("inventory"),
        FailAt::Shipping => Some("shipping"),
        FailAt::None => None,
    }
}

fn seed(fail_at: FailAt) -> Seed {
    let mut seed = Seed::default();
    match fail_at {
        FailAt::Payment => seed.balance = 1_000,
        FailAt::Inventory => seed.stock = 1,
        FailAt::Shipping => seed.couriers = 0,
        FailAt::None => {}
    }
    seed
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("saga-lab"));
    match (args.role, args.style) {
        (Role::Demo, Style::Orchestration) => orchestration(&args, &dir).await,
        (Role::Demo, Style::Choreography) => choreography(&args, &dir).await,
        (Role::Order, _) => serve_order(&args, &dir).await,
        (Role::Payment, _) => {
            serve_participant::<Payment>(&args, &dir, |db, seed| {
                payment::open_account(db, CUSTOMER, seed.balance)
            })
            .await
        }
        (Role::Inventory, _) => {
            serve_participant::<Inventory>(&args, &dir, |db, seed| {
                inventory::stock(db, SKU, seed.stock)
            })
            .await
        }
        (Role::Shipping, _) => {
            serve_participant::<Shipping>(&args, &dir, |db, seed| {
                shipping::set_free_slots(db, seed.couriers)
            })
            .await
        }
    }
}

/// Binds 127.0.0.1 on the role's port; a port already taken is the usual mistake (the
/// service is running in another terminal), so the error says which.
async fn bind(args: &Args) -> anyhow::Result<tokio::net::TcpListener> {
    let port = if args.port == 0 {
        args.role.default_port()
    } else {
        args.port
    };
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port} (is it already running?)"))
}

// ANCHOR: serve_participant
/// One participant alone. Its database is a file in the data directory, kept across
/// restarts: kill the process mid-saga, start it again, and it still knows every
/// idempotency key it answered, so the orchestrator's retries get the first answer.
/// The books are seeded only when the file is new.
async fn serve_participant<D: Domain>(
    args: &Args,
    dir: &Path,
    seed_books: impl FnOnce(&rusqlite::Connection, &Seed) -> rusqlite::Result<()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let storage = Storage::file_in(dir, D::NAME);
    let is_new = matches!(&storage, Storage::File(path) if !path.exists());
    let service = Participant::<D>::open(&storage, "")?;
    if is_new {
        seed_books(&service.db().lock(), &seed(args.fail_at))?;
    }
    let listener = bind(args).await?;
    let address = listener.local_addr()?;
    println!(
        "{} on http://{address}: POST /{} and /{} (Idempotency-Key header), GET /state, GET /health",
        D::NAME.bold(),
        D::ACTION,
        D::COMPENSATION
    );
    println!("  books {}  (in {})", service.holdings(), dir.display());
    axum::serve(listener, participant::router(service))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
// ANCHOR_END: serve_participant

// ANCHOR: serve_order
/// The order service alone: its orchestrator reaches the participants over HTTP. A
/// participant that is down answers nothing, which the orchestrator treats as retryable:
/// it backs off and tries again, so restarting the participant lets the saga carry on.
async fn serve_order(args: &Args, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let transport = Transport::Http {
        client: reqwest::Client::new(),
        base_urls: HashMap::from([
            ("payment".to_owned(), args.payment_url.clone()),
            ("inventory".to_owned(), args.inventory_url.clone()),
            ("shipping".to_owned(), args.shipping_url.clone()),
        ]),
        timeout: Duration::from_secs(2),
    };
    let mut service = OrderService::open(&Storage::file_in(dir, "order"), transport, "")?;
    let mut definition = SagaDefinition::order_fulfilment();
    definition.retry.compensation_retry_for = RetryPolicy::minutes(args.compensation_retry_minutes);
    OrderService::configure(&mut service, true, Some(narrator()), Some(definition));
    // Sagas stopped in NEEDS_ATTENTION carry on once their participant answers again.
    service.spawn_attention_watch(Duration::from_secs(5));
    let listener = bind(args).await?;
    let address = listener.local_addr()?;
    println!(
        "{} on http://{address}, calling payment {}, inventory {}, shipping {}",
        "order".bold(),
        args.payment_url,
        args.inventory_url,
        args.shipping_url
    );
    println!(
        "place an order:  curl -X POST http://{address}/orders -H 'content-type: application/json' \\\n  \
         -d '{{\"order_id\":\"order-1\",\"customer\":\"{CUSTOMER}\",\"sku\":\"{SKU}\",\"quantity\":2,\"amount\":5000}}'"
    );
    println!("then:            curl http://{address}/orders/order-1");
    println!("{}", narration::header().bold());
    // Sagas left unfinished by a previous run carry on from their log.
    let resumer = Arc::clone(&service);
    tokio::spawn(async move {
        if let Err(error) = resumer.resume_unfinished().await {
            println!("  {} could not resume: {error}", "⚠".red());
        }
    });
    axum::serve(listener, order::router(service))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
// ANCHOR_END: serve_order

fn narrator() -> Narrator {
    Arc::new(|note| {
        if let Some(line) = narration::orchestrator_line(note) {
            println!("{line}");
        }
    })
}

async fn orchestration(args: &Args, dir: &Path) -> anyhow::Result<()> {
    // `--crash-at` names a step; one that never runs in this scenario is refused up front.
    let crash_plan = args.crash_at.as_deref().map(|step| {
        CrashPlan::for_step(
            &SagaDefinition::order_fulfilment(),
            step,
            refusing(args.fail_at),
        )
        .unwrap_or_else(|why| {
            Args::command()
                .error(ErrorKind::ValueValidation, format!("--crash-at: {why}"))
                .exit()
        })
    });
    let place = Place::Dir(dir.to_path_buf());
    let options = || Options {
        narrator: Some(narrator()),
        ..Options::default()
    };
    // A previous run that crashed left an unfinished saga: resume it first.
    if dir.join("order.db").exists() {
        let system = System::start(&place, None, options())?;
        let unfinished = system.order.unfinished()?;
        if !unfinished.is_empty() {
            println!(
                "{}",
                format!(
                    "restarted: {} unfinished saga(s) in the log, resuming",
                    unfinished.len()
                )
                .bold()
            );
            println!("{}", narration::header().bold());
            for (order_id, _) in system.order.resume_unfinished().await? {
                print_balances(&system.balances(&order_id)?, &order_id);
            }
            return Ok(());
        }
    }
    fresh_dir(dir).with_context(|| format!("cannot prepare {}", dir.display()))?;
    let system = System::start(&place, Some(&seed(args.fail_at)), options())?;
    if let Some(plan) = crash_plan {
        system.order.crash_at(plan);
    }
    let line = order_line("order-1", args.quantity);
    println!(
        "{} {} × {} for {}, {} cents (style: orchestration, fail at: {:?})",
        "order".bold(),
        line.quantity,
        line.sku,
        line.customer,
        line.amount,
        args.fail_at
    );
    println!("{}", narration::header().bold());
    match system.order.run_order(&line).await {
        Ok(_) => print_balances(&system.balances("order-1")?, "order-1"),
        Err(error) => {
            println!("  {} {error}", "💥".red());
            println!(
                "  the saga log in {} ends mid-saga; run the demo again to resume it",
                dir.join("order.db").display()
            );
            std::process::exit(3);
        }
    }
    Ok(())
}

async fn choreography(args: &Args, dir: &Path) -> anyhow::Result<()> {
    if args.crash_at.is_some() {
        println!("--crash-at applies to the orchestrator; the choreography has none (ignored)");
    }
    fresh_dir(dir).with_context(|| format!("cannot prepare {}", dir.display()))?;
    let system = System::start(
        &Place::Dir(dir.to_path_buf()),
        Some(&seed(args.fail_at)),
        Options {
            extra_schema: choreography::SCHEMA.to_owned(),
            ..Options::default()
        },
    )?;
    let bus = match std::env::var("NATS_URL") {
        Ok(url) if !url.is_empty() => {
            Bus::nats(&url, &format!("demo-{}", std::process::id())).await?
        }
        _ => Bus::in_process(),
    };
    println!("events travel over the {}", bus.describe());
    let printer: choreography::EventNarrator =
        Arc::new(|service, message| println!("{}", narration::event_line(service, &message.event)));
    let choreography = Choreography::start(&system, bus, Some(printer)).await?;
    let line = order_line("order-1", args.quantity);
    println!("{}", narration::header().bold());
    choreography
        .place(&line)
        .map_err(|problem| anyhow::anyhow!(problem.detail))?;
    choreography.settle("order-1", 2_000).await;
    // Let the last events' narration print before the summary.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    for (service, id, error) in choreography.dead_letters() {
        println!("  {} {service}: {id}: {error}", "dead letter".red());
    }
    print_balances(&system.balances("order-1")?, "order-1");
    Ok(())
}

fn print_balances(balances: &Balances, order_id: &str) {
    println!("{}", narration::balances(balances, order_id));
}
