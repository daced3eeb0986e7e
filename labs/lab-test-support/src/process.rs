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
/// block a chatty child), or to two ([`LoggedChild::spawn_apart`]), killed and reaped on
/// drop. The files stay for the caller to show.
pub struct LoggedChild {
    /// The process itself.
    child: Child,
    /// Where its output (or, apart, its stdout) goes.
    log: PathBuf,
    /// Where its stderr goes when it is kept apart; shown with stdout if the test fails.
    errors: Option<PathBuf>,
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
        Self {
            child,
            log,
            errors: None,
        }
    }

    /// Spawns `command` with stdout to a new file at `stdout` and stderr to one at `stderr`,
    /// for a test that checks what goes where; both are printed if the test fails.
    ///
    /// # Panics
    /// When a file cannot be created or the process cannot be started.
    pub fn spawn_apart(mut command: Command, stdout: PathBuf, stderr: PathBuf) -> Self {
        let create = |path: &PathBuf| {
            File::create(path)
                .unwrap_or_else(|error| panic!("cannot create {}: {error}", path.display()))
        };
        let child = command
            .stdout(create(&stdout))
            .stderr(create(&stderr))
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        Self {
            child,
            log: stdout,
            errors: Some(stderr),
        }
    }

    /// What it printed on stderr so far, when that was kept apart (empty otherwise).
    pub fn errors(&self) -> String {
        self.errors
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    /// Waits (up to `tries` pauses of [`crate::wait::PAUSE`]) until `done(output, errors)`
    /// holds.
    ///
    /// # Panics
    /// When the process exits first or every try fails, with everything it printed.
    pub fn wait_for(&mut self, what: &str, tries: u32, done: impl Fn(&str, &str) -> bool) {
        for attempt in 0..tries {
            let (out, err) = (self.output(), self.errors());
            if done(&out, &err) {
                return;
            }
            if let Some(status) = self.try_wait() {
                let (out, err) = (self.output(), self.errors());
                panic!("exited ({status}) before {what}:\n{out}\n{err}");
            }
            if attempt + 1 < tries {
                std::thread::sleep(crate::wait::PAUSE);
            }
        }
        let (out, err) = (self.output(), self.errors());
        panic!("no {what} after {tries} tries:\n{out}\n{err}");
    }

    /// Waits (up to `tries` pauses of [`crate::wait::PAUSE`]) for the process to exit by
    /// itself, and returns its status.
    ///
    /// # Panics
    /// When it is still running after every try.
    pub fn wait_exit(&mut self, tries: u32) -> ExitStatus {
        for attempt in 0..tries {
            if let Some(status) = self.try_wait() {
                return status;
            }
            if attempt + 1 < tries {
                std::thread::sleep(crate::wait::PAUSE);
            }
        }
        let (out, err) = (self.output(), self.errors());
        panic!("still running after {tries} tries:\n{out}\n{err}");
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
        if self.errors.is_some() && std::thread::panicking() {
            let (out, err) = (self.output(), self.errors());
            eprintln!("──── stdout ────\n{out}\n──── stderr ────\n{err}");
        }
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
    fn a_child_kept_apart_has_its_streams_in_two_files_and_its_exit_awaited() {
        let dir = std::env::temp_dir();
        let id = std::process::id();
        let (out, err) = (
            dir.join(format!("lab-test-support-apart-{id}.out")),
            dir.join(format!("lab-test-support-apart-{id}.err")),
        );
        let mut command = Command::new("sh");
        command.args(["-c", "echo out; echo err >&2; exit 4"]);
        let mut child = LoggedChild::spawn_apart(command, out.clone(), err.clone());
        let status = child.wait_exit(500);
        assert_eq!(status.code(), Some(4));
        assert_eq!(
            (child.output(), child.errors()),
            ("out\n".into(), "err\n".into())
        );
        drop(child);
        let _ = (std::fs::remove_file(out), std::fs::remove_file(err));
    }

    #[test]
    #[should_panic(expected = "exited (exit status: 0) before the second line")]
    fn waiting_for_output_fails_when_the_child_exits_first() {
        let log =
            std::env::temp_dir().join(format!("lab-test-support-early-{}.log", std::process::id()));
        let mut command = Command::new("sh");
        command.args(["-c", "echo one"]);
        let mut child = LoggedChild::spawn(command, log);
        child.wait_for("the second line", 500, |out, _| out.contains("two"));
    }

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
