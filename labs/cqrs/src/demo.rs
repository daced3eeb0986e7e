//! The narrated demo: every piece in one process on loopback, over the in-process bus (or
//! JetStream when `NATS_URL` is set). A burst of commands with a live lag graph per
//! projection; a read right after a write, without and with the position token; the
//! projections stopped mid-burst and restarted (nothing lost, nothing counted twice, read
//! straight from the view files); a rebuild while reads continue; and the gap case of the
//! core, two writers committing 41 and 42 with 42 visible first, on a simulated clock.

use std::path::Path;
use std::time::Duration;

use cqrs_core::projector::{Input, Output};
use cqrs_core::{Fact, Machine, Millis, Positioned, Projector, Summary, View};
use lab_runtime::Narrator;
use lab_runtime::serve::Running;
use serde_json::{Value, json};

use crate::projection::{Admin, Settings};
use crate::read::lag;
use crate::system::{self, Pieces, Started, view_path};
use crate::viewdb;
use crate::write::TOKEN_HEADER;

/// Orders in the burst.
pub const BURST: usize = 120;

struct Lab {
    started: Started,
    server: Running,
    base: String,
}

async fn start(dir: &Path, nats: Option<&str>, batch: usize) -> anyhow::Result<Lab> {
    let settings = Settings {
        batch,
        ..Settings::default()
    };
    let started = system::start(dir, Pieces::ALL, nats, settings).await?;
    let listener = lab_runtime::serve::bind_loopback(0).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = lab_runtime::serve::spawn_on(listener, started.router.clone())?;
    Ok(Lab {
        started,
        server,
        base,
    })
}

/// The widest a lag bar is drawn: `scale` positions or more fill it, and a wider lag is clipped,
/// so the columns after it stay in place.
const BAR_WIDTH: u64 = 20;

/// `value` out of `scale` as a bar of at most [`BAR_WIDTH`] blocks.
fn bar(value: u64, scale: u64) -> String {
    let width = (value * BAR_WIDTH).div_ceil(scale.max(1)).min(BAR_WIDTH) as usize;
    "█".repeat(width)
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> anyhow::Result<u64> {
    let response = client.post(&url).json(&body).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    let token = response
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse().ok())
        .unwrap_or(0);
    Ok(token)
}

/// Sends the commands of order `n`: create, add two lines, place.
async fn one_order(client: &reqwest::Client, base: &str, n: usize) -> anyhow::Result<u64> {
    let id = format!("o{n}");
    let url = format!("{base}/orders/{id}");
    let customer = format!("c{}", n % 3);
    post(
        client,
        url.clone(),
        json!({ "type": "CreateOrder", "order_id": id, "customer": customer }),
    )
    .await?;
    post(
        client,
        url.clone(),
        json!({ "type": "AddItem", "sku": "mug", "quantity": 1 + n % 3, "unit_price_cents": 450 }),
    )
    .await?;
    post(
        client,
        url.clone(),
        json!({ "type": "AddItem", "sku": "tea", "quantity": 1, "unit_price_cents": 300 }),
    )
    .await?;
    post(client, url, json!({ "type": "PlaceOrder" })).await
}

