//! Serving a lab's axum router: on a listener with shutdown passed in, or spawned as a
//! [`Running`] server that a demo or a test can stop.
//!
//! [`serve`] has the shape of mini-redis's `server::run(listener, shutdown)`: the caller
//! decides what ends the server (Ctrl-C in a role process, a stop signal in a demo), and the
//! server then stops accepting, finishes its in-flight requests and closes keep-alive
//! connections, so callers see it gone rather than hanging.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Serves `router` on `listener` until `shutdown` completes, then drains gracefully.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds 127.0.0.1:`port` (0: any free port), with an error that names the port and
/// what to do about it.
pub async fn bind_loopback(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|error| {
            std::io::Error::new(
                error.kind(),
                format!(
                    "cannot listen on 127.0.0.1:{port}: {error} (is it already running? --port picks another)"
                ),
            )
        })
}

/// Completes on Ctrl-C (SIGINT): the shutdown of a role run from a terminal.
pub async fn ctrl_c() {
    // If the signal handler cannot be installed, never complete: the process still dies
    // on the signal, it just does not drain first.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A spawned server: its address, and the means to stop it.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops the server: it stops accepting, finishes in-flight requests and closes its
    /// keep-alive connections, so callers see it gone. Returns once it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Waits until the server ends on its own (it only does on an accept error).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

/// Serves `router` on `listener` in a background task.
pub fn spawn_on(listener: TcpListener, router: Router) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(error) = serve(listener, router, shutdown).await {
            tracing::warn!(%error, %addr, "server stopped with an error");
        }
    });
    Ok(Running {
        addr,
        stop: Some(stop),
        task,
    })
}

/// Binds `addr` (port 0: an ephemeral port) and serves `router` there in a background task.
pub async fn spawn(router: Router, addr: SocketAddr) -> std::io::Result<Running> {
    let listener = TcpListener::bind(addr).await?;
    spawn_on(listener, router)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    #[tokio::test]
    async fn a_stopped_server_refuses_new_connections() {
        let router = Router::new().route("/", get(|| async { "hello" }));
        let running = spawn(router, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let addr = running.addr;
        let body = reqwest::get(format!("http://{addr}/"))
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        assert_eq!(body, "hello");
        running.stop().await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn a_port_in_use_is_named_in_the_error() {
        let taken = bind_loopback(0).await.expect("bind");
        let port = taken.local_addr().expect("addr").port();
        let error = bind_loopback(port).await.expect_err("port is taken");
        assert!(
            error.to_string().contains(&format!("127.0.0.1:{port}")),
            "{error}"
        );
    }
}
