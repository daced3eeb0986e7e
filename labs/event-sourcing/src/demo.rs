//! The narrated demo: an order's life told as the events the store keeps.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::time::Instant;

use event_sourcing_core::{
    Command, Event, ExpectedVersion, Loaded, NewEvent, Snapshot, State, Status, decide, decode,
    encode, evolve,
};
use event_sourcing_store::{Durability, EventStore, Sqlite, StoreError, load, load_at};
use lab_runtime::Narrator;
use serde_json::json;

/// A scratch directory for the demo's files, removed at the end.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// One line for a state: `open · A×2 B×1 · 13.00`.
fn describe(state: &State) -> String {
    let Some(order) = state else {
        return "no order".to_owned();
    };
    let lines: Vec<String> = order
        .lines
        .iter()
        .map(|(sku, line)| format!("{sku}×{}", line.quantity))
        .collect();
    let lines = if lines.is_empty() {
        "no items".to_owned()
    } else {
        lines.join(" ")
    };
    match &order.status {
        Status::Open => format!("open · {lines} · {}", money(order.total_cents())),
        Status::Placed { total_cents } => format!("placed · {lines} · {}", money(*total_cents)),
        Status::Cancelled { reason } => format!("cancelled ({reason}) · {lines}"),
    }
}

fn show(event: &Event) -> String {
    match event {
        Event::OrderCreated { order_id, customer } => {
            format!("OrderCreated {{ order {order_id}, customer {customer} }}")
        }
        Event::ItemAdded {
            sku,
            quantity,
            unit_price_cents,
        } => format!(
            "ItemAdded {{ {sku} ×{quantity} at {} }}",
            money(*unit_price_cents)
        ),
        Event::QuantityUpdated { sku, quantity } => {
            format!("QuantityUpdated {{ {sku} → {quantity} }}")
        }
        Event::ItemRemoved { sku } => format!("ItemRemoved {{ {sku} }}"),
        Event::OrderPlaced { total_cents } => {
            format!("OrderPlaced {{ total {} }}", money(*total_cents))
        }
        Event::OrderCancelled { reason } => format!("OrderCancelled {{ {reason} }}"),
    }
}

/// Loads, decides and appends with `Exact` of the loaded version, narrating the result.
async fn handle(
    narrator: &Narrator,
    store: &dyn EventStore,
    who: &str,
    loaded: &Loaded,
    command: Command,
) -> anyhow::Result<Result<u64, u64>> {
    let decided = decide(&loaded.state, command)?;
    let batch: Vec<NewEvent> = decided
        .iter()
        .enumerate()
        .map(|(i, e)| encode(e, format!("{who}-{}-{i}", loaded.version)))
        .collect();
    match store
        .append("order-42", ExpectedVersion::Exact(loaded.version), batch)
        .await
    {
        Ok(appended) => {
            let mut state = loaded.state.clone();
            for (offset, event) in decided.iter().enumerate() {
                state = evolve(state, event);
                println!(
                    "{}",
                    narrator.detail(&format!(
                        "{who:<8} v{}  {:<44} → {}",
                        appended.first_version + offset as u64,
                        show(event),
                        describe(&state)
                    ))
                );
            }
            Ok(Ok(appended.version))
        }
        Err(StoreError::Append(event_sourcing_core::AppendError::Conflict(conflict))) => {
            println!(
                "{}",
                narrator.response(409, "Conflict", &format!("{who}: {conflict}"))
            );
            Ok(Err(conflict.current))
        }
        Err(error) => Err(error.into()),
    }
}

fn add(sku: &str, quantity: u32, unit_price_cents: u64) -> Command {
    Command::AddItem {
        sku: sku.into(),
        quantity,
        unit_price_cents,
    }
}

