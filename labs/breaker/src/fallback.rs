//! The fallback hook: what a caller gets instead of an error when the breaker says no.
//!
//! Failing fast is only half the point; the other half is failing *usefully*.
//! A rejected call can often be answered from the last good value (a price, a
//! feature flag, a recommendation list) or from a safe default (an order taken
//! now and charged later). [`Fallback`] keeps both and prefers the cached value.
//! It is deliberately dumb: no TTL, no invalidation, because deciding how stale
//! is too stale belongs to the business, not to the breaker.

use std::sync::Mutex;

/// A cached-value-or-default fallback.
#[derive(Debug)]
pub struct Fallback<T> {
    default: T,
    last_good: Mutex<Option<T>>,
    remember: bool,
}

impl<T: Clone> Fallback<T> {
    /// Always answers `default` when the breaker rejects a call.
    pub fn default_value(default: T) -> Self {
        Self {
            default,
            last_good: Mutex::new(None),
            remember: false,
        }
    }

    /// Answers the last value passed to [`Fallback::remember`], or `default` before there is one.
    pub fn cached_or(default: T) -> Self {
        Self {
            remember: true,
            ..Self::default_value(default)
        }
    }

    /// Records a good answer for later; a no-op for a [`Fallback::default_value`] fallback.
    pub fn remember(&self, value: &T) {
        if self.remember {
            // A poisoned lock only means another caller panicked mid-store of a
            // plain value; the value itself is still usable.
            let mut last = self.last_good.lock().unwrap_or_else(|e| e.into_inner());
            *last = Some(value.clone());
        }
    }

    /// The answer to give a rejected caller.
    pub fn value(&self) -> T {
        let last = self.last_good.lock().unwrap_or_else(|e| e.into_inner());
        last.clone().unwrap_or_else(|| self.default.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_value_ignores_good_answers() {
        let fallback = Fallback::default_value("deferred");
        fallback.remember(&"paid");
        assert_eq!(fallback.value(), "deferred");
    }

    #[test]
    fn cached_prefers_the_last_good_answer() {
        let fallback = Fallback::cached_or(0);
        assert_eq!(fallback.value(), 0);
        fallback.remember(&42);
        fallback.remember(&43);
        assert_eq!(fallback.value(), 43);
    }
}
