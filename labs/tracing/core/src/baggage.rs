//! W3C Baggage: application `key=value` pairs that travel with a trace (`baggage` header).
//!
//! Values are percent-encoded on the wire and decoded here. The Recommendation asks every
//! platform to carry at least 64 members and 8192 bytes; this one carries exactly that much and
//! drops whole members beyond it, never a partial one. A header outside the grammar is dropped.

use std::fmt;

/// The most members propagated.
pub const MAX_MEMBERS: usize = 64;
/// The most bytes of `baggage` header propagated.
pub const MAX_BYTES: usize = 8192;

/// One baggage member: key, decoded value, and its properties as written (`;k=v`, `;flag`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// An HTTP token.
    pub key: String,
    /// The decoded value (any UTF-8).
    pub value: String,
    /// The member's properties, verbatim.
    pub properties: Vec<String>,
}

/// Parsed baggage, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Baggage {
    members: Vec<Member>,
}

/// Why a `baggage` header was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaggageError {
    /// A member without `key=value`.
    Malformed(String),
    /// A key that is not an HTTP token.
    InvalidKey(String),
    /// A value with a character outside `baggage-octet` or a broken `%XX` escape.
    InvalidValue(String),
}

impl fmt::Display for BaggageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BaggageError::Malformed(m) => write!(f, "member {m:?} is not key=value"),
            BaggageError::InvalidKey(k) => write!(f, "key {k:?} is not a token"),
            BaggageError::InvalidValue(v) => write!(f, "value {v:?} is not percent-encoded"),
        }
    }
}

impl std::error::Error for BaggageError {}

fn token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// `baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`.
fn baggage_octet(c: u8) -> bool {
    matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// Percent-encodes `value` so every byte on the wire is a `baggage-octet` (and `%` is escaped).
pub fn encode_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if baggage_octet(b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a wire value, or `None` if it holds a non-`baggage-octet` or a broken escape, or
/// does not decode to UTF-8.
pub fn decode_value(wire: &str) -> Option<String> {
    let bytes = wire.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !baggage_octet(b) {
            return None;
        }
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Baggage {
    /// No members.
    pub fn new() -> Baggage {
        Baggage::default()
    }

    /// Parses every `baggage` field of a request as one list. Members past 64, or past 8192
    /// bytes of header, are dropped whole.
    pub fn parse<'a>(fields: impl IntoIterator<Item = &'a str>) -> Result<Baggage, BaggageError> {
        let mut members = Vec::new();
        for field in fields {
            for raw in field.split(',') {
                let raw = raw.trim_matches([' ', '\t']);
                if raw.is_empty() {
                    continue;
                }
                let mut parts = raw.split(';');
                let pair = parts.next().unwrap_or_default();
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| BaggageError::Malformed(raw.to_owned()))?;
                let key = key.trim_matches([' ', '\t']);
                if key.is_empty() || !key.bytes().all(token_char) {
                    return Err(BaggageError::InvalidKey(key.to_owned()));
                }
                let wire = value.trim_matches([' ', '\t']);
                let value = decode_value(wire)
                    .ok_or_else(|| BaggageError::InvalidValue(wire.to_owned()))?;
                let properties = parts
                    .map(|p| p.trim_matches([' ', '\t']).to_owned())
                    .filter(|p| !p.is_empty())
                    .collect();
                members.push(Member {
                    key: key.to_owned(),
                    value,
                    properties,
                });
            }
        }
        let mut baggage = Baggage::new();
        for member in members {
            baggage.push_bounded(member);
        }
        Ok(baggage)
    }

    fn push_bounded(&mut self, member: Member) -> bool {
        let separator = usize::from(!self.members.is_empty());
        let fits = self.members.len() < MAX_MEMBERS
            && self.wire_len() + separator + member_wire(&member).len() <= MAX_BYTES;
        if fits {
            self.members.push(member);
        }
        fits
    }

    /// Sets `key` to `value` (replacing an earlier member of that key). Returns `false`, and
    /// changes nothing, when the member would pass the limits or the key is not a token.
    pub fn set(&mut self, key: &str, value: &str) -> bool {
        if key.is_empty() || !key.bytes().all(token_char) {
            return false;
        }
        let before = self.members.clone();
        self.members.retain(|m| m.key != key);
        let added = self.push_bounded(Member {
            key: key.to_owned(),
            value: value.to_owned(),
            properties: Vec::new(),
        });
        if !added {
            self.members = before;
        }
        added
    }

    /// The decoded value of the first member named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.key == key)
            .map(|m| m.value.as_str())
    }

    /// The members, in order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The length of the header this baggage formats to.
    pub fn wire_len(&self) -> usize {
        self.to_string().len()
    }
}

fn member_wire(member: &Member) -> String {
    let mut out = format!("{}={}", member.key, encode_value(&member.value));
    for property in &member.properties {
        out.push(';');
        out.push_str(property);
    }
    out
}

impl fmt::Display for Baggage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, member) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&member_wire(member))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_percent_decoded_and_encoded() {
        let baggage = Baggage::parse(["user=J%C3%BCrgen%20K, tier = gold;ttl=60"]).expect("valid");
        assert_eq!(baggage.get("user"), Some("Jürgen K"));
        assert_eq!(baggage.get("tier"), Some("gold"));
        assert_eq!(baggage.members()[1].properties, vec!["ttl=60".to_owned()]);
        assert_eq!(baggage.to_string(), "user=J%C3%BCrgen%20K,tier=gold;ttl=60");
    }

    #[test]
    fn broken_escapes_and_bad_keys_drop_the_header() {
        assert!(Baggage::parse(["a=%zz"]).is_err());
        assert!(Baggage::parse(["a=%4"]).is_err());
        assert!(Baggage::parse(["a=b c"]).is_err());
        assert!(Baggage::parse(["a b=c"]).is_err());
        assert!(Baggage::parse(["novalue"]).is_err());
    }

    #[test]
    fn members_past_64_are_dropped_whole() {
        let list = (0..70)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let baggage = Baggage::parse([list.as_str()]).expect("valid");
        assert_eq!(baggage.members().len(), 64);
        assert_eq!(baggage.members()[63].key, "k63");
    }

    #[test]
    fn members_past_8192_bytes_are_dropped_whole() {
        let big = "v".repeat(3000);
        let list = (0..4)
            .map(|i| format!("k{i}={big}"))
            .collect::<Vec<_>>()
            .join(",");
        let baggage = Baggage::parse([list.as_str()]).expect("valid");
        assert_eq!(baggage.members().len(), 2);
        assert!(baggage.wire_len() <= MAX_BYTES);
        let mut full = baggage.clone();
        assert!(
            !full.set("k9", &big),
            "a third 3000-byte member does not fit"
        );
        assert_eq!(full, baggage, "a refused set changes nothing");
    }

    #[test]
    fn encoding_round_trips_any_text() {
        for text in ["", "a,b;c=d", "100%", "ünï cødé", "\"quoted\"\\"] {
            assert_eq!(decode_value(&encode_value(text)).as_deref(), Some(text));
            assert!(encode_value(text).bytes().all(baggage_octet));
        }
    }
}
