//! A tiny static server for the built book, on an ephemeral loopback port, that plants a JS-error
//! recorder at the top of every HTML page.
//!
//! Why inject rather than ask the browser: WebDriver's standard protocol has no portable way to
//! read a page's console, and chromedriver's log endpoint is vendor-specific. A script that runs
//! before anything else on the page sees every uncaught error, rejected promise, failed script or
//! stylesheet load and `console.error` call, and keeps them in `window.__bookErrors` for the
//! tests to read. The files on disk are never changed: what is tested is exactly what was built.

use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use tower_http::services::ServeDir;

use crate::BookTestError;

/// Records JS errors into `window.__bookErrors`; injected as the first element of `<head>`.
///
/// Kept short and ASCII-only so the page's own `<meta charset>` still falls in the first bytes
/// a browser scans for it. Resource errors (a missing script or stylesheet) do not bubble, so the
/// listener runs in the capture phase and ignores events whose target is the window itself,
/// which `window.onerror` already reports.
pub const ERROR_RECORDER_SCRIPT: &str = concat!(
    "<script>(function(){var e=window.__bookErrors=[];",
    "window.onerror=function(m,s,l,c,x){e.push('uncaught error: '+(x&&x.stack||m+' at '+s+':'+l+':'+c))};",
    "window.addEventListener('error',function(v){var t=v.target;if(t&&t!==window)",
    "e.push('failed to load '+(t.src||t.href||t.tagName))},true);",
    "window.addEventListener('unhandledrejection',function(v){var r=v.reason;",
    "e.push('unhandled rejection: '+(r&&r.stack||r))});",
    "var o=console.error;console.error=function(){",
    "e.push('console.error: '+Array.prototype.map.call(arguments,function(a){",
    "return a&&a.stack||String(a)}).join(' '));return o.apply(console,arguments)}})();</script>",
);

/// Inserts [`ERROR_RECORDER_SCRIPT`] right after the opening `<head …>` tag (or at the very
/// start when a page has none, so no page escapes recording).
pub fn inject_error_recorder(html: &str) -> String {
    let lowercase = html.to_ascii_lowercase();
    let head_end = lowercase
        .match_indices("<head")
        .find(|(at, _)| {
            matches!(
                lowercase.as_bytes().get(at + 5),
                Some(b'>' | b' ' | b'\t' | b'\n' | b'\r')
            )
        })
        .and_then(|(at, _)| lowercase[at..].find('>').map(|close| at + close + 1));
    let at = head_end.unwrap_or(0);
    format!("{}{ERROR_RECORDER_SCRIPT}{}", &html[..at], &html[at..])
}

async fn add_error_recorder(response: Response) -> Response {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if !is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let page = inject_error_recorder(&String::from_utf8_lossy(&bytes));
    parts.headers.remove(header::CONTENT_LENGTH);
    // mdBook writes UTF-8 (and says so in a <meta>); saying it in the header as well means the
    // decoding never depends on where the injected script pushed that <meta>.
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Response::from_parts(parts, Body::from(page))
}

/// The book served on `127.0.0.1:<ephemeral port>` until dropped.
#[derive(Debug)]
pub struct BookServer {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl BookServer {
    /// Serves `book_dir` (directories answer with their `index.html`). Call inside a tokio runtime.
    pub async fn start(book_dir: &Path) -> Result<Self, BookTestError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(BookTestError::Server)?;
        let address = listener.local_addr().map_err(BookTestError::Server)?;
        let app = Router::new()
            .fallback_service(ServeDir::new(book_dir))
            .layer(axum::middleware::map_response(add_error_recorder));
        let task = tokio::spawn(async move {
            // The server lives as long as the tests; an error here surfaces as failed page loads.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { address, task })
    }

    /// The URL of a page given relative to the book root (`patterns/saga.html`).
    pub fn url(&self, page: &str) -> String {
        format!("http://{}/{}", self.address, page.trim_start_matches('/'))
    }
}

impl Drop for BookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_goes_first_in_head() {
        let page = inject_error_recorder(
            "<!DOCTYPE html>\n<html><HEAD lang=\"en\"><meta charset=\"UTF-8\"></head></html>",
        );
        assert!(
            page.starts_with("<!DOCTYPE html>\n<html><HEAD lang=\"en\"><script>"),
            "{page}"
        );
        assert!(page.contains("</script><meta charset"), "{page}");
    }

    #[test]
    fn header_element_is_not_mistaken_for_head() {
        let page = inject_error_recorder("<header>x</header><head></head>");
        assert!(
            page.starts_with("<header>x</header><head><script>"),
            "{page}"
        );
    }

    #[test]
    fn recorder_stays_short_enough_for_the_charset_scan() {
        assert!(ERROR_RECORDER_SCRIPT.is_ascii());
        assert!(
            ERROR_RECORDER_SCRIPT.len() < 800,
            "{} bytes",
            ERROR_RECORDER_SCRIPT.len()
        );
    }
}
