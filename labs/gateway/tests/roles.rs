//! The binary, run the way the chapter tells readers to: each service and the gateway as its
//! own process (`--role user --port 0`, ..., `--role gateway --config ...`), talking over real
//! sockets. Checks routing, authentication, the access log on stdout, a killed service (502),
//! and that Ctrl-C (SIGINT) stops the gateway cleanly.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lab_gateway::config::DEMO_SECRET;
use lab_gateway::tokens::{TokenClaims, sign_hs256};
use lab_test_support::{ChildGuard, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_lab-gateway");

/// How many pauses of [`lab_test_support::wait::PAUSE`] (20 ms) a process gets to print a line
/// or to stop: 20 s.
const TRIES: u32 = 1_000;

/// The binary started with `args`, colour off, its stdout collected; killed when dropped.
fn start(args: &[&str]) -> ChildGuard {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stderr(Stdio::null());
    ChildGuard::spawn(command)
}

/// The `http://host:port` the process says it listens on.
fn url(process: &ChildGuard) -> String {
    let line = process.wait_for_line("listening line", TRIES, |l| {
        l.contains("listening on http://")
    });
    let (_, url) = line.split_once("listening on ").unwrap();
    url.trim().to_owned()
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
    let user = start(&["--role", "user", "--port", "0"]);
    let order = start(&["--role", "order", "--port", "0"]);
    let product = start(&["--role", "product", "--port", "0"]);
    let payment = start(&["--role", "payment", "--port", "0"]);

    // The example configuration, pointed at wherever the services came up.
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.toml");
    let mut config = std::fs::read_to_string(example).unwrap();
    for (port, service) in [
        (4001, &user),
        (4002, &order),
        (4003, &product),
        (4004, &payment),
    ] {
        config = config.replace(&format!("http://127.0.0.1:{port}"), &url(service));
    }
    config = with_listen(&config, "127.0.0.1:0");
    let dir = std::env::temp_dir().join(format!("lab-gateway-roles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("gateway.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut gateway = start(&[
        "--role",
        "gateway",
        "--config",
        config_path.to_str().unwrap(),
    ]);
    let base = url(&gateway);

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
    gateway.wait_for_line("access line for /api/users/7", TRIES, |line| {
        line.contains("path=/api/users/7") && line.contains("status=200")
    });
    gateway.wait_for_line("access line for the 401", TRIES, |line| {
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
        .args(["-INT", &gateway.child().id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let status = wait_until("the gateway to stop on SIGINT", TRIES, || {
        gateway.child().try_wait().unwrap()
    });
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The demo's walkthrough, run to its end with stdout a pipe (and `no_color` set or not).
fn demo_output(no_color: bool) -> String {
    let mut command = Command::new(BIN);
    command
        .arg("--exit")
        .env_remove("RUST_LOG")
        .env_remove("LAB_ROLE")
        .env_remove("LAB_PORT");
    if no_color {
        command.env("NO_COLOR", "1");
    } else {
        command.env_remove("NO_COLOR");
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "the demo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_demo_prints_no_escape_codes_to_a_pipe_or_under_no_color() {
    for no_color in [false, true] {
        let text = demo_output(no_color);
        assert!(
            text.contains("API gateway lab") && text.contains("← 401"),
            "the walkthrough ran: {text}"
        );
        assert!(
            !text.contains('\u{1b}'),
            "escape codes on a pipe (NO_COLOR set: {no_color}): {text:?}"
        );
    }
}

#[test]
fn a_role_and_its_port_come_from_lab_role_and_lab_port() {
    let mut command = Command::new(BIN);
    command
        .env("LAB_ROLE", "user")
        .env("LAB_PORT", "0")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stderr(Stdio::null());
    let user = ChildGuard::spawn(command);
    let line = user.wait_for_line("listening line", TRIES, |l| {
        l.contains("listening on http://")
    });
    assert!(line.starts_with("User service"), "{line}");
}
