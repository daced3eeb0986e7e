//! The `tracestate` header: vendors' own trace data, a list of at most 32 `key=value` members.
//!
//! Parsed strictly (a list that breaks a rule is dropped whole, never half-propagated), and
//! updated the way the Recommendation says: a vendor that changes or adds its member moves it
//! to the front, and a list that would grow past 32 loses its right-most member.

use std::fmt;

/// At most this many members in one `tracestate`.
pub const MAX_MEMBERS: usize = 32;

/// A valid `tracestate`, its members in order, left-most (most recently updated) first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceState {
    members: Vec<(String, String)>,
}

/// Why a `tracestate` was refused (and so dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceStateError {
    /// More than 32 members.
    TooManyMembers(usize),
    /// A member without `=`.
    MissingEquals(String),
    /// A key outside the grammar: lowercase letters, digits, `_-*/`, one optional `@`,
    /// at most 256 characters (tenant at most 241, system at most 14).
    InvalidKey(String),
    /// A value outside the grammar: 1 to 256 printable ASCII characters but `,` and `=`, not
    /// ending in a space.
    InvalidValue(String),
    /// The same key twice.
    DuplicateKey(String),
}

impl fmt::Display for TraceStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceStateError::TooManyMembers(n) => write!(f, "{n} members, at most 32"),
            TraceStateError::MissingEquals(m) => write!(f, "member {m:?} has no '='"),
            TraceStateError::InvalidKey(k) => write!(f, "key {k:?} is outside the grammar"),
            TraceStateError::InvalidValue(v) => write!(f, "value {v:?} is outside the grammar"),
            TraceStateError::DuplicateKey(k) => write!(f, "key {k:?} appears twice"),
        }
    }
}

impl std::error::Error for TraceStateError {}

impl TraceState {
    /// An empty list.
    pub fn new() -> TraceState {
        TraceState::default()
    }

