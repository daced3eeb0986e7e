//! The saga lab's demo: `cargo run -p lab-saga -- --style orchestration --fail-at inventory`.
//!
//! It starts the four services in this process (each with its SQLite file in the data
//! directory), places one order, narrates every step and compensation as a live sequence
//! and ends with the balances. Each demo starts from fresh books, unless the last one left an
//! unfinished saga (then it resumes it) or `--data-dir` names a directory to keep.
//! `--crash-at <step>` makes the orchestrator exit right after that step's participant
//! replied and before the reply is recorded; running the demo again finds the unfinished
//! saga in the order database and resumes it.
//!
//! `--role payment|inventory|shipping|order` starts one service alone on `--port`, so each
//! can run in its own terminal and be killed and restarted by hand. Orchestrated, the order
//! role's orchestrator calls the participants over HTTP (`--payment-url` and friends) and
//! resumes any unfinished saga from its log when it starts. Choreographed, every role reacts
//! to the others' events on NATS JetStream (`NATS_URL`), on files kept across restarts.
//!
//! `dead-letters` lists the parked messages in a data directory and `redrive <service> <id>`
//! runs one again once its cause is fixed. Logs (warnings by default, `RUST_LOG` to change)
//! go to standard error. Standard output that nobody reads any more (`lab-saga | head`) stops
//! the printing, never the saga (the `out` module).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use lab_runtime::cli::RoleArgs;
use lab_runtime::serve;
use lab_saga::bus::{Bus, NatsSettings};
use lab_saga::choreography::{self, Choreography, Observer, Service, Settings};
use lab_saga::db::Storage;
use lab_saga::inventory::{self, Inventory};
use lab_saga::narration::{self, Palette};
use lab_saga::order::{self, CrashPlan, Narrator, OrderService};
use lab_saga::participant::{self, Domain, Participant};
use lab_saga::payment::{self, Payment};
use lab_saga::shipping::{self, Shipping};
use lab_saga::system::{
    Balances, CUSTOMER, Options, Place, SKU, Seed, System, deployment_id, fresh_dir, order_line,
};
use lab_saga::telemetry::{self, SERVICES, SagaTelemetry};
use lab_saga::transport::Transport;
use saga_core::{OrderStatus, RetryPolicy, SagaDefinition};

/// The demo's standard output. A write that fails (the reader went away: `lab-saga | head`
/// closes the pipe, and every later write gets EPIPE) stops the printing instead of
/// panicking, so the saga and the services carry on to the end, whichever task was
/// printing. Other write errors do the same, with one warning on standard error.
mod out {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};

    static STOPPED: AtomicBool = AtomicBool::new(false);

    /// Prints `text` and a newline, unless printing has stopped.
    pub fn line(text: std::fmt::Arguments<'_>) {
        if STOPPED.load(Ordering::Relaxed) {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        let written = stdout
            .write_fmt(text)
            .and_then(|()| stdout.write_all(b"\n"))
            .and_then(|()| stdout.flush());
        if let Err(error) = written
            && !STOPPED.swap(true, Ordering::Relaxed)
            && error.kind() != std::io::ErrorKind::BrokenPipe
        {
            tracing::warn!(%error, "cannot write to standard output; printing stops, the services go on");
        }
    }
}