async fn burst(base: String, from: usize, to: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (client, base) = (client.clone(), base.clone());
        workers.push(tokio::spawn(async move {
            for n in (from..to).filter(|n| n % 4 == worker) {
                one_order(&client, &base, n).await?;
            }
            anyhow::Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    Ok(())
}

/// Every customer's placed orders, read straight from the summary's file.
fn placed_in_file(dir: &Path) -> anyhow::Result<u64> {
    let connection = viewdb::open(&view_path(dir, Summary::NAME))?;
    let (view, _) = viewdb::load::<Summary>(&connection, viewdb::active(&connection)?)?;
    Ok(view.customers.values().map(|summary| summary.placed).sum())
}

// ANCHOR: run
/// Runs the demo, narrated through `narrator`; `pace` scales its pauses (0: none).
pub async fn run(narrator: Narrator, nats: Option<&str>, pace: f64) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("cqrs-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = scenario(&narrator, &dir, nats, pace).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}
// ANCHOR_END: run

async fn pause(pace: f64, ms: u64) {
    if pace > 0.0 {
        tokio::time::sleep(Duration::from_millis((ms as f64 * pace) as u64)).await;
    }
}

async fn scenario(
    narrator: &Narrator,
    dir: &Path,
    nats: Option<&str>,
    pace: f64,
) -> anyhow::Result<()> {
    let lab = start(dir, nats, 1).await?;
    let client = reqwest::Client::new();
    println!(
        "{}",
        narrator.step(&format!(
            "Write side, {} and two views, each in its own SQLite file",
            lab.started.transport
        ))
    );
    for (id, name) in [("c0", "Ada"), ("c1", "Grace"), ("c2", "Edsger")] {
        post(
            &client,
            format!("{}/customers/{id}", lab.base),
            json!({ "name": name }),
        )
        .await?;
    }
    for (sku, name) in [("mug", "Blue mug"), ("tea", "Green tea")] {
        post(
            &client,
            format!("{}/products/{sku}", lab.base),
            json!({ "name": name }),
        )
        .await?;
    }
    println!(
        "{}",
        narrator.detail(
            "three customers and two products registered: the names the order page copies in"
        )
    );

    println!(
        "{}",
        narrator.step(&format!(
            "A burst of {BURST} orders (4 commands each), one transaction per event: the lag, live"
        ))
    );
    let sender = tokio::spawn(burst(lab.base.clone(), 0, BURST));
    let slow = lab
        .started
        .details
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no projection"))?;
    let stall = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let held = slow.pause().await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        drop(held);
    });
    println!(
        "{}",
        narrator
            .detail("at 150 ms the order-details projector stalls for 250 ms (a slow disk, say)")
    );
    let mut peak = [0u64; 2];
    let mut rows = 0;
    while !sender.is_finished() || rows == 0 {
        pause(1.0, 40).await;
        let head = crate::read::store_head(&dir.join("store.db"))
            .map_err(|p| anyhow::anyhow!(p.detail))?;
        let mut line = format!("head {head:>4} ");
        for (index, name) in system::VIEWS.iter().enumerate() {
            let lag = lag(&view_path(dir, name), head)?;
            peak[index] = peak[index].max(lag.positions);
            line.push_str(&format!(
                " {name:<16} {:>4} pos {:>4} ms {:<20}",
                lag.positions,
                lag.millis,
                bar(lag.positions, 120)
            ));
        }
        if rows < 12 {
            println!("{}", narrator.detail(&line));
        }
        rows += 1;
    }
    sender.await??;
    stall.await?;
    let head =
        crate::read::store_head(&dir.join("store.db")).map_err(|p| anyhow::anyhow!(p.detail))?;
    wait_for(&lab, head).await;
    println!(
        "{}",
        narrator.detail(&format!(
            "caught up at {head}; the lag peaked at {} and {} positions",
            peak[0], peak[1]
        ))
    );

    pause(pace, 800).await;
    println!(
        "{}",
        narrator
            .step("Read your writes: a write, then a read at once, without the token and with it")
    );
    let details = lab
        .started
        .details
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no projection"))?;
    let held = details.pause().await;
    let token = one_order(&client, &lab.base, BURST).await?;
    println!(
        "{}",
        narrator.request(
            "POST",
            &format!("/orders/o{BURST}"),
            "create, add, add, place (the projector is slow right now)"
        )
    );
    println!("{}", narrator.detail(&format!("position-token: {token}")));
    let without = client
        .get(format!("{}/orders/o{BURST}", lab.base))
        .send()
        .await?;
    println!(
        "{}",
        narrator.response(
            without.status().as_u16(),
            "without the token: the view has not seen the order yet",
            &format!("read-freshness: {}", header(&without, "read-freshness"))
        )
    );
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(held);
    });
    let with = client
        .get(format!("{}/orders/o{BURST}?wait_ms=3000", lab.base))
        .header(TOKEN_HEADER, token)
        .send()
        .await?;
    let status = with.status().as_u16();
    let freshness = header(&with, "read-freshness");
    let body: Value = with.json().await?;
    println!(
        "{}",
        narrator.response(
            status,
            "with the token: waited until the view passed it",
            &format!(
                "read-freshness: {freshness}, customer {}, total {} cents",
                body["row"]["customer_name"], body["row"]["total_cents"]
            )
        )
    );
    release.await?;

    pause(pace, 800).await;
    println!(
        "{}",
        narrator.step("The projections stopped mid-burst, then restarted on the same files")
    );
    let sender = tokio::spawn(burst(lab.base.clone(), BURST + 1, 2 * BURST));
    wait_until_head_passes(dir, head + 200).await?;
    let at_stop = details.checkpoint();
    drop(details);
    let Lab {
        started, server, ..
    } = lab;
    drop(started);
    println!(
        "{}",
        narrator.detail(&format!(
            "projections aborted at order-details checkpoint {at_stop}, writes still coming"
        ))
    );
    let _ = sender.await;
    server.stop().await;
    let lab = start(dir, nats, 256).await?;
    let head =
        crate::read::store_head(&dir.join("store.db")).map_err(|p| anyhow::anyhow!(p.detail))?;
    wait_for(&lab, head).await;
    let orders = placed_count(dir)?;
    let placed = placed_in_file(dir)?;
    println!("{}", narrator.detail(&format!("restarted: caught up at {head}; the store has {orders} placed orders, the summary file counts {placed}: nothing lost, nothing twice")));

    pause(pace, 800).await;
    println!(
        "{}",
        narrator.step("A rebuild of customer-summary from position zero while reads continue")
    );
    let admin = format!("{}/admin/projections/{}", lab.base, Summary::NAME);
    let started: Value = client
        .post(format!("{admin}/rebuild"))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "{}",
        narrator.response(202, "rebuild started", &format!("{}", started["phase"]))
    );
    let mut shown = None;
    for _ in 0..5_000 {
        let status: Value = client.get(&admin).send().await?.json().await?;
        let read = client
            .get(format!("{}/customers/c1/summary", lab.base))
            .send()
            .await?;
        let phase = status["phase"].as_str().unwrap_or("?").to_owned();
        if phase == "idle" {
            println!(
                "{}",
                narrator.detail(&format!(
                    "done: generation {} serves; equal to the live view: {}",
                    status["serving"], status["last_equal_to_live"]
                ))
            );
            break;
        }
        let progress = (phase.clone(), status["at"].clone());
        if shown.as_ref() != Some(&progress) {
            println!(
                "{}",
                narrator.detail(&format!(
                    "{phase:<12} at {:>5} of {:>5}; a read meanwhile: {}",
                    status["at"],
                    status["target"],
                    read.status()
                ))
            );
            shown = Some(progress);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    pause(pace, 800).await;
    println!(
        "{}",
        narrator.step("Two writers commit 41 and 42; 42 becomes visible first (simulated clock)")
    );
    gap_story(narrator);
    drop(lab);
    Ok(())
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

fn placed_count(dir: &Path) -> anyhow::Result<u64> {
    let connection = rusqlite::Connection::open(dir.join("store.db"))?;
    Ok(connection.query_row(
        "SELECT COUNT(*) FROM events WHERE event_type = 'OrderPlaced'",
        [],
        |row| row.get(0),
    )?)
}

async fn wait_until_head_passes(dir: &Path, position: u64) -> anyhow::Result<()> {
    for _ in 0..2_000 {
        let head = crate::read::store_head(&dir.join("store.db"))
            .map_err(|p| anyhow::anyhow!(p.detail))?;
        if head >= position {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    anyhow::bail!("the store did not reach {position}")
}

async fn wait_for(lab: &Lab, head: u64) {
    for projection in [
        lab.started.details.as_ref().map(|p| p.checkpoints()),
        lab.started.summary.as_ref().map(|p| p.checkpoints()),
    ]
    .into_iter()
    .flatten()
    {
        let mut checkpoints = projection;
        let _ = tokio::time::timeout(
            Duration::from_secs(30),
            checkpoints.wait_for(|at| *at >= head),
        )
        .await;
    }
}

/// The core's gap case, narrated: 42 is held until 41 comes; then 44 is held until its gap is
/// declared rolled back.
pub fn gap_story(narrator: &Narrator) {
    let other = |position| Positioned {
        position,
        fact: Fact::Other,
    };
    let mut projector = Projector::new(Summary::default(), 40, Millis(500));
    let steps: [(Millis, &str, Option<Positioned>); 5] = [
        (
            Millis(0),
            "42 delivered (writer B committed second, but first to be seen)",
            Some(other(42)),
        ),
        (
            Millis(30),
            "41 delivered (writer A's slower commit)",
            Some(other(41)),
        ),
        (Millis(100), "44 delivered; 43 is missing", Some(other(44))),
        (Millis(400), "the clock reaches 400 ms", None),
        (Millis(600), "the clock reaches 600 ms", None),
    ];
    for (now, what, event) in steps {
        match event {
            Some(event) => {
                let Ok(()) = projector.handle_input(now, Input::Deliver(event));
            }
            None => projector.handle_timeout(now),
        }
        let mut line = what.to_owned();
        while let Some(output) = projector.poll_output() {
            line.push_str(&match output {
                Output::Applied { position, .. } => format!("  → applied {position}"),
                Output::Redelivered { position } => format!("  → {position} seen before"),
                Output::GapDeclared { from, to } => {
                    format!("  → {from}..={to} declared rolled back")
                }
            });
        }
        if projector.held() > 0 {
            line.push_str(&format!(
                "  (holding {}, checkpoint {})",
                projector.held(),
                projector.checkpoint()
            ));
        }
        println!("{}", narrator.at(now, "projection", &line));
    }
    println!(
        "{}",
        narrator.detail(
            "a projection that took \"everything after 40\" would have skipped 41 for ever"
        )
    );
}
