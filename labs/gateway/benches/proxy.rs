//! End-to-end proxy benchmark: the lab gateway against nginx and HAProxy, same load, same run.
//!
//! `cargo bench -p lab-gateway` (what `cargo xtask bench gateway` runs). One upstream — a
//! minimal hyper server answering 13 bytes — and one load generator (Debian's `wrk`) for
//! every contestant: (a) direct, (b) nginx with upstream keep-alive, (c) HAProxy with
//! keep-alive, (d) the gateway routing only, (e) the gateway with JWT auth and rate
//! limiting on. Each proxy gets one worker pinned to the same core; `wrk` and the upstream
//! share the other. Everything is on 127.0.0.1 and each run lasts `GATEWAY_BENCH_SECS`
//! (default 5) after a one-second warm-up. Missing tools are installed with apt when
//! running as root; a contestant whose tool is missing is skipped, and said so.
//!
//! It also counts the TCP connections the upstream accepted during each measured run: a
//! proxy that pools connections opens none once warm.
//!
//! Maximum throughput is only half the story: a proxy can win on req/s and still add tail
//! latency at the load it will actually see. So a second pass offers every contestant the same
//! fixed rate, 60 % of the req/s nginx just reached, and compares p50/p99. `wrk` cannot hold a
//! rate, so this pass uses `oha` (crates.io), installed with `cargo install` when missing, with
//! its coordinated-omission correction on: latency is measured from when each request *should*
//! have left, so a stall is not hidden by the requests it delayed. The pass lasts
//! `GATEWAY_BENCH_FIXED_SECS` (default 4) per contestant after a one-second warm-up.

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; a filter argument would be meaningless here.
    let secs: u64 = std::env::var("GATEWAY_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let fixed_secs: u64 = std::env::var("GATEWAY_BENCH_FIXED_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
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
    println!(
        "gateway benchmark: wrk -t1 -c{CONNECTIONS} -d{secs}s, upstream {upstream}, proxies pinned to one core: {pinned}\n"
    );

    let gateway_bin = env!("CARGO_BIN_EXE_lab-gateway");
    let token = lab_gateway::tokens::sign_hs256(
        &lab_gateway::tokens::TokenClaims::new("bench", "bench-issuer", "bench-gateway", 3600),
        "bench-secret-bench-secret-bench-secret",
    )?;
    let mut results: Vec<(String, Option<Measured>)> = Vec::new();
    let mut run = |name: &str, port: Option<u16>, header: Option<&str>| -> anyhow::Result<()> {
        let measured = match port {
            Some(port) => {
                let url = format!("http://127.0.0.1:{port}/bench");
                wait_for(port)?;
                wrk(&url, 1, header, pinned)?; // warm-up: pools fill, caches settle
                let before = accepted.load(Ordering::SeqCst);
                let mut measured = wrk(&url, secs, header, pinned)?;
                measured.upstream_connections = accepted.load(Ordering::SeqCst) - before;
                Some(measured)
            }
            None => None,
        };
        print_row(name, measured.as_ref());
        results.push((name.to_owned(), measured));
        Ok(())
    };
    println!(
        "{:<34} {:>11} {:>9} {:>9} {:>10} {:>8}",
        "", "req/s", "p50", "p99", "non-2xx", "up conns"
    );

    run("(a) direct to the upstream", Some(upstream.port()), None)?;

    let nginx = start_nginx(&work, upstream, pinned);
    run(
        "(b) nginx 1 worker, keepalive",
        nginx.as_ref().map(|p| p.port),
        None,
    )?;

    let haproxy = start_haproxy(&work, upstream, pinned);
    run(
        "(c) haproxy 1 thread, keep-alive",
        haproxy.as_ref().map(|p| p.port),
        None,
    )?;

    let plain = start_gateway(gateway_bin, &work, upstream, false, pinned)?;
    run("(d) lab gateway, routing only", Some(plain.port), None)?;

    let guarded = start_gateway(gateway_bin, &work, upstream, true, pinned)?;
    let auth = format!("Authorization: Bearer {token}");
    run(
        "(e) lab gateway + JWT + rate limit",
        Some(guarded.port),
        Some(&auth),
    )?;

    let rate = |prefix: &str| {
        results
            .iter()
            .find(|(name, _)| name.starts_with(prefix))
            .and_then(|(_, m)| m.as_ref())
            .map(|m| m.requests_per_sec)
    };
    println!();
    for (label, top, bottom) in [
        ("d/b (gateway / nginx)", "(d)", "(b)"),
        ("d/c (gateway / haproxy)", "(d)", "(c)"),
        ("e/d (auth+limit / routing)", "(e)", "(d)"),
    ] {
        match (rate(top), rate(bottom)) {
            (Some(top), Some(bottom)) if bottom > 0.0 => {
                println!("{label:<28} {:.2}", top / bottom)
            }
            _ => println!("{label:<28} n/a (a contestant was skipped)"),
        }
    }

    // The proxies stayed up (idle, so they cost the pinned core nothing) and their upstream
    // pools are warm: the fixed-rate pass measures the same processes.
    let sides: [(&str, Option<u16>, Option<&str>); 5] = [
        ("(a) direct to the upstream", Some(upstream.port()), None),
        (
            "(b) nginx 1 worker, keepalive",
            nginx.as_ref().map(|p| p.port),
            None,
        ),
        (
            "(c) haproxy 1 thread, keep-alive",
            haproxy.as_ref().map(|p| p.port),
            None,
        ),
        ("(d) lab gateway, routing only", Some(plain.port), None),
        (
            "(e) lab gateway + JWT + rate limit",
            Some(guarded.port),
            Some(&auth),
        ),
    ];
    println!();
    match (rate("(b)"), oha_program()) {
        (None, _) => println!("fixed-rate pass skipped: nginx was not measured"),
        (_, None) => println!("fixed-rate pass skipped: oha is not installed and could not be"),
        (Some(nginx_max), Some(oha)) => {
            // Rounded down to a whole number of requests per second, as oha takes it.
            let target = (nginx_max * FIXED_RATE_SHARE).floor().max(1.0);
            println!(
                "fixed rate {target:.0} req/s ({:.0} % of nginx's {nginx_max:.0}): oha -c{CONNECTIONS} -q{target:.0} -z{fixed_secs}s --latency-correction\n",
                FIXED_RATE_SHARE * 100.0
            );
            println!(
                "{:<34} {:>11} {:>9} {:>9} {:>10} {:>8}",
                "", "got req/s", "p50", "p99", "failed", "up conns"
            );
            let mut p99s: Vec<(&str, f64)> = Vec::new();
            for (name, port, header) in sides {
                let Some(port) = port else {
                    println!("{name:<34} skipped (not installed)");
                    continue;
                };
                let url = format!("http://127.0.0.1:{port}/bench");
                oha_fixed(&oha, &url, target, 1, header, pinned)?; // warm-up
                let before = accepted.load(Ordering::SeqCst);
                let mut fixed = oha_fixed(&oha, &url, target, fixed_secs, header, pinned)?;
                fixed.upstream_connections = accepted.load(Ordering::SeqCst) - before;
                println!(
                    "{name:<34} {:>11.0} {:>7.2}ms {:>7.2}ms {:>10} {:>8}",
                    fixed.requests_per_sec,
                    fixed.p50_ms,
                    fixed.p99_ms,
                    fixed.failed,
                    fixed.upstream_connections
                );
                p99s.push((name, fixed.p99_ms));
            }
            let p99 = |prefix: &str| {
                p99s.iter()
                    .find(|(name, _)| name.starts_with(prefix))
                    .map(|(_, ms)| *ms)
            };
            println!();
            for (label, top, bottom) in [
                ("p99 d/b (gateway / nginx)", "(d)", "(b)"),
                ("p99 e/b (auth+limit / nginx)", "(e)", "(b)"),
                ("p99 d/c (gateway / haproxy)", "(d)", "(c)"),
            ] {
                match (p99(top), p99(bottom)) {
                    (Some(top), Some(bottom)) if bottom > 0.0 => {
                        println!("{label:<28} {:.2}", top / bottom)
                    }
                    _ => println!("{label:<28} n/a (a contestant was skipped)"),
                }
            }
        }
    }
    drop((nginx, haproxy, plain, guarded));
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
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
    let mut command = if pinned {
        let mut command = Command::new("taskset");
        command.args(["-c", "0", oha]);
        command
    } else {
        Command::new(oha)
    };
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
    p50: String,
    p99: String,
    non_2xx: u64,
    upstream_connections: usize,
}