/// `println!` through [`out::line`]: a closed standard output stops the printing, not the demo.
macro_rules! say {
    ($($arg:tt)*) => {
        out::line(format_args!($($arg)*))
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Style {
    /// An orchestrator in the order service drives the saga and keeps its log.
    Orchestration,
    /// Services react to each other's events (outbox, inbox, dead letters).
    Choreography,
}

/// Which part of the lab to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum Role {
    /// All four services in this process and one narrated saga (the default).
    #[default]
    Demo,
    /// Only the order service (default port 4100).
    Order,
    /// Only the payment participant (default port 4101).
    Payment,
    /// Only the inventory participant (default port 4102).
    Inventory,
    /// Only the shipping participant (default port 4103).
    Shipping,
}

impl lab_runtime::cli::Role for Role {
    /// The order service on 4100 and the participants on 4101 to 4103, where the order
    /// role's `--payment-url` and friends look for them by default.
    fn default_port(self) -> u16 {
        match self {
            Role::Demo | Role::Order => 4100,
            Role::Payment => 4101,
            Role::Inventory => 4102,
            Role::Shipping => 4103,
        }
    }
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Demo => "demo",
            Role::Order => "order",
            Role::Payment => "payment",
            Role::Inventory => "inventory",
            Role::Shipping => "shipping",
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

/// An operator's command on a data directory.
#[derive(Debug, Subcommand)]
enum Operator {
    /// Lists every service's dead letters.
    DeadLetters,
    /// Runs a dead letter's reaction again (once its cause is fixed); the saga carries on.
    Redrive {
        /// The service that parked it: order, payment, inventory or shipping.
        service: String,
        /// The message's id, as `dead-letters` shows it (`order-1:OrderCreated`).
        message_id: String,
    },
}

/// Run the order saga (create order → reserve payment → reserve inventory → schedule
/// shipping) and watch it succeed, compensate, or survive a crash.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// An operator's command instead of a service.
    #[command(subcommand)]
    operator: Option<Operator>,
    /// What to run (the whole demo, or one service alone), and the port of a single role
    /// (0: the role's default, 4100 to 4103).
    #[command(flatten)]
    run: RoleArgs<Role>,
    /// Role order, orchestrated: where the payment participant listens.
    #[arg(
        long,
        default_value = "http://127.0.0.1:4101",
        env = "SAGA_PAYMENT_URL"
    )]
    payment_url: String,
    /// Role order, orchestrated: where the inventory participant listens.
    #[arg(
        long,
        default_value = "http://127.0.0.1:4102",
        env = "SAGA_INVENTORY_URL"
    )]
    inventory_url: String,
    /// Role order, orchestrated: where the shipping participant listens.
    #[arg(
        long,
        default_value = "http://127.0.0.1:4103",
        env = "SAGA_SHIPPING_URL"
    )]
    shipping_url: String,
    /// Orchestration or choreography (choreographed roles need NATS_URL).
    #[arg(long, value_enum, default_value_t = Style::Orchestration, env = "SAGA_STYLE")]
    style: Style,
    /// Which participant refuses (a business failure that triggers compensation): the demo,
    /// or that participant's role, seeds its books so (only in a new data directory).
    #[arg(long, value_enum, default_value_t = FailAt::None)]
    fail_at: FailAt,
    /// Demo, orchestrated: exit the orchestrator right after this step's participant replied
    /// (before the reply is logged): create_order, reserve_payment, reserve_inventory,
    /// schedule_shipping, capture_payment or approve_order (a step the scenario never reaches
    /// is refused). Run again without it to resume.
    #[arg(long)]
    crash_at: Option<String>,
    /// Where the four SQLite files live, kept between runs (default: a fresh directory per
    /// demo under $TMPDIR/saga-lab/, and $TMPDIR/saga-lab/services for the roles).
    #[arg(long, env = "SAGA_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Demo: units to order (2 500 cents each).
    #[arg(long, default_value_t = 2)]
    quantity: i64,
    /// Choreography on NATS: JetStream's ack wait for new consumers, in seconds (how long a
    /// restarted service waits for the messages its previous run never acknowledged).
    #[arg(long, default_value_t = 30)]
    ack_wait_secs: u64,
    /// Role order, orchestrated: how many minutes a failing compensation is retried before its
    /// saga stops in NEEDS_ATTENTION (resumed when its participant is back, on restart, or by
    /// `POST /sagas/{id}/resume`).
    #[arg(long, default_value_t = 15)]
    compensation_retry_minutes: u64,
    /// Trace every service this process runs to the OTLP/HTTP collector at this base URL
    /// (spans go to `<url>/v1/traces`; `cargo run -p lab-tracing` runs one). Off when not
    /// given: nothing is traced.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    otlp: Option<String>,
}

/// The services' tracing, once `main` has started it (`--otlp`).
static TELEMETRY: std::sync::OnceLock<SagaTelemetry> = std::sync::OnceLock::new();

