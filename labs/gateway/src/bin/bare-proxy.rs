//! The least a hyper proxy can do, as a yardstick for the gateway's benchmark.
//!
//! `bare-proxy --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000` accepts HTTP/1.1 with hyper's
//! server, sends each request unchanged through the gateway's connection [`Pool`], and streams
//! the answer back: no routing, no header rules, no authentication, no rate limit, no breaker,
//! no timeouts. Whatever it costs per request, any gateway built on hyper and tokio costs at
//! least that; the benchmark runs it next to the lab gateway and nginx, so the gap between the
//! gateway and nginx splits into "what the gateway's checks cost" and "what hyper costs".
//! It runs on one thread, like every proxy in the benchmark.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use clap::Parser;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lab_gateway::pool::Pool;
use tokio::net::TcpListener;

/// The same allocator as the gateway, so the comparison is of the code alone.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A proxy with nothing but hyper and a connection pool.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Where to listen.
    #[arg(long)]
    listen: SocketAddr,
    /// The upstream, as `host:port`.
    #[arg(long)]
    upstream: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let pool = Arc::new(Pool::new(&args.upstream, 256).map_err(anyhow::Error::msg)?);
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    println!(
        "bare proxy on http://{} -> {}",
        listener.local_addr()?,
        args.upstream
    );
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("accept: {error}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let pool = Arc::clone(&pool);
                async move {
                    let (parts, body) = request.into_parts();
                    let outgoing = Request::from_parts(parts, Body::new(body));
                    let response = match pool.send(outgoing).await {
                        Ok(response) => response.map(Body::new),
                        Err(error) => {
                            let mut failed = Response::new(Body::from(error.to_string()));
                            *failed.status_mut() = StatusCode::BAD_GATEWAY;
                            failed
                        }
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
