//! Start a service process and wait until it listens: the loop every role-per-process test
//! needs, written once.
//!
//! A test picks a free loopback port, starts the role on it and waits for the line the
//! service prints once its listener is bound (`… on http://127.0.0.1:PORT …`). Between
//! picking the port and binding it another process may take it; the service then exits
//! saying `cannot listen`, and the helper tries a new port.

use std::process::ExitStatus;

use crate::process::LoggedChild;
use crate::wait::PAUSE;

/// How many ports [`start_listening`] tries before giving up.
pub const PORT_TRIES: u32 = 5;

/// A loopback port that was free a moment ago.
///
/// # Panics
/// When no port can be bound at all.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("no free loopback port")
        .port()
}

/// The line a lab's service prints once it listens on `port`.
pub fn listening_line(port: u16) -> String {
    format!("on http://127.0.0.1:{port}")
}

/// A service that listens: its process and its port.
pub struct Listening {
    /// The process, killed and reaped on drop.
    pub child: LoggedChild,
    /// The port it listens on.
    pub port: u16,
}

impl Listening {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// What one try at starting the service came to.
enum Start {
    Listens,
    PortTaken,
}

/// Starts the service `spawn` makes for a free port and waits (up to `tries` pauses of
/// [`PAUSE`] per port) until its output says it listens there; a port taken in between
/// (the service exits saying `cannot listen`) is retried with another, [`PORT_TRIES`] times.
///
/// # Panics
/// When the service exits for another reason, does not listen within its tries, or no port
/// could be had; the message carries everything it printed.
pub fn start_listening(
    what: &str,
    tries: u32,
    mut spawn: impl FnMut(u16) -> LoggedChild,
) -> Listening {
    for _ in 0..PORT_TRIES {
        let port = free_port();
        let mut child = spawn(port);
        match wait_listening(what, tries, &mut child, port) {
            Start::Listens => return Listening { child, port },
            Start::PortTaken => {}
        }
    }
    panic!("{what}: no free port after {PORT_TRIES} tries");
}

fn wait_listening(what: &str, tries: u32, child: &mut LoggedChild, port: u16) -> Start {
    let listening = listening_line(port);
    for attempt in 0..tries {
        let output = child.output();
        if output.contains(&listening) {
            return Start::Listens;
        }
        if let Some(status) = child.try_wait() {
            return exited(what, status, &child.output());
        }
        if attempt + 1 < tries {
            std::thread::sleep(PAUSE);
        }
    }
    panic!(
        "{what} did not listen on port {port} after {tries} tries:\n{}",
        child.output()
    );
}

fn exited(what: &str, status: ExitStatus, output: &str) -> Start {
    assert!(
        output.contains("cannot listen"),
        "{what} exited ({status}) before listening:\n{output}"
    );
    Start::PortTaken
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn log(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "lab-test-support-{name}-{}.log",
            std::process::id()
        ))
    }

    #[test]
    fn a_service_that_prints_its_address_is_listening() {
        let path = log("listens");
        let service = start_listening("echo", 500, |port| {
            let mut command = Command::new("sh");
            command.args([
                "-c",
                &format!("echo 'up on http://127.0.0.1:{port}/'; sleep 30"),
            ]);
            LoggedChild::spawn(command, path.clone())
        });
        assert_eq!(
            service.base_url(),
            format!("http://127.0.0.1:{}", service.port)
        );
        drop(service);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_taken_port_is_tried_again_with_another() {
        let path = log("retried");
        let mut starts = 0;
        let service = start_listening("flaky", 500, |port| {
            starts += 1;
            let script = if starts == 1 {
                "echo 'cannot listen on it'".to_owned()
            } else {
                format!("echo 'on http://127.0.0.1:{port}'; sleep 30")
            };
            let mut command = Command::new("sh");
            command.args(["-c", &script]);
            LoggedChild::spawn(command, path.clone())
        });
        assert_eq!(
            starts, 2,
            "the first start lost its port, the second listens"
        );
        drop(service);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    #[should_panic(expected = "exited")]
    fn a_service_that_dies_for_another_reason_fails_the_test() {
        let path = log("dies");
        start_listening("broken", 500, |_| {
            let mut command = Command::new("sh");
            command.args(["-c", "echo 'no database'; exit 3"]);
            LoggedChild::spawn(command, path.clone())
        });
    }
}
