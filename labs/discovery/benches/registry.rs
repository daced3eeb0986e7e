//! The lab's registry against etcd (Debian's `etcd-server`), same work, same client, same run:
//! heartbeats per second (a TTL check's pass against a lease keep-alive, one instance or lease
//! each, from the same number of concurrent clients), and the time from one change to every
//! watcher being answered (p50/p99) with 1,000 and 10,000 watchers (blocking queries against
//! watches on a key prefix; the watched service has one instance, so both answers carry one
//! entry, beside the 1,000 heartbeating ones).
//!
//! Both sides are spoken to over HTTP/1.1 with JSON by the same reqwest client: the lab through
//! its Consul API, etcd through its gRPC gateway (`/v3/lease/keepalive`, `/v3/watch`), so the
//! comparison is of the servers, not of two client stacks. etcd's native gRPC streams would
//! be faster for it than its gateway; that is said with the figures. Neither side persists a
//! heartbeat (etcd keeps lease renewals in memory; the lab does not write check status).
//! `DISCOVERY_BENCH_SECS` sets the heartbeat phase's length (default 5).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Instances (or leases) that heartbeat.
const INSTANCES: usize = 1_000;
/// Concurrent heartbeating clients, on both sides.
const CLIENTS: usize = 32;

/// A child process killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_listening(port: u16, what: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not listen on port {port}")
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The package `xtask/src/tools.rs` pins for this benchmark, installed when missing and root.
fn ensure_etcd() -> anyhow::Result<()> {
    if which("etcd") {
        return Ok(());
    }
    let _ = Command::new("apt-get")
        .args(["install", "-y", "etcd-server"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    if !which("etcd") {
        bail!("etcd is not installed: apt-get install -y etcd-server (as root)");
    }
    Ok(())
}

fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Runs `CLIENTS` loops of `beat(i)` for `secs`, and returns the successful beats per second.
async fn heartbeats<F, Fut>(secs: u64, beat: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let beat = Arc::new(beat);
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (beat, done) = (Arc::clone(&beat), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let mut n = client;
            while Instant::now() < end {
                if beat(n % INSTANCES).await {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                n += CLIENTS;
            }
        }));
    }
    let start = Instant::now();
    for task in tasks {
        let _ = task.await;
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

struct Lab {
    url: String,
    http: reqwest::Client,
}

impl Lab {
    async fn setup(&self) -> anyhow::Result<()> {
        for i in 0..INSTANCES {
            let body = json!({"Name": "user", "ID": format!("user-{i}"), "Port": 1,
                              "Check": {"TTL": "1h", "Status": "passing"}});
            self.http
                .put(format!("{}/v1/agent/service/register", self.url))
                .json(&body)
                .send()
                .await?
                .error_for_status()?;
        }
        // The watched service: one instance, so an answer carries one entry, as etcd's event does.
        let body = json!({"Name": "order", "ID": "order-0", "Port": 1,
                          "Check": {"TTL": "1h", "Status": "passing"}});
        self.http
            .put(format!("{}/v1/agent/service/register", self.url))
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    async fn index(&self) -> anyhow::Result<u64> {
        let response = self
            .http
            .get(format!("{}/v1/health/service/order", self.url))
            .send()
            .await?;
        response
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .context("an index")
    }

    /// Parks `watchers` blocking queries, flips one check, and times every answer.
    async fn notify(&self, watchers: usize, round: usize) -> anyhow::Result<Vec<Duration>> {
        let index = self.index().await?;
        let t0 = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let mut tasks = Vec::new();
        for _ in 0..watchers {
            let (http, url, t0) = (self.http.clone(), self.url.clone(), Arc::clone(&t0));
            tasks.push(tokio::spawn(async move {
                let response = http
                    .get(format!(
                        "{url}/v1/health/service/order?index={index}&wait=5m"
                    ))
                    .send()
                    .await
                    .ok()?;
                let _ = response.bytes().await.ok()?;
                let at = Instant::now();
                let start = (*t0.lock().ok()?)?;
                Some(at.saturating_duration_since(start))
            }));
        }
        // Wait until every query is parked (the lab's `/health` counts them), as etcd's side
        // waits until every watch is created: the clock starts at the change, not before the
        // last watcher arrived.
        let parked_by = Instant::now() + Duration::from_secs(60);
        loop {
            let health: Value = self
                .http
                .get(format!("{}/health", self.url))
                .send()
                .await?
                .json()
                .await?;
            let parked = health["watching"].as_u64().unwrap_or(0) as usize;
            if parked >= watchers {
                break;
            }
            if Instant::now() > parked_by {
                println!("  lab    only {parked} of {watchers} queries were parked within 60 s");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let status = if round.is_multiple_of(2) {
            "fail"
        } else {
            "pass"
        };
        *t0.lock().map_err(|_| anyhow::anyhow!("lock"))? = Some(Instant::now());
        self.http
            .put(format!(
                "{}/v1/agent/check/{status}/service:order-0",
                self.url
            ))
            .send()
            .await?
            .error_for_status()?;
        let mut times = Vec::new();
        for task in tasks {
            if let Ok(Some(took)) = task.await {
                times.push(took);
            }
        }
        Ok(times)
    }
}

struct Etcd {
    url: String,
    http: reqwest::Client,
    leases: Vec<String>,
}

impl Etcd {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        Ok(self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    async fn setup(&mut self) -> anyhow::Result<()> {
        for i in 0..INSTANCES {
            let lease = self.post("/v3/lease/grant", json!({"TTL": 3600})).await?;
            let id = lease["ID"].as_str().context("a lease id")?.to_owned();
            let key = b64(format!("/services/user/{i}").as_bytes());
            self.post(
                "/v3/kv/put",
                json!({"key": key, "value": b64(b"127.0.0.1:1"), "lease": id}),
            )
            .await?;
            self.leases.push(id);
        }
        let key = b64(b"/services/order/0");
        self.post(
            "/v3/kv/put",
            json!({"key": key, "value": b64(b"127.0.0.1:1"), "lease": self.leases[0]}),
        )
        .await?;
        Ok(())
    }

    /// Opens `watchers` watches on the prefix, waits until each is created, puts one key, and
    /// times every event's arrival.
    async fn notify(&self, watchers: usize) -> anyhow::Result<Vec<Duration>> {
        let t0 = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let (created_tx, mut created_rx) = tokio::sync::mpsc::channel::<()>(watchers.max(1));
        let mut tasks = Vec::new();
        for _ in 0..watchers {
            let (http, url, t0, created) = (
                self.http.clone(),
                self.url.clone(),
                Arc::clone(&t0),
                created_tx.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let body = json!({"create_request": {
                    "key": b64(b"/services/order/"), "range_end": b64(b"/services/order0")}});
                let mut response = http
                    .post(format!("{url}/v3/watch"))
                    .json(&body)
                    .send()
                    .await
                    .ok()?;
                let mut seen = String::new();
                let mut created_sent = false;
                while let Ok(Some(chunk)) = response.chunk().await {
                    seen.push_str(&String::from_utf8_lossy(&chunk));
                    if !created_sent && seen.contains("\"created\":true") {
                        created_sent = true;
                        let _ = created.send(()).await;
                    }
                    if seen.contains("\"events\"") {
                        let at = Instant::now();
                        let start = (*t0.lock().ok()?)?;
                        return Some(at.saturating_duration_since(start));
                    }
                }
                None
            }));
        }
        drop(created_tx);
        // Every watch says when it is created; give up waiting after 60 s and go on with those.
        let created_by = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut created = 0;
        while created < watchers {
            match tokio::time::timeout_at(created_by, created_rx.recv()).await {
                Ok(Some(())) => created += 1,
                _ => break,
            }
        }
        if created < watchers {
            println!("  etcd   only {created} of {watchers} watches were created within 60 s");
        }
        *t0.lock().map_err(|_| anyhow::anyhow!("lock"))? = Some(Instant::now());
        self.post(
            "/v3/kv/put",
            json!({"key": b64(b"/services/order/0"), "value": b64(b"127.0.0.1:2"), "lease": self.leases[0]}),
        )
        .await?;
        let mut times = Vec::new();
        let answered_by = tokio::time::Instant::now() + Duration::from_secs(60);
        for task in tasks {
            if let Ok(Ok(Some(took))) = tokio::time::timeout_at(answered_by, task).await {
                times.push(took);
            }
        }
        Ok(times)
    }
}

fn report(name: &str, watchers: usize, mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let (p50, p99) = (percentile(&times, 50.0), percentile(&times, 99.0));
    println!(
        "  {name:<6} {watchers:>6} watchers: {} answered, p50 {}, p99 {}",
        times.len(),
        ms(p50),
        ms(p99)
    );
    (p50, p99)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else to read.
    let secs: u64 = std::env::var("DISCOVERY_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    ensure_etcd()?;
    let work = std::env::temp_dir().join(format!("discovery-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;

    let lab_port = free_port()?;
    let _lab = Guard(
        Command::new(env!("CARGO_BIN_EXE_lab-discovery"))
            .args(["--role", "registry", "--port", &lab_port.to_string()])
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .spawn()
            .context("start the lab's registry")?,
    );
    let (client_port, peer_port) = (free_port()?, free_port()?);
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let data: PathBuf = work.join("etcd");
    let _etcd = Guard(
        Command::new("etcd")
            .args([
                "--name",
                "bench",
                "--data-dir",
                &data.display().to_string(),
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                &format!("bench={peer_url}"),
                "--log-level",
                "error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start etcd")?,
    );
    wait_listening(lab_port, "the lab's registry")?;
    wait_listening(client_port, "etcd")?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(20_000)
            .build()?;
        let lab = Arc::new(Lab {
            url: format!("http://127.0.0.1:{lab_port}"),
            http: http.clone(),
        });
        let mut etcd = Etcd {
            url: client_url.clone(),
            http: http.clone(),
            leases: Vec::new(),
        };
        lab.setup().await?;
        etcd.setup().await?;
        let etcd = Arc::new(etcd);

        println!(
            "heartbeats: {INSTANCES} instances/leases, {CLIENTS} concurrent clients, {secs} s each, HTTP/1.1 keep-alive"
        );
        let lab_rate = {
            let lab = Arc::clone(&lab);
            heartbeats(secs, move |i| {
                let lab = Arc::clone(&lab);
                async move {
                    lab.http
                        .put(format!("{}/v1/agent/check/pass/service:user-{i}", lab.url))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                }
            })
            .await
        };
        let etcd_rate = {
            let etcd = Arc::clone(&etcd);
            heartbeats(secs, move |i| {
                let etcd = Arc::clone(&etcd);
                async move {
                    etcd.post("/v3/lease/keepalive", json!({"ID": etcd.leases[i]}))
                        .await
                        .is_ok()
                }
            })
            .await
        };
        println!("  lab    {lab_rate:>9.0} heartbeats/s");
        println!("  etcd   {etcd_rate:>9.0} keep-alives/s");
        println!("  lab / etcd: {:.2}×", lab_rate / etcd_rate.max(1.0));

        println!("change → every watcher answered (one change; lab: blocking queries, etcd: prefix watches)");
        for (round, watchers) in [1_000usize, 10_000].into_iter().enumerate() {
            let lab_times = lab.notify(watchers, round).await?;
            let (_, lab_p99) = report("lab", watchers, lab_times);
            let etcd_times = etcd.notify(watchers).await?;
            let (_, etcd_p99) = report("etcd", watchers, etcd_times);
            println!(
                "  p99 lab / etcd at {watchers}: {:.2}×",
                lab_p99.as_secs_f64() / etcd_p99.as_secs_f64().max(1e-9)
            );
        }
        anyhow::Ok(())
    });
    drop(runtime);
    let _ = std::fs::remove_dir_all(&work);
    result
}
