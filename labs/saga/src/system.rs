//! All four services in one process: what the demo, the tests and the benchmark start.
//!
//! [`System::start`] opens the participants' databases, seeds them (money, stock, couriers),
//! and connects the order service to them in-process or over HTTP. [`Balances`] reads every
//! service's books so a test or the demo can check the one thing a saga promises: whatever
//! happened, nothing is held for an order that did not go through.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use lab_runtime::Running;
use saga_core::OrderStatus;
use serde::Serialize;

use crate::db::Storage;
use crate::inventory::{self, Inventory};
use crate::line::OrderLine;
use crate::order::{Narrator, OrderService};
use crate::participant::{self, Participant};
use crate::payment::{self, Payment};
use crate::shipping::{self, Shipping};
use crate::telemetry::{self, SagaTelemetry};
use crate::transport::Transport;

/// The starting books of a scenario.
#[derive(Clone, Debug)]
pub struct Seed {
    /// The customer's balance in cents.
    pub balance: i64,
    /// Units of the product on the shelf.
    pub stock: i64,
    /// Free courier slots.
    pub couriers: i64,
}

impl Default for Seed {
    fn default() -> Self {
        Seed {
            balance: 100_000,
            stock: 10,
            couriers: 10,
        }
    }
}

/// The customer and product every scenario uses.
pub const CUSTOMER: &str = "alice";
/// The product every scenario uses.
pub const SKU: &str = "rust-book";

/// One order of `quantity` units at 2 500 cents each.
pub fn order_line(order_id: &str, quantity: i64) -> OrderLine {
    OrderLine {
        order_id: order_id.to_owned(),
        customer: CUSTOMER.to_owned(),
        sku: SKU.to_owned(),
        quantity,
        amount: 2_500 * quantity,
    }
}

/// The four services.
#[derive(Clone, Debug)]
pub struct System {
    /// The order service (and orchestrator).
    pub order: Arc<OrderService>,
    /// The payment participant.
    pub payment: Arc<Participant<Payment>>,
    /// The inventory participant.
    pub inventory: Arc<Participant<Inventory>>,
    /// The shipping participant.
    pub shipping: Arc<Participant<Shipping>>,
    /// The services' tracing, when it is on.
    pub telemetry: Option<SagaTelemetry>,
}

/// Where the four databases live.
#[derive(Clone, Debug)]
pub enum Place {
    /// In memory.
    Memory,
    /// Files in a directory.
    Dir(std::path::PathBuf),
}

impl Place {
    fn storage(&self, service: &str) -> Storage {
        match self {
            Place::Memory => Storage::Memory,
            Place::Dir(dir) => Storage::file_in(dir, service),
        }
    }
}

/// Settings of [`System::start`].
#[derive(Clone, Default)]
pub struct Options {
    /// Write the saga log (false: the benchmark's baseline).
    pub non_durable: bool,
    /// Live narration of the orchestrator.
    pub narrator: Option<Narrator>,
    /// Extra tables in every database (the choreography's outbox, inbox, dead letters).
    pub extra_schema: String,
    /// The services' tracing (none: nothing is traced).
    pub telemetry: Option<SagaTelemetry>,
}

/// The participants of a [`System`], opened and seeded, and their (traced) routers.
struct Participants {
    payment: Arc<Participant<Payment>>,
    inventory: Arc<Participant<Inventory>>,
    shipping: Arc<Participant<Shipping>>,
    routers: HashMap<String, Router>,
}

impl Participants {
    fn open(place: &Place, seed: Option<&Seed>, options: &Options) -> anyhow::Result<Self> {
        let payment =
            Participant::<Payment>::open(&place.storage("payment"), &options.extra_schema)?;
        let inventory =
            Participant::<Inventory>::open(&place.storage("inventory"), &options.extra_schema)?;
        let shipping =
            Participant::<Shipping>::open(&place.storage("shipping"), &options.extra_schema)?;
        if let Some(seed) = seed {
            payment::open_account(&payment.db().lock(), CUSTOMER, seed.balance)?;
            inventory::stock(&inventory.db().lock(), SKU, seed.stock)?;
            shipping::set_free_slots(&shipping.db().lock(), seed.couriers)?;
        }
        let traced = |name: &str, router: Router| {
            let telemetry = options.telemetry.as_ref().and_then(|t| t.of(name));
            (
                name.to_owned(),
                telemetry::instrument(telemetry.as_ref(), router),
            )
        };
        let routers = HashMap::from([
            traced("payment", participant::router(Arc::clone(&payment))),
            traced("inventory", participant::router(Arc::clone(&inventory))),
            traced("shipping", participant::router(Arc::clone(&shipping))),
        ]);
        Ok(Participants {
            payment,
            inventory,
            shipping,
            routers,
        })
    }

    fn with_order(
        self,
        place: &Place,
        options: Options,
        transport: Transport,
    ) -> anyhow::Result<System> {
        let mut order =
            OrderService::open(&place.storage("order"), transport, &options.extra_schema)?;
        OrderService::configure(&mut order, !options.non_durable, options.narrator, None);
        let telemetry = options.telemetry.as_ref().and_then(|t| t.of("order"));
        OrderService::set_telemetry(&mut order, telemetry);
        Ok(System {
            order,
            payment: self.payment,
            inventory: self.inventory,
            shipping: self.shipping,
            telemetry: options.telemetry,
        })
    }
}

