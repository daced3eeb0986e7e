//! Settings kept in the page's URL, declared once per playground as a table of named,
//! bounded fields.
//!
//! A playground's settings are a plain struct with a [`Default`]. Its [`Settings::FIELDS`]
//! table says, for every field, its key in the query string (which is also the name of the
//! page's form control), which values it takes, and how to read and write it in the struct.
//! Reading a query string ([`Settings::from_query`]) and writing one back
//! ([`Settings::pairs`]) follow from that table alone, so both playgrounds keep the same rules
//! and the rules are tested once, here:
//!
//! - a key no field has is ignored (the page's URL also carries mdBook's own keys);
//! - a value a field refuses leaves the field as it was: clamping would silently turn a typo
//!   into a different scenario, while keeping the default shows it in the page's controls;
//! - when a key comes twice, the last accepted value wins.

use crate::query;

/// Which values a field takes in the URL.
///
/// A field's value is held as a `u64`: the number itself, or the index of its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A whole number in `min..=max`; anything else is refused.
    Number {
        /// The smallest value accepted.
        min: u64,
        /// The largest value accepted.
        max: u64,
    },
    /// One of these names, held as its index; any other text is refused.
    OneOf(&'static [&'static str]),
    /// A switch between two names, held as 0 or 1: exactly the second name reads as 1 and
    /// any other text (the first name, a typo, nothing) as 0, so it never refuses a value.
    Switch([&'static str; 2]),
}

impl Kind {
    /// Reads a value from the URL: `None` when this kind refuses it.
    pub fn parse(self, text: &str) -> Option<u64> {
        match self {
            Kind::Number { min, max } => query::in_range(text, min, max),
            Kind::OneOf(names) => names
                .iter()
                .position(|name| *name == text)
                .and_then(|index| u64::try_from(index).ok()),
            Kind::Switch([_, second]) => Some(u64::from(text == second)),
        }
    }

    /// Whether `value` is one this kind holds: a number within the bounds, a name's index.
    pub fn admits(self, value: u64) -> bool {
        match self {
            Kind::Number { min, max } => (min..=max).contains(&value),
            Kind::OneOf(names) => usize::try_from(value).is_ok_and(|index| index < names.len()),
            Kind::Switch(_) => value <= 1,
        }
    }

    /// Writes a value for the URL. A name's index past the names writes the first name.
    pub fn format(self, value: u64) -> String {
        let names: &[&str] = match self {
            Kind::Number { .. } => return value.to_string(),
            Kind::OneOf(names) => names,
            Kind::Switch(ref names) => names,
        };
        let name = usize::try_from(value)
            .ok()
            .and_then(|index| names.get(index))
            .or(names.first());
        name.map_or_else(String::new, |name| (*name).to_string())
    }
}

/// One setting: its key in the URL, the values it takes, and how to reach it in `S`.
pub struct Field<S> {
    /// The key in the query string and the name of the page's form control.
    pub key: &'static str,
    /// The values it takes.
    pub kind: Kind,
    /// The field's value as [`Kind`] holds it.
    pub get: fn(&S) -> u64,
    /// Stores a value [`Kind::parse`] accepted.
    pub set: fn(&mut S, u64),
}

/// Settings that live in the URL, described by a table of [`Field`]s.
pub trait Settings: Default + Sized + 'static {
    /// Every field, in the order the query string lists them.
    const FIELDS: &'static [Field<Self>];

    /// Reads the settings from a query string; unknown keys and refused values keep defaults.
    fn from_query(text: &str) -> Self {
        let mut settings = Self::default();
        for (key, value) in query::pairs(text) {
            settings.set_from_url(key, value);
        }
        settings
    }

    /// Sets the field named `key` from its URL text; an unknown key or a refused value
    /// changes nothing.
    fn set_from_url(&mut self, key: &str, text: &str) {
        if let Some(field) = Self::FIELDS.iter().find(|field| field.key == key)
            && let Some(value) = field.kind.parse(text)
        {
            (field.set)(self, value);
        }
    }

    /// The settings as `(form field, value)` pairs: the query string and the page's controls.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        Self::FIELDS
            .iter()
            .map(|field| (field.key, field.kind.format((field.get)(self))))
            .collect()
    }
}

