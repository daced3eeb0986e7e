//! `cargo run -p lab-breaker`: the narrated circuit breaker demo.
//!
//! With no arguments it starts the payment service and the order client in this process,
//! on 127.0.0.1 ephemeral ports, runs the scripted outage twice (with a breaker, then
//! without one) and narrates both. `--role payment` or `--role order` start one side
//! alone, so the two can run in separate terminals and be killed and restarted by hand.

use std::io::Write as _;
use std::net::SocketAddr;

use clap::{Parser, ValueEnum};
use lab_breaker::narration::{self, Palette};
use lab_breaker::order::{self, OrderClient};
use lab_breaker::payment::{self, Behaviour, PaymentState};
use lab_breaker::scenario::{self, Scenario};
use lab_breaker::transport::HttpTransport;
use lab_runtime::Narrator;
use lab_runtime::cli::RoleArgs;
use lab_runtime::serve::{self, Running};

/// Which part of the lab to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
enum Role {
    /// Both services and the scripted scenario, narrated (the default).
    #[default]
    Demo,
    /// Only the payment upstream (change it with `POST /admin/behaviour`).
    Payment,
    /// Only the order client: steady load on `--upstream`, `/metrics` on `--port`.
    Order,
}

impl lab_runtime::cli::Role for Role {
    /// The payment service listens on 4004 (where the order client looks for it); the demo
    /// and the order client's `/metrics` take any free port.
    fn default_port(self) -> u16 {
        match self {
            Role::Payment => 4004,
            Role::Demo | Role::Order => 0,
        }
    }
}

/// The circuit breaker lab: a payment service that fails on cue and an order client that
/// survives it.
#[derive(Debug, Parser)]
#[command(name = "lab-breaker", version, about, long_about = None)]
struct Args {
    /// What to run, and the port of the payment service (0 means 4004) or of the order
    /// client's /metrics (0 picks a free port).
    #[command(flatten)]
    run: RoleArgs<Role>,
    /// The payment service the order client calls (role order).
    #[arg(long, default_value = "127.0.0.1:4004", env = "BREAKER_UPSTREAM")]
    upstream: SocketAddr,
    /// Calls per second from the order client.
    #[arg(long, default_value_t = 20, env = "BREAKER_RATE")]
    rate: u32,
    /// Seed of the payment failures and the breaker's jitter: same seed, same story.
    #[arg(long, default_value_t = 7, env = "BREAKER_SEED")]
    seed: u64,
    /// Seconds per run (demo: the script is laid out over 15 s; role order: how long to run).
    #[arg(long, default_value_t = 15, env = "BREAKER_DURATION")]
    duration: u64,
    /// Run the scenario this many times faster than real time.
    #[arg(long, default_value_t = 1.0, env = "BREAKER_SPEED")]
    speed: f64,
    /// Shorthand for `--speed 4`: the whole demo in about ten seconds.
    #[arg(long)]
    fast: bool,
    /// Skip the second run without a breaker.
    #[arg(long)]
    no_compare: bool,
    /// Role payment: initial failure rate, in percent.
    #[arg(long, default_value_t = 0)]
    failure_rate: u8,
    /// Role payment: initial latency, in milliseconds.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to standard error, so the narrated timeline on standard output stays clean in
    // a pipe.
    lab_runtime::logging::init("warn");
    let args = Args::parse();
    anyhow::ensure!(
        args.speed.is_finite() && args.speed > 0.0,
        "--speed must be a positive number, got {}",
        args.speed
    );
    anyhow::ensure!(
        args.rate > 0 && args.rate <= 1000,
        "--rate must be in 1..=1000"
    );
    match args.run.role() {
        Role::Demo => demo(&args).await,
        Role::Payment => serve_payment(&args).await,
        Role::Order => serve_order(&args).await,
    }
}

fn scenario_from(args: &Args) -> Scenario {
    let speed = if args.fast { 4.0 } else { args.speed };
    let mut scenario = Scenario::default_script(args.seed).with_speed(speed);
    scenario.rate_per_sec = args.rate;
    scenario.duration_secs = args.duration.max(1);
    scenario
}

/// Serves `router` on 127.0.0.1:`port` (0: any free port) in the background.
async fn spawn_server(router: axum::Router, port: u16) -> anyhow::Result<Running> {
    let listener = serve::bind_loopback(port).await?;
    Ok(serve::spawn_on(listener, router)?)
}