/// Runs the demo; `events` is the long stream's length.
pub async fn run(narrator: Narrator, events: u64) -> anyhow::Result<()> {
    let scratch =
        Scratch(std::env::temp_dir().join(format!("event-sourcing-demo-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)?;
    let store = Sqlite::open(&scratch.0.join("store.db"), Durability::Normal)?;

    println!(
        "{}",
        narrator.step("1. An order's life, as events (each line: version, event, state after it)")
    );
    let life = [
        Command::CreateOrder {
            order_id: "42".into(),
            customer: "ada".into(),
        },
        add("BOOK", 2, 1_500),
        add("PEN", 1, 250),
        Command::UpdateQuantity {
            sku: "BOOK".into(),
            quantity: 3,
        },
    ];
    for command in life {
        let loaded = load(&store, "order-42").await?;
        handle(&narrator, &store, "shop", &loaded, command)
            .await?
            .ok();
    }

    println!(
        "{}",
        narrator.step("2. Two clerks change the order at once")
    );
    let first = load(&store, "order-42").await?;
    let second = load(&store, "order-42").await?;
    println!(
        "{}",
        narrator.detail(&format!(
            "both clerks loaded version {} ({})",
            first.version,
            describe(&first.state)
        ))
    );
    handle(&narrator, &store, "clerk-1", &first, add("INK", 2, 400))
        .await?
        .ok();
    let remove_pen = Command::RemoveItem { sku: "PEN".into() };
    if let Err(current) = handle(&narrator, &store, "clerk-2", &second, remove_pen.clone()).await? {
        let reloaded = load(&store, "order-42").await?;
        println!(
            "{}",
            narrator.detail(&format!(
                "clerk-2 reloads version {current} ({}), decides again, retries",
                describe(&reloaded.state)
            ))
        );
        handle(&narrator, &store, "clerk-2", &reloaded, remove_pen)
            .await?
            .ok();
    }
    let now = load(&store, "order-42").await?;
    handle(&narrator, &store, "shop", &now, Command::PlaceOrder)
        .await?
        .ok();
    let refused = decide(&load(&store, "order-42").await?.state, add("GLUE", 1, 100));
    if let Err(rejection) = refused {
        println!(
            "{}",
            narrator.detail(&format!(
                "shop     AddItem GLUE after placing → refused: {rejection}"
            ))
        );
    }

    println!(
        "{}",
        narrator.step("3. Time travel: the order at version 3 and now")
    );
    let at_three = load_at(&store, "order-42", 3).await?;
    let now = load(&store, "order-42").await?;
    println!(
        "{}",
        narrator.detail(&format!("version 3   {}", describe(&at_three.state)))
    );
    println!(
        "{}",
        narrator.detail(&format!(
            "version {}   {}",
            now.version,
            describe(&now.state)
        ))
    );

    println!("{}", narrator.step("4. An old event, upcast on read"));
    let old = NewEvent {
        event_id: "legacy-2".into(),
        event_type: "QuantityUpdated".into(),
        schema: 1,
        data: json!({ "product": "BOOK", "qty": 5 }),
    };
    store
        .append(
            "order-7",
            ExpectedVersion::NoStream,
            vec![
                encode(
                    &Event::OrderCreated {
                        order_id: "7".into(),
                        customer: "bob".into(),
                    },
                    "legacy-0",
                ),
                encode(
                    &Event::ItemAdded {
                        sku: "BOOK".into(),
                        quantity: 1,
                        unit_price_cents: 1_500,
                    },
                    "legacy-1",
                ),
                old.clone(),
            ],
        )
        .await?;
    println!(
        "{}",
        narrator.detail(&format!("stored  QuantityUpdated schema 1  {}", old.data))
    );
    let upcast = decode(&old.event_type, old.schema, &old.data)?;
    println!(
        "{}",
        narrator.detail(&format!(
            "read as {}  (schema 2: sku, quantity)",
            show(&upcast)
        ))
    );
    println!(
        "{}",
        narrator.detail(&format!(
            "order-7 loads as {}",
            describe(&load(&store, "order-7").await?.state)
        ))
    );

    println!(
        "{}",
        narrator.step(&format!(
            "5. A stream of {events} events, loaded with and without a snapshot"
        ))
    );
    let big = Arc::new(store);
    let long = long_stream(events);
    let started = Instant::now();
    for (index, chunk) in long.chunks(1_000).enumerate() {
        let expected = if index == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact((index * 1_000) as u64)
        };
        big.append("order-long", expected, chunk.to_vec()).await?;
    }
    println!(
        "{}",
        narrator.detail(&format!(
            "appended {events} events in batches of 1000 in {} ms",
            started.elapsed().as_millis()
        ))
    );
    let started = Instant::now();
    let full = load(big.as_ref(), "order-long").await?;
    let full_ms = started.elapsed();
    let snapshot_at = full.version.saturating_sub(10);
    big.save_snapshot(
        "order-long",
        Snapshot::of(&load_at(big.as_ref(), "order-long", snapshot_at).await?),
    )
    .await?;
    let started = Instant::now();
    let fast = load(big.as_ref(), "order-long").await?;
    let fast_ms = started.elapsed();
    println!(
        "{}",
        narrator.detail(&format!(
            "without a snapshot: folded {} events in {} ms",
            full.version,
            full_ms.as_millis()
        ))
    );
    println!(
        "{}",
        narrator.detail(&format!(
            "with a snapshot at version {snapshot_at}: folded {} events in {} ms",
            fast.version - snapshot_at,
            fast_ms.as_millis()
        ))
    );
    println!(
        "{}",
        narrator.detail(&format!(
            "same state either way: {}",
            if fast == full { "yes" } else { "NO" }
        ))
    );

    println!(
        "{}",
        narrator.step("6. A writer killed mid-batch (SIGKILL), and the store afterwards")
    );
    crash(&narrator, &scratch.0.join("crash.db"))?;
    Ok(())
}

/// A valid stream of `events`: created, one item, then its quantity going 2, 3, 2, 3…
fn long_stream(events: u64) -> Vec<NewEvent> {
    let mut stream = vec![
        encode(
            &Event::OrderCreated {
                order_id: "long".into(),
                customer: "ada".into(),
            },
            "long-1",
        ),
        encode(
            &Event::ItemAdded {
                sku: "TEA".into(),
                quantity: 1,
                unit_price_cents: 300,
            },
            "long-2",
        ),
    ];
    for version in 3..=events.max(2) {
        let quantity = 2 + (version % 2) as u32;
        stream.push(encode(
            &Event::QuantityUpdated {
                sku: "TEA".into(),
                quantity,
            },
            format!("long-{version}"),
        ));
    }
    stream.truncate(events.max(1) as usize);
    stream
}

fn crash(narrator: &Narrator, path: &Path) -> anyhow::Result<()> {
    let mut writer = Process::new(std::env::current_exe()?)
        .args(["--role", "writer", "--data"])
        .arg(path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = writer
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("acked ") {
            acked.push(rest.split(' ').next().unwrap_or_default().to_owned());
            if acked.len() == 20 {
                writer.kill()?;
                break;
            }
        }
    }
    writer.wait()?;
    println!(
        "{}",
        narrator.detail(&format!(
            "the writer printed 20 acknowledged batches of {} events and was killed",
            lab_event_sourcing::writer::BATCH
        ))
    );
    let check = lab_event_sourcing::writer::inspect(path)?;
    let present: std::collections::HashSet<String> = {
        let connection = rusqlite::Connection::open(path)?;
        let mut query = connection.prepare("SELECT DISTINCT stream FROM events")?;
        query
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?
    };
    let lost = acked
        .iter()
        .filter(|stream| !present.contains(*stream))
        .count();
    println!("{}", narrator.detail("read straight from the SQLite file:"));
    println!(
        "{}",
        narrator.detail(&format!("  acknowledged batches missing: {lost}"))
    );
    println!(
        "{}",
        narrator.detail(&format!(
            "  torn batches (part of a batch written): {}",
            check.torn.len()
        ))
    );
    println!(
        "{}",
        narrator.detail(&format!(
            "  streams with a gap in their versions: {}",
            check.gapped.len()
        ))
    );
    println!(
        "{}",
        narrator.detail(&format!(
            "  $all: positions 1 to {} for {} events: {}",
            check.last_position,
            check.events,
            if check.last_position == check.events {
                "no gap"
            } else {
                "GAP"
            }
        ))
    );
    Ok(())
}
