//! End-to-end proxy benchmark: the lab gateway against nginx and HAProxy, same load, same run.
//!
//! `cargo bench -p lab-gateway` (what `cargo xtask bench gateway` runs). One upstream — a
//! minimal hyper server answering 13 bytes — and one load generator (Debian's `wrk`) for
//! every contestant: (a) direct, (b) nginx with upstream keep-alive, (c) HAProxy with
//! keep-alive, (d) the gateway routing only, (e) the gateway with JWT auth and rate
//! limiting on, and (f) `bare-proxy`, hyper's server and the gateway's connection pool with
//! nothing in between: the floor for any proxy built on hyper and tokio, which splits the
//! gap between the gateway and nginx into what the gateway's checks cost and what the stack
//! under it costs. Each proxy gets one worker pinned to the same core; `wrk` and the upstream
//! share the other. Everything is on 127.0.0.1 and each run lasts `GATEWAY_BENCH_SECS`
//! (default 5) after a one-second warm-up. Missing tools are installed with apt when running
//! as root; a contestant whose tool is missing is skipped, and said so.
//!
//! It also counts the TCP connections the upstream accepted during each measured run (a
//! proxy that pools connections opens none once warm), and reads each proxy's CPU time from
//! `/proc` to report user and kernel µs per request: on loopback most of a proxy's time is
//! the kernel's TCP work, the same for every contestant, so the user-space column is where
//! proxies really differ.
//!
//! Maximum throughput is only half the story: a proxy can win on req/s and still add tail
//! latency at the load it will actually see. So a second pass offers every contestant the same
//! fixed rate, 60 % of the req/s nginx just reached, and compares p50/p99. `wrk` cannot hold a
//! rate, so this pass uses `oha` (crates.io), installed with `cargo install` when missing, with
//! its coordinated-omission correction on: latency is measured from when each request *should*
//! have left, so a stall is not hidden by the requests it delayed. A p99 is decided by a few
//! slow requests, so the contestants take turns for `GATEWAY_BENCH_FIXED_ROUNDS` rounds
//! (default 3) of `GATEWAY_BENCH_FIXED_SECS` (default 4) each, and each one's median round is
//! reported with the spread.
//!
//! Row (e) sends one HS256 token on every request, and the gateway caches verified tokens, so
//! it measures a cache hit, not a signature check. A third pass measures JWT checking itself,
//! with tokens sent from a file by a `wrk` Lua script (so the script's own cost is the same on
//! every row): (g) one HS256 token, the cache-hit baseline; (h) distinct HS256 tokens, twice as
//! many as the gateway's cache holds, so every request verifies an HMAC; (i) as many distinct
//! RS256 tokens, every request an RSA signature verification.
//!
//! A fourth pass prices tracing: the same routing-only gateway with `[tracing]` off, (j), and
//! on, (k), taking turns for `GATEWAY_BENCH_TRACING_ROUNDS` rounds (default 3) of the same
//! `wrk` load (first one, then the other), median round reported. wrk sends no `traceparent`, so every request starts a
//! trace, is sampled, and its span is exported: the most tracing can cost. The spans go over
//! OTLP/HTTP protobuf to a receiver in this process (on the load generator's core) that accepts
//! every batch and discards it once its spans are counted, after each round, so the count
//! shows that spans were exported, not dropped. A third side, (l), is the traced gateway as a
//! production one is usually set up: head sampling of new traces at 10 % through the SDK's own
//! variables (`OTEL_TRACES_SAMPLER=parentbased_traceidratio`, `OTEL_TRACES_SAMPLER_ARG=0.1`),
//! every request still given a trace context to pass on. `GATEWAY_BENCH_ONLY=tracing` runs this
//! pass alone.

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const CONNECTIONS: u32 = 32;

/// The `oha` release the fixed-rate pass installs when none is on the machine. Pinned so the
/// flags and the JSON report parsed below do not change under us. Why so old: every later
/// release depends on `average` 0.14+, which accepts any easy-cast 0.5, and `cargo install`
/// (which ignores oha's lock file) picks easy-cast 0.5.5, which needs a newer rustc than
/// stable 1.95. 0.6.0 builds as is and already has `-q`, `--latency-correction` and `-j`.
const OHA_VERSION: &str = "0.6.0";

/// The fixed rate, as a share of nginx's maximum: loaded, but with headroom, as a proxy
/// should run in production.
const FIXED_RATE_SHARE: f64 = 0.6;

/// How many interleaved rounds the fixed-rate pass runs; each side's median is reported.
const FIXED_ROUNDS_DEFAULT: usize = 3;

