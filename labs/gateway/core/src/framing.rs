//! Where each request head starts and ends in a client connection's bytes, and whether it is
//! acceptable, decided before an HTTP parser sees it.
//!
//! hyper's parser (httparse) takes a bare LF for a line break and knows no limit per header
//! line; it only refuses a head that outgrows its read buffer, and then with an empty 431. A
//! gateway wants stricter and clearer rules, the ones nginx applies: a header line of at most
//! 8 KiB, a head of at most 32 KiB, lines that end in CRLF. [`Framing`] is the state machine
//! that enforces them on the raw bytes of one connection. It holds back each head until it is
//! complete (so nothing of a refused head reaches the parser), then follows the body's
//! framing (`Content-Length` or chunked, by the same rules as hyper) to know where the next
//! head starts: a pipelined request is checked like the first.
//!
//! It decides only what it must; everything else (a malformed request line, a bare CR, a
//! NUL) is left to the HTTP parser, which refuses it. Where this scanner and the parser could
//! disagree about a body's end, the scanner is the more lenient of the two, so the parser has
//! already refused the message (and closed the connection) before the scanner's view matters.

use thiserror::Error;

/// The limits on a request head, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadLimits {
    /// The longest line (request line or header field line), CRLF not counted.
    pub max_line_bytes: usize,
    /// The longest head: request line, header lines and their line breaks.
    pub max_head_bytes: usize,
    /// The most header fields in one head.
    pub max_fields: usize,
}

impl Default for HeadLimits {
    /// nginx's defaults (`large_client_header_buffers 4 8k`) and hyper's field count.
    fn default() -> Self {
        Self {
            max_line_bytes: 8 * 1024,
            max_head_bytes: 32 * 1024,
            max_fields: 100,
        }
    }
}

/// Why a request head is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum HeadRefusal {
    /// The request line is longer than the line limit (414).
    #[error("the request line is longer than {limit} bytes")]
    RequestLineTooLong {
        /// The longest request line accepted, in bytes.
        limit: usize,
    },
    /// A header field line is longer than the line limit (431).
    #[error("a header field line is longer than {limit} bytes")]
    FieldLineTooLong {
        /// The longest header field line accepted, in bytes.
        limit: usize,
    },
    /// The whole head is larger than the head limit (431).
    #[error("the request head is larger than {limit} bytes")]
    HeadTooLarge {
        /// The largest request head accepted, in bytes.
        limit: usize,
    },
    /// More header fields than allowed (431).
    #[error("the request has more than {limit} header fields")]
    TooManyFields {
        /// The most header fields accepted.
        limit: usize,
    },
    /// A line ends in a bare LF instead of CRLF (400).
    #[error("a line of the request head ends in a bare LF instead of CRLF")]
    BareLf,
}

impl HeadRefusal {
    /// The HTTP status that answers it.
    pub fn status(self) -> u16 {
        match self {
            HeadRefusal::RequestLineTooLong { .. } => 414,
            HeadRefusal::FieldLineTooLong { .. }
            | HeadRefusal::HeadTooLarge { .. }
            | HeadRefusal::TooManyFields { .. } => 431,
            HeadRefusal::BareLf => 400,
        }
    }
}

/// What [`Framing::scan`] found at the start of the bytes it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scanned {
    /// The first `n` bytes may go on to the parser: a complete, acceptable head, or body bytes.
    Pass(usize),
    /// All the bytes given are an unfinished head: hold them and wait for more.
    Hold,
    /// The head is refused; the connection should answer and close.
    Refuse(HeadRefusal),
}

/// The scanner of one connection.
#[derive(Clone, Debug)]
pub struct Framing {
    limits: HeadLimits,
    state: State,
    /// What the current head's complete lines said about its body so far.
    declared: Declared,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading a head: `seen` bytes of it examined, the current line starting at `line_start`,
    /// `lines` complete lines so far (blank lines before the request line not counted).
    Head {
        seen: usize,
        line_start: usize,
        lines: usize,
    },
    /// A body with this many bytes to come.
    Length(u64),
    /// A chunked body.
    Chunked(Chunk),
    /// The parser will refuse this message (or it switched protocols): pass everything on.
    Unchecked,
}

/// Where a chunked body is, in hyper's states (`proto/h1/decode.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Start,
    Size(u64),
    SizeLws(u64),
    Extension(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    EndCr,
    Trailer,
    TrailerLf,
    EndLf,
}

