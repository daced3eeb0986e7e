//! A child process for the role-per-process tests: its stdout lines collected (without colour
//! codes), killed and reaped when the guard drops, and its output shown if the test failed.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use crate::ansi::strip_ansi;
use crate::wait::wait_until;

/// A running child process, killed and reaped on drop.
pub struct ChildGuard {
    /// The process itself.
    child: Child,
    /// Its stdout so far, one entry a line, colour codes stripped.
    lines: Arc<Mutex<Vec<String>>>,
}

impl ChildGuard {
    /// Spawns `command` with stdout piped and collected line by line.
    ///
    /// # Panics
    /// When the process cannot be started.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            let sink = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    lock(&sink).push(strip_ansi(&line));
                }
            });
        }
        Self { child, lines }
    }

    /// The process, to signal or wait for it.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Its stdout lines so far.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.lines).clone()
    }

    /// Waits (up to `tries` pauses of [`crate::wait::PAUSE`]) for a stdout line satisfying
    /// `found`, and returns it; panics with everything printed so far when none comes.
    pub fn wait_for_line(&self, what: &str, tries: u32, found: impl Fn(&str) -> bool) -> String {
        let seen = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(what, tries, || {
                lock(&self.lines).iter().find(|line| found(line)).cloned()
            })
        }));
        seen.unwrap_or_else(|_| panic!("no {what} on stdout; it printed: {:?}", self.lines()))
    }
}

/// The collected lines, even if a reader thread panicked while holding them.
fn lock(lines: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    lines
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- the child's stdout ---");
            for line in self.lines() {
                eprintln!("{line}");
            }
        }
    }
}

/// A child process whose stdout and stderr go to one log file (a pipe nobody reads could
/// block a chatty child), killed and reaped on drop. The file stays for the caller to show.
pub struct LoggedChild {
    /// The process itself.
    child: Child,
    /// Where its output goes.
    log: PathBuf,
}

impl LoggedChild {
    /// Spawns `command` with stdout and stderr appended to a new file at `log`.
    ///
    /// # Panics
    /// When the file cannot be created or the process cannot be started.
    pub fn spawn(mut command: Command, log: PathBuf) -> Self {
        let file = File::create(&log)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", log.display()));
        let shared = file
            .try_clone()
            .unwrap_or_else(|error| panic!("cannot share {}: {error}", log.display()));
        let child = command
            .stdout(shared)
            .stderr(file)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        Self { child, log }
    }

    /// The process id, to signal it.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process has printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its exit status if it has exited, without waiting.
    ///
    /// # Panics
    /// When the process cannot be polled.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("cannot poll a child")
    }

    /// SIGKILLs the process (`Child::kill` on Unix) and reaps it.
    ///
    /// # Panics
    /// When the process cannot be killed or reaped.
    pub fn kill(mut self) -> ExitStatus {
        self.child.kill().expect("cannot kill a child");
        self.child.wait().expect("cannot reap a child")
    }
}

impl Drop for LoggedChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::{ChildGuard, LoggedChild};

    #[test]
    fn a_logged_child_writes_both_streams_to_its_log_and_dies_when_killed() {
        let log = std::env::temp_dir().join(format!("lab-test-support-{}.log", std::process::id()));
        let mut command = Command::new("sh");
        command.args(["-c", "echo out; echo err >&2; sleep 30"]);
        let mut child = LoggedChild::spawn(command, log.clone());
        crate::wait::wait_until("both lines", 500, || {
            let output = child.output();
            (output.contains("out") && output.contains("err")).then_some(())
        });
        assert_eq!(child.try_wait(), None, "still running");
        let status = child.kill();
        assert!(!status.success(), "killed, not exited: {status}");
        let _ = std::fs::remove_file(log);
    }
    use std::process::Command;

    #[test]
    fn collects_stdout_lines_and_reaps_the_child() {
        let mut command = Command::new("sh");
        command.args(["-c", "printf '\\033[1mready\\033[0m\\n'; sleep 30"]);
        let mut guard = ChildGuard::spawn(command);
        let line = guard.wait_for_line("ready line", 500, |line| line.contains("ready"));
        assert_eq!(line, "ready");
        let pid = guard.child().id();
        drop(guard);
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "the child is killed and reaped on drop"
        );
    }
}