/// The tracing of `service`, when `--otlp` turned it on.
fn traced(service: &str) -> Option<Arc<lab_telemetry::Telemetry>> {
    TELEMETRY.get().and_then(|telemetry| telemetry.of(service))
}

/// Sends the spans still buffered (before the process exits).
async fn flush_traces() {
    if let Some(telemetry) = TELEMETRY.get()
        && let Err(error) = telemetry.shutdown().await
    {
        tracing::warn!(%error, "could not send the last spans to the collector");
    }
}

// ANCHOR: start_tracing
/// Starts the tracing of the services `role` runs when an OTLP endpoint is given.
async fn start_tracing(args: &Args, role: Role) -> anyhow::Result<()> {
    let Some(endpoint) = args.otlp.as_deref().filter(|url| !url.trim().is_empty()) else {
        return Ok(());
    };
    let services: Vec<&'static str> = match role {
        Role::Demo => SERVICES.to_vec(),
        role => vec![role.name()],
    };
    let telemetry = SagaTelemetry::start(endpoint, &services)
        .await
        .with_context(|| format!("cannot trace to the OTLP endpoint {endpoint}"))?;
    say!("traces of {} go to {endpoint}", services.join(", "));
    let _ = TELEMETRY.set(telemetry);
    Ok(())
}
// ANCHOR_END: start_tracing

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
    // Warnings and errors (or `RUST_LOG`'s choice) to standard error: a saga that cannot
    // progress says so there.
    lab_runtime::logging::init("warn");
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches)?;
    check_flags(&args, &matches)?;
    let palette = Palette::detect();
    let (dir, kept) = data_dir(&args);
    if let Some(operator) = &args.operator {
        return operate(operator, &dir);
    }
    start_tracing(&args, args.run.role()).await?;
    let result = run(&args, &dir, kept, palette).await;
    flush_traces().await;
    result
}

/// Runs the role and style asked for.
async fn run(args: &Args, dir: &Path, kept: bool, palette: Palette) -> anyhow::Result<()> {
    match (args.run.role(), args.style) {
        (Role::Demo, Style::Orchestration) => orchestration(args, dir, kept, palette).await,
        (Role::Demo, Style::Choreography) => choreography_demo(args, dir, kept, palette).await,
        (Role::Order, Style::Orchestration) => serve_order(args, dir, palette).await,
        (role, Style::Choreography) => serve_choreographed(args, role, dir, palette).await,
        (Role::Payment, Style::Orchestration) => {
            serve_participant::<Payment>(args, dir, palette, |db, seed| {
                payment::open_account(db, CUSTOMER, seed.balance)
            })
            .await
        }
        (Role::Inventory, Style::Orchestration) => {
            serve_participant::<Inventory>(args, dir, palette, |db, seed| {
                inventory::stock(db, SKU, seed.stock)
            })
            .await
        }
        (Role::Shipping, Style::Orchestration) => {
            serve_participant::<Shipping>(args, dir, palette, |db, seed| {
                shipping::set_free_slots(db, seed.couriers)
            })
            .await
        }
    }
}

/// The data directory, and whether it is the user's (kept as it is) rather than the demo's
/// own (made fresh for each demo).
fn data_dir(args: &Args) -> (PathBuf, bool) {
    if let Some(dir) = &args.data_dir {
        return (dir.clone(), true);
    }
    let root = std::env::temp_dir().join("saga-lab");
    let dir = match (args.operator.is_some(), args.run.role(), args.style) {
        (false, Role::Demo, Style::Orchestration) => root.join("orchestration"),
        (false, Role::Demo, Style::Choreography) => root.join("choreography"),
        _ => root.join("services"),
    };
    (dir, false)
}

