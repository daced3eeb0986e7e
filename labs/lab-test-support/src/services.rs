//! The service processes of one role-per-process test, by name: each started on a free port
//! and awaited until it listens ([`crate::listen::start_listening`]), its output in a log
//! file of the test's scratch directory.
//!
//! Dropping the group SIGKILLs and reaps whatever still runs (also when an assertion
//! failed), prints every log if the test is failing (keeping the directory to look at), and
//! removes the scratch directory if it passed.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::listen::start_listening;
use crate::process::LoggedChild;

/// A test's running services and the logs of every process it started.
pub struct Services {
    root: PathBuf,
    running: Vec<(String, LoggedChild)>,
    logs: Vec<PathBuf>,
}

impl Services {
    /// A group whose logs go to `root`, a scratch directory that exists already.
    pub fn new(root: PathBuf) -> Services {
        Services {
            root,
            running: Vec::new(),
            logs: Vec::new(),
        }
    }

    /// The scratch directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts the service `command` makes for a port, as `name`, waits (up to `tries`
    /// pauses per port) until it listens, and returns its base URL. Its stdout and stderr
    /// go to `name-N.log` in the scratch directory (a pipe nobody reads would block a
    /// chatty service).
    pub fn start(
        &mut self,
        name: &str,
        tries: u32,
        mut command: impl FnMut(u16) -> Command,
    ) -> String {
        let (root, logs) = (&self.root, &mut self.logs);
        let service = start_listening(name, tries, |port| {
            let log = root.join(format!("{name}-{}.log", logs.len() + 1));
            logs.push(log.clone());
            LoggedChild::spawn(command(port), log)
        });
        let url = service.base_url();
        self.running.push((name.to_owned(), service.child));
        url
    }

    /// The running service called `name`.
    ///
    /// # Panics
    /// When none is running.
    pub fn get(&self, name: &str) -> &LoggedChild {
        self.running
            .iter()
            .find(|(running, _)| running == name)
            .map(|(_, child)| child)
            .unwrap_or_else(|| panic!("{name} is not running"))
    }

    /// SIGKILLs the service called `name` (`Child::kill` sends SIGKILL on Unix) and reaps it.
    ///
    /// # Panics
    /// When none is running.
    pub fn kill(&mut self, name: &str) -> ExitStatus {
        let index = self
            .running
            .iter()
            .position(|(running, _)| running == name)
            .unwrap_or_else(|| panic!("{name} is not running"));
        self.running.remove(index).1.kill()
    }

    /// SIGKILLs and reaps every service still running.
    pub fn kill_all(&mut self) {
        self.running.clear();
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        self.kill_all();
        if std::thread::panicking() {
            for log in &self.logs {
                let output = std::fs::read_to_string(log).unwrap_or_default();
                eprintln!("──── {} ────\n{output}", log.display());
            }
            eprintln!("(data kept in {})", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_started_by_name_killed_and_their_directory_removed() {
        let root =
            std::env::temp_dir().join(format!("lab-test-support-services-{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("scratch directory");
        let mut services = Services::new(root.clone());
        let url = services.start("echo", 500, |port| {
            let mut command = Command::new("sh");
            command.args([
                "-c",
                &format!("echo 'on http://127.0.0.1:{port}'; sleep 30"),
            ]);
            command
        });
        assert!(services.get("echo").output().contains(&url));
        let status = services.kill("echo");
        assert!(!status.success(), "killed, not exited: {status}");
        drop(services);
        assert!(!root.exists(), "a passing test leaves no scratch directory");
    }
}
