//! RFC 6587 octet counting: `MSG-LEN SP SYSLOG-MSG`, the framing of syslog over TCP that
//! survives newlines inside messages, and the only framing RFC 5425 (syslog over TLS) allows.
//!
//! Like [`super::LineFramer`], the decoder is incremental: feed it whatever the socket returned
//! and it hands out each complete message, without copying when the whole message sits in one
//! buffer. A message longer than `max_len` keeps its first `max_len` bytes and is marked
//! truncated; the rest is skipped and counted, so one oversized frame never grows memory.
//!
//! ```
//! use secpipe::frame::octet::OctetDecoder;
//! let mut decoder = OctetDecoder::new(1024);
//! let mut messages = Vec::new();
//! decoder.push(b"5 hello11 hello", |m, _| messages.push(m.to_vec())).unwrap();
//! decoder.push(b" world", |m, _| messages.push(m.to_vec())).unwrap();
//! assert_eq!(messages, vec![b"hello".to_vec(), b"hello world".to_vec()]);
//! ```

/// A length prefix longer than this many digits is not a length (10⁹ bytes is far past any
/// sane `--max-line`), so the stream is not octet counted after all.
const MAX_LENGTH_DIGITS: u8 = 9;

/// Why a stream cannot be decoded any further. The connection should be closed: there is no
/// reliable way to find the next frame boundary in a corrupt octet-counted stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OctetError {
    #[error("octet counting: expected a digit or space in the length, found byte {0:#04x}")]
    BadLength(u8),
    #[error("octet counting: length prefix has more than {MAX_LENGTH_DIGITS} digits")]
    LengthTooLong,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading `MSG-LEN`; `digits == 0` means between frames.
    Length { value: usize, digits: u8 },
    /// Inside a message with `remaining` bytes still to come.
    Body { remaining: usize },
}

/// Incremental RFC 6587 octet-counting decoder.
pub struct OctetDecoder {
    max_len: usize,
    state: State,
    /// The kept part of a message split across buffers (at most `max_len` bytes).
    partial: Vec<u8>,
    /// The message being read is longer than `max_len`.
    partial_truncated: bool,
    /// Messages cut at `max_len`.
    pub truncated_messages: u64,
    /// Bytes skipped past `max_len`.
    pub dropped_bytes: u64,
    /// After an error: the bytes of the failing buffer from the offending byte on, which
    /// nothing will read.
    pub rejected_bytes: u64,
}

impl OctetDecoder {
    /// A decoder that keeps at most `max_len` bytes of each message.
    ///
    /// ```
    /// let decoder = secpipe::frame::octet::OctetDecoder::new(64 * 1024);
    /// assert_eq!(decoder.pending_bytes(), 0);
    /// ```
    pub fn new(max_len: usize) -> OctetDecoder {
        OctetDecoder {
            max_len: max_len.max(1),
            state: State::Length {
                value: 0,
                digits: 0,
            },
            partial: Vec::new(),
            partial_truncated: false,
            truncated_messages: 0,
            dropped_bytes: 0,
            rejected_bytes: 0,
        }
    }

    /// Decode `buf`, calling `emit(message, truncated)` for each complete message. After an
    /// error the decoder's state is unspecified; stop using it.
    ///
    /// ```
    /// use secpipe::frame::octet::{OctetDecoder, OctetError};
    /// let mut decoder = OctetDecoder::new(4);
    /// let mut out = Vec::new();
    /// decoder.push(b"6 abcdef", |m, t| out.push((m.to_vec(), t))).unwrap();
    /// assert_eq!(out, vec![(b"abcd".to_vec(), true)]);
    /// assert_eq!(decoder.dropped_bytes, 2);
    /// assert_eq!(decoder.push(b"x", |_, _| {}), Err(OctetError::BadLength(b'x')));
    /// ```
    pub fn push(
        &mut self,
        mut buf: &[u8],
        mut emit: impl FnMut(&[u8], bool),
    ) -> Result<(), OctetError> {
        while !buf.is_empty() {
            match self.state {
                State::Length { value, digits } => {
                    let byte = buf[0];
                    buf = &buf[1..];
                    self.state = match byte {
                        b'0'..=b'9' if digits < MAX_LENGTH_DIGITS => State::Length {
                            value: value * 10 + usize::from(byte - b'0'),
                            digits: digits + 1,
                        },
                        b'0'..=b'9' => {
                            self.rejected_bytes = buf.len() as u64 + 1;
                            return Err(OctetError::LengthTooLong);
                        }
                        b' ' if digits > 0 => {
                            if value == 0 {
                                // A zero-length frame: an empty message, not an error.
                                emit(&[], false);
                                State::Length {
                                    value: 0,
                                    digits: 0,
                                }
                            } else {
                                State::Body { remaining: value }
                            }
                        }
                        // Some senders end each frame with a newline as well; between frames
                        // that is harmless and skipping it keeps them working.
                        b'\n' | b'\r' | b' ' if digits == 0 => State::Length {
                            value: 0,
                            digits: 0,
                        },
                        other => {
                            self.rejected_bytes = buf.len() as u64 + 1;
                            return Err(OctetError::BadLength(other));
                        }
                    };
                }
                State::Body { remaining } => {
                    let take = remaining.min(buf.len());
                    let (part, rest) = buf.split_at(take);
                    buf = rest;
                    let remaining = remaining - take;
                    if remaining == 0 && self.partial.is_empty() && !self.partial_truncated {
                        // The hot path: the whole message is inside this buffer.
                        if part.len() > self.max_len {
                            self.truncated_messages += 1;
                            self.dropped_bytes += (part.len() - self.max_len) as u64;
                            emit(&part[..self.max_len], true);
                        } else {
                            emit(part, false);
                        }
                    } else {
                        self.keep(part);
                        if remaining == 0 {
                            emit(&self.partial, self.partial_truncated);
                            self.partial.clear();
                            self.partial_truncated = false;
                        }
                    }
                    self.state = if remaining == 0 {
                        State::Length {
                            value: 0,
                            digits: 0,
                        }
                    } else {
                        State::Body { remaining }
                    };
                }
            }
        }
        Ok(())
    }

