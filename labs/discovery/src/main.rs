//! The Discovery lab's binary: `cargo run -p lab-discovery` runs the narrated demo; `--role
//! registry|user|order` runs one piece alone on loopback.
//!
//! - `registry` serves the Consul-compatible API (default port 8500, as Consul's agent), its
//!   registrations in `--data` (SQLite);
//! - `user` serves `GET /users/{id}`, registers itself with a TTL check and heartbeats;
//! - `order` watches `user` with blocking queries and calls a passing instance every second.
//!
//! Output has colours only on a terminal and never with `NO_COLOR`; logs go to stderr. Each
//! role traces when `OTEL_EXPORTER_OTLP_ENDPOINT` names a collector (the tracing lab's, or any
//! OTLP/HTTP one): the registry's and the user's requests as server spans, each order call as
//! a trace of its own, its `traceparent` carried to the user instance.

use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use clap::{Parser, ValueEnum};
use discovery_core::{Balancer, Strategy};
use lab_discovery::{RegistryService, Settings};
use lab_runtime::cli::{Role as LabRole, RoleArgs};
use lab_runtime::{Narrator, TokioClock};
use serde_json::{Value, json};
use tracing::Instrument;

/// Which part of the lab to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum Role {
    /// The narrated demo (the default).
    #[default]
    Demo,
    /// The registry alone (Consul's HTTP API).
    Registry,
    /// One user-service instance that registers itself and heartbeats.
    User,
    /// The order service: watches the registry and balances its calls.
    Order,
}

impl LabRole for Role {
    fn default_port(self) -> u16 {
        match self {
            Role::Registry => 8500,
            _ => 0,
        }
    }
}

/// The lab's command line.
#[derive(Parser, Debug)]
#[command(about = "The Discovery lab: a service registry with Consul's API")]
struct Args {
    #[command(flatten)]
    run: RoleArgs<Role>,
    /// The registry the user and order roles talk to.
    #[arg(
        long,
        env = "DISCOVERY_REGISTRY",
        default_value = "http://127.0.0.1:8500"
    )]
    registry: String,
    /// The registry's SQLite file (registry role; in memory when not given).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The user instance's id (user role; default `user-<port>`).
    #[arg(long)]
    id: Option<String>,
    /// The user instance's TTL check (user role; a Go duration). It heartbeats three times
    /// per TTL.
    #[arg(long, default_value = "10s")]
    ttl: String,
    /// How the order role balances: round-robin or two choices.
    #[arg(long, default_value = "p2c")]
    balance: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lab_runtime::logging::init("warn");
    let args = Args::parse();
    match args.run.role() {
        Role::Demo => {
            let (lines, _) = lab_discovery::demo::run(Narrator::detect());
            for line in lines {
                println!("{line}");
            }
            Ok(())
        }
        Role::Registry => registry(&args).await,
        Role::User => user(&args).await,
        Role::Order => order(&args).await,
    }
}

async fn registry(args: &Args) -> anyhow::Result<()> {
    let settings = Settings {
        data: args.data.clone(),
        ..Settings::default()
    };
    let service = RegistryService::start(&settings, TokioClock::new())?;
    let telemetry = lab_telemetry::env::from_env("registry").await?;
    let listener = lab_runtime::serve::bind_loopback(args.run.port()).await?;
    println!("registry on http://{}", listener.local_addr()?);
    let router = lab_telemetry::env::instrument(telemetry.as_ref(), service.router(&settings));
    lab_runtime::serve::serve(listener, router, lab_runtime::serve::ctrl_c()).await?;
    shutdown(telemetry).await
}

/// Sends the spans still buffered before the process exits.
async fn shutdown(
    telemetry: Option<std::sync::Arc<lab_telemetry::Telemetry>>,
) -> anyhow::Result<()> {
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await?;
    }
    Ok(())
}

async fn user(args: &Args) -> anyhow::Result<()> {
    let listener = lab_runtime::serve::bind_loopback(args.run.port()).await?;
    let port = listener.local_addr()?.port();
    let id = args.id.clone().unwrap_or_else(|| format!("user-{port}"));
    let instance = id.clone();
    let router = Router::new()
        .route(
            "/users/{user}",
            get(move |Path(user): Path<String>| {
                let instance = instance.clone();
                async move { axum::Json(json!({ "id": user, "served_by": instance })) }
            }),
        )
        .fallback(lab_http::not_found);
    let telemetry = lab_telemetry::env::from_env("user").await?;
    let router = lab_telemetry::env::instrument(telemetry.as_ref(), router);
    let ttl = lab_discovery::decode::parse_go_duration(&args.ttl)
        .map_err(|error| anyhow::anyhow!("--ttl {:?}: {error}", args.ttl))?;
    let beat = Duration::from_millis((ttl.0 / 3).max(1));
    let http = reqwest::Client::new();
    let registration = json!({
        "Name": "user", "ID": id, "Address": "127.0.0.1", "Port": port,
        "Check": {"TTL": args.ttl, "DeregisterCriticalServiceAfter": "1m"}
    });
    http.put(format!("{}/v1/agent/service/register", args.registry))
        .json(&registration)
        .send()
        .await?
        .error_for_status()?;
    println!(
        "{id} on http://127.0.0.1:{port}, registered with {}",
        args.registry
    );
    let heartbeat = {
        let (http, url) = (
            http.clone(),
            format!("{}/v1/agent/check/pass/service:{id}", args.registry),
        );
        tokio::spawn(async move {
            loop {
                if let Err(error) = http.put(&url).send().await {
                    tracing::warn!(%error, "heartbeat failed");
                }
                tokio::time::sleep(beat).await;
            }
        })
    };
    lab_runtime::serve::serve(listener, router, lab_runtime::serve::ctrl_c()).await?;
    heartbeat.abort();
    let _ = http
        .put(format!(
            "{}/v1/agent/service/deregister/{id}",
            args.registry
        ))
        .send()
        .await;
    shutdown(telemetry).await
}