// ANCHOR: check_flags
/// Refuses a flag given on the command line that the chosen role and style would ignore.
fn check_flags(args: &Args, matches: &ArgMatches) -> anyhow::Result<()> {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let role = args.run.role().name();
    let style = match args.style {
        Style::Orchestration => "orchestration",
        Style::Choreography => "choreography",
    };
    if args.operator.is_some() {
        for flag in ["role", "port", "style", "fail_at", "crash_at", "quantity"] {
            anyhow::ensure!(
                !given(flag),
                "--{} does not apply to an operator's command (only --data-dir does)",
                flag.replace('_', "-")
            );
        }
        return Ok(());
    }
    if args.run.role() == Role::Demo {
        anyhow::ensure!(
            !given("port"),
            "--port applies to a single --role; the demo listens on no port"
        );
    } else {
        anyhow::ensure!(
            !given("quantity"),
            "--quantity applies to the demo; with --role {role}, place orders over HTTP"
        );
        anyhow::ensure!(
            !given("crash_at"),
            "--crash-at applies to the orchestrated demo; to crash --role {role}, kill its process"
        );
    }
    let orchestrated_order = args.run.role() == Role::Order && args.style == Style::Orchestration;
    for flag in [
        "payment_url",
        "inventory_url",
        "shipping_url",
        "compensation_retry_minutes",
    ] {
        anyhow::ensure!(
            !given(flag) || orchestrated_order,
            "--{} applies to --role order --style orchestration (the orchestrator calls the \
             participants), not to --role {role} --style {style}",
            flag.replace('_', "-")
        );
    }
    if given("crash_at") {
        anyhow::ensure!(
            args.style == Style::Orchestration,
            "--crash-at stops the orchestrator, and the choreography has none; to see the \
             choreography recover, kill a --role process (see the book)"
        );
    }
    if given("fail_at") && args.fail_at != FailAt::None {
        let target = format!("{:?}", args.fail_at).to_lowercase();
        match args.run.role() {
            Role::Demo => {}
            Role::Order => anyhow::bail!(
                "--fail-at seeds a participant's books, and the order service has none: give \
                 --fail-at {target} to --role {target} instead"
            ),
            _ => anyhow::ensure!(
                target == role,
                "--fail-at {target} seeds {target}'s books; --role {role} can only take \
                 --fail-at {role}"
            ),
        }
    }
    if given("ack_wait_secs") {
        anyhow::ensure!(
            args.style == Style::Choreography && nats_url().is_some(),
            "--ack-wait-secs applies to the choreography on NATS JetStream (--style \
             choreography with NATS_URL set)"
        );
        anyhow::ensure!(args.ack_wait_secs > 0, "--ack-wait-secs must be at least 1");
    }
    Ok(())
}
// ANCHOR_END: check_flags

fn nats_url() -> Option<String> {
    std::env::var("NATS_URL").ok().filter(|url| !url.is_empty())
}

/// Binds 127.0.0.1 on the role's port; a port already taken is the usual mistake (the
/// service is running in another terminal), so the error says which.
async fn bind(args: &Args) -> anyhow::Result<tokio::net::TcpListener> {
    Ok(serve::bind_loopback(args.run.port()).await?)
}

// ANCHOR: serve_participant
/// One participant alone. Its database is a file in the data directory, kept across
/// restarts: kill the process mid-saga, start it again, and it still knows every
/// idempotency key it answered, so the orchestrator's retries get the first answer.
/// The books are seeded only when the file is new.
async fn serve_participant<D: Domain>(
    args: &Args,
    dir: &Path,
    palette: Palette,
    seed_books: impl FnOnce(&rusqlite::Connection, &Seed) -> rusqlite::Result<()>,
) -> anyhow::Result<()> {
    let service = open_participant::<D>(args, dir, "", seed_books)?;
    let listener = bind(args).await?;
    let address = listener.local_addr()?;
    let operations = [Some(D::ACTION), Some(D::COMPENSATION), D::FINISH]
        .into_iter()
        .flatten()
        .map(|name| format!("/{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    say!(
        "{} on http://{address}: POST {operations} (Idempotency-Key header), GET /state, GET /health",
        palette.bold(D::NAME),
    );
    say!("  books {}  (in {})", service.holdings(), dir.display());
    let router = telemetry::instrument(traced(D::NAME).as_ref(), participant::router(service));
    serve::serve(listener, router, serve::ctrl_c()).await?;
    Ok(())
}
// ANCHOR_END: serve_participant

/// Opens a participant's file in `dir`, seeding its books if the file is new.
fn open_participant<D: Domain>(
    args: &Args,
    dir: &Path,
    extra_schema: &str,
    seed_books: impl FnOnce(&rusqlite::Connection, &Seed) -> rusqlite::Result<()>,
) -> anyhow::Result<Arc<Participant<D>>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let storage = Storage::file_in(dir, D::NAME);
    let is_new = matches!(&storage, Storage::File(path) if !path.exists());
    anyhow::ensure!(
        is_new || args.fail_at == FailAt::None,
        "--fail-at seeds the books of a new database, and {} has its books already; \
         leave out --fail-at, or use another --data-dir",
        dir.join(format!("{}.db", D::NAME)).display()
    );
    let service = Participant::<D>::open(&storage, extra_schema)?;
    if is_new {
        seed_books(&service.db().lock(), &seed(args.fail_at))?;
    }
    Ok(service)
}

