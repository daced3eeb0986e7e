//! Browser tests of the built book: headless Chromium opens the served pages and checks what a
//! reader would see — no JavaScript errors, every Mermaid diagram drawn (in light and dark
//! themes), the WASM playground answering, and search returning results.
//!
//! Starting Chromium is the slow part, so all checks in this file share one browser. libtest's
//! harness has no shared setup or teardown, hence `harness = false` and a `main` on
//! libtest-mimic: the output, filters (`cargo test -p book-tests --test browser -- theme`) and
//! exit code are libtest's, and the browser is closed once at the end. Checks take turns on the
//! browser, so they run one at a time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use book_tests::browser::{Browser, POLL_ATTEMPTS, poll_until};
use book_tests::built::chapter_pages;
use book_tests::paths::{book_dir, book_src_dir, read_to_string};
use book_tests::sources::{SourcePage, draft_chapters, source_pages};
use book_tests::{BookTestError, GUIDE_DIAGRAM_COUNT};
use fantoccini::Locator;
use libtest_mimic::{Arguments, Failed, Trial};

/// The page that proves the WASM pipeline: it calls `failure_rate_percent(1, 4)`.
const PLAYGROUND_PAGE: &str = "playground/index.html";
/// What `failure_rate_percent(1, 4)` must show.
const PLAYGROUND_EXPECTED: &str = "25%";
/// A word the book's search must find.
const SEARCH_QUERY: &str = "compensation";
/// The themes diagrams are checked in: mdBook's default light theme and two dark ones.
const THEMES: [&str; 3] = ["light", "coal", "navy"];

/// The checks of this file, run in this order on one browser.
#[derive(Debug, Clone, Copy)]
enum Check {
    PagesLoadWithoutErrors,
    DiagramsRender,
    DiagramsFollowTheTheme,
    PlaygroundShowsWasmResult,
    SearchFindsResults,
}

impl Check {
    const ALL: [Self; 5] = [
        Self::PagesLoadWithoutErrors,
        Self::DiagramsRender,
        Self::DiagramsFollowTheTheme,
        Self::PlaygroundShowsWasmResult,
        Self::SearchFindsResults,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::PagesLoadWithoutErrors => "every_page_loads_without_javascript_errors",
            Self::DiagramsRender => "every_mermaid_fence_renders_as_an_svg",
            Self::DiagramsFollowTheTheme => "diagrams_render_in_light_and_dark_themes",
            Self::PlaygroundShowsWasmResult => "playground_page_shows_the_wasm_result",
            Self::SearchFindsResults => "search_finds_results",
        }
    }

    async fn run(self, browser: &Browser, book: &Path) -> Result<(), String> {
        let outcome = match self {
            Self::PagesLoadWithoutErrors => pages_load_without_errors(browser, book).await,
            Self::DiagramsRender => diagrams_render(browser, book).await,
            Self::DiagramsFollowTheTheme => diagrams_follow_the_theme(browser, book).await,
            Self::PlaygroundShowsWasmResult => playground_shows_wasm_result(browser, book).await,
            Self::SearchFindsResults => search_finds_results(browser).await,
        };
        outcome.map_err(|error| error.to_string())?
    }
}

/// Everything the checks share: the runtime the browser lives on, and the browser itself,
/// started by the first check that needs it.
struct Shared {
    runtime: tokio::runtime::Runtime,
    browser: tokio::sync::Mutex<Option<Result<(Browser, PathBuf), String>>>,
}

impl Shared {
    fn run(&self, check: Check) -> Result<(), Failed> {
        self.runtime.block_on(async {
            let mut slot = self.browser.lock().await;
            if slot.is_none() {
                *slot = Some(launch().await.map_err(|error| error.to_string()));
            }
            match slot.as_ref() {
                Some(Ok((browser, book))) => check.run(browser, book).await.map_err(Failed::from),
                Some(Err(error)) => Err(Failed::from(error)),
                None => Err(Failed::from("the browser was not started")),
            }
        })
    }