/// One contestant: where it listens, what header it needs, and which process to charge.
struct Side {
    name: &'static str,
    port: Option<u16>,
    header: Option<String>,
    /// The proxy's process, whose CPU time (and its children's) is read from /proc.
    pid: Option<u32>,
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; a filter argument would be meaningless here.
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let secs = env("GATEWAY_BENCH_SECS", 5);
    let fixed_secs = env("GATEWAY_BENCH_FIXED_SECS", 4);
    let fixed_rounds =
        env("GATEWAY_BENCH_FIXED_ROUNDS", FIXED_ROUNDS_DEFAULT as u64).max(1) as usize;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = cores >= 2 && which("taskset");
    if pinned {
        // This process (the upstream) and wrk on core 0; the proxy under test on core 1.
        let _ = Command::new("taskset")
            .args(["-a", "-p", "-c", "0", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status();
    }
    ensure_installed(&["wrk", "nginx", "haproxy"]);
    if !which("wrk") {
        bail!("wrk is not installed and could not be installed (apt-get install wrk, as root)");
    }

    let work = std::env::temp_dir().join(format!("lab-gateway-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let accepted = Arc::new(AtomicUsize::new(0));
    let upstream = start_upstream(Arc::clone(&accepted))?;
    let gateway_bin = env!("CARGO_BIN_EXE_lab-gateway");
    let tracing_rounds = env("GATEWAY_BENCH_TRACING_ROUNDS", 3).max(1) as usize;
    if std::env::var("GATEWAY_BENCH_ONLY").as_deref() == Ok("tracing") {
        println!(
            "gateway benchmark, tracing pass only: wrk -t1 -c{CONNECTIONS} -d{secs}s, upstream {upstream}, proxies pinned to one core: {pinned}"
        );
        tracing_pass(gateway_bin, &work, upstream, secs, tracing_rounds, pinned)?;
        let _ = std::fs::remove_dir_all(&work);
        return Ok(());
    }
    println!(
        "gateway benchmark: wrk -t1 -c{CONNECTIONS} -d{secs}s, upstream {upstream}, proxies pinned to one core: {pinned}\n"
    );

    let token = lab_gateway::tokens::sign_hs256(
        &lab_gateway::tokens::TokenClaims::new("bench", "bench-issuer", "bench-gateway", 3600),
        "bench-secret-bench-secret-bench-secret",
    )?;
    let auth = format!("Authorization: Bearer {token}");
    let nginx = start_nginx(&work, upstream, pinned);
    let haproxy = start_haproxy(&work, upstream, pinned);
    let plain = start_gateway(gateway_bin, &work, upstream, false, None, pinned)?;
    let guarded = start_gateway(gateway_bin, &work, upstream, true, None, pinned)?;
    let bare = start_bare(env!("CARGO_BIN_EXE_bare-proxy"), upstream, pinned)?;
    let side = |name, proxy: Option<&Proxy>, header: Option<&str>| Side {
        name,
        port: proxy.map(|p| p.port),
        header: header.map(str::to_owned),
        pid: proxy.map(|p| p.child.id()),
    };
    let sides = [
        Side {
            name: "(a) direct to the upstream",
            port: Some(upstream.port()),
            header: None,
            pid: None,
        },
        side("(b) nginx 1 worker, keepalive", nginx.as_ref(), None),
        side("(c) haproxy 1 thread, keep-alive", haproxy.as_ref(), None),
        side("(d) lab gateway, routing only", Some(&plain), None),
        side(
            "(e) lab gateway + JWT + rate limit",
            Some(&guarded),
            Some(&auth),
        ),
        side("(f) bare hyper proxy (the floor)", Some(&bare), None),
    ];
    for side in &sides {
        if let Some(port) = side.port {
            wait_for(port)?;
        }
    }

    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9}",
        "", "req/s", "p50", "p99", "non-2xx", "up conns", "user", "kernel"
    );
    println!("{:<36} {:>66}", "", "CPU µs per request");
    let mut results: Vec<(&str, Measured)> = Vec::new();
    for side in &sides {
        let Some(port) = side.port else {
            println!("{:<36} skipped (not installed)", side.name);
            continue;
        };
        let url = format!("http://127.0.0.1:{port}/bench");
        let header = side.header.as_deref();
        wrk(&url, 1, header, None, pinned)?; // warm-up: pools fill, caches settle
        let before = accepted.load(Ordering::SeqCst);
        let cpu_before = side.pid.and_then(cpu_ticks);
        let mut measured = wrk(&url, secs, header, None, pinned)?;
        measured.upstream_connections = accepted.load(Ordering::SeqCst) - before;
        if let (Some(start), Some(end)) = (cpu_before, side.pid.and_then(cpu_ticks)) {
            measured.cpu_us = Some(per_request_us(start, end, measured.requests));
        }
        print_row(side.name, &measured);
        results.push((side.name, measured));
    }

    let rate = |prefix: &str| {
        results
            .iter()
            .find(|(name, _)| name.starts_with(prefix))
            .map(|(_, m)| m.requests_per_sec)
    };
    println!();
    print_ratios(
        &[
            ("d/b (gateway / nginx)", "(d)", "(b)"),
            ("d/c (gateway / haproxy)", "(d)", "(c)"),
            ("e/d (auth+limit / routing)", "(e)", "(d)"),
            ("f/b (bare hyper / nginx)", "(f)", "(b)"),
            ("d/f (gateway / bare hyper)", "(d)", "(f)"),
        ],
        rate,
    );

    jwt_pass(gateway_bin, &work, upstream, &accepted, secs, pinned)?;
    tracing_pass(gateway_bin, &work, upstream, secs, tracing_rounds, pinned)?;

    // The proxies stayed up (idle, so they cost the pinned core nothing) and their upstream
    // pools are warm: the fixed-rate pass measures the same processes. A fixed-rate p99 is
    // noisy (a few slow requests decide it), so the sides take turns for several rounds and
    // each one's median round is reported, with the spread.
    println!();
    match (rate("(b)"), oha_program()) {
        (None, _) => println!("fixed-rate pass skipped: nginx was not measured"),
        (_, None) => println!("fixed-rate pass skipped: oha is not installed and could not be"),
        (Some(nginx_max), Some(oha)) => {
            // Rounded down to a whole number of requests per second, as oha takes it.
            let target = (nginx_max * FIXED_RATE_SHARE).floor().max(1.0);
            println!(
                "fixed rate {target:.0} req/s ({:.0} % of nginx's {nginx_max:.0}): oha -c{CONNECTIONS} -q{target:.0} -z{fixed_secs}s --latency-correction, {fixed_rounds} interleaved rounds, median round shown\n",
                FIXED_RATE_SHARE * 100.0
            );
            let mut runs: Vec<Vec<FixedRate>> = sides.iter().map(|_| Vec::new()).collect();
            for round in 0..fixed_rounds {
                for (side, runs) in sides.iter().zip(&mut runs) {
                    let Some(port) = side.port else { continue };
                    let url = format!("http://127.0.0.1:{port}/bench");
                    let header = side.header.as_deref();
                    if round == 0 {
                        oha_fixed(&oha, &url, target, 1, header, pinned)?; // warm-up
                    }
                    let before = accepted.load(Ordering::SeqCst);
                    let mut fixed = oha_fixed(&oha, &url, target, fixed_secs, header, pinned)?;
                    fixed.upstream_connections = accepted.load(Ordering::SeqCst) - before;
                    runs.push(fixed);
                }
                println!("  round {}/{fixed_rounds} done", round + 1);
            }
            println!(
                "\n{:<36} {:>9} {:>9} {:>9} {:>17} {:>8} {:>8}",
                "", "got req/s", "p50", "p99", "p99 min–max", "failed", "up conns"
            );
            let mut p99s: Vec<(&str, f64)> = Vec::new();
            for (side, runs) in sides.iter().zip(&mut runs) {
                if runs.is_empty() {
                    println!("{:<36} skipped (not installed)", side.name);
                    continue;
                }
                runs.sort_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms));
                let median = &runs[runs.len() / 2];
                let (low, high) = (runs[0].p99_ms, runs[runs.len() - 1].p99_ms);
                let failed: u64 = runs.iter().map(|r| r.failed).sum();
                let connections: usize = runs.iter().map(|r| r.upstream_connections).sum();
                println!(
                    "{:<36} {:>9.0} {:>7.2}ms {:>7.2}ms {:>8.2}–{:<6.2}ms {:>8} {:>8}",
                    side.name,
                    median.requests_per_sec,
                    median.p50_ms,
                    median.p99_ms,
                    low,
                    high,
                    failed,
                    connections
                );
                p99s.push((side.name, median.p99_ms));
            }
            let p99 = |prefix: &str| {
                p99s.iter()
                    .find(|(name, _)| name.starts_with(prefix))
                    .map(|(_, ms)| *ms)
            };
            println!();
            print_ratios(
                &[
                    ("p99 d/b (gateway / nginx)", "(d)", "(b)"),
                    ("p99 e/b (auth+limit / nginx)", "(e)", "(b)"),
                    ("p99 d/c (gateway / haproxy)", "(d)", "(c)"),
                    ("p99 f/b (bare hyper / nginx)", "(f)", "(b)"),
                ],
                p99,
            );
        }
    }
    drop((nginx, haproxy, plain, guarded, bare));
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Prints `top / bottom` for each `(label, top, bottom)`, looking the sides up by the prefix
/// of their name, or says which ratio a skipped contestant left out.
fn print_ratios(pairs: &[(&str, &str, &str)], value: impl Fn(&str) -> Option<f64>) {
    for (label, top, bottom) in pairs {
        match (value(top), value(bottom)) {
            (Some(top), Some(bottom)) if bottom > 0.0 => {
                println!("{label:<28} {:.2}", top / bottom)
            }
            _ => println!("{label:<28} n/a (a contestant was skipped)"),
        }
    }
}

/// `program` as a command, pinned to `core` with `taskset` when the run is pinned.
fn on_core(program: &str, core: &str, pinned: bool) -> Command {
    if pinned {
        let mut command = Command::new("taskset");
        command.args(["-c", core, program]);
        command
    } else {
        Command::new(program)
    }
}

/// User and kernel CPU time, in clock ticks, of a process and its children (nginx's worker is
/// its master's child), from `/proc/<pid>/stat`. `None` where there is no `/proc`.
fn cpu_ticks(pid: u32) -> Option<(u64, u64)> {
    let read = |pid: &str| -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces; the fields after its closing parenthesis do not.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some((fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?))
    };
    let pid = pid.to_string();
    let (mut user, mut kernel) = read(&pid)?;
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for child in children.split_whitespace() {
        if let Some((u, k)) = read(child) {
            user += u;
            kernel += k;
        }
    }
    Some((user, kernel))
}