fn print_row(name: &str, measured: Option<&Measured>) {
    match measured {
        Some(m) => println!(
            "{name:<34} {:>11.0} {:>9} {:>9} {:>10} {:>8}",
            m.requests_per_sec, m.p50, m.p99, m.non_2xx, m.upstream_connections
        ),
        None => println!("{name:<34} skipped (not installed)"),
    }
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
    let mut command = if pinned {
        let mut command = Command::new("taskset");
        command.args(["-c", "1", program]);
        command
    } else {
        Command::new(program)
    };
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
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           upstream backend {{ server {upstream}; keepalive 64; }}\n\
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

fn start_gateway(
    bin: &str,
    work: &Path,
    upstream: SocketAddr,
    guarded: bool,
    pinned: bool,
) -> anyhow::Result<Proxy> {
    let port = free_port()?;
    let mut conf = format!(
        "listen = \"127.0.0.1:{port}\"\n\n[upstreams.up]\nurl = \"http://{upstream}\"\n\n\
         [[routes]]\nprefix = \"/\"\nupstream = \"up\"\nauth = {guarded}\n\n[retry]\nmax_attempts = 1\nbudget_ratio = 0.2\nmin_retries = 0\ndeadline_ms = 10000\n"
    );
    if guarded {
        conf.push_str(
            "\n[auth]\nissuer = \"bench-issuer\"\naudience = \"bench-gateway\"\nhs256_secret = \"bench-secret-bench-secret-bench-secret\"\n\n\
             [rate_limit]\nrequests = 1000000\nper_ms = 1000\nburst = 1000000\n",
        );
    }
    let path: PathBuf = work.join(format!("gateway-{guarded}.toml"));
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
        &[("RUST_LOG", "error")],
    )
    .context("starting the lab gateway")?;
    Ok(Proxy { child, port })
}

fn wrk(url: &str, secs: u64, header: Option<&str>, pinned: bool) -> anyhow::Result<Measured> {
    let mut command = if pinned {
        let mut command = Command::new("taskset");
        command.args(["-c", "0", "wrk"]);
        command
    } else {
        Command::new("wrk")
    };
    command.args([
        "-t1",
        &format!("-c{CONNECTIONS}"),
        &format!("-d{secs}s"),
        "--latency",
    ]);
    if let Some(header) = header {
        command.args(["-H", header]);
    }
    let output = command.arg(url).output().context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut measured = Measured::default();
    for line in text.lines().map(str::trim) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["Requests/sec:", value] => measured.requests_per_sec = value.parse().unwrap_or(0.0),
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