// ANCHOR: serve_order
/// The order service alone: its orchestrator reaches the participants over HTTP. A
/// participant that is down answers nothing, which the orchestrator treats as retryable:
/// it backs off and tries again, so restarting the participant lets the saga carry on.
async fn serve_order(args: &Args, dir: &Path, palette: Palette) -> anyhow::Result<()> {
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
    OrderService::configure(
        &mut service,
        true,
        Some(narrator(palette)),
        Some(definition),
    );
    OrderService::set_telemetry(&mut service, traced("order"));
    // Sagas stopped in NEEDS_ATTENTION carry on once their participant answers again.
    service.spawn_attention_watch(Duration::from_secs(5));
    let listener = bind(args).await?;
    let address = listener.local_addr()?;
    say!(
        "{} on http://{address}, calling payment {}, inventory {}, shipping {}",
        palette.bold("order"),
        args.payment_url,
        args.inventory_url,
        args.shipping_url
    );
    print_order_help(&address.to_string());
    say!("{}", palette.bold(&narration::header()));
    // Sagas left unfinished by a previous run carry on from their log.
    let resumer = Arc::clone(&service);
    tokio::spawn(async move {
        if let Err(error) = resumer.resume_unfinished().await {
            tracing::error!(%error, "could not resume the unfinished sagas");
            say!("  {} could not resume: {error}", palette.red("⚠"));
        }
    });
    let router = telemetry::instrument(traced("order").as_ref(), order::router(service));
    serve::serve(listener, router, serve::ctrl_c()).await?;
    Ok(())
}
// ANCHOR_END: serve_order

fn print_order_help(address: &str) {
    say!(
        "place an order:  curl -X POST http://{address}/orders -H 'content-type: application/json' \\\n  \
         -d '{{\"order_id\":\"order-1\",\"customer\":\"{CUSTOMER}\",\"sku\":\"{SKU}\",\"quantity\":2,\"amount\":5000}}'"
    );
    say!("then:            curl http://{address}/orders/order-1");
}

fn narrator(palette: Palette) -> Narrator {
    Arc::new(move |note| {
        if let Some(line) = narration::orchestrator_line(note, palette) {
            say!("{line}");
        }
    })
}

fn event_printer(palette: Palette) -> choreography::EventNarrator {
    Arc::new(move |service, message| {
        say!(
            "{}",
            narration::event_line(service, &message.event, palette)
        );
    })
}

fn note_printer(palette: Palette) -> Observer {
    Arc::new(move |note| say!("{}", narration::choreography_note(note, palette)))
}

/// The bus for the services in `dir`: NATS JetStream when `NATS_URL` is set (this data
/// directory's subjects and consumers on the lab's stream), the in-process bus otherwise.
async fn bus_for(args: &Args, dir: &Path) -> anyhow::Result<Bus> {
    let Some(url) = nats_url() else {
        return Ok(Bus::in_process());
    };
    let settings = NatsSettings {
        ack_wait: Duration::from_secs(args.ack_wait_secs),
        ..NatsSettings::lab(url)
    };
    let deployment = deployment_id(dir)
        .with_context(|| format!("cannot keep the deployment id in {}", dir.display()))?;
    Bus::nats(&settings, &deployment).await
}

/// Builds a role's HTTP face once its choreography runs.
type RouterFor = Box<dyn FnOnce(Arc<Choreography>) -> axum::Router>;