async fn order(args: &Args) -> anyhow::Result<()> {
    let strategy = if args.balance == "round-robin" {
        Strategy::RoundRobin
    } else {
        Strategy::TwoChoices
    };
    let narrator = Narrator::detect();
    let http = reqwest::Client::new();
    let telemetry = lab_telemetry::env::from_env("order").await?;
    let mut balancer = Balancer::new(strategy, 1);
    let mut addresses = std::collections::BTreeMap::new();
    let mut index = 0u64;
    let start = tokio::time::Instant::now();
    let mut calls = tokio::time::interval(Duration::from_secs(1));
    let watch_url = format!("{}/v1/health/service/user?passing", args.registry);
    let mut watch = Box::pin(read(http.clone(), watch_url.clone(), index));
    loop {
        tokio::select! {
            answer = &mut watch => {
                match answer {
                    Ok((new_index, entries)) => {
                        index = new_index;
                        addresses.clear();
                        for entry in entries.as_array().into_iter().flatten() {
                            let service = &entry["Service"];
                            if let (Some(id), Some(address), Some(port)) = (
                                service["ID"].as_str(),
                                service["Address"].as_str(),
                                service["Port"].as_u64(),
                            ) {
                                addresses.insert(id.to_owned(), format!("http://{address}:{port}"));
                            }
                        }
                        balancer.set_instances(addresses.keys().cloned());
                        let now = lab_runtime::Millis(start.elapsed().as_millis() as u64);
                        println!("{}", narrator.at(now, "order", &format!("watch (index {index}): {:?}", balancer.instances())));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "watch failed; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                watch = Box::pin(read(http.clone(), watch_url.clone(), index));
            }
            _ = calls.tick() => {
                let Some(pick) = balancer.pick().map(str::to_owned) else { continue };
                let Some(base) = addresses.get(&pick) else { continue };
                let sent = tokio::time::Instant::now();
                let outcome = call_user(telemetry.as_deref(), &http, &pick, base).await;
                let took = lab_runtime::Millis(sent.elapsed().as_millis() as u64);
                balancer.record(&pick, took);
                let now = lab_runtime::Millis(start.elapsed().as_millis() as u64);
                let text = match outcome {
                    Ok(response) => format!("{pick}: {} in {took}", response.status()),
                    Err(_) => format!("{pick}: no answer (still listed until its TTL runs out)"),
                };
                println!("{}", narrator.at(now, "order", &text));
            }
            () = lab_runtime::serve::ctrl_c() => return shutdown(telemetry).await,
        }
    }
}

// ANCHOR: call_user
/// One call to the instance `pick` at `base`: with tracing on, a trace of its own (the order
/// service's span, the client span inside it, whose `traceparent` the user instance continues).
async fn call_user(
    telemetry: Option<&lab_telemetry::Telemetry>,
    http: &reqwest::Client,
    pick: &str,
    base: &str,
) -> reqwest::Result<reqwest::Response> {
    let request = http
        .get(format!("{base}/users/7"))
        .timeout(Duration::from_secs(2))
        .build()?;
    let Some(telemetry) = telemetry else {
        return http.execute(request).await;
    };
    let span = telemetry.in_scope(
        || tracing::info_span!(parent: None, "call user", otel.name = "call user", instance = pick),
    );
    telemetry
        .run(lab_telemetry::client::traced_execute(http, request).instrument(span))
        .await
}
// ANCHOR_END: call_user

/// One blocking read of the passing instances after `index`.
async fn read(http: reqwest::Client, url: String, index: u64) -> anyhow::Result<(u64, Value)> {
    let response = http
        .get(format!("{url}&index={index}&wait=5m"))
        .timeout(Duration::from_secs(400))
        .send()
        .await?
        .error_for_status()?;
    let new_index = response
        .headers()
        .get("X-Consul-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((new_index, response.json().await?))
}
