//! The CQRS lab's benchmark, one run on one machine (release build, `synchronous = NORMAL`,
//! WAL, on the temporary directory's disk):
//!
//! 1. projection throughput, in events per second, of the order-details view: one SQLite
//!    transaction per event against batches of 256 (rows and checkpoint in each transaction);
//! 2. end-to-end lag at a fixed command rate: commands sent over HTTP to the lab in one
//!    process, each timed from its response (carrying the position token) to the moment the
//!    order-details checkpoint passes that token; p50 and p99;
//! 3. at `CQRS_BENCH_EVENTS` events (default 1,000,000), the read latency of one order page
//!    from the denormalised view against the same answer computed by a join over a normalised
//!    write model (orders, lines, customers, products, indexed), and against what a reader
//!    does without a view: the order's, customer's and products' streams loaded from the event
//!    sourcing lab's SQLite store and folded ([`store`]); p50 and p99 over random orders;
//! 4. the peer, `cqrs-es`'s `GenericQuery` updated inline after each commit, on the same
//!    events over SQLite ([`peer`]): events/s applied and the same read's latency.
//!
//! Run with `cargo xtask bench cqrs`. `CQRS_BENCH_RATE` (default 1000) sets the command rate
//! and `CQRS_BENCH_SECONDS` (default 5) how long it is held.

#![allow(clippy::unwrap_used)]

#[path = "support/peer.rs"]
mod peer;
#[path = "support/store.rs"]
mod store;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cqrs_core::projector::{Input, Output};
use cqrs_core::{
    Catalog, Details, Fact, Machine, Millis, OrderDetails, Positioned, Projector, RowKey, View,
};
use event_sourcing_core::Event;
use lab_cqrs::projection::{Admin, Settings};
use lab_cqrs::system::{self, Pieces};
use lab_cqrs::viewdb::{self, Checkpoint};
use rusqlite::{Connection, params};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cqrs-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const CUSTOMERS: u64 = 1_000;
const PRODUCTS: u64 = 100;

/// The workload's facts in `$all` order: customers, products, then orders of four events each
/// (created, two lines, placed).
fn facts(events: u64) -> Vec<Positioned> {
    let mut facts = Vec::with_capacity(events as usize);
    for c in 0..CUSTOMERS {
        facts.push(Fact::Catalog(Catalog::CustomerRegistered {
            customer_id: format!("c{c}"),
            name: format!("Customer {c}"),
        }));
    }
    for p in 0..PRODUCTS {
        facts.push(Fact::Catalog(Catalog::ProductListed {
            sku: format!("p{p}"),
            name: format!("Product {p}"),
        }));
    }
    let mut n = 0u64;
    while (facts.len() as u64) < events {
        let order_id = format!("o{n}");
        let order = |event| Fact::Order {
            order_id: order_id.clone(),
            event,
        };
        facts.push(order(Event::OrderCreated {
            order_id: order_id.clone(),
            customer: format!("c{}", n % CUSTOMERS),
        }));
        facts.push(order(Event::ItemAdded {
            sku: format!("p{}", n % PRODUCTS),
            quantity: 2,
            unit_price_cents: 450,
        }));
        facts.push(order(Event::ItemAdded {
            sku: format!("p{}", (n + 1) % PRODUCTS),
            quantity: 1,
            unit_price_cents: 300,
        }));
        facts.push(order(Event::OrderPlaced { total_cents: 1_200 }));
        n += 1;
    }
    facts.truncate(events as usize);
    facts
        .into_iter()
        .enumerate()
        .map(|(i, fact)| Positioned {
            position: i as u64 + 1,
            fact,
        })
        .collect()
}