/// Narrows a value a [`Kind::Number`] field accepted to the `u32` the field is.
///
/// The field's bounds fit a `u32`, so the fallback (`u32::MAX`) is never used.
pub fn narrow(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Checks a settings table against the rules every table keeps (used by each playground's
/// tests): keys are unique, the defaults are values the fields accept, every accepted edge
/// value reads back as written, and values just outside a number's bounds are refused.
#[cfg(test)]
pub fn check_table<S: Settings + PartialEq + std::fmt::Debug>() {
    let defaults = S::default();
    let keys: Vec<&str> = S::FIELDS.iter().map(|field| field.key).collect();
    for (at, key) in keys.iter().enumerate() {
        assert!(!keys[..at].contains(key), "key {key} is declared twice");
    }
    for field in S::FIELDS {
        let default = (field.get)(&defaults);
        let written = field.kind.format(default);
        assert_eq!(
            field.kind.parse(&written),
            Some(default),
            "{}: the default {written} is not a value the field takes",
            field.key
        );
        let accepted: Vec<String> = match field.kind {
            Kind::Number { min, max } => vec![min.to_string(), max.to_string()],
            Kind::OneOf(names) => names.iter().map(|name| name.to_string()).collect(),
            Kind::Switch(names) => names.iter().map(|name| name.to_string()).collect(),
        };
        for text in accepted {
            let read = S::from_query(&format!("{}={text}", field.key));
            let pairs = read.pairs();
            let written = pairs.iter().find(|(key, _)| *key == field.key);
            let written = written.map(|(_, value)| value.as_str());
            assert_eq!(
                written,
                Some(text.as_str()),
                "{}={text} reads back",
                field.key
            );
            let again = S::from_query(&query::to_query(pairs.clone()));
            assert_eq!(again, read, "{}={text} round-trips", field.key);
        }
        if let Kind::Number { min, max } = field.kind {
            let outside = [min.checked_sub(1), max.checked_add(1)];
            for text in outside.into_iter().flatten().map(|n| n.to_string()) {
                let read = S::from_query(&format!("{}={text}", field.key));
                assert_eq!(read, defaults, "{}={text} was not refused", field.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small settings struct with one field of each kind.
    #[derive(Debug, PartialEq)]
    struct Demo {
        size: u32,
        colour: usize,
        on: bool,
    }

    impl Default for Demo {
        fn default() -> Self {
            Demo {
                size: 10,
                colour: 1,
                on: false,
            }
        }
    }

    impl Settings for Demo {
        const FIELDS: &'static [Field<Self>] = &[
            Field {
                key: "size",
                kind: Kind::Number { min: 1, max: 100 },
                get: |s| u64::from(s.size),
                set: |s, v| s.size = narrow(v),
            },
            Field {
                key: "colour",
                kind: Kind::OneOf(&["red", "green", "blue"]),
                get: |s| s.colour as u64,
                set: |s, v| s.colour = v as usize,
            },
            Field {
                key: "on",
                kind: Kind::Switch(["0", "1"]),
                get: |s| u64::from(s.on),
                set: |s, v| s.on = v == 1,
            },
        ];
    }

    #[test]
    fn settings_round_trip_through_the_query_in_table_order() {
        let demo = Demo {
            size: 42,
            colour: 2,
            on: true,
        };
        let written = query::to_query(demo.pairs());
        assert_eq!(written, "size=42&colour=blue&on=1");
        assert_eq!(Demo::from_query(&written), demo);
        assert_eq!(Demo::from_query(&format!("?{written}")), demo);
    }

    #[test]
    fn out_of_range_numbers_and_unknown_names_are_refused_not_clamped() {
        for text in [
            "size=0", "size=101", "size=-1", "size=4.5", "size=", "size=1e2",
        ] {
            assert_eq!(Demo::from_query(text), Demo::default(), "{text}");
        }
        assert_eq!(Demo::from_query("size=1").size, 1);
        assert_eq!(Demo::from_query("size=100").size, 100);
        assert_eq!(Demo::from_query("colour=purple"), Demo::default());
        assert_eq!(Demo::from_query("colour=Red"), Demo::default());
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let read = Demo::from_query("highlight=x&speed=4&&=3&size&size=20&Size=30");
        assert_eq!(
            read,
            Demo {
                size: 20,
                ..Demo::default()
            }
        );
    }

    #[test]
    fn the_last_accepted_value_of_a_repeated_key_wins() {
        assert_eq!(Demo::from_query("size=20&size=30").size, 30);
        assert_eq!(Demo::from_query("size=20&size=abc").size, 20);
        assert_eq!(Demo::from_query("size=20&size=3000").size, 20);
    }

    #[test]
    fn a_switch_reads_anything_but_its_second_name_as_its_first() {
        assert!(Demo::from_query("on=1").on);
        assert!(!Demo::from_query("on=1&on=yes").on);
        assert!(!Demo::from_query("on=").on);
        assert_eq!(Kind::Switch(["count", "time"]).parse("garbage"), Some(0));
    }

    #[test]
    fn a_name_past_the_list_writes_the_first_name() {
        assert_eq!(Kind::OneOf(&["none", "payment"]).format(7), "none");
        assert_eq!(Kind::Switch(["0", "1"]).format(2), "0");
        assert_eq!(Kind::Number { min: 0, max: 9 }.format(7), "7");
    }

    #[test]
    fn the_demo_table_keeps_the_rules() {
        check_table::<Demo>();
    }
}