async fn demo(args: &Args) -> anyhow::Result<()> {
    let narrator = Narrator::detect();
    let palette = narrator.palette();
    let scenario = scenario_from(args);
    let real_secs = scenario
        .real(breaker_core_secs(scenario.duration_secs))
        .as_secs_f64();

    // Run 1: with the breaker. A fresh payment service per run, same seed: same story.
    let payment_server = spawn_server(payment::router(PaymentState::new(args.seed)), 0).await?;
    let payment = payment_server.addr;
    let breaker = scenario.new_breaker()?;
    let order_client = OrderClient::new(
        HttpTransport::new(payment),
        Some(breaker.clone()),
        scenario.real(scenario.timeout),
        scenario.retries,
    );
    let order_server = spawn_server(order::router(order_client), args.run.port()).await?;
    let order = order_server.addr;
    println!(
        "payment service on http://{payment}   order client metrics on http://{order}/metrics"
    );
    println!(
        "{} calls/s for {} s (scenario time; {real_secs:.0} s real), timeout {}, {} retry; \
         breaker opens at {}% failures over the last {} calls",
        scenario.rate_per_sec,
        scenario.duration_secs,
        scenario.timeout,
        scenario.retries,
        scenario.breaker.failure_rate_threshold,
        match scenario.breaker.window {
            lab_breaker::breaker_core::WindowKind::CountBased { size } => size,
            lab_breaker::breaker_core::WindowKind::TimeBased { seconds } => seconds,
        },
    );
    println!("{}", narrator.step("With a circuit breaker"));
    println!("{}", narration::header(palette));
    let with = scenario::run(
        HttpTransport::new(payment),
        &scenario,
        Some(breaker),
        |row| print_live(&narration::render_row(row, palette)),
    )
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    println!();
    print!(
        "{}",
        narration::render_summary("Summary, with a breaker", &with.summary, palette)
    );
    order_server.stop().await;
    payment_server.stop().await;
    if args.no_compare {
        return Ok(());
    }

    // Run 2: the same scenario with nothing between the client and the failing service.
    let payment_server = spawn_server(payment::router(PaymentState::new(args.seed)), 0).await?;
    let payment = payment_server.addr;
    println!("{}", narrator.step("The same scenario without a breaker"));
    println!("{}", narration::header(palette));
    let without = scenario::run(HttpTransport::new(payment), &scenario, None, |row| {
        print_live(&narration::render_row(row, palette));
    })
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    println!();
    print!(
        "{}",
        narration::render_comparison(&with.summary, &without.summary, palette)
    );
    payment_server.stop().await;
    Ok(())
}

fn breaker_core_secs(secs: u64) -> lab_breaker::breaker_core::Millis {
    lab_breaker::breaker_core::Millis::from_secs(secs)
}

fn print_live(line: &str) {
    println!("{line}");
    // A pipe buffers stdout; the timeline is meant to be watched as it happens.
    let _ = std::io::stdout().flush();
}

async fn serve_payment(args: &Args) -> anyhow::Result<()> {
    let behaviour = Behaviour {
        failure_rate_percent: args.failure_rate.min(100),
        latency_ms: args.latency_ms,
    };
    let listener = serve::bind_loopback(args.run.port()).await?;
    let address = listener.local_addr()?;
    println!("payment service on http://{address}  ({behaviour:?})");
    println!(
        "break it:  curl -X POST http://{address}/admin/behaviour -H 'content-type: application/json' \
         -d '{{\"failure_rate_percent\":100,\"latency_ms\":1000}}'"
    );
    serve::serve(
        listener,
        payment::router(PaymentState::with_behaviour(args.seed, behaviour)),
        serve::ctrl_c(),
    )
    .await?;
    Ok(())
}

async fn serve_order(args: &Args) -> anyhow::Result<()> {
    let palette = Palette::detect();
    let mut scenario = scenario_from(args);
    // No script: steady load against whatever the upstream does; you break it by hand.
    scenario.phases.clear();
    let breaker = scenario.new_breaker()?;
    let client = OrderClient::new(
        HttpTransport::new(args.upstream),
        Some(breaker.clone()),
        scenario.real(scenario.timeout),
        scenario.retries,
    );
    let server = spawn_server(order::router(client), args.run.port()).await?;
    let address = server.addr;
    println!(
        "order client on http://{address} (metrics at /metrics), calling payment at {}",
        args.upstream
    );
    println!("{}", narration::header(palette));
    let report = scenario::run(
        HttpTransport::new(args.upstream),
        &scenario,
        Some(breaker),
        |row| print_live(&narration::render_row(row, palette)),
    )
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    print!(
        "{}",
        narration::render_summary("Summary", &report.summary, palette)
    );
    server.stop().await;
    Ok(())
}
