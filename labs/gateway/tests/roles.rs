//! The binary, run the way the chapter tells readers to: each service and the gateway as its
//! own process (`--role user --port 0`, ..., `--role gateway --config ...`), talking over real
//! sockets. Checks routing, authentication, the access log on stdout, a killed service (502),
//! and that Ctrl-C (SIGINT) stops the gateway cleanly.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lab_gateway::config::DEMO_SECRET;
use lab_gateway::tokens::{TokenClaims, sign_hs256};

const BIN: &str = env!("CARGO_BIN_EXE_lab-gateway");

/// A child process whose stdout lines are collected, killed when dropped.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(strip_ansi(&line));
            }
        });
        Self { child, lines }
    }

    /// Waits (up to 20 s) for a stdout line satisfying `found`, and returns it.
    fn wait_for_line(&self, what: &str, found: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| found(l)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {what} on stdout; it printed: {:?}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `http://host:port` the process says it listens on.
    fn url(&self) -> String {
        let line = self.wait_for_line("listening line", |l| l.contains("listening on http://"));
        let (_, url) = line.split_once("listening on ").unwrap();
        url.trim().to_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip `ESC [ ... letter`.
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut request = http::Request::get(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = client
        .request(request.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// `config` with its `listen` line replaced.
fn with_listen(config: &str, listen: &str) -> String {
    config
        .lines()
        .map(|line| {
            if line.starts_with("listen = ") {
                format!("listen = \"{listen}\"")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_gateway_that_cannot_bind_names_the_address_and_how_to_change_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.toml");
    let config = with_listen(&std::fs::read_to_string(example).unwrap(), &addr);
    let dir = std::env::temp_dir().join(format!("lab-gateway-bind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("gateway.toml");
    std::fs::write(&config_path, config).unwrap();
    let output = Command::new(BIN)
        .args([
            "--role",
            "gateway",
            "--config",
            config_path.to_str().unwrap(),
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&addr), "names the address: {stderr}");
    assert!(
        stderr.contains("--port") && stderr.contains("listen"),
        "says how to choose another: {stderr}"
    );
    drop(taken);
}

#[tokio::test]
async fn each_role_runs_as_its_own_process_behind_the_gateway() {
    let user = Running::start(&["--role", "user", "--port", "0"]);
    let order = Running::start(&["--role", "order", "--port", "0"]);
    let product = Running::start(&["--role", "product", "--port", "0"]);
    let payment = Running::start(&["--role", "payment", "--port", "0"]);

    // The example configuration, pointed at wherever the services came up.
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.toml");
    let mut config = std::fs::read_to_string(example).unwrap();
    for (port, service) in [
        (4001, &user),
        (4002, &order),
        (4003, &product),
        (4004, &payment),
    ] {
        config = config.replace(&format!("http://127.0.0.1:{port}"), &service.url());
    }
    config = with_listen(&config, "127.0.0.1:0");
    let dir = std::env::temp_dir().join(format!("lab-gateway-roles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("gateway.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut gateway = Running::start(&[
        "--role",
        "gateway",
        "--config",
        config_path.to_str().unwrap(),
    ]);
    let base = gateway.url();

    let token = sign_hs256(
        &TokenClaims::new("alice", "microservices-in-motion", "demo-gateway", 600),
        DEMO_SECRET,
    )
    .unwrap();
    let (status, body) = get(&format!("{base}/api/users/7"), Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"seen_subject\":\"alice\""), "{body}");
    let (status, body) = get(&format!("{base}/api/orders/1001"), None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = get(&format!("{base}/api/products/p-42"), None).await;
    assert_eq!(status, 200, "the catalogue is public");

    // A gateway run alone logs every request it answers.
    gateway.wait_for_line("access line for /api/users/7", |line| {
        line.contains("path=/api/users/7") && line.contains("status=200")
    });
    gateway.wait_for_line("access line for the 401", |line| {
        line.contains("path=/api/orders/1001") && line.contains("status=401")
    });

    // Kill the product service: the gateway answers for it, with a reason.
    drop(product);
    let (status, body) = get(&format!("{base}/api/products/p-42"), None).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("upstream product is unreachable"), "{body}");
    let (status, body) = get(&format!("{base}/health"), None).await;
    assert_eq!(status, 200, "{body}");

    // Ctrl-C: the gateway stops accepting, finishes, and exits with success.
    let stopped = Command::new("kill")
        .args(["-INT", &gateway.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = gateway.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}