// ANCHOR: serve_choreographed
/// One service of the choreography alone, on NATS JetStream: its relay publishes its
/// outbox and its consumer reacts to the others' events. Its file and its durable consumer
/// survive a crash: restarted, it publishes what it had not, and JetStream delivers again
/// what it had received but not acknowledged (after the ack wait, which it says).
async fn serve_choreographed(
    args: &Args,
    role: Role,
    dir: &Path,
    palette: Palette,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        nats_url().is_some(),
        "the choreography's services talk through NATS JetStream: start `nats-server -js` and \
         set NATS_URL=nats://127.0.0.1:4222 (the demo, without --role, needs no server)"
    );
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let schema = choreography::SCHEMA;
    let (service, order, router): (Service, Option<Arc<OrderService>>, RouterFor) = match role {
        Role::Order => {
            let mut order = OrderService::open(
                &Storage::file_in(dir, "order"),
                Transport::InProcess(HashMap::new()),
                schema,
            )?;
            OrderService::set_telemetry(&mut order, traced("order"));
            (
                Service::order(&order),
                Some(order),
                Box::new(choreography::order_router),
            )
        }
        Role::Payment => {
            let p = open_participant::<Payment>(args, dir, schema, |db, seed| {
                payment::open_account(db, CUSTOMER, seed.balance)
            })?;
            (
                Service::participant(&p).traced(traced("payment")),
                None,
                Box::new(move |c| choreography::participant_router(p, c)),
            )
        }
        Role::Inventory => {
            let p = open_participant::<Inventory>(args, dir, schema, |db, seed| {
                inventory::stock(db, SKU, seed.stock)
            })?;
            (
                Service::participant(&p).traced(traced("inventory")),
                None,
                Box::new(move |c| choreography::participant_router(p, c)),
            )
        }
        Role::Shipping => {
            let p = open_participant::<Shipping>(args, dir, schema, |db, seed| {
                shipping::set_free_slots(db, seed.couriers)
            })?;
            (
                Service::participant(&p).traced(traced("shipping")),
                None,
                Box::new(move |c| choreography::participant_router(p, c)),
            )
        }
        Role::Demo => anyhow::bail!("the demo is not a single service"),
    };
    let name = service.name;
    let bus = bus_for(args, dir).await?;
    let listener = bind(args).await?;
    let address = listener.local_addr()?;
    say!(
        "{} on http://{address}, choreographed over {} (data in {})",
        palette.bold(name),
        bus.describe(),
        dir.display()
    );
    if role == Role::Order {
        print_order_help(&address.to_string());
    }
    say!("  dead letters:  curl http://{address}/dead-letters");
    let choreography = Arc::new(
        Choreography::start_services(
            vec![service],
            order,
            bus,
            Settings {
                narrator: Some(event_printer(palette)),
                observer: Some(note_printer(palette)),
                ..Settings::default()
            },
        )
        .await?,
    );
    let unfinished = choreography.unfinished();
    if !unfinished.is_empty() {
        say!(
            "{}",
            palette.bold(&format!(
                "restarted: {} unfinished saga(s); the services carry them on",
                unfinished.len()
            ))
        );
    }
    let router = telemetry::instrument(traced(name).as_ref(), router(choreography));
    serve::serve(listener, router, serve::ctrl_c()).await?;
    Ok(())
}
// ANCHOR_END: serve_choreographed