/// Projects `facts` into the view file at `path`, `batch` events per transaction; events/s.
fn project(path: &Path, facts: &[Positioned], batch: usize) -> f64 {
    let mut connection = viewdb::open(path).unwrap();
    let mut projector = Projector::new(Details::default(), 0, Millis(5_000));
    let started = Instant::now();
    for chunk in facts.chunks(batch) {
        let mut rows = BTreeSet::new();
        for event in chunk {
            projector
                .handle_input(Millis::ZERO, Input::Deliver(event.clone()))
                .unwrap();
            while let Some(output) = projector.poll_output() {
                if let Output::Applied { rows: changed, .. } = output {
                    rows.extend(changed);
                }
            }
        }
        let rows: Vec<(RowKey, Option<serde_json::Value>)> = rows
            .into_iter()
            .map(|key| {
                let row = projector.view().row(&key);
                (key, row)
            })
            .collect();
        let checkpoint = Checkpoint {
            position: projector.checkpoint(),
            delay_ms: 0,
            committed_ms: 0,
            applied: projector.checkpoint(),
        };
        viewdb::commit(&mut connection, 1, &rows, checkpoint).unwrap();
    }
    facts.len() as f64 / started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn normalised(path: &Path, facts: &[Positioned]) -> Connection {
    let mut connection = Connection::open(path).unwrap();
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .unwrap();
    connection
        .pragma_update(None, "synchronous", "NORMAL")
        .unwrap();
    connection.execute_batch(
        "CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE orders (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL);
         CREATE TABLE order_lines (order_id TEXT NOT NULL, sku TEXT NOT NULL, quantity INTEGER NOT NULL,
             unit_price_cents INTEGER NOT NULL, PRIMARY KEY (order_id, sku));",
    ).unwrap();
    let tx = connection.transaction().unwrap();
    for event in facts {
        match &event.fact {
            Fact::Catalog(Catalog::CustomerRegistered { customer_id, name }) => {
                tx.execute(
                    "INSERT INTO customers VALUES (?1, ?2)",
                    params![customer_id, name],
                )
                .unwrap();
            }
            Fact::Catalog(Catalog::ProductListed { sku, name }) => {
                tx.execute("INSERT INTO products VALUES (?1, ?2)", params![sku, name])
                    .unwrap();
            }
            Fact::Order {
                order_id,
                event: Event::OrderCreated { customer, .. },
            } => {
                tx.execute(
                    "INSERT INTO orders VALUES (?1, ?2, 'open')",
                    params![order_id, customer],
                )
                .unwrap();
            }
            Fact::Order {
                order_id,
                event:
                    Event::ItemAdded {
                        sku,
                        quantity,
                        unit_price_cents,
                    },
            } => {
                tx.execute(
                    "INSERT INTO order_lines VALUES (?1, ?2, ?3, ?4)",
                    params![order_id, sku, quantity, unit_price_cents],
                )
                .unwrap();
            }
            Fact::Order {
                order_id,
                event: Event::OrderPlaced { .. },
            } => {
                tx.execute(
                    "UPDATE orders SET status = 'placed' WHERE id = ?1",
                    params![order_id],
                )
                .unwrap();
            }
            _ => {}
        }
    }
    tx.commit().unwrap();
    connection
}

/// The order page by the join: the same fields the view's row holds.
fn by_join(connection: &Connection, id: &str) -> serde_json::Value {
    let mut query = connection
        .prepare_cached(
            "SELECT o.customer_id, c.name, o.status, l.sku, p.name, l.quantity, l.unit_price_cents
         FROM orders o JOIN customers c ON c.id = o.customer_id
         JOIN order_lines l ON l.order_id = o.id JOIN products p ON p.sku = l.sku
         WHERE o.id = ?1",
        )
        .unwrap();
    let mut lines = serde_json::Map::new();
    let mut head = None;
    let mut total = 0u64;
    let rows = query
        .query_map([id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, u64>(5)?,
                row.get::<_, u64>(6)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (customer, name, status, sku, product, quantity, price) = row.unwrap();
        total += quantity * price;
        lines.insert(sku, serde_json::json!({ "product_name": product, "quantity": quantity, "unit_price_cents": price }));
        head = Some((customer, name, status));
    }
    let (customer, name, status) = head.unwrap();
    serde_json::json!({ "order_id": id, "customer_id": customer, "customer_name": name, "lines": lines, "status": status, "total_cents": total })
}

fn read_latency(label: &str, orders: u64, mut read: impl FnMut(&str)) -> (Duration, Duration) {
    let mut rng = fastrand::Rng::with_seed(18);
    let mut times = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let id = format!("o{}", rng.u64(0..orders));
        let started = Instant::now();
        read(&id);
        times.push(started.elapsed());
    }
    times.sort();
    let (p50, p99) = (percentile(&times, 0.50), percentile(&times, 0.99));
    println!(
        "  {label:<36} p50 {:>7.1} µs   p99 {:>7.1} µs",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
    (p50, p99)
}

async fn lag(rate: u64, seconds: u64) {
    let dir = scratch("lag");
    let started = system::start(&dir, Pieces::ALL, None, Settings::default())
        .await
        .unwrap();
    let listener = lab_runtime::serve::bind_loopback(0).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let _server = lab_runtime::serve::spawn_on(listener, started.router.clone()).unwrap();
    let details = started.details.clone().unwrap();
    let client = reqwest::Client::new();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut waits = Vec::new();
    for n in 0..rate * seconds {
        ticker.tick().await;
        let (client, base, mut checkpoints) = (client.clone(), base.clone(), details.checkpoints());
        waits.push(tokio::spawn(async move {
            let body = serde_json::json!({ "type": "CreateOrder", "order_id": format!("o{n}"), "customer": "c1" });
            let response = client.post(format!("{base}/orders/o{n}")).json(&body).send().await.unwrap();
            let answered = Instant::now();
            let token: u64 = response.headers()["position-token"].to_str().unwrap().parse().unwrap();
            checkpoints.wait_for(|at| *at >= token).await.unwrap();
            answered.elapsed()
        }));
    }
    let mut lags = Vec::new();
    for wait in waits {
        lags.push(wait.await.unwrap());
    }
    lags.sort();
    println!(
        "  {} commands at {rate}/s: lag p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lags.len(),
        percentile(&lags, 0.50).as_secs_f64() * 1e3,
        percentile(&lags, 0.99).as_secs_f64() * 1e3,
        lags.last().unwrap().as_secs_f64() * 1e3
    );
    drop(started);
    let _ = std::fs::remove_dir_all(&dir);
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let events = env("CQRS_BENCH_EVENTS", 1_000_000);
    println!("projection throughput (order-details, rows and checkpoint per transaction)");
    let dir = scratch("throughput");
    let single = facts(20_000);
    let per_event = project(&dir.join("one.db"), &single, 1);
    println!("  one transaction per event   {per_event:>10.0} events/s   (20,000 events)");
    let all = facts(events);
    let batched = project(&dir.join("batched.db"), &all, 256);
    println!("  batches of 256              {batched:>10.0} events/s   ({events} events)");

    println!(
        "end-to-end lag (HTTP command → order-details checkpoint past its token, in-process bus)"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(lag(
        env("CQRS_BENCH_RATE", 1_000),
        env("CQRS_BENCH_SECONDS", 5),
    ));

    let orders = (events - CUSTOMERS - PRODUCTS) / 4;
    println!("read latency of one order page at {events} events ({orders} orders)");
    let view = Connection::open(dir.join("batched.db")).unwrap();
    let (view_p50, _) = read_latency("denormalised view (one row)", orders, |id| {
        let row = viewdb::row(&view, "orders", id).unwrap().unwrap();
        std::hint::black_box(row);
    });
    let normal = normalised(&dir.join("normalised.db"), &all);
    let (join_p50, _) = read_latency("join over the normalised model", orders, |id| {
        std::hint::black_box(by_join(&normal, id));
    });
    let events_file = store::fill(&dir.join("events.db"), &all);
    let (fold_p50, _) = read_latency("streams folded from the event store", orders, |id| {
        std::hint::black_box(store::order_page(&events_file, id));
    });

    println!("the peer: cqrs-es GenericQuery, updated inline after each commit (SQLite views)");
    let peer_runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let query = peer::ShopQuery::new(std::sync::Arc::new(peer::SqliteViews::open(
        &dir.join("peer.db"),
    )));
    let peer_rate = peer_runtime.block_on(peer::apply(&query, &all));
    println!("  one commit per event        {peer_rate:>10.0} events/s   ({events} events)");
    for n in [0, orders / 2, orders - 1] {
        let id = format!("o{n}");
        let row: OrderDetails =
            serde_json::from_value(viewdb::row(&view, "orders", &id).unwrap().unwrap()).unwrap();
        assert_eq!(
            row,
            store::order_page(&events_file, &id),
            "the store's fold of {id}"
        );
        let peer_row = peer_runtime.block_on(peer::order_page(&query, &id));
        assert_eq!(row, peer_row, "the peer's page of {id}");
    }
    let (peer_p50, _) = read_latency("cqrs-es views (order, then names)", orders, |id| {
        std::hint::black_box(peer_runtime.block_on(peer::order_page(&query, id)));
    });
    println!(
        "  the view is {:.1}× faster at p50 than the join, {:.1}× than the store's fold, {:.1}× than the peer",
        join_p50.as_secs_f64() / view_p50.as_secs_f64(),
        fold_p50.as_secs_f64() / view_p50.as_secs_f64(),
        peer_p50.as_secs_f64() / view_p50.as_secs_f64()
    );
    println!(
        "  projection against the peer: one transaction per event {:.2}×, batched {:.1}×",
        per_event / peer_rate,
        batched / peer_rate
    );
    let _ = std::fs::remove_dir_all(&dir);
}
