//! Headless Chromium driven through chromedriver (WebDriver), looking at the book served by
//! [`BookServer`].
//!
//! The browser runs with the flags this machine needs: headless without a sandbox (CI runs as
//! root), no GPU, and no background networking, component updates or sync, which on a closed
//! network would otherwise flood it with connection attempts. Each [`Browser`] gets a fresh
//! profile so no state (theme, cache, storage) leaks in from an earlier run.
//!
//! Rendering is asynchronous (Mermaid draws after load, WASM instantiates after fetch), so
//! checks wait by polling a condition a bounded number of times and then report what they saw;
//! time is never the thing asserted.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::BookTestError;
use crate::paths::screenshots_dir;
use crate::server::BookServer;

/// Where Debian's `chromium` package puts the browser (override with `CHROMIUM`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian's `chromium-driver` package puts chromedriver (override with `CHROMEDRIVER`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Pause between two looks at a page that is still rendering.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How many looks before giving up: 200 × 100 ms ≈ 20 s, generous for a loaded 2-core machine.
pub const POLL_ATTEMPTS: u32 = 200;

/// The browser binary to use: `CHROMIUM` if set, else [`CHROMIUM`].
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from)
}

/// The driver binary to use: `CHROMEDRIVER` if set, else [`CHROMEDRIVER`].
pub fn chromedriver_path() -> PathBuf {
    std::env::var_os("CHROMEDRIVER").map_or_else(|| PathBuf::from(CHROMEDRIVER), PathBuf::from)
}

/// Chromium's command-line flags for a test session with its profile in `profile_dir`.
pub fn chromium_args(profile_dir: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ]
    .into_iter()
    .map(str::to_string)
    .chain([format!("--user-data-dir={}", profile_dir.display())])
    .collect()
}

/// Asks `probe` up to `attempts` times, [`POLL_INTERVAL`] apart, until it returns `Some`.
///
/// Returns `None` when the condition never held, so the caller can report what it last saw
/// instead of a bare timeout.
pub async fn poll_until<T, Probe, Fut>(
    attempts: u32,
    mut probe: Probe,
) -> Result<Option<T>, BookTestError>
where
    Probe: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, BookTestError>>,
{
    for attempt in 0..attempts {
        if let Some(value) = probe().await? {
            return Ok(Some(value));
        }
        if attempt + 1 < attempts {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
    Ok(None)
}

/// A temporary directory removed on drop: the browser's fresh profile.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Result<Self, BookTestError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|source| BookTestError::io(&path, source))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover profile in /tmp is harmless, a panic in drop is not.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running chromedriver, killed on drop.
#[derive(Debug)]
pub struct Chromedriver {
    child: Child,
    port: u16,
}

impl Chromedriver {
    /// Starts chromedriver on a free loopback port and waits until it accepts connections.
    pub async fn start(binary: &Path, log_file: &Path) -> Result<Self, BookTestError> {
        // Ask the OS for a free port, then hand it to chromedriver. Another process could take it
        // in between; on a test machine that is rare enough, and the failure would say so.
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|listener| listener.local_addr())
            .map_err(|error| BookTestError::Chromedriver(format!("no free port: {error}")))?
            .port();
        let log = std::fs::File::create(log_file)
            .map_err(|source| BookTestError::io(log_file, source))?;
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|error| {
                BookTestError::Chromedriver(format!("{}: {error}", binary.display()))
            })?;
        let mut driver = Self { child, port };
        let answered = poll_until(POLL_ATTEMPTS, || {
            let exited = driver.child.try_wait();
            let port = driver.port;
            async move {
                match exited {
                    Ok(Some(status)) => Err(BookTestError::Chromedriver(format!(
                        "it exited with {status}; its log is {}",
                        log_file.display()
                    ))),
                    _ => Ok(TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())),
                }
            }
        })
        .await?;
        match answered {
            Some(()) => Ok(driver),
            None => {
                let _ = driver.child.kill();
                Err(BookTestError::Chromedriver(format!(
                    "nothing listened on port {port} after 20 s"
                )))
            }
        }
    }

    /// The WebDriver endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What became of one Mermaid block on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagramState {
    /// The block now holds an `<svg>`.
    pub has_svg: bool,
    /// The block's text mentions "Syntax error" (Mermaid's parse-error diagram).
    pub syntax_error: bool,
    /// The start of the block's text, to show in a failure.
    pub text: String,
    /// The `<style>` Mermaid wrote into the svg: it carries the theme's colours.
    pub style: String,
}