/// Prepares a demo's directory: the demo's own is made fresh unless the last demo left an
/// unfinished saga; the user's (`--data-dir`) is kept. Returns the seed for new books.
fn prepare_demo_dir(args: &Args, dir: &Path, kept: bool) -> anyhow::Result<Option<Seed>> {
    if !kept {
        fresh_dir(dir).with_context(|| format!("cannot prepare {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let is_new = ["order", "payment", "inventory", "shipping"]
        .iter()
        .all(|service| !dir.join(format!("{service}.db")).exists());
    anyhow::ensure!(
        is_new || args.fail_at == FailAt::None,
        "--fail-at seeds the books of a new data directory, and {} has its books already; \
         leave out --data-dir for a fresh one",
        dir.display()
    );
    Ok(is_new.then(|| seed(args.fail_at)))
}

/// The first of `order-1`, `order-2`… not yet placed (a kept directory has earlier ones).
fn free_order_id(order: &OrderService) -> String {
    (1..)
        .map(|n| format!("order-{n}"))
        .find(|id| matches!(order.view(id), Ok(None)))
        .unwrap_or_else(|| "order-1".to_owned())
}

/// On a resume, says that the flags describing a new saga wait for the next run.
fn note_new_saga_flags(args: &Args) {
    if args.crash_at.is_some() || args.fail_at != FailAt::None || args.quantity != 2 {
        say!(
            "  (--crash-at, --fail-at and --quantity apply to a new saga: run again once this one has ended)"
        );
    }
}

fn resume_hint(dir: &Path, kept: bool) -> String {
    if kept {
        format!(" with --data-dir {}", dir.display())
    } else {
        String::new()
    }
}

async fn orchestration(
    args: &Args,
    dir: &Path,
    kept: bool,
    palette: Palette,
) -> anyhow::Result<()> {
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
        narrator: Some(narrator(palette)),
        telemetry: TELEMETRY.get().cloned(),
        ..Options::default()
    };
    // A previous run that crashed left an unfinished saga: resume it first.
    if dir.join("order.db").exists() {
        let system = System::start(&place, None, options())?;
        let unfinished = system.order.unfinished()?;
        if !unfinished.is_empty() {
            say!(
                "{}",
                palette.bold(&format!(
                    "restarted: {} unfinished saga(s) in the log, resuming",
                    unfinished.len()
                ))
            );
            note_new_saga_flags(args);
            say!("{}", palette.bold(&narration::header()));
            for (order_id, _) in system.order.resume_unfinished().await? {
                print_balances(&system.balances(&order_id)?, &order_id, palette);
            }
            return Ok(());
        }
    }
    let seed = prepare_demo_dir(args, dir, kept)?;
    let system = System::start(&place, seed.as_ref(), options())?;
    if let Some(plan) = crash_plan {
        system.order.crash_at(plan);
    }
    let line = order_line(&free_order_id(&system.order), args.quantity);
    say!(
        "{} {} × {} for {}, {} cents (style: orchestration, fail at: {:?})",
        palette.bold(&line.order_id),
        line.quantity,
        line.sku,
        line.customer,
        line.amount,
        args.fail_at
    );
    say!("{}", palette.bold(&narration::header()));
    match system.order.run_order(&line).await {
        Ok(_) => print_balances(&system.balances(&line.order_id)?, &line.order_id, palette),
        Err(error) => {
            say!("  {} {error}", palette.red("💥"));
            say!(
                "  the saga log in {} ends mid-saga; run the demo again{} to resume it",
                dir.join("order.db").display(),
                resume_hint(dir, kept)
            );
            flush_traces().await;
            std::process::exit(3);
        }
    }
    Ok(())
}

/// How long the demo waits for a choreographed saga before it says it is stuck: longer than
/// a consumer's retries and JetStream's ack wait together.
const DEMO_PATIENCE: Duration = Duration::from_secs(180);

async fn choreography_demo(
    args: &Args,
    dir: &Path,
    kept: bool,
    palette: Palette,
) -> anyhow::Result<()> {
    let place = Place::Dir(dir.to_path_buf());
    let options = || Options {
        extra_schema: choreography::SCHEMA.to_owned(),
        telemetry: TELEMETRY.get().cloned(),
        ..Options::default()
    };
    let settings = || Settings {
        narrator: Some(event_printer(palette)),
        observer: Some(note_printer(palette)),
        ..Settings::default()
    };
    // A previous run that was killed left an unfinished saga: carry it on first.
    if dir.join("order.db").exists() {
        let system = System::start(&place, None, options())?;
        let unfinished = system.order.unfinished()?;
        if !unfinished.is_empty() {
            say!(
                "{}",
                palette.bold(&format!(
                    "restarted: {} unfinished saga(s) in {}; the services carry them on",
                    unfinished.len(),
                    dir.display()
                ))
            );
            note_new_saga_flags(args);
            let bus = bus_for(args, dir).await?;
            say!("events travel over the {}", bus.describe());
            say!("{}", palette.bold(&narration::header()));
            let choreography = Choreography::start_with(&system, bus, settings()).await?;
            for order_id in &unfinished {
                finish(&choreography, &system, order_id, dir, palette).await?;
            }
            return Ok(());
        }
    }
    let seed = prepare_demo_dir(args, dir, kept)?;
    let system = System::start(&place, seed.as_ref(), options())?;
    let bus = bus_for(args, dir).await?;
    say!("events travel over the {}", bus.describe());
    let choreography = Choreography::start_with(&system, bus, settings()).await?;
    let line = order_line(&free_order_id(&system.order), args.quantity);
    say!(
        "{} {} × {} for {}, {} cents (style: choreography, fail at: {:?}, data in {})",
        palette.bold(&line.order_id),
        line.quantity,
        line.sku,
        line.customer,
        line.amount,
        args.fail_at,
        dir.display()
    );
    say!("{}", palette.bold(&narration::header()));
    choreography
        .place(&line)
        .map_err(|problem| anyhow::anyhow!("cannot place {}: {}", line.order_id, problem.detail))?;
    finish(&choreography, &system, &line.order_id, dir, palette).await
}

/// Waits for the saga of `order_id` to end, then prints the dead letters and the balances;
/// says so, and exits with status 4, if it does not end within [`DEMO_PATIENCE`].
async fn finish(
    choreography: &Choreography,
    system: &System,
    order_id: &str,
    dir: &Path,
    palette: Palette,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + DEMO_PATIENCE;
    while choreography.status(order_id) == OrderStatus::Pending
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The relays narrate the last events right after they are published.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let letters = choreography.dead_letters();
    for (service, id, error) in &letters {
        say!("  {} {service}: {id}: {error}", palette.red("dead letter"));
    }
    if let Some((service, id, _)) = letters.first() {
        say!(
            "  once the cause is fixed: cargo run -p lab-saga -- redrive {service} {id} --data-dir {}",
            dir.display()
        );
        say!(
            "  then run the demo again with --data-dir {} to carry the saga on",
            dir.display()
        );
    }
    if choreography.status(order_id) == OrderStatus::Pending {
        tracing::error!(order_id, waited = ?DEMO_PATIENCE, "the saga did not end");
        say!(
            "  {}",
            palette.alarm(&format!(
                "⚠ {order_id} is still PENDING after {}: a service cannot apply its event (see the warnings above); \
                 its money and stock stay held. Run the demo again with --data-dir {} to carry it on",
                narration::duration(DEMO_PATIENCE),
                dir.display()
            ))
        );
        print_balances(&system.balances(order_id)?, order_id, palette);
        flush_traces().await;
        std::process::exit(4);
    }
    print_balances(&system.balances(order_id)?, order_id, palette);
    Ok(())
}

/// The operator's commands on the data directory.
fn operate(operator: &Operator, dir: &Path) -> anyhow::Result<()> {
    match operator {
        Operator::DeadLetters => {
            let mut any = false;
            for name in ["order", "payment", "inventory", "shipping"] {
                if !dir.join(format!("{name}.db")).exists() {
                    continue;
                }
                let service = Service::open_in(dir, name)?;
                for letter in choreography::dead_letters_of(&service)? {
                    any = true;
                    say!(
                        "{}  {}  ({} tries): {}",
                        letter.service,
                        letter.message_id,
                        letter.attempts,
                        letter.error
                    );
                }
            }
            if !any {
                say!("no dead letters in {}", dir.display());
            }
            Ok(())
        }
        Operator::Redrive {
            service,
            message_id,
        } => {
            let opened = Service::open_in(dir, service)?;
            choreography::redrive(&opened, message_id)?;
            say!(
                "re-driven: {service} handled {message_id}; its next event is in its outbox. \
                 Running services carry the saga on; after a demo, run it again with --data-dir {}",
                dir.display()
            );
            Ok(())
        }
    }
}

fn print_balances(balances: &Balances, order_id: &str, palette: Palette) {
    say!("{}", narration::balances(balances, order_id, palette));
}
