//! The demo: `cargo run -p lab-gateway`.
//!
//! With no arguments it starts the guide's four services and the gateway on 127.0.0.1,
//! issues a demo token, and walks through what a gateway is for: a routed call, an
//! aggregated call, a call without a token (401), a burst over the rate limit (429), and a
//! backend killed mid-run (502, then 503 from its open breaker). Each step prints the
//! request and the response. Then it prints a `curl` line and keeps serving until Ctrl-C,
//! so you can try the gateway yourself.
//!
//! `--role` starts one piece alone, to run them in separate terminals and kill them:
//! `--role user --port 4001`, ..., `--role gateway --config labs/gateway/gateway.toml`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lab_gateway::config::DEMO_SECRET;
use lab_gateway::services::{self, order_router, payment_router, product_router, user_router};
use lab_gateway::tokens::{TokenClaims, sign_hs256};
use lab_gateway::{Config, Gateway, serve};
use lab_runtime::Narrator;
use lab_runtime::cli::RoleArgs;
use lab_runtime::palette::Palette;
use lab_runtime::serve::{bind_loopback, ctrl_c};
use tokio::net::TcpListener;

/// A proxy allocates a little for every request (header maps, buffers, futures); mimalloc's
/// per-thread free lists make that cheaper than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The API gateway lab.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// `--role` (the demo, or one piece of it) and `--port` (0: any free port; the demo's
    /// gateway uses it too).
    #[command(flatten)]
    run: RoleArgs<Role>,
    /// The gateway's TOML configuration (for `--role gateway`).
    #[arg(
        long,
        default_value = "labs/gateway/gateway.toml",
        env = "GATEWAY_CONFIG"
    )]
    config: std::path::PathBuf,
    /// Exit after the walkthrough instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
    /// Runtime worker threads (the benchmark runs every proxy on one).
    #[arg(long, env = "GATEWAY_WORKERS")]
    workers: Option<usize>,
}

/// What the binary runs: the whole scripted demo, or one piece of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum Role {
    #[default]
    Demo,
    Gateway,
    User,
    Order,
    Product,
    Payment,
}

impl lab_runtime::cli::Role for Role {}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut runtime = match args.workers {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(workers) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(workers.max(1));
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    runtime.enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    // The walkthrough prints its own story; a single role prints the access log.
    let role = args.run.role();
    let default_filter = if role == Role::Demo {
        // The walkthrough shows the 502 itself; the log line with the address would repeat it.
        "warn,lab_gateway::upstream=error"
    } else {
        "warn,access=info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_ansi(Palette::detect_stderr().color)
        .init();
    let service = match role {
        Role::Demo => return demo(args).await,
        Role::Gateway => {
            let text = std::fs::read_to_string(&args.config)
                .with_context(|| format!("reading {}", args.config.display()))?;
            let mut config = Config::from_toml(&text)?;
            if args.run.port_given() {
                config.listen.set_port(args.run.port());
            }
            let listener = TcpListener::bind(config.listen).await.with_context(|| {
                format!(
                    "cannot listen on {}: free it, or choose another port with --port \
                     or another address with `listen` in {}",
                    config.listen,
                    args.config.display()
                )
            })?;
            let gateway = Arc::new(Gateway::new(config)?.start_tracing().await?);
            if let Some(tracing) = &gateway.config.tracing {
                println!(
                    "tracing to {} as {}",
                    tracing.collector, tracing.service_name
                );
            }
            println!("gateway listening on http://{}", listener.local_addr()?);
            serve(listener, Arc::clone(&gateway), ctrl_c()).await?;
            // The last spans go out before the process ends.
            if let Some(telemetry) = gateway.telemetry() {
                telemetry.shutdown().await?;
            }
            return Ok(());
        }
        Role::User => user_router(),
        Role::Order => order_router(),
        Role::Product => product_router(),
        Role::Payment => payment_router(),
    };
    let listener = bind_loopback(args.run.port()).await?;
    println!(
        "{role:?} service listening on http://{}",
        listener.local_addr()?
    );
    lab_runtime::serve::serve(listener, service, ctrl_c()).await?;
    Ok(())
}

type DemoClient = Client<HttpConnector, Full<Bytes>>;

/// Sends one request and prints it with its response.
async fn show(
    narrator: &Narrator,
    client: &DemoClient,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> anyhow::Result<u16> {
    let mut request = http::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(Full::from(body.unwrap_or_default().to_owned()))?;
    let path = request
        .uri()
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    let auth = match token {
        Some(token) => format!("Authorization: Bearer {}…", &token[..token.len().min(16)]),
        None => "(no token)".to_owned(),
    };
    println!("{}", narrator.request(method, &path, &auth));
    let response = client.request(request).await?;
    let status = response.status();
    let mut interesting = Vec::new();
    for name in ["retry-after", "ratelimit-remaining", "via"] {
        if let Some(value) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
            interesting.push(format!("{name}: {value}"));
        }
    }
    let body = response.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&body);
    let shown: String = text.chars().take(300).collect();
    println!(
        "{}",
        narrator.response(
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            &interesting.join("  ")
        )
    );
    println!("{}", narrator.detail(&shown));
    Ok(status.as_u16())
}