    /// Parses every `tracestate` field of a request, in order, as one list (several fields
    /// are one list joined by commas). Empty members and whitespace around them are allowed.
    pub fn parse<'a>(
        fields: impl IntoIterator<Item = &'a str>,
    ) -> Result<TraceState, TraceStateError> {
        let mut members: Vec<(String, String)> = Vec::new();
        for field in fields {
            for member in field.split(',') {
                let member = member.trim_matches([' ', '\t']);
                if member.is_empty() {
                    continue;
                }
                let (key, value) = member
                    .split_once('=')
                    .ok_or_else(|| TraceStateError::MissingEquals(member.to_owned()))?;
                if !valid_key(key) {
                    return Err(TraceStateError::InvalidKey(key.to_owned()));
                }
                if !valid_value(value) {
                    return Err(TraceStateError::InvalidValue(value.to_owned()));
                }
                if members.iter().any(|(k, _)| k == key) {
                    return Err(TraceStateError::DuplicateKey(key.to_owned()));
                }
                members.push((key.to_owned(), value.to_owned()));
            }
        }
        if members.len() > MAX_MEMBERS {
            return Err(TraceStateError::TooManyMembers(members.len()));
        }
        Ok(TraceState { members })
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` to `value` and moves it to the front; drops the right-most member if the
    /// list would exceed 32. Refuses a key or value outside the grammar.
    pub fn upsert(&mut self, key: &str, value: &str) -> Result<(), TraceStateError> {
        if !valid_key(key) {
            return Err(TraceStateError::InvalidKey(key.to_owned()));
        }
        if !valid_value(value) {
            return Err(TraceStateError::InvalidValue(value.to_owned()));
        }
        self.members.retain(|(k, _)| k != key);
        self.members.insert(0, (key.to_owned(), value.to_owned()));
        self.members.truncate(MAX_MEMBERS);
        Ok(())
    }

    /// Removes `key`'s member, if present.
    pub fn remove(&mut self, key: &str) {
        self.members.retain(|(k, _)| k != key);
    }

    /// The members, left-most first.
    pub fn members(&self) -> impl Iterator<Item = (&str, &str)> {
        self.members.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members (then no `tracestate` is sent).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl fmt::Display for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}

fn key_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/')
}

/// `simple-key = lcalpha 0*255(keychar)`, `multi-tenant-key = tenant-id "@" system-id`,
/// `tenant-id = (lcalpha / DIGIT) 0*240(keychar)`, `system-id = lcalpha 0*13(keychar)`.
pub fn valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    match key.split_once('@') {
        None => {
            (1..=256).contains(&bytes.len())
                && bytes[0].is_ascii_lowercase()
                && bytes.iter().all(|&c| key_char(c))
        }
        Some((tenant, system)) => {
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            (1..=241).contains(&t.len())
                && (t[0].is_ascii_lowercase() || t[0].is_ascii_digit())
                && t.iter().all(|&c| key_char(c))
                && (1..=14).contains(&s.len())
                && s[0].is_ascii_lowercase()
                && s.iter().all(|&c| key_char(c))
        }
    }
}

/// `value = 0*255(chr) nblk-chr`, `chr = %x20 / nblk-chr`, `nblk-chr = %x21-2B / %x2D-3C / %x3E-7E`.
pub fn valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    (1..=256).contains(&bytes.len())
        && bytes
            .iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
        && bytes.last() != Some(&b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_fields_are_one_list_and_empty_members_are_skipped() {
        let state =
            TraceState::parse(["rojo=00f067aa0ba902b7, ,", "congo=t61rcWkgMzE"]).expect("valid");
        assert_eq!(state.to_string(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    }

    #[test]
    fn thirty_two_members_pass_and_thirty_three_drop_the_list() {
        let list = |n: usize| {
            (0..n)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(
            TraceState::parse([list(32).as_str()]).map(|s| s.len()),
            Ok(32)
        );
        assert_eq!(
            TraceState::parse([list(33).as_str()]),
            Err(TraceStateError::TooManyMembers(33))
        );
    }

    #[test]
    fn an_update_moves_the_member_to_the_front_and_drops_the_rightmost_past_32() {
        let list = (0..32)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let mut state = TraceState::parse([list.as_str()]).expect("valid");
        state.upsert("k5", "new").expect("valid");
        assert_eq!(state.members().next(), Some(("k5", "new")));
        assert_eq!(state.len(), 32);
        state.upsert("lab", "x").expect("valid");
        assert_eq!(state.len(), 32);
        assert_eq!(state.get("k31"), None, "the right-most member went");
        assert_eq!(state.members().next(), Some(("lab", "x")));
    }

    #[test]
    fn keys_follow_the_grammar() {
        assert!(valid_key("a"));
        assert!(valid_key(&"a".repeat(256)));
        assert!(!valid_key(&"a".repeat(257)));
        assert!(valid_key(&format!(
            "{}@{}",
            "1".repeat(241),
            "s".repeat(14)
        )));
        assert!(!valid_key(&format!("{}@{}", "1".repeat(242), "s")));
        assert!(!valid_key(&format!("t@{}", "s".repeat(15))));
        assert!(!valid_key("Upper"));
        assert!(!valid_key("1simple"));
        assert!(!valid_key("a@1"));
        assert!(!valid_key("a@b@c"));
        assert!(!valid_key(""));
    }

    #[test]
    fn values_follow_the_grammar() {
        assert!(valid_value("x y"));
        assert!(!valid_value("x "));
        assert!(!valid_value("a,b"));
        assert!(!valid_value("a=b"));
        assert!(!valid_value(""));
        assert!(!valid_value(&"v".repeat(257)));
        assert!(!valid_value("é"));
    }

    #[test]
    fn duplicate_keys_and_bad_members_drop_the_list() {
        assert!(matches!(
            TraceState::parse(["a=1,a=2"]),
            Err(TraceStateError::DuplicateKey(_))
        ));
        assert!(matches!(
            TraceState::parse(["novalue"]),
            Err(TraceStateError::MissingEquals(_))
        ));
    }
}