impl System {
    /// Opens (or reopens) the four services; seeds the books when `seed` is given. The order
    /// service calls the participants' routers in-process.
    pub fn start(place: &Place, seed: Option<&Seed>, options: Options) -> anyhow::Result<System> {
        let participants = Participants::open(place, seed, &options)?;
        let transport = Transport::InProcess(participants.routers.clone());
        participants.with_order(place, options, transport)
    }

    /// [`start`](Self::start), with each participant listening on a free loopback port and
    /// the order service calling them over HTTP. The servers stop when dropped.
    pub async fn start_over_http(
        place: &Place,
        seed: Option<&Seed>,
        options: Options,
    ) -> anyhow::Result<(System, Vec<Running>)> {
        let participants = Participants::open(place, seed, &options)?;
        let mut servers = Vec::new();
        let mut base_urls = HashMap::new();
        for (name, router) in &participants.routers {
            let server = lab_runtime::spawn(router.clone(), ([127, 0, 0, 1], 0).into()).await?;
            base_urls.insert(name.clone(), format!("http://{}", server.addr));
            servers.push(server);
        }
        let transport = Transport::Http {
            client: reqwest::Client::new(),
            base_urls,
            timeout: std::time::Duration::from_secs(5),
        };
        Ok((participants.with_order(place, options, transport)?, servers))
    }

    /// Everyone's books, and the order's status.
    pub fn balances(&self, order_id: &str) -> anyhow::Result<Balances> {
        let status = self
            .order
            .view(order_id)?
            .map_or(OrderStatus::Cancelled, |view| view.status);
        // One statement per lock: a guard lives to the end of its statement, and taking the
        // same (non-reentrant) lock twice in one statement would deadlock.
        let money_held = payment::held_for(&self.payment.db().lock(), order_id)?;
        let money_captured = payment::captured_for(&self.payment.db().lock(), order_id)?;
        let stock_reserved = inventory::reserved_for(&self.inventory.db().lock(), order_id)?;
        let shipping_scheduled = shipping::scheduled_for(&self.shipping.db().lock(), order_id)?;
        Ok(Balances {
            order_status: status,
            money_held,
            money_captured,
            stock_reserved,
            shipping_scheduled,
            payment: self.payment.holdings(),
            inventory: self.inventory.holdings(),
            shipping: self.shipping.holdings(),
        })
    }
}

/// What every service holds for one order, and in total.
#[derive(Clone, Debug, Serialize)]
pub struct Balances {
    /// The order's status.
    pub order_status: OrderStatus,
    /// Cents held by payment for this order.
    pub money_held: i64,
    /// Cents captured by payment for this order (taken for good after the pivot).
    pub money_captured: i64,
    /// Units reserved by inventory for this order.
    pub stock_reserved: i64,
    /// Whether shipping has a delivery scheduled for it.
    pub shipping_scheduled: bool,
    /// Payment's totals (balance, held, and captured once something was).
    pub payment: serde_json::Value,
    /// Inventory's totals (available, reserved).
    pub inventory: serde_json::Value,
    /// Shipping's totals (free slots, scheduled).
    pub shipping: serde_json::Value,
}

impl Balances {
    // ANCHOR: consistent
    /// The saga's promise: an approved order has its money captured (none of it merely
    /// held: both styles capture after the pivot, before they approve), its stock and its
    /// courier; any other ended order holds nothing anywhere.
    pub fn is_consistent(&self) -> bool {
        match self.order_status {
            OrderStatus::Approved => {
                self.money_held == 0
                    && self.money_captured > 0
                    && self.stock_reserved > 0
                    && self.shipping_scheduled
            }
            OrderStatus::Cancelled => {
                self.money_held == 0
                    && self.money_captured == 0
                    && self.stock_reserved == 0
                    && !self.shipping_scheduled
            }
            OrderStatus::Pending | OrderStatus::NeedsAttention => false,
        }
    }
    // ANCHOR_END: consistent
}

/// The id of the deployment whose files are in `dir`: made up the first time, then read
/// back, so every process on the same data directory (and every restart) uses the same
/// subjects and consumers on NATS, and another directory never sees them.
pub fn deployment_id(dir: &Path) -> std::io::Result<String> {
    use std::hash::{BuildHasher, Hasher};
    let path = dir.join("deployment-id");
    if let Ok(id) = std::fs::read_to_string(&path)
        && !id.trim().is_empty()
    {
        return Ok(id.trim().to_owned());
    }
    std::fs::create_dir_all(dir)?;
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    let id = format!("d{:016x}", hasher.finish());
    // Written aside and linked into place: two processes starting together agree on one id.
    let aside = dir.join(format!("deployment-id.{}", std::process::id()));
    std::fs::write(&aside, &id)?;
    let linked = std::fs::hard_link(&aside, &path);
    let _ = std::fs::remove_file(&aside);
    match linked {
        Ok(()) => Ok(id),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_owned())
        }
        Err(error) => Err(error),
    }
}

/// A fresh directory for file databases (removed first if it exists).
pub fn fresh_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)
}