/// CPU µs per request, user and kernel, between two [`cpu_ticks`] readings.
fn per_request_us(start: (u64, u64), end: (u64, u64), requests: u64) -> (f64, f64) {
    // /proc counts in USER_HZ ticks: 100 a second on Linux, as `getconf CLK_TCK` says.
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|hz| *hz > 0.0)
        .unwrap_or(100.0);
    let per = |ticks: u64| ticks as f64 / hz * 1e6 / requests.max(1) as f64;
    (
        per(end.0.saturating_sub(start.0)),
        per(end.1.saturating_sub(start.1)),
    )
}

/// One fixed-rate run, as `oha` reports it.
#[derive(Debug, Default)]
struct FixedRate {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Responses that were not 2xx plus transport errors: at a rate the proxy can carry there
    /// should be none, so a non-zero count means the latency figures describe a failing run.
    failed: u64,
    upstream_connections: usize,
}

/// Where `oha` is, installing the pinned release with `cargo install` if it is nowhere.
fn oha_program() -> Option<String> {
    let installed = || {
        if which("oha") {
            return Some("oha".to_owned());
        }
        // `cargo install` puts it in $CARGO_HOME/bin, which need not be on PATH.
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))?;
        let path = cargo_home.join("bin").join("oha");
        path.is_file().then(|| path.display().to_string())
    };
    if let Some(found) = installed() {
        return Some(found);
    }
    println!("installing oha {OHA_VERSION} with cargo install (once; a few minutes)...");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let _ = Command::new(cargo)
        .args(["install", "oha", "--version", OHA_VERSION])
        .stdout(Stdio::null())
        .status();
    installed()
}