// ANCHOR: demo
async fn demo(args: Args) -> anyhow::Result<()> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let users = services::spawn(user_router(), any).await?;
    let orders = services::spawn(order_router(), any).await?;
    let products = services::spawn(product_router(), any).await?;
    let payments = services::spawn(payment_router(), any).await?;
    let config = Config::demo(users.addr, orders.addr, products.addr, payments.addr);
    let gateway = Arc::new(Gateway::new(config)?);
    let listener = bind_loopback(args.run.port()).await?;
    let gateway_addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, Arc::clone(&gateway), async move {
        let _ = stopped.await;
    }));
    let narrator = Narrator::detect();
    let palette = narrator.palette();
    let step = |title: &str| println!("{}", narrator.step(title));
    println!("{}", palette.strong("API gateway lab"));
    println!(
        "services: user {}  order {}  product {}  payment {}\ngateway:  http://{gateway_addr}",
        users.addr, orders.addr, products.addr, payments.addr
    );

    let issue = |sub: &str| {
        sign_hs256(
            &TokenClaims::new(sub, "microservices-in-motion", "demo-gateway", 3600),
            DEMO_SECRET,
        )
    };
    let alice = issue("alice")?;
    let client: DemoClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let url = |path: &str| format!("http://{gateway_addr}{path}");

    step("1. A routed call: /api/users/* goes to the user service, which sees who is calling");
    show(
        &narrator,
        &client,
        "GET",
        &url("/api/users/7"),
        Some(&alice),
        None,
    )
    .await?;

    step("2. An aggregated call: order, then user and product in parallel, one answer");
    show(
        &narrator,
        &client,
        "GET",
        &url("/api/order-details/1001"),
        Some(&alice),
        None,
    )
    .await?;

    step("3. No token: the gateway answers 401 and the order service never hears of it");
    show(
        &narrator,
        &client,
        "GET",
        &url("/api/orders/1001"),
        None,
        None,
    )
    .await?;
    show(
        &narrator,
        &client,
        "GET",
        &url("/api/users/../payments"),
        Some(&alice),
        None,
    )
    .await?;

    step("4. A burst of 15 calls from one client: 10 fit the burst, the rest get 429");
    // (The demo limit: 20 per second sustained, bursts of 10, per token subject.)
    let bob = issue("bob")?;
    let mut statuses = Vec::new();
    for _ in 0..14 {
        let request = http::Request::get(url("/api/products/p-42"))
            .header("authorization", format!("Bearer {bob}"))
            .body(Full::default())?;
        statuses.push(client.request(request).await?.status().as_u16());
    }
    println!("  statuses: {statuses:?}");
    show(
        &narrator,
        &client,
        "GET",
        &url("/api/products/p-42"),
        Some(&bob),
        None,
    )
    .await?;

    step("5. The product service dies: 502 while the breaker counts, then 503 at once");
    products.stop().await;
    let carol = issue("carol")?;
    show(
        &narrator,
        &client,
        "GET",
        &url("/api/products/p-42"),
        Some(&carol),
        None,
    )
    .await?;
    show(
        &narrator,
        &client,
        "GET",
        &url("/api/products/p-42"),
        Some(&carol),
        None,
    )
    .await?;
    println!("  and the aggregated view degrades instead of failing:");
    show(
        &narrator,
        &client,
        "GET",
        &url("/api/order-details/1001"),
        Some(&carol),
        None,
    )
    .await?;

    let token = issue("you")?;
    println!(
        "\n{}",
        palette.strong("Try it yourself (the token is valid for an hour):")
    );
    println!(
        "  curl -i -H 'Authorization: Bearer {token}' http://{gateway_addr}/api/order-details/1001"
    );
    if !args.exit && std::io::stdin().is_terminal() {
        println!(
            "{}",
            palette.dim("Serving until Ctrl-C (RUST_LOG=access=info shows the access log).")
        );
        ctrl_c().await;
    }
    let _ = stop.send(());
    server.await??;
    for service in [users, orders, payments] {
        service.stop().await;
    }
    Ok(())
}
// ANCHOR_END: demo
