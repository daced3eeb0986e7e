//! Wait for a condition with a bounded number of tries, instead of sleeping and then checking.

use std::time::Duration;

/// How long [`wait_until`] pauses between two tries.
pub const PAUSE: Duration = Duration::from_millis(20);

/// Checks `condition` up to `tries` times, pausing [`PAUSE`] between tries, and returns the
/// first `Some` it gives; panics naming `what` was awaited when every try gave `None`.
pub fn wait_until<T>(what: &str, tries: u32, mut condition: impl FnMut() -> Option<T>) -> T {
    for attempt in 0..tries {
        if let Some(found) = condition() {
            return found;
        }
        if attempt + 1 < tries {
            std::thread::sleep(PAUSE);
        }
    }
    panic!("gave up waiting for {what} after {tries} tries");
}

/// [`wait_until`] for async tests on tokio: checks `condition` up to `tries` times, sleeping
/// [`PAUSE`] on tokio's clock between tries, and returns the first `Some` it gives; panics
/// naming `what` was awaited when every try gave `None`.
#[cfg(feature = "tokio")]
pub async fn wait_until_async<T, F>(what: &str, tries: u32, mut condition: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Option<T>>,
{
    for attempt in 0..tries {
        if let Some(found) = condition().await {
            return found;
        }
        if attempt + 1 < tries {
            tokio::time::sleep(PAUSE).await;
        }
    }
    panic!("gave up waiting for {what} after {tries} tries");
}

#[cfg(test)]
mod tests {
    use super::wait_until;

    #[cfg(feature = "tokio")]
    #[tokio::test(start_paused = true)]
    async fn the_async_wait_returns_once_the_condition_holds() {
        let calls = std::cell::Cell::new(0);
        let found = super::wait_until_async("the second call", 5, || {
            calls.set(calls.get() + 1);
            let now = calls.get();
            async move { (now == 2).then_some(now) }
        })
        .await;
        assert_eq!(found, 2);
    }

    #[test]
    fn returns_what_the_condition_finds_once_it_holds() {
        let mut calls = 0;
        let found = wait_until("the third call", 10, || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(found, 3);
    }

    #[test]
    #[should_panic(expected = "gave up waiting for nothing after 2 tries")]
    fn gives_up_after_its_tries() {
        wait_until::<()>("nothing", 2, || None);
    }
}