fn oha_fixed(
    oha: &str,
    url: &str,
    rate: f64,
    secs: u64,
    header: Option<&str>,
    pinned: bool,
) -> anyhow::Result<FixedRate> {
    let mut command = on_core(oha, "0", pinned);
    command.args([
        "-c",
        &CONNECTIONS.to_string(),
        "-q",
        &format!("{rate:.0}"),
        "-z",
        &format!("{secs}s"),
        "--latency-correction",
        "--no-tui",
        "-j",
    ]);
    if let Some(header) = header {
        command.args(["-H", header]);
    }
    let output = command.arg(url).output().context("running oha")?;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "oha printed no JSON report for {url}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let seconds_to_ms = |value: &serde_json::Value| value.as_f64().map_or(f64::NAN, |s| s * 1e3);
    let count = |value: &serde_json::Value| value.as_u64().unwrap_or(0);
    let non_2xx: u64 = report["statusCodeDistribution"]
        .as_object()
        .map(|codes| {
            codes
                .iter()
                .filter(|(code, _)| !code.starts_with('2'))
                .map(|(_, n)| count(n))
                .sum()
        })
        .unwrap_or(0);
    // Requests still in flight when `-z` runs out are cut off and reported as errors; they say
    // nothing about the proxy, so they are not counted as failures.
    let errors: u64 = report["errorDistribution"]
        .as_object()
        .map(|errors| {
            errors
                .iter()
                .filter(|(error, _)| !error.contains("deadline"))
                .map(|(_, n)| count(n))
                .sum()
        })
        .unwrap_or(0);
    Ok(FixedRate {
        requests_per_sec: report["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        p50_ms: seconds_to_ms(&report["latencyPercentiles"]["p50"]),
        p99_ms: seconds_to_ms(&report["latencyPercentiles"]["p99"]),
        failed: non_2xx + errors,
        upstream_connections: 0,
    })
}

#[derive(Debug, Default)]
struct Measured {
    requests_per_sec: f64,
    requests: u64,
    p50: String,
    p99: String,
    non_2xx: u64,
    upstream_connections: usize,
    /// The proxy's CPU per request, user and kernel, in µs.
    cpu_us: Option<(f64, f64)>,
}

fn print_row(name: &str, m: &Measured) {
    let (user, kernel) = match m.cpu_us {
        Some((user, kernel)) => (format!("{user:.2}"), format!("{kernel:.2}")),
        None => ("-".to_owned(), "-".to_owned()),
    };
    println!(
        "{name:<36} {:>9.0} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9}",
        m.requests_per_sec, m.p50, m.p99, m.non_2xx, m.upstream_connections, user, kernel
    );
}

fn which(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ensure_installed(tools: &[&str]) {
    let missing: Vec<&str> = tools.iter().copied().filter(|tool| !which(tool)).collect();
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if missing.is_empty() || !is_root {
        return;
    }
    println!("installing {missing:?} with apt-get...");
    let _ = Command::new("apt-get")
        .args(["update", "-qq"])
        .stdout(Stdio::null())
        .status();
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status();
}

fn free_port() -> anyhow::Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for(port: u16) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on port {port} after 10 s")
}

/// The upstream: a minimal hyper HTTP/1.1 server on its own thread, counting connections.
fn start_upstream(accepted: Arc<AtomicUsize>) -> anyhow::Result<SocketAddr> {
    let listener = StdListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = service_fn(|_request| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"hello, world\n"),
                        )))
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Ok(addr)
}

