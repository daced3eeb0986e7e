//! A throwaway NATS JetStream server for the tests that run against a real broker.
//!
//! The saga lab's choreography uses an in-process bus by default and NATS JetStream when
//! `NATS_URL` is set; `cargo xtask test` runs its choreography tests once more against a real
//! `nats-server -js` (Debian's package) on a free loopback port with a fresh storage directory,
//! stopped when the phase ends: the in-process ones over JetStream, the ones that need a
//! broker (messages from another publisher, one process per service killed with SIGKILL).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::{step, tools};

/// A running nats-server, killed when dropped.
pub struct NatsServer {
    child: Child,
    /// The URL clients connect to (`nats://127.0.0.1:PORT`).
    pub url: String,
    store: PathBuf,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

fn nats_binary() -> Option<&'static str> {
    ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// Start `nats-server -js` on a free loopback port, installing it with apt when missing.
pub fn start(root: &Path) -> Result<NatsServer> {
    if nats_binary().is_none() {
        step::step("install nats-server (apt)", || {
            tools::apt_install(tools::APT_NATS)
        })?;
    }
    let binary = nats_binary().context("nats-server is not installed")?;
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
        probe.local_addr()?.port()
    };
    let store = root.join(format!("target/nats-{port}"));
    std::fs::create_dir_all(&store)?;
    let child = Command::new(binary)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("could not start {binary}"))?;
    let server = NatsServer {
        child,
        url: format!("nats://127.0.0.1:{port}"),
        store,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // Readiness is a bounded number of connection attempts, not a timing assumption.
    for _ in 0..100 {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("nats-server did not accept connections on {addr}")
}