    /// Whether a frame has begun (its length or body is partly read) and is not complete.
    pub fn in_frame(&self) -> bool {
        !matches!(self.state, State::Length { digits: 0, .. })
    }

    fn keep(&mut self, part: &[u8]) {
        let room = self.max_len - self.partial.len();
        if part.len() > room {
            if !self.partial_truncated {
                self.truncated_messages += 1;
            }
            self.partial_truncated = true;
            self.partial.extend_from_slice(&part[..room]);
            self.dropped_bytes += (part.len() - room) as u64;
        } else {
            self.partial.extend_from_slice(part);
        }
    }

    /// Bytes of an unfinished frame (its length prefix and the part of its body seen so far).
    /// At end of stream these are lost: the sender closed mid-message, so count them.
    ///
    /// ```
    /// let mut decoder = secpipe::frame::octet::OctetDecoder::new(100);
    /// decoder.push(b"10 abc", |_, _| {}).unwrap();
    /// assert_eq!(decoder.pending_bytes(), 3);
    /// ```
    pub fn pending_bytes(&self) -> u64 {
        match self.state {
            State::Length { digits, .. } => u64::from(digits),
            State::Body { .. } => self.partial.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each message with its truncated flag.
    type Messages = Vec<(Vec<u8>, bool)>;

    /// Decode a stream given in chunks: the messages and the bytes dropped past `max`.
    fn decode(chunks: &[&[u8]], max: usize) -> Result<(Messages, u64), OctetError> {
        let mut decoder = OctetDecoder::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.push(chunk, |m, t| out.push((m.to_vec(), t)))?;
        }
        Ok((out, decoder.dropped_bytes))
    }

    #[test]
    fn messages_may_contain_newlines_and_spaces() {
        let (out, _) = decode(&[b"11 line1\nline26 a b c "], 100).expect("valid");
        assert_eq!(
            out,
            vec![
                (b"line1\nline2".to_vec(), false),
                (b"a b c ".to_vec(), false)
            ]
        );
    }

    #[test]
    fn length_prefix_split_across_buffers() {
        let (out, _) = decode(&[b"1", b"2", b" hello", b" world!"], 100).expect("valid");
        assert_eq!(out, vec![(b"hello world!".to_vec(), false)]);
    }

    #[test]
    fn oversize_message_split_across_buffers_is_truncated_once() {
        let mut decoder = OctetDecoder::new(3);
        let mut out = Vec::new();
        for chunk in [&b"8 ab"[..], b"cdef", b"gh2 ok"] {
            decoder
                .push(chunk, |m, t| out.push((m.to_vec(), t)))
                .expect("valid");
        }
        assert_eq!(out, vec![(b"abc".to_vec(), true), (b"ok".to_vec(), false)]);
        assert_eq!((decoder.truncated_messages, decoder.dropped_bytes), (1, 5));
    }

    #[test]
    fn newline_framed_input_is_rejected() {
        assert_eq!(
            decode(&[b"<13>Jan  1 host app: hi\n"], 100),
            Err(OctetError::BadLength(b'<'))
        );
        assert_eq!(decode(&[b"12x"], 100), Err(OctetError::BadLength(b'x')));
        assert_eq!(
            decode(&[b"1234567890 "], 100),
            Err(OctetError::LengthTooLong)
        );
    }

    #[test]
    fn trailing_newlines_between_frames_are_skipped() {
        let (out, _) = decode(&[b"2 ab\n2 cd\r\n"], 100).expect("valid");
        assert_eq!(out, vec![(b"ab".to_vec(), false), (b"cd".to_vec(), false)]);
    }

    fn encode(messages: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in messages {
            out.extend_from_slice(format!("{} ", m.len()).as_bytes());
            out.extend_from_slice(m);
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn round_trips_at_any_buffer_boundaries(
            messages in proptest::collection::vec(
                proptest::collection::vec(proptest::num::u8::ANY, 0..40), 0..20),
            cuts in proptest::collection::vec(0usize..2000, 0..6),
            max in 1usize..50,
        ) {
            let stream = encode(&messages);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts {
                chunks.push(&stream[start..cut]);
                start = cut;
            }
            chunks.push(&stream[start..]);
            let (out, dropped) = decode(&chunks, max).expect("well-formed stream");
            let expected: Vec<(Vec<u8>, bool)> = messages
                .iter()
                .map(|m| (m[..m.len().min(max)].to_vec(), m.len() > max))
                .collect();
            let expected_dropped: usize =
                messages.iter().map(|m| m.len().saturating_sub(max)).sum();
            proptest::prop_assert_eq!(out, expected);
            proptest::prop_assert_eq!(dropped as usize, expected_dropped);
        }
    }
}