/// How a complete head says its body is framed.
enum Body {
    None,
    Length(u64),
    Chunked,
    Invalid,
}

impl Framing {
    /// A scanner for a new connection: the first bytes are a head.
    pub fn new(limits: HeadLimits) -> Self {
        Self {
            limits,
            state: State::Head {
                seen: 0,
                line_start: 0,
                lines: 0,
            },
            declared: Declared::default(),
        }
    }

    /// The limits it applies.
    pub fn limits(&self) -> HeadLimits {
        self.limits
    }

    /// Looks at `pending`: the connection's bytes from the first one not yet passed on (while
    /// a head is held, `pending` starts with it; the scanner remembers how much it has seen).
    pub fn scan(&mut self, pending: &[u8]) -> Scanned {
        match &mut self.state {
            State::Head { .. } => self.scan_head(pending),
            State::Length(left) => {
                let n = pass_body(left, pending.len());
                if *left == 0 {
                    self.state = self.next_head();
                }
                Scanned::Pass(n)
            }
            State::Chunked(_) => self.scan_chunked(pending),
            State::Unchecked => Scanned::Pass(pending.len()),
        }
    }

    /// Body bytes that can be passed on without being looked at (a fixed-length body, or the
    /// data of a chunk), so a caller may read them straight into the parser's buffer.
    pub fn opaque_body_bytes(&self) -> u64 {
        match self.state {
            State::Length(left) | State::Chunked(Chunk::Data(left)) => left,
            State::Unchecked => u64::MAX,
            _ => 0,
        }
    }

    /// Records that `n` bytes (at most [`opaque_body_bytes`](Self::opaque_body_bytes)) were
    /// passed on without being scanned.
    pub fn skip_opaque(&mut self, n: u64) {
        match &mut self.state {
            State::Length(left) => {
                *left = left.saturating_sub(n);
                if *left == 0 {
                    self.state = self.next_head();
                }
            }
            State::Chunked(Chunk::Data(left)) => {
                *left = left.saturating_sub(n);
                if *left == 0 {
                    self.state = State::Chunked(Chunk::DataCr);
                }
            }
            _ => {}
        }
    }

    fn next_head(&self) -> State {
        State::Head {
            seen: 0,
            line_start: 0,
            lines: 0,
        }
    }

    fn scan_head(&mut self, pending: &[u8]) -> Scanned {
        let State::Head {
            mut seen,
            mut line_start,
            mut lines,
        } = self.state
        else {
            return Scanned::Hold;
        };
        let limits = self.limits;
        while let Some(found) = find_lf(&pending[seen..]) {
            let lf = seen + found;
            seen = lf + 1;
            let crlf = lf > line_start && pending[lf - 1] == b'\r';
            let content = lf - line_start - usize::from(crlf);
            let blank = crlf && content == 0;
            if blank && lines == 0 {
                // Blank lines before the request line are skipped (RFC 9112 §2.2).
                line_start = seen;
                continue;
            }
            let mut first = Crossing::default();
            first.head(seen, limits);
            first.line(line_start, content, lines, limits);
            if !crlf {
                first.at(seen, HeadRefusal::BareLf);
            }
            if !blank && lines > limits.max_fields {
                first.at(
                    seen,
                    HeadRefusal::TooManyFields {
                        limit: limits.max_fields,
                    },
                );
            }
            if let Some(refusal) = first.refusal() {
                return Scanned::Refuse(refusal);
            }
            if blank {
                self.state = match std::mem::take(&mut self.declared).body() {
                    Body::None | Body::Length(0) => self.next_head(),
                    Body::Length(n) => State::Length(n),
                    Body::Chunked => State::Chunked(Chunk::Start),
                    Body::Invalid => State::Unchecked,
                };
                return Scanned::Pass(seen);
            }
            if lines > 0 {
                self.declared
                    .field(&pending[line_start..line_start + content]);
            }
            lines += 1;
            line_start = seen;
        }
        seen = pending.len();
        // The unfinished line may already be too long, the head too large. A CR at its end
        // may yet turn out to be half of a CRLF, so it does not count yet.
        let content = seen - line_start - usize::from(pending.last() == Some(&b'\r'));
        let mut first = Crossing::default();
        first.head(seen, limits);
        first.line(line_start, content, lines, limits);
        if let Some(refusal) = first.refusal() {
            return Scanned::Refuse(refusal);
        }
        self.state = State::Head {
            seen,
            line_start,
            lines,
        };
        Scanned::Hold
    }