    fn shutdown(&self) {
        self.runtime.block_on(async {
            if let Some(Ok((browser, _))) = self.browser.lock().await.take()
                && let Err(error) = browser.shutdown().await
            {
                eprintln!("closing the browser session failed: {error}");
            }
        });
    }
}

async fn launch() -> Result<(Browser, PathBuf), BookTestError> {
    let book = book_dir()?;
    let browser = Browser::launch(&book).await?;
    Ok((browser, book))
}

fn main() {
    let mut arguments = Arguments::from_args();
    // The checks take turns on one browser; more threads would only wait on each other.
    arguments.test_threads.get_or_insert(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("could not start the tokio runtime: {error}");
            std::process::exit(101);
        }
    };
    let shared = Arc::new(Shared {
        runtime,
        browser: tokio::sync::Mutex::new(None),
    });
    let trials = Check::ALL
        .into_iter()
        .map(|check| {
            let shared = Arc::clone(&shared);
            Trial::test(check.name(), move || shared.run(check))
        })
        .collect();
    let conclusion = libtest_mimic::run(&arguments, trials);
    shared.shutdown();
    conclusion.exit();
}

/// Reports a list of problems as one failure message (or success when there are none).
fn verdict(what: &str, problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} {what}:\n  {}",
            problems.len(),
            problems.join("\n  ")
        ))
    }
}

/// The recorded JS errors of the current page, with a missing recorder reported as an error.
async fn page_errors(browser: &Browser, page: &str) -> Result<Vec<String>, BookTestError> {
    Ok(match browser.js_errors().await? {
        Some(errors) => errors
            .into_iter()
            .map(|error| format!("{page}: {error}"))
            .collect(),
        None => vec![format!(
            "{page}: the error recorder is missing (window.__bookErrors was not set)"
        )],
    })
}

async fn pages_load_without_errors(
    browser: &Browser,
    book: &Path,
) -> Result<Result<(), String>, BookTestError> {
    let mut problems = Vec::new();
    let pages = chapter_pages(book)?;
    for page in &pages {
        browser.open(page).await?;
        // Diagrams and WASM start after `load`; their errors only show up once they are done.
        if let Some(unfinished) = browser.wait_until_settled().await? {
            problems.push(format!(
                "{page}: still busy after {POLL_ATTEMPTS} attempts: {unfinished}"
            ));
        }
        problems.extend(page_errors(browser, page).await?);
    }
    println!("opened {} pages", pages.len());
    Ok(verdict("JavaScript errors", problems))
}

fn describe(source: &SourcePage, index: usize) -> String {
    source.fences.get(index).map_or_else(
        || format!("{}: diagram {}", source.page, index + 1),
        |fence| {
            format!(
                "{}: diagram {} (`{}`, {} line {})",
                source.page, fence.index, fence.first_line, source.markdown, fence.line
            )
        },
    )
}