/// The Mermaid blocks of the current page, as the browser sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiagramsOnPage {
    /// Every `pre.mermaid` / `div.mermaid`, in document order.
    pub diagrams: Vec<DiagramState>,
    /// Error diagrams Mermaid put outside any block (it appends some to `<body>`).
    pub stray_syntax_errors: usize,
}

impl DiagramsOnPage {
    /// All blocks drew an svg (a broken diagram draws an error svg, so this means "finished").
    pub fn all_drawn(&self) -> bool {
        self.diagrams.iter().all(|diagram| diagram.has_svg)
    }
}

const DIAGRAMS_SCRIPT: &str = r"
    const blocks = Array.from(document.querySelectorAll('pre.mermaid, div.mermaid'));
    const diagrams = blocks.map((block) => {
        const svg = block.querySelector('svg');
        const style = svg ? svg.querySelector('style') : null;
        // The svg's <style> is text too; leave it out so a report shows the diagram's words,
        // and keep separate labels apart (textContent would glue them together).
        const words = [];
        const walker = document.createTreeWalker(block, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
            const parent = walker.currentNode.parentNode;
            if (!parent || parent.nodeName.toLowerCase() !== 'style') {
                words.push(walker.currentNode.nodeValue);
            }
        }
        const text = words.join(' ').replace(/\s+/g, ' ').trim();
        return { hasSvg: !!svg, syntaxError: /syntax error/i.test(text),
                 text: text.slice(0, 160), style: style ? style.textContent : '' };
    });
    const stray = Array.from(document.querySelectorAll('svg'))
        .filter((svg) => !blocks.some((block) => block.contains(svg)))
        .filter((svg) => /syntax error/i.test(svg.textContent || '')).length;
    return { diagrams, stray };
";

fn string_field(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn bool_field(value: &Value, field: &str) -> bool {
    value
        .get(field)
        .and_then(Value::as_bool)
        .unwrap_or_default()
}

/// A browser session on the served book. Call [`Browser::shutdown`] when done so Chromium
/// quits; dropping still stops chromedriver and the server.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    server: BookServer,
    // Field order is drop order: the driver goes before the profile it was using is removed.
    driver: Chromedriver,
    profile: TempDir,
}

impl Browser {
    /// Serves `book_dir`, starts chromedriver and opens a fresh Chromium session.
    ///
    /// Fails (never skips) with install instructions when Chromium or chromedriver is missing.
    pub async fn launch(book_dir: &Path) -> Result<Self, BookTestError> {
        let chromium = chromium_path();
        let chromedriver = chromedriver_path();
        for (tool, path) in [("chromium", &chromium), ("chromedriver", &chromedriver)] {
            if !path.is_file() {
                return Err(BookTestError::BrowserMissing {
                    tool,
                    path: path.clone(),
                });
            }
        }
        let profile = TempDir::new("book-tests-chromium")?;
        let server = BookServer::start(book_dir).await?;
        let log_file = std::env::temp_dir().join(format!(
            "book-tests-chromedriver-{}.log",
            std::process::id()
        ));
        let driver = Chromedriver::start(&chromedriver, &log_file).await?;

        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_string(),
            json!({ "binary": chromium, "args": chromium_args(&profile.0) }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url())
            .await?;
        Ok(Self {
            client,
            server,
            driver,
            profile,
        })
    }

    /// The WebDriver client, for checks that need more than the helpers here.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The served URL of a page given relative to the book root.
    pub fn url(&self, page: &str) -> String {
        self.server.url(page)
    }

    /// Navigates to a page and waits for its `load` event (WebDriver's normal page-load strategy).
    pub async fn open(&self, page: &str) -> Result<(), BookTestError> {
        self.client.goto(&self.url(page)).await?;
        Ok(())
    }

    /// Reloads the current page.
    pub async fn reload(&self) -> Result<(), BookTestError> {
        self.client.refresh().await?;
        Ok(())
    }

    /// Runs a script and returns its result.
    pub async fn run(&self, script: &str) -> Result<Value, BookTestError> {
        Ok(self.client.execute(script, Vec::new()).await?)
    }

    /// The errors recorded on the current page since it loaded.
    ///
    /// `None` means the recorder is absent: the page was not served by [`BookServer`] or replaced
    /// `window.__bookErrors`, and then silence would prove nothing.
    pub async fn js_errors(&self) -> Result<Option<Vec<String>>, BookTestError> {
        let errors = self
            .run("return Array.isArray(window.__bookErrors) ? window.__bookErrors.slice() : null;")
            .await?;
        Ok(errors.as_array().map(|errors| {
            errors
                .iter()
                .map(|error| {
                    error
                        .as_str()
                        .map_or_else(|| error.to_string(), str::to_string)
                })
                .collect()
        }))
    }