    /// Chunked framing, byte by byte except for chunk data; stops at the end of the body so
    /// the next head is scanned on its own.
    fn scan_chunked(&mut self, pending: &[u8]) -> Scanned {
        let State::Chunked(mut chunk) = self.state else {
            return Scanned::Pass(0);
        };
        let mut at = 0;
        while at < pending.len() {
            if let Chunk::Data(left) = &mut chunk {
                at += pass_body(left, pending.len() - at);
                if *left == 0 {
                    chunk = Chunk::DataCr;
                }
                continue;
            }
            let byte = pending[at];
            at += 1;
            if chunk == Chunk::EndLf && byte == b'\n' {
                self.state = self.next_head();
                return Scanned::Pass(at);
            }
            match step(chunk, byte) {
                Some(next) => chunk = next,
                None => {
                    // The parser refuses this body too, and closes the connection.
                    self.state = State::Unchecked;
                    return Scanned::Pass(pending.len());
                }
            }
        }
        self.state = State::Chunked(chunk);
        Scanned::Pass(at)
    }
}

/// One byte of chunked framing; `None` is a framing error. The end of the body is
/// [`Chunk::EndLf`] followed by `\n`, which [`Framing::scan_chunked`] handles.
fn step(chunk: Chunk, byte: u8) -> Option<Chunk> {
    let hex = |size: u64| {
        let digit = char::from(byte).to_digit(16)?;
        size.checked_mul(16)?.checked_add(u64::from(digit))
    };
    Some(match chunk {
        Chunk::Start => Chunk::Size(hex(0)?),
        Chunk::Size(size) => match byte {
            b'\t' | b' ' => Chunk::SizeLws(size),
            b';' => Chunk::Extension(size),
            b'\r' => Chunk::SizeLf(size),
            _ => Chunk::Size(hex(size)?),
        },
        Chunk::SizeLws(size) => match byte {
            b'\t' | b' ' => Chunk::SizeLws(size),
            b';' => Chunk::Extension(size),
            b'\r' => Chunk::SizeLf(size),
            _ => return None,
        },
        Chunk::Extension(size) => match byte {
            b'\r' => Chunk::SizeLf(size),
            b'\n' => return None,
            _ => Chunk::Extension(size),
        },
        Chunk::SizeLf(size) => match byte {
            b'\n' if size == 0 => Chunk::EndCr,
            b'\n' => Chunk::Data(size),
            _ => return None,
        },
        Chunk::Data(_) => return None,
        Chunk::DataCr => (byte == b'\r').then_some(Chunk::DataLf)?,
        Chunk::DataLf => (byte == b'\n').then_some(Chunk::Start)?,
        Chunk::EndCr => match byte {
            b'\r' => Chunk::EndLf,
            _ => Chunk::Trailer,
        },
        Chunk::Trailer => match byte {
            b'\r' => Chunk::TrailerLf,
            _ => Chunk::Trailer,
        },
        Chunk::TrailerLf => (byte == b'\n').then_some(Chunk::EndCr)?,
        Chunk::EndLf => return None,
    })
}

/// The first LF in `bytes`, eight bytes at a time: the one loop every request runs through,
/// twice as fast as a byte-by-byte search on a typical head.
fn find_lf(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const LFS: u64 = u64::from_ne_bytes([b'\n'; 8]);
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8])) ^ LFS;
        // A zero byte of `word` is an LF; the lowest flagged byte is always a true one.
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            return Some(at + zeros.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| at + i)
}

/// Takes up to `available` bytes of a body with `left` to come.
fn pass_body(left: &mut u64, available: usize) -> usize {
    let n = usize::try_from(*left).map_or(available, |left| left.min(available));
    *left -= n as u64;
    n
}

/// The first limit a head crosses, by the position of the byte that crosses it: a head is
/// refused for the same reason however its bytes were split on the way. Ties go to the
/// limit considered first.
#[derive(Default)]
struct Crossing(Option<(usize, HeadRefusal)>);

impl Crossing {
    /// A limit crossed by the byte that makes the head `position` bytes long.
    fn at(&mut self, position: usize, refusal: HeadRefusal) {
        if self.0.is_none_or(|(first, _)| position < first) {
            self.0 = Some((position, refusal));
        }
    }

    /// The head limit, with `seen` bytes of the head known.
    fn head(&mut self, seen: usize, limits: HeadLimits) {
        if seen > limits.max_head_bytes {
            self.at(
                limits.max_head_bytes + 1,
                HeadRefusal::HeadTooLarge {
                    limit: limits.max_head_bytes,
                },
            );
        }
    }

