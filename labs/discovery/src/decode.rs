//! Request bodies decoded the way Consul decodes them: keys case-insensitive, the snake_case
//! aliases it accepts, and durations as Go duration strings (`"10s"`, `"1m30s"`) or numbers
//! of nanoseconds.

use serde_json::{Map, Value};

use discovery_core::Millis;

/// The keys whose values are free-form maps: their own keys keep their case.
const FREE_FORM: [&str; 4] = ["meta", "nodemeta", "taggedaddresses", "header"];

// ANCHOR: normalise
/// `value` with every object key folded to lower case without underscores (`Name`, `name` and
/// `NAME` are one key; `deregister_critical_service_after` is
/// `DeregisterCriticalServiceAfter`), except inside the free-form maps (`Meta`, `NodeMeta`,
/// `TaggedAddresses`, `Header`), whose keys are the caller's data.
pub fn normalise(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                let folded = fold(&key);
                let value = if FREE_FORM.contains(&folded.as_str()) {
                    value
                } else {
                    normalise(value)
                };
                out.insert(folded, value);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(normalise).collect()),
        other => other,
    }
}
// ANCHOR_END: normalise

fn fold(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

// ANCHOR: duration
/// A Go duration: a string such as `"10s"`, `"1m30s"`, `"1.5h"`, `"250ms"` or `"0"`, or a
/// number of nanoseconds (what Go's JSON encoding of `time.Duration` sends). Rounded down to
/// whole milliseconds.
pub fn duration(value: &Value) -> Result<Millis, String> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .map(|nanos| Millis(nanos / 1_000_000))
            .ok_or_else(|| format!("invalid duration {n}: not a whole, non-negative number")),
        Value::String(text) => parse_go_duration(text),
        other => Err(format!("invalid duration {other}")),
    }
}
// ANCHOR_END: duration

/// Parses Go's `time.ParseDuration` syntax (no sign: a negative duration makes no sense here).
pub fn parse_go_duration(text: &str) -> Result<Millis, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    if text == "0" {
        return Ok(Millis::ZERO);
    }
    if text.is_empty() {
        return Err(invalid());
    }
    let mut rest = text;
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        let value: f64 = number.parse().map_err(|_| invalid())?;
        total_nanos += value * scale;
        rest = after;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(Millis((total_nanos / 1e6) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_durations_parse_like_go() {
        for (text, ms) in [
            ("10s", 10_000),
            ("1m30s", 90_000),
            ("1.5h", 5_400_000),
            ("250ms", 250),
            ("0", 0),
            ("1h1m1s", 3_661_000),
            ("1500us", 1),
        ] {
            assert_eq!(parse_go_duration(text), Ok(Millis(ms)), "{text}");
        }
        for bad in ["", "10", "s", "10x", "1..5s", "-1s", "ten seconds", "1s2"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} is refused");
        }
        assert_eq!(duration(&json!(2_000_000_000u64)), Ok(Millis(2_000)));
        assert!(duration(&json!(-1)).is_err());
        assert!(duration(&json!(true)).is_err());
    }

    #[test]
    fn keys_fold_but_free_form_maps_keep_theirs() {
        let folded = normalise(json!({
            "Name": "web", "check": {"deregister_critical_service_after": "1m", "TTL": "5s"},
            "Meta": {"Version": "1"}
        }));
        assert_eq!(
            folded,
            json!({"name": "web", "check": {"deregistercriticalserviceafter": "1m", "ttl": "5s"},
                   "meta": {"Version": "1"}})
        );
    }
}
