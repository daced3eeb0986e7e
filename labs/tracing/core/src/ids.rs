//! Trace and span identifiers, trace flags, and a seeded source of fresh identifiers.
//!
//! The identifiers print as the lowercase hex the W3C `traceparent` header carries. Parsing
//! them from a header is the graded module's job ([`crate::traceparent`]); this module only
//! holds the values.

use std::fmt;

use serde::{Deserialize, Serialize};

// ANCHOR: ids
/// A trace's 16-byte identifier, shared by every span of one request's journey.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TraceId(pub [u8; 16]);

/// A span's 8-byte identifier, unique within its trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SpanId(pub [u8; 8]);

/// The `traceparent` header's flag byte. Level 2 of the Recommendation defines two bits:
/// sampled (`0x01`) and random trace id (`0x02`); the others are reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TraceFlags(pub u8);
// ANCHOR_END: ids

impl TraceFlags {
    /// The caller may have recorded this trace: record yours too.
    pub const SAMPLED: TraceFlags = TraceFlags(0x01);
    /// At least the right-most 7 bytes of the trace id were chosen at random (Level 2).
    pub const RANDOM: TraceFlags = TraceFlags(0x02);
    /// The bits this implementation knows; the reserved ones are sent as zero.
    pub const KNOWN: TraceFlags = TraceFlags(0x03);

    /// Whether the sampled bit is set.
    pub fn sampled(self) -> bool {
        self.0 & Self::SAMPLED.0 != 0
    }

    /// Whether the random-trace-id bit is set.
    pub fn random(self) -> bool {
        self.0 & Self::RANDOM.0 != 0
    }

    /// The same flags with the sampled bit set to `sampled`, every other bit unchanged.
    pub fn with_sampled(self, sampled: bool) -> TraceFlags {
        if sampled {
            TraceFlags(self.0 | Self::SAMPLED.0)
        } else {
            TraceFlags(self.0 & !Self::SAMPLED.0)
        }
    }
}

impl TraceId {
    /// The all-zero id, which the Recommendation forbids on the wire.
    pub const INVALID: TraceId = TraceId([0; 16]);

    /// The id as a `u128`, big-endian (the hex reads the same).
    pub fn as_u128(self) -> u128 {
        u128::from_be_bytes(self.0)
    }
}

impl SpanId {
    /// The all-zero id, which the Recommendation forbids on the wire.
    pub const INVALID: SpanId = SpanId([0; 8]);

    /// The id as a `u64`, big-endian (the hex reads the same).
    pub fn as_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for byte in bytes {
        write!(f, "{byte:02x}")?;
    }
    Ok(())
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Display for TraceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.0)
    }
}

/// Decodes lowercase hex of exactly `N` bytes (`2 × N` characters), or `None`. Uppercase is
/// refused: the Recommendation's grammar is `HEXDIGLC`.
pub fn lower_hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// A seeded source of fresh, never-zero identifiers (splitmix64): the core takes its
/// randomness as a parameter, so a seed replays the same ids.
#[derive(Clone, Debug)]
pub struct IdSource {
    state: u64,
}

impl IdSource {
    /// A source that will give the same ids for the same seed.
    pub fn seeded(seed: u64) -> IdSource {
        IdSource { state: seed }
    }

    /// The next pseudo-random 64-bit number.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// A fresh trace id, never all zero.
    pub fn trace_id(&mut self) -> TraceId {
        let high = self.next_u64();
        let low = self.next_u64() | 1;
        TraceId(((u128::from(high) << 64) | u128::from(low)).to_be_bytes())
    }

    /// A fresh span id, never all zero.
    pub fn span_id(&mut self) -> SpanId {
        SpanId((self.next_u64() | 1).to_be_bytes())
    }
}

/// splitmix64's finaliser: spreads every input bit over the output.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_as_lowercase_hex() {
        let trace = TraceId(*b"\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36");
        assert_eq!(trace.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            SpanId([0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]).to_string(),
            "00f067aa0ba902b7"
        );
        assert_eq!(TraceFlags(1).to_string(), "01");
    }

    #[test]
    fn lower_hex_refuses_uppercase_and_wrong_lengths() {
        assert_eq!(lower_hex::<1>(b"ab"), Some([0xab]));
        assert_eq!(lower_hex::<1>(b"AB"), None);
        assert_eq!(lower_hex::<1>(b"abc"), None);
        assert_eq!(lower_hex::<1>(b"g0"), None);
    }

    #[test]
    fn a_seeded_source_replays_and_never_gives_zero() {
        let mut a = IdSource::seeded(7);
        let mut b = IdSource::seeded(7);
        for _ in 0..100 {
            let id = a.span_id();
            assert_ne!(id, SpanId::INVALID);
            assert_eq!(id, b.span_id());
            assert_ne!(a.trace_id(), TraceId::INVALID);
            b.trace_id();
        }
    }

    #[test]
    fn with_sampled_keeps_the_other_bits() {
        let flags = TraceFlags(0x02).with_sampled(true);
        assert_eq!(flags, TraceFlags(0x03));
        assert!(flags.random() && flags.sampled());
        assert_eq!(flags.with_sampled(false), TraceFlags(0x02));
    }
}