    /// The line limit, for a line starting at `start` with `content` bytes known (line 0 is
    /// the request line).
    fn line(&mut self, start: usize, content: usize, lines: usize, limits: HeadLimits) {
        if content <= limits.max_line_bytes {
            return;
        }
        let limit = limits.max_line_bytes;
        let refusal = if lines == 0 {
            HeadRefusal::RequestLineTooLong { limit }
        } else {
            HeadRefusal::FieldLineTooLong { limit }
        };
        self.at(start + limit + 1, refusal);
    }

    fn refusal(&self) -> Option<HeadRefusal> {
        self.0.map(|(_, refusal)| refusal)
    }
}

/// The body framing a head declares, gathered line by line, by hyper's rules
/// (`proto/h1/role.rs`): a `Transfer-Encoding` whose last coding is `chunked` wins over any
/// `Content-Length`; any other `Transfer-Encoding`, an unparsable length or two different
/// lengths are refused by the parser ([`Body::Invalid`]).
#[derive(Clone, Copy, Debug, Default)]
struct Declared {
    /// Whether the last `Transfer-Encoding` line ended in `chunked`, if there was one.
    chunked: Option<bool>,
    /// The `Content-Length`, if there was one; `Some(None)` if unusable.
    length: Option<Option<u64>>,
}