async fn diagrams_render(
    browser: &Browser,
    book: &Path,
) -> Result<Result<(), String>, BookTestError> {
    let src = book_src_dir();
    let sources = source_pages(&src)?;
    let fence_count: usize = sources.iter().map(|source| source.fences.len()).sum();
    let mut problems = Vec::new();
    let mut drawn = 0;
    for source in sources.iter().filter(|source| !source.fences.is_empty()) {
        if !book.join(&source.page).is_file() {
            problems.push(format!(
                "{} has {} diagram(s) but {} was not built (is it listed in SUMMARY.md?)",
                source.markdown,
                source.fences.len(),
                source.page
            ));
            continue;
        }
        browser.open(&source.page).await?;
        let seen = browser.wait_for_diagrams().await?;
        for (index, _) in source.fences.iter().enumerate() {
            match seen.diagrams.get(index) {
                None => problems.push(format!(
                    "{}: not on the page (it has {} mermaid block(s); is mdbook-mermaid configured?)",
                    describe(source, index),
                    seen.diagrams.len()
                )),
                Some(diagram) if !diagram.has_svg => problems.push(format!(
                    "{}: no <svg> after {} attempts; the block still reads \"{}\"",
                    describe(source, index),
                    POLL_ATTEMPTS,
                    diagram.text
                )),
                Some(diagram) if diagram.syntax_error => problems.push(format!(
                    "{}: Mermaid drew a syntax error: \"{}\"",
                    describe(source, index),
                    diagram.text
                )),
                Some(_) => drawn += 1,
            }
        }
        if seen.stray_syntax_errors > 0 {
            problems.push(format!(
                "{}: {} Mermaid syntax-error diagram(s) outside the diagram blocks",
                source.page, seen.stray_syntax_errors
            ));
        }
    }
    println!(
        "{drawn} of {fence_count} mermaid fences in {} drew an svg",
        src.display()
    );
    if drawn < fence_count && problems.is_empty() {
        problems.push(format!(
            "only {drawn} diagrams drew of the {fence_count} fences in the sources"
        ));
    }
    let summary = read_to_string(&src.join("SUMMARY.md"))?;
    let drafts = draft_chapters(&summary);
    if drafts.is_empty() {
        if drawn < GUIDE_DIAGRAM_COUNT {
            problems.push(format!(
                "the book has no draft chapters left but only {drawn} diagrams; the guide has {GUIDE_DIAGRAM_COUNT}"
            ));
        }
    } else {
        println!(
            "{} draft chapter(s) in SUMMARY.md, so the guide's {GUIDE_DIAGRAM_COUNT} diagrams are not required yet \
             ({drawn} drawn): {}",
            drafts.len(),
            drafts.join(", ")
        );
    }
    Ok(verdict("diagram problems", problems))
}

/// The page to look at in every theme: the monolith chapter when it has diagrams (it is the
/// README's screenshot), else the page with the most diagrams.
fn theme_page(sources: &[SourcePage]) -> Option<&SourcePage> {
    let with_diagrams = || sources.iter().filter(|source| !source.fences.is_empty());
    with_diagrams()
        .find(|source| source.markdown.contains("monolith"))
        .or_else(|| with_diagrams().max_by_key(|source| source.fences.len()))
}

async fn diagrams_follow_the_theme(
    browser: &Browser,
    book: &Path,
) -> Result<Result<(), String>, BookTestError> {
    let sources = source_pages(&book_src_dir())?;
    let Some(source) = theme_page(&sources) else {
        return Ok(Err(
            "no page of the book has a mermaid diagram to check themes on".to_string(),
        ));
    };
    let page = &source.page;
    if !book.join(page).is_file() {
        return Ok(Err(format!("{page} was not built")));
    }
    let mut problems = Vec::new();
    let mut styles = Vec::new();
    browser.open(page).await?;
    for theme in THEMES {
        browser.use_theme(theme).await?;
        let classes = browser.html_classes().await?;
        if !classes.split_whitespace().any(|class| class == theme) {
            problems.push(format!(
                "{page} [{theme}]: <html> has classes \"{classes}\", not the theme"
            ));
        }
        let seen = browser.wait_for_diagrams().await?;
        if seen.diagrams.is_empty() {
            problems.push(format!("{page} [{theme}]: no mermaid block on the page"));
        }
        for (index, diagram) in seen.diagrams.iter().enumerate() {
            if !diagram.has_svg || diagram.syntax_error {
                problems.push(format!(
                    "{} [{theme}]: not drawn: \"{}\"",
                    describe(source, index),
                    diagram.text
                ));
            }
        }
        problems.extend(page_errors(browser, &format!("{page} [{theme}]")).await?);
        let stem = page.trim_end_matches(".html").replace('/', "-");
        let screenshot = browser.save_screenshot(&format!("{stem}-{theme}")).await?;
        println!("screenshot: {}", screenshot.display());
        styles.push((
            theme,
            seen.diagrams
                .first()
                .map(|diagram| diagram.style.clone())
                .unwrap_or_default(),
        ));
    }
    // mdbook-mermaid picks Mermaid's `dark` theme for mdBook's dark themes. If the light and a
    // dark rendering carry the same colours, dark diagrams would be unreadable.
    if let Some((_, light_style)) = styles.first() {
        for (theme, style) in styles.iter().skip(1) {
            if style == light_style {
                problems.push(format!(
                    "{page}: diagrams in `{theme}` use the same colours as in `light`"
                ));
            }
        }
    }
    // Leave the browser in the book's default theme for the checks that follow.
    browser
        .run("localStorage.removeItem('mdbook-theme');")
        .await?;
    Ok(verdict("theme problems", problems))
}