/// A proxy process, killed when dropped.
struct Proxy {
    child: Child,
    port: u16,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: nginx's master must live long enough to stop its worker,
        // or the worker is orphaned and keeps the port.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_pinned(
    program: &str,
    args: &[&str],
    pinned: bool,
    env: &[(&str, &str)],
) -> std::io::Result<Child> {
    let mut command = on_core(program, "1", pinned);
    command
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

fn start_nginx(work: &Path, upstream: SocketAddr, pinned: bool) -> Option<Proxy> {
    if !which("nginx") {
        return None;
    }
    let port = free_port().ok()?;
    let dir = work.join("nginx");
    std::fs::create_dir_all(&dir).ok()?;
    let d = dir.display();
    // `keepalive_requests`: by default nginx closes an upstream connection after 1 000
    // requests and dials a new one, a handicap no other contestant has.
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           upstream backend {{ server {upstream}; keepalive 64; keepalive_requests 1000000; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://backend;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).ok()?;
    let child = spawn_pinned(
        "nginx",
        &["-c", &path.display().to_string(), "-p", &d.to_string()],
        pinned,
        &[],
    )
    .ok()?;
    Some(Proxy { child, port })
}

fn start_haproxy(work: &Path, upstream: SocketAddr, pinned: bool) -> Option<Proxy> {
    if !which("haproxy") {
        return None;
    }
    let port = free_port().ok()?;
    let conf = format!(
        "global\n  nbthread 1\n  maxconn 8192\n\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n\
         timeout server 30s\n  option http-keep-alive\n  http-reuse always\n\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\nbackend be\n  server s1 {upstream}\n"
    );
    let path = work.join("haproxy.cfg");
    std::fs::write(&path, conf).ok()?;
    let child = spawn_pinned(
        "haproxy",
        &["-f", &path.display().to_string(), "-db"],
        pinned,
        &[],
    )
    .ok()?;
    Some(Proxy { child, port })
}

/// How many distinct tokens the JWT pass sends: twice what the gateway's cache of verified
/// tokens holds (4096), so that every request misses it.
const DISTINCT_TOKENS: u64 = 8192;

/// The third pass: what verifying a JWT costs, against a gateway that accepts HS256 and RS256.
fn jwt_pass(
    gateway_bin: &str,
    work: &Path,
    upstream: SocketAddr,
    accepted: &Arc<AtomicUsize>,
    secs: u64,
    pinned: bool,
) -> anyhow::Result<()> {
    let public_key = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/keys/rsa-a.pub.pem"));
    let private_key = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/keys/rsa-a.pem"))?;
    let claims = |n: u64| {
        lab_gateway::tokens::TokenClaims::new("bench", "bench-issuer", "bench-gateway", 3600 + n)
    };
    let hs256 = |n: u64| {
        lab_gateway::tokens::sign_hs256(&claims(n), "bench-secret-bench-secret-bench-secret")
    };
    let rs256 = |n: u64| lab_gateway::tokens::sign_rs256(&claims(n), &private_key, None);
    let one = vec![hs256(0)?];
    let many_hs256 = (0..DISTINCT_TOKENS)
        .map(hs256)
        .collect::<Result<Vec<_>, _>>()?;
    let many_rs256 = (0..DISTINCT_TOKENS)
        .map(rs256)
        .collect::<Result<Vec<_>, _>>()?;
    let gateway = start_gateway(gateway_bin, work, upstream, true, Some(public_key), pinned)?;
    wait_for(gateway.port)?;
    let url = format!("http://127.0.0.1:{}/bench", gateway.port);
    println!(
        "
JWT pass: tokens sent by a wrk Lua script, {DISTINCT_TOKENS} distinct ones on (h) and (i)"
    );
    let mut results: Vec<(&str, Measured)> = Vec::new();
    for (name, file, tokens) in [
        ("(g) gateway + JWT, 1 token (cache hit)", "one", &one),
        ("(h) gateway + JWT, HS256, all misses", "hs256", &many_hs256),
        ("(i) gateway + JWT, RS256, all misses", "rs256", &many_rs256),
    ] {
        let script = token_script(work, file, tokens)?;
        wrk(&url, 1, None, Some(&script), pinned)?; // warm-up
        let before = accepted.load(Ordering::SeqCst);
        let cpu_before = cpu_ticks(gateway.child.id());
        let mut measured = wrk(&url, secs, None, Some(&script), pinned)?;
        measured.upstream_connections = accepted.load(Ordering::SeqCst) - before;
        if let (Some(start), Some(end)) = (cpu_before, cpu_ticks(gateway.child.id())) {
            measured.cpu_us = Some(per_request_us(start, end, measured.requests));
        }
        print_row(name, &measured);
        results.push((name, measured));
    }
    println!();
    print_ratios(
        &[
            ("h/g (HS256 misses / hit)", "(h)", "(g)"),
            ("i/g (RS256 misses / hit)", "(i)", "(g)"),
        ],
        |prefix: &str| {
            results
                .iter()
                .find(|(name, _)| name.starts_with(prefix))
                .map(|(_, m)| m.requests_per_sec)
        },
    );
    drop(gateway);
    Ok(())
}

// ANCHOR: tracing_pass
/// Tracing off (j) against on (k): the same gateway configuration but for `[tracing]`, the same
/// `wrk` load, in turns; the median round of each, its spread, the CPU per request, and the
/// spans the receiver counted.
fn tracing_pass(
    gateway_bin: &str,
    work: &Path,
    upstream: SocketAddr,
    secs: u64,
    rounds: usize,
    pinned: bool,
) -> anyhow::Result<()> {
    let batches = Arc::new(Mutex::new(Vec::new()));
    let sink = start_otlp_sink(Arc::clone(&batches))?;
    let off = start_gateway_tracing(gateway_bin, work, upstream, false, None, None, pinned)?;
    let on = start_gateway_tracing(gateway_bin, work, upstream, false, None, Some(sink), pinned)?;
    let sampled = start_gateway_sampled(gateway_bin, work, upstream, sink, pinned)?;
    wait_for(off.port)?;
    wait_for(on.port)?;
    wait_for(sampled.port)?;
    println!(
        "\ntracing pass: (j) and (k) take turns for {rounds} rounds of wrk -t1 -c{CONNECTIONS} -d{secs}s; spans to an OTLP/HTTP protobuf receiver that counts and discards them"
    );
    let sides = [
        ("(j) gateway, tracing off", &off),
        ("(k) gateway, tracing on (every request sampled)", &on),
        (
            "(l) gateway, tracing on (new traces sampled 10 %)",
            &sampled,
        ),
    ];
    let mut runs: Vec<Vec<Measured>> = vec![Vec::new(), Vec::new(), Vec::new()];
    let mut spans = 0usize;
    for round in 0..rounds {
        // The sides change places every round, so none always runs first.
        let mut order: Vec<usize> = vec![0, 1, 2];
        order.rotate_left(round % 3);
        if round % 2 == 1 {
            order.reverse();
        }
        for side in order {
            let (proxy, runs) = (sides[side].1, &mut runs[side]);
            let url = format!("http://127.0.0.1:{}/bench", proxy.port);
            wrk(&url, 1, None, None, pinned)?; // warm-up
            take_spans(&batches);
            let cpu_before = cpu_ticks(proxy.child.id());
            let mut measured = wrk(&url, secs, None, None, pinned)?;
            if let (Some(start), Some(end)) = (cpu_before, cpu_ticks(proxy.child.id())) {
                measured.cpu_us = Some(per_request_us(start, end, measured.requests));
            }
            runs.push(measured);
        }
        // What the traced gateway exported in this round (and the warm-ups before it).
        spans += take_spans(&batches);
        println!("  round {}/{rounds} done", round + 1);
    }
    println!(
        "\n{:<48} {:>9} {:>19} {:>9} {:>9} {:>8} {:>8}",
        "", "req/s", "req/s min–max", "p50", "p99", "user", "kernel"
    );
    let mut medians = Vec::new();
    for ((name, _), runs) in sides.iter().zip(&mut runs) {
        runs.sort_by(|a, b| a.requests_per_sec.total_cmp(&b.requests_per_sec));
        let median = &runs[runs.len() / 2];
        let (user, kernel) = median.cpu_us.unwrap_or_default();
        println!(
            "{name:<48} {:>9.0} {:>9.0}–{:<9.0} {:>9} {:>9} {:>8.2} {:>8.2}",
            median.requests_per_sec,
            runs[0].requests_per_sec,
            runs[runs.len() - 1].requests_per_sec,
            median.p50,
            median.p99,
            user,
            kernel
        );
        medians.push(median.requests_per_sec);
    }
    let traced_requests: u64 = runs[1].iter().chain(&runs[2]).map(|m| m.requests).sum();
    for (label, side) in [
        ("k/j (every request sampled)", 1),
        ("l/j (10 % sampled)", 2),
    ] {
        println!(
            "\n{label:<28} {:.3}  (throughput cost {:.1} %, goal < 5 %)",
            medians[side] / medians[0],
            (1.0 - medians[side] / medians[0]) * 100.0
        );
    }
    println!(
        "spans received {spans} for {traced_requests} measured traced requests (plus warm-ups)"
    );
    drop((off, on, sampled));
    Ok(())
}
// ANCHOR_END: tracing_pass

/// The traced gateway with the SDK's head sampler at 10 % for new traces (a caller's sampled
/// flag is still followed).
fn start_gateway_sampled(
    bin: &str,
    work: &Path,
    upstream: SocketAddr,
    collector: SocketAddr,
    pinned: bool,
) -> anyhow::Result<Proxy> {
    start_gateway_with(
        bin,
        work,
        upstream,
        false,
        None,
        Some(collector),
        pinned,
        &[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
        ],
    )
}

/// An OTLP/HTTP receiver that answers every batch `200` at once and keeps its bytes, for
/// [`take_spans`] to count between rounds: it does not decode while the load runs.
fn start_otlp_sink(batches: Arc<Mutex<Vec<Bytes>>>) -> anyhow::Result<SocketAddr> {
    let listener = StdListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let batches = Arc::clone(&batches);
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                            let batches = Arc::clone(&batches);
                            async move {
                                use http_body_util::BodyExt;
                                if let Ok(body) = request.into_body().collect().await {
                                    batches
                                        .lock()
                                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                                        .push(body.to_bytes());
                                }
                                let mut response = hyper::Response::new(Full::new(Bytes::new()));
                                response.headers_mut().insert(
                                    "content-type",
                                    hyper::header::HeaderValue::from_static(
                                        "application/x-protobuf",
                                    ),
                                );
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Ok(addr)
}

/// Decodes and forgets the batches received so far; how many spans they held.
fn take_spans(batches: &Mutex<Vec<Bytes>>) -> usize {
    let taken = std::mem::take(
        &mut *batches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    taken
        .iter()
        .filter_map(|body| {
            lab_tracing::otlp::decode(lab_tracing::otlp::Encoding::Protobuf, body).ok()
        })
        .flat_map(|request| request.resource_spans)
        .flat_map(|resource| resource.scope_spans)
        .map(|scope| scope.spans.len())
        .sum()
}

/// A `wrk` Lua script that sends the tokens written to `work/tokens-<name>.txt` in turn, one
/// per request, as `Authorization: Bearer …`.
fn token_script(work: &Path, name: &str, tokens: &[String]) -> anyhow::Result<PathBuf> {
    let list = work.join(format!("tokens-{name}.txt"));
    std::fs::write(&list, tokens.join("\n") + "\n")?;
    let script = work.join(format!("tokens-{name}.lua"));
    std::fs::write(
        &script,
        format!(
            "local tokens = {{}}\n\
             for line in io.lines(\"{}\") do tokens[#tokens + 1] = \"Bearer \" .. line end\n\
             local i = 0\n\
             request = function()\n\
             \x20 i = i % #tokens + 1\n\
             \x20 wrk.headers[\"Authorization\"] = tokens[i]\n\
             \x20 return wrk.format()\n\
             end\n",
            list.display()
        ),
    )?;
    Ok(script)
}

fn start_gateway(
    bin: &str,
    work: &Path,
    upstream: SocketAddr,
    guarded: bool,
    rs256_public_key: Option<&Path>,
    pinned: bool,
) -> anyhow::Result<Proxy> {
    start_gateway_tracing(bin, work, upstream, guarded, rs256_public_key, None, pinned)
}

/// [`start_gateway`], exporting its spans to `collector` when given.
fn start_gateway_tracing(
    bin: &str,
    work: &Path,
    upstream: SocketAddr,
    guarded: bool,
    rs256_public_key: Option<&Path>,
    collector: Option<SocketAddr>,
    pinned: bool,
) -> anyhow::Result<Proxy> {
    start_gateway_with(
        bin,
        work,
        upstream,
        guarded,
        rs256_public_key,
        collector,
        pinned,
        &[],
    )
}

/// [`start_gateway_tracing`] with more environment variables for the gateway's process.
#[allow(clippy::too_many_arguments)]
fn start_gateway_with(
    bin: &str,
    work: &Path,
    upstream: SocketAddr,
    guarded: bool,
    rs256_public_key: Option<&Path>,
    collector: Option<SocketAddr>,
    pinned: bool,
    extra_env: &[(&str, &str)],
) -> anyhow::Result<Proxy> {
    let port = free_port()?;
    let mut conf = format!(
        "listen = \"127.0.0.1:{port}\"\n\n[upstreams.up]\nurl = \"http://{upstream}\"\n\n\
         [[routes]]\nprefix = \"/\"\nupstream = \"up\"\nauth = {guarded}\n\n[retry]\nmax_attempts = 1\nbudget_ratio = 0.2\nmin_retries = 0\ndeadline_ms = 10000\n"
    );
    if guarded {
        conf.push_str(
            "\n[auth]\nissuer = \"bench-issuer\"\naudience = \"bench-gateway\"\nhs256_secret = \"bench-secret-bench-secret-bench-secret\"\n",
        );
        if let Some(key) = rs256_public_key {
            conf.push_str(&format!("rs256_public_key_file = \"{}\"\n", key.display()));
        }
        conf.push_str(
            "\n[rate_limit]\nrequests = 1000000\nper_ms = 1000\nburst = 1000000\n\n\
             [address_rate_limit]\nrequests = 1000000\nper_ms = 1000\nburst = 1000000\n",
        );
    }
    if let Some(collector) = collector {
        conf.push_str(&format!(
            "\n[tracing]\ncollector = \"http://{collector}\"\nservice_name = \"gateway\"\nprotocol = \"protobuf\"\n"
        ));
    }
    let keys = if rs256_public_key.is_some() {
        "-rs256"
    } else {
        ""
    };
    let traced = match (collector.is_some(), extra_env.is_empty()) {
        (false, _) => "",
        (true, true) => "-traced",
        (true, false) => "-traced-sampled",
    };
    let path: PathBuf = work.join(format!("gateway-{guarded}{keys}{traced}.toml"));
    std::fs::write(&path, conf)?;
    let child = spawn_pinned(
        bin,
        &[
            "--role",
            "gateway",
            "--config",
            &path.display().to_string(),
            "--workers",
            "1",
        ],
        pinned,
        // The SDK's batch processor holds at most 2 048 spans by default and drops the rest: at
        // tens of thousands of requests a second that is a few milliseconds of spans. A larger
        // queue and batches (the SDK's own environment variables) let it keep up.
        &[
            [
                ("RUST_LOG", "error"),
                ("OTEL_BSP_MAX_QUEUE_SIZE", "65536"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2048"),
            ]
            .as_slice(),
            extra_env,
        ]
        .concat(),
    )
    .context("starting the lab gateway")?;
    Ok(Proxy { child, port })
}

fn start_bare(bin: &str, upstream: SocketAddr, pinned: bool) -> anyhow::Result<Proxy> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let child = spawn_pinned(
        bin,
        &["--listen", &listen, "--upstream", &upstream.to_string()],
        pinned,
        &[],
    )
    .context("starting the bare proxy")?;
    Ok(Proxy { child, port })
}

fn wrk(
    url: &str,
    secs: u64,
    header: Option<&str>,
    script: Option<&Path>,
    pinned: bool,
) -> anyhow::Result<Measured> {
    let mut command = on_core("wrk", "0", pinned);
    command.args([
        "-t1",
        &format!("-c{CONNECTIONS}"),
        &format!("-d{secs}s"),
        "--latency",
    ]);
    if let Some(header) = header {
        command.args(["-H", header]);
    }
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command.arg(url).output().context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut measured = Measured::default();
    for line in text.lines().map(str::trim) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["Requests/sec:", value] => measured.requests_per_sec = value.parse().unwrap_or(0.0),
            [count, "requests", "in", ..] => measured.requests = count.parse().unwrap_or(0),
            ["50%", value] => measured.p50 = (*value).to_owned(),
            ["99%", value] => measured.p99 = (*value).to_owned(),
            ["Non-2xx", "or", "3xx", "responses:", count] => {
                measured.non_2xx = count.parse().unwrap_or(0)
            }
            _ => {}
        }
    }
    if measured.requests_per_sec == 0.0 {
        bail!("wrk printed no rate for {url}:\n{text}");
    }
    Ok(measured)
}