impl Declared {
    /// One header field line (without its CRLF). Most lines are neither of the two, which
    /// their first byte usually shows.
    fn field(&mut self, line: &[u8]) {
        const LENGTH: &[u8] = b"content-length:";
        const ENCODING: &[u8] = b"transfer-encoding:";
        match line.first().map(u8::to_ascii_lowercase) {
            Some(b'c')
                if line.len() >= LENGTH.len()
                    && line[..LENGTH.len()].eq_ignore_ascii_case(LENGTH) =>
            {
                let parsed = parse_length(trim(&line[LENGTH.len()..]));
                self.length = match (self.length, parsed) {
                    (_, None) => Some(None),
                    (None, Some(n)) => Some(Some(n)),
                    (Some(Some(previous)), Some(n)) if previous != n => Some(None),
                    (same, _) => same,
                };
            }
            Some(b't')
                if line.len() >= ENCODING.len()
                    && line[..ENCODING.len()].eq_ignore_ascii_case(ENCODING) =>
            {
                let value = trim(&line[ENCODING.len()..]);
                let last = value.rsplit(|&b| b == b',').next().map(trim);
                self.chunked =
                    Some(last.is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked")));
            }
            _ => {}
        }
    }

    fn body(self) -> Body {
        match (self.chunked, self.length) {
            (Some(true), _) => Body::Chunked,
            (Some(false), _) | (None, Some(None)) => Body::Invalid,
            (None, Some(Some(n))) => Body::Length(n),
            (None, None) => Body::None,
        }
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        let digit = char::from(b).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HeadLimits {
        HeadLimits {
            max_line_bytes: 64,
            max_head_bytes: 256,
            max_fields: 4,
        }
    }

    /// Feeds `bytes` in pieces of `piece` bytes the way a connection would, and returns
    /// the bytes passed on and the refusal, if any.
    fn run(bytes: &[u8], piece: usize) -> (Vec<u8>, Option<HeadRefusal>) {
        let mut framing = Framing::new(limits());
        let (mut pending, mut passed) = (Vec::new(), Vec::new());
        for part in bytes.chunks(piece) {
            pending.extend_from_slice(part);
            loop {
                match framing.scan(&pending) {
                    Scanned::Pass(0) | Scanned::Hold => break,
                    Scanned::Pass(n) => {
                        passed.extend(pending.drain(..n));
                    }
                    Scanned::Refuse(refusal) => return (passed, Some(refusal)),
                }
            }
        }
        (passed, None)
    }

    fn every_split(bytes: &[u8]) -> (Vec<u8>, Option<HeadRefusal>) {
        let whole = run(bytes, bytes.len().max(1));
        for piece in 1..bytes.len().max(1) {
            assert_eq!(run(bytes, piece), whole, "in pieces of {piece}");
        }
        whole
    }

    #[test]
    fn the_word_at_a_time_search_finds_the_first_lf() {
        for len in 0..40 {
            for filler in [b'a', 0x0b, 0x8a, 0x09, 0xff, 0x00] {
                let mut bytes = vec![filler; len];
                assert_eq!(find_lf(&bytes), None);
                for at in (0..len).rev() {
                    bytes[at] = b'\n';
                    assert_eq!(find_lf(&bytes), Some(at), "len {len}, filler {filler:#x}");
                }
            }
        }
    }

    #[test]
    fn a_well_formed_head_passes_whole_once_complete() {
        let head = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(every_split(head), (head.to_vec(), None));
        let mut framing = Framing::new(limits());
        assert_eq!(framing.scan(&head[..20]), Scanned::Hold);
        assert_eq!(framing.scan(head), Scanned::Pass(head.len()));
    }

    #[test]
    fn a_bare_lf_anywhere_in_the_head_is_refused() {
        for head in [
            &b"GET / HTTP/1.1\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\nX-B: c\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
        ] {
            assert_eq!(every_split(head).1, Some(HeadRefusal::BareLf), "{head:?}");
            assert_eq!(every_split(head).0, b"");
        }
    }

    #[test]
    fn long_lines_and_large_heads_are_refused_before_they_end() {
        let long_field = format!("GET / HTTP/1.1\r\nX-A: {}", "a".repeat(70));
        assert_eq!(
            every_split(long_field.as_bytes()).1,
            Some(HeadRefusal::FieldLineTooLong { limit: 64 })
        );
        let long_target = format!("GET /{} HTTP/1.1\r\n", "a".repeat(70));
        assert_eq!(
            every_split(long_target.as_bytes()).1,
            Some(HeadRefusal::RequestLineTooLong { limit: 64 })
        );
        let many = format!("GET / HTTP/1.1\r\n{}", "X-Field: 0123456789\r\n".repeat(12));
        assert_eq!(
            run(many.as_bytes(), 1000).1,
            Some(HeadRefusal::TooManyFields { limit: 4 })
        );
        let large = HeadLimits {
            max_fields: 100,
            ..limits()
        };
        let mut framing = Framing::new(large);
        assert_eq!(
            framing.scan(many.as_bytes()),
            Scanned::Refuse(HeadRefusal::HeadTooLarge { limit: 256 })
        );
        let exactly = format!("GET / HTTP/1.1\r\nX-A: {}\r\n\r\n", "a".repeat(59));
        assert_eq!(
            every_split(exactly.as_bytes()).1,
            None,
            "64 bytes is allowed"
        );
    }

    #[test]
    fn a_body_of_known_length_passes_and_the_next_head_is_checked() {
        let two = b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nline\nbodyGET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n";
        let (passed, refusal) = every_split(two);
        assert_eq!(
            refusal,
            Some(HeadRefusal::BareLf),
            "the second head is checked"
        );
        assert!(
            passed.ends_with(b"line\nbody"),
            "the body's LF is the body's business"
        );
        let fine = b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.1\r\n\r\n";
        assert_eq!(every_split(fine), (fine.to_vec(), None));
    }

    #[test]
    fn a_chunked_body_is_followed_to_its_end() {
        let two =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n\
5;name=value\r\nab\ncd\r\nA \r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n\
GET / HTTP/1.1\r\nX: a\n\r\n";
        let (passed, refusal) = every_split(two);
        assert_eq!(refusal, Some(HeadRefusal::BareLf));
        assert!(passed.ends_with(b"X-Trailer: t\r\n\r\n"));
        let fine = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(every_split(fine), (fine.to_vec(), None));
    }

    #[test]
    fn framing_the_parser_refuses_stops_the_checks() {
        // Not chunked last: the parser answers 400 and closes, whatever follows.
        let refused =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nGET / HTTP/1.1\nX: a\r\n\r\n";
        assert_eq!(every_split(refused), (refused.to_vec(), None));
        let bad_chunk = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET / HTTP/1.1\nX: a\r\n\r\n";
        assert_eq!(every_split(bad_chunk).1, None);
        let two_lengths = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(every_split(two_lengths).1, None);
    }

    #[test]
    fn opaque_body_bytes_can_be_skipped_without_scanning() {
        let mut framing = Framing::new(limits());
        let head = b"PUT / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n";
        assert_eq!(framing.scan(head), Scanned::Pass(head.len()));
        assert_eq!(framing.opaque_body_bytes(), 1000);
        framing.skip_opaque(999);
        assert_eq!(framing.scan(b"xGET"), Scanned::Pass(1));
        assert_eq!(
            framing.scan(b"GET / HTTP/1.1\n"),
            Scanned::Refuse(HeadRefusal::BareLf)
        );
    }
}