    /// The Mermaid blocks of the current page right now.
    pub async fn diagrams(&self) -> Result<DiagramsOnPage, BookTestError> {
        let seen = self.run(DIAGRAMS_SCRIPT).await?;
        let diagrams = seen
            .get("diagrams")
            .and_then(Value::as_array)
            .map(|diagrams| {
                diagrams
                    .iter()
                    .map(|diagram| DiagramState {
                        has_svg: bool_field(diagram, "hasSvg"),
                        syntax_error: bool_field(diagram, "syntaxError"),
                        text: string_field(diagram, "text"),
                        style: string_field(diagram, "style"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let stray_syntax_errors = seen
            .get("stray")
            .and_then(Value::as_u64)
            .and_then(|count| usize::try_from(count).ok())
            .unwrap_or_default();
        Ok(DiagramsOnPage {
            diagrams,
            stray_syntax_errors,
        })
    }

    /// Waits until every Mermaid block of the page drew an svg (or [`POLL_ATTEMPTS`] run out)
    /// and returns the last state seen either way, for the caller to judge.
    pub async fn wait_for_diagrams(&self) -> Result<DiagramsOnPage, BookTestError> {
        let finished = poll_until(POLL_ATTEMPTS, || async {
            let seen = self.diagrams().await?;
            Ok(seen.all_drawn().then_some(seen))
        })
        .await?;
        match finished {
            Some(seen) => Ok(seen),
            None => self.diagrams().await,
        }
    }

    /// Waits until the page has finished its own work: the document is loaded, every Mermaid
    /// block is drawn, and no element still says `data-status="pending"` or `"loading"` (the
    /// convention the book's interactive pages follow while their WASM module starts).
    ///
    /// Returns a description of what was still unfinished when [`POLL_ATTEMPTS`] ran out.
    pub async fn wait_until_settled(&self) -> Result<Option<String>, BookTestError> {
        const UNFINISHED: &str = r#"
            const undrawn = Array.from(document.querySelectorAll('pre.mermaid, div.mermaid'))
                .filter((block) => !block.querySelector('svg')).length;
            const busy = document.querySelectorAll('[data-status="pending"], [data-status="loading"]').length;
            const parts = [];
            if (document.readyState !== 'complete') parts.push('document ' + document.readyState);
            if (undrawn) parts.push(undrawn + ' diagram(s) not drawn');
            if (busy) parts.push(busy + ' element(s) still pending or loading');
            return parts.join(', ');
        "#;
        let settled = poll_until(POLL_ATTEMPTS, || async {
            let unfinished = self.run(UNFINISHED).await?;
            Ok(unfinished.as_str().is_some_and(str::is_empty).then_some(()))
        })
        .await?;
        Ok(match settled {
            Some(()) => None,
            None => Some(
                self.run(UNFINISHED)
                    .await?
                    .as_str()
                    .unwrap_or("unknown")
                    .to_string(),
            ),
        })
    }

    /// Sets mdBook's stored theme (`light`, `rust`, `coal`, `navy`, `ayu`) and reloads, so the
    /// page and Mermaid both start in it, as for a reader who picked it earlier.
    pub async fn use_theme(&self, theme: &str) -> Result<(), BookTestError> {
        self.client
            .execute(
                "localStorage.setItem('mdbook-theme', arguments[0]);",
                vec![json!(theme)],
            )
            .await?;
        self.reload().await
    }

    /// The classes of `<html>`, where mdBook puts the active theme.
    pub async fn html_classes(&self) -> Result<String, BookTestError> {
        let classes = self
            .run("return document.documentElement.className;")
            .await?;
        Ok(classes.as_str().unwrap_or_default().to_string())
    }

    /// Scrolls the first diagram into view (if any) and saves the viewport as
    /// `<root>/target/screenshots/<name>.png`.
    pub async fn save_screenshot(&self, name: &str) -> Result<PathBuf, BookTestError> {
        self.run(
            "const svg = document.querySelector('pre.mermaid svg, div.mermaid svg');
             if (svg) { svg.scrollIntoView({ block: 'center' }); }",
        )
        .await?;
        let png = self.client.screenshot().await?;
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).map_err(|source| BookTestError::io(&dir, source))?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).map_err(|source| BookTestError::io(&path, source))?;
        Ok(path)
    }

    /// Ends the WebDriver session (Chromium quits), then stops chromedriver and the server.
    pub async fn shutdown(self) -> Result<(), BookTestError> {
        let Self {
            client,
            server,
            driver,
            profile,
        } = self;
        let closed = client.close().await;
        drop((driver, server, profile));
        Ok(closed?)
    }
}
