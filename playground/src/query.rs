//! The scenario in the page's address: a tiny `key=value&key=value` reader and writer.
//!
//! A reader shares a scenario by sharing the URL, so the settings of both playgrounds are
//! written to and read from the query string. Parsing lives here, in Rust, rather than in
//! the page's script so the same rules are tested on the host and in WASM, and a hand-edited
//! or truncated link degrades to defaults instead of breaking the page. Only the characters
//! the playgrounds write are expected (letters, digits, `.`, `_`, `-`), so no
//! percent-decoding is needed: anything else simply fails to parse and falls back.
//!
//! The settings' table ([`crate::settings`]) reads and writes through these; the breaker's
//! scenario adds its `do` list of actions and its clock `t` with them.

/// The `key=value` pairs of a query string (a leading `?` is allowed), in order.
pub fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// Parses `value` as a `T` inside `min..=max`; `None` for anything else.
pub fn in_range<T>(value: &str, min: T, max: T) -> Option<T>
where
    T: std::str::FromStr + PartialOrd,
{
    value
        .parse::<T>()
        .ok()
        .filter(|parsed| *parsed >= min && *parsed <= max)
}

/// Parses `value` into `slot` when it is a valid `T` inside `min..=max`; leaves it otherwise.
///
/// Clamping would silently turn a typo into a different scenario; ignoring the value keeps
/// the default, which the page's controls then show.
pub fn set_in_range<T>(slot: &mut T, value: &str, min: T, max: T)
where
    T: std::str::FromStr + PartialOrd,
{
    if let Some(parsed) = in_range(value, min, max) {
        *slot = parsed;
    }
}

/// Writes pairs back as a query string (without the leading `?`).
pub fn to_query<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> String {
    pairs
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pairs_with_or_without_question_mark() {
        let read: Vec<_> = pairs("?a=1&b=&c").collect();
        assert_eq!(read, vec![("a", "1"), ("b", ""), ("c", "")]);
    }

    #[test]
    fn out_of_range_or_garbage_keeps_the_default() {
        let mut size = 10u32;
        set_in_range(&mut size, "0", 1, 100);
        assert_eq!(size, 10);
        set_in_range(&mut size, "x", 1, 100);
        assert_eq!(size, 10);
        set_in_range(&mut size, "20", 1, 100);
        assert_eq!(size, 20);
    }

    #[test]
    fn writes_pairs_in_order() {
        assert_eq!(
            to_query([("a", "1".to_string()), ("b", "x".to_string())]),
            "a=1&b=x"
        );
    }
}
