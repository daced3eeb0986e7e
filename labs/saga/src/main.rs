//! The saga lab's demo: `cargo run -p lab-saga -- --style orchestration --fail-at inventory`.
//!
//! It starts the four services in this process (each with its SQLite file in the data
//! directory), places one order, narrates every step and compensation as a live sequence
//! and ends with the balances. `--crash-at <step>` makes the orchestrator exit right after
//! that step's participant replied and before the reply is recorded; running the demo again
//! finds the unfinished saga in the order database and resumes it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use lab_saga::bus::Bus;
use lab_saga::choreography::{self, Choreography};
use lab_saga::narration;
use lab_saga::order::{CrashPlan, Narrator};
use lab_saga::system::{Balances, Options, Place, Seed, System, fresh_dir, order_line};
use owo_colors::OwoColorize;
use saga_core::SagaDefinition;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Style {
    /// An orchestrator in the order service drives the saga and keeps its log.
    Orchestration,
    /// Services react to each other's events (outbox, inbox, dead letters).
    Choreography,
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
    /// Orchestration or choreography.
    #[arg(long, value_enum, default_value_t = Style::Orchestration, env = "SAGA_STYLE")]
    style: Style,
    /// Which participant refuses (a business failure that triggers compensation).
    #[arg(long, value_enum, default_value_t = FailAt::None)]
    fail_at: FailAt,
    /// Exit the orchestrator right after this step's participant replied (before the reply
    /// is logged): create_order, reserve_payment, reserve_inventory, schedule_shipping or
    /// approve_order. Run again without it to resume.
    #[arg(long)]
    crash_at: Option<String>,
    /// Where the four SQLite files live.
    #[arg(long, env = "SAGA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Units to order (2 500 cents each).
    #[arg(long, default_value_t = 2)]
    quantity: i64,
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
    match args.style {
        Style::Orchestration => orchestration(&args, &dir).await,
        Style::Choreography => choreography(&args, &dir).await,
    }
}

fn narrator() -> Narrator {
    Arc::new(|note| {
        if let Some(line) = narration::orchestrator_line(note) {
            println!("{line}");
        }
    })
}

async fn orchestration(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
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
    if let Some(step) = &args.crash_at {
        let index = SagaDefinition::order_fulfilment()
            .steps
            .iter()
            .position(|s| &s.name == step)
            .with_context(|| format!("--crash-at: no step named `{step}`"))?;
        system.order.crash_at(CrashPlan {
            before_send: None,
            after_reply: Some(index),
        });
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

async fn choreography(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
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
    println!();
    println!("{}", format!("balances for {order_id}").bold());
    println!("  order status      {}", balances.order_status.bold());
    println!("  money held        {} cents", balances.money_held);
    println!("  stock reserved    {} units", balances.stock_reserved);
    println!("  courier booked    {}", balances.shipping_scheduled);
    println!(
        "  totals            payment {}, inventory {}, shipping {}",
        balances.payment, balances.inventory, balances.shipping
    );
    let verdict = if balances.is_consistent() {
        "consistent ✅".green().to_string()
    } else {
        "NOT consistent: an operator must look ⚠".red().to_string()
    };
    println!("  {verdict}");
}