async fn playground_shows_wasm_result(
    browser: &Browser,
    book: &Path,
) -> Result<Result<(), String>, BookTestError> {
    if !book.join(PLAYGROUND_PAGE).is_file() {
        return Ok(Err(format!(
            "{PLAYGROUND_PAGE} is not in the built book: `cargo xtask book` builds the WASM playground into it"
        )));
    }
    browser.open(PLAYGROUND_PAGE).await?;
    let read_check = "const element = document.getElementById('wasm-check');
        return element ? { status: element.dataset.status || '', text: element.textContent || '' } : null;";
    let settled = poll_until(POLL_ATTEMPTS, || async {
        let seen = browser.run(read_check).await?;
        let status = seen
            .get("status")
            .and_then(|status| status.as_str())
            .unwrap_or_default();
        // Anything but a final verdict (pending, loading…) means the module is still starting.
        Ok(matches!(status, "ok" | "error").then_some(seen))
    })
    .await?;
    let mut problems = Vec::new();
    match settled {
        None => {
            let seen = browser.run(read_check).await?;
            problems.push(if seen.is_null() {
                format!("{PLAYGROUND_PAGE}: no element #wasm-check")
            } else {
                format!(
                    "{PLAYGROUND_PAGE}: #wasm-check never reached data-status ok or error: {seen}"
                )
            });
        }
        Some(seen) => {
            let status = seen
                .get("status")
                .and_then(|status| status.as_str())
                .unwrap_or_default();
            let text = seen
                .get("text")
                .and_then(|text| text.as_str())
                .unwrap_or_default();
            if status != "ok" || !text.contains(PLAYGROUND_EXPECTED) {
                problems.push(format!(
                    "{PLAYGROUND_PAGE}: #wasm-check has data-status=\"{status}\" and text \"{}\"; \
                     expected \"ok\" and a text containing {PLAYGROUND_EXPECTED}",
                    text.trim()
                ));
            }
        }
    }
    problems.extend(page_errors(browser, PLAYGROUND_PAGE).await?);
    Ok(verdict("playground problems", problems))
}

async fn search_finds_results(browser: &Browser) -> Result<Result<(), String>, BookTestError> {
    browser.open("index.html").await?;
    browser
        .client()
        .find(Locator::Id("mdbook-search-toggle"))
        .await?
        .click()
        .await?;
    browser
        .client()
        .find(Locator::Id("mdbook-searchbar"))
        .await?
        .send_keys(SEARCH_QUERY)
        .await?;
    let count_results = "return document.querySelectorAll('#mdbook-searchresults li').length;";
    let found = poll_until(POLL_ATTEMPTS, || async {
        let count = browser
            .run(count_results)
            .await?
            .as_u64()
            .unwrap_or_default();
        Ok((count > 0).then_some(count))
    })
    .await?;
    let mut problems = page_errors(browser, "index.html (search)").await?;
    match found {
        Some(count) => println!("search for \"{SEARCH_QUERY}\": {count} result(s)"),
        None => problems.push(format!(
            "index.html: searching for \"{SEARCH_QUERY}\" showed no results"
        )),
    }
    Ok(verdict("search problems", problems))
}
