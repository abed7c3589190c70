//! Splits a Server-Sent Events byte stream into events as chunks arrive, reporting where each event ends and its `data`.
//!
//! Lines end in LF, CRLF or CR, and a blank line ends an event (the SSE grammar). Only
//! `data` fields are kept: `data:value` and `data: value` alike, several lines joined by
//! `\n`. An event, or its line, may be cut across chunks at any byte: the data seen so far
//! is kept in one reused buffer, so a stream allocates nothing once that buffer has grown.
//! An event longer than [`MAX_EVENT`] raw bytes is not buffered; from then on its data
//! goes through a [`MemberScanner`] (when the format names a path worth finding in it).

use super::json::MemberScanner;

/// Raw bytes an event may span and still be buffered for parsing.
pub(crate) const MAX_EVENT: usize = 1 << 20;

/// Capacity above which the data buffer is released once its event is done.
const KEEP_CAPACITY: usize = 64 * 1024;

/// What ended at a [`Boundary`].
#[derive(Debug)]
pub(crate) enum Event<'a> {
    /// An event with data lines; their values joined by `\n`.
    Data(&'a [u8]),
    /// An event without data lines (comments, `event:` only, stray blank lines).
    Empty,
    /// An event over [`MAX_EVENT`]; the raw value its scanner found, if any.
    Oversized(Option<&'a [u8]>),
    /// The LF of a CRLF whose CR, at the end of the previous chunk, ended the previous
    /// event: these bytes belong to that event.
    Trailer,
}

/// The end of an event inside the chunk being fed.
#[derive(Debug)]
pub(crate) struct Boundary<'a> {
    /// Offset in the chunk just past the event's last byte (its blank line included).
    pub end: usize,
    pub event: Event<'a>,
}

/// Where the reader is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Nothing read yet: a terminator now makes it a blank line.
    Start,
    /// The first `n` bytes matched `data:`.
    Field(usize),
    /// Just after `data:`; one space may follow.
    DataStart,
    /// In a data value.
    Data,
    /// In a line of another field or a comment.
    Other,
}

/// Incremental SSE event splitter; see the module docs.
#[derive(Debug)]
pub(crate) struct SseReader {
    line: Line,
    /// The previous chunk ended in a CR; a leading LF completes that CRLF.
    after_cr: bool,
    /// That CR ended a blank line, so the LF belongs to the event before.
    cr_ended_event: bool,
    data: Vec<u8>,
    has_data: bool,
    /// Raw bytes of the current event so far.
    event_len: usize,
    oversized: bool,
    /// Where an oversized event's data goes, when `overflow_path` names something to find.
    overflow: Option<MemberScanner>,
    overflow_path: Option<&'static [&'static str]>,
}

impl SseReader {
    /// A reader; oversized events are scanned for `overflow_path` when one is given.
    pub(crate) fn new(overflow_path: Option<&'static [&'static str]>) -> Self {
        SseReader {
            line: Line::Start,
            after_cr: false,
            cr_ended_event: false,
            data: Vec::new(),
            has_data: false,
            event_len: 0,
            oversized: false,
            overflow: None,
            overflow_path,
        }
    }

    /// Whether the event in progress (not yet ended) is over [`MAX_EVENT`].
    pub(crate) fn in_oversized_event(&self) -> bool {
        self.oversized
    }

    /// Reads one chunk, calling `sink` at each event end, in order.
    pub(crate) fn feed(&mut self, chunk: &[u8], sink: &mut impl FnMut(Boundary<'_>)) {
        if chunk.is_empty() {
            return;
        }
        let mut pos = 0;
        if std::mem::take(&mut self.after_cr) && chunk.first() == Some(&b'\n') {
            pos = 1;
            if self.cr_ended_event {
                sink(Boundary {
                    end: 1,
                    event: Event::Trailer,
                });
            } else {
                self.grow(1);
            }
        }
        while let Some(rest) = chunk.get(pos..).filter(|r| !r.is_empty()) {
            if let Some((len, data)) = self.whole_event(rest) {
                pos += len;
                sink(Boundary {
                    end: pos,
                    event: Event::Data(data),
                });
                continue;
            }
            let Some(i) = memchr::memchr2(b'\n', b'\r', rest) else {
                self.grow(rest.len());
                self.content(rest);
                return;
            };
            self.grow(i + 1);
            self.content(rest.get(..i).unwrap_or_default());
            let cr = rest.get(i) == Some(&b'\r');
            let mut end = pos + i + 1;
            match rest.get(i + 1) {
                Some(b'\n') if cr => {
                    self.grow(1);
                    end += 1;
                }
                None if cr => self.after_cr = true,
                _ => {}
            }
            self.cr_ended_event = self.line == Line::Start;
            self.end_line(end, sink);
            pos = end;
        }
    }

    /// The common event, whole at the start of `rest` between events: one `data` line
    /// and a blank line, both ending in LF. Its length and data, read in place (no copy,
    /// no line state); anything else goes the general way.
    fn whole_event<'c>(&self, rest: &'c [u8]) -> Option<(usize, &'c [u8])> {
        if self.line != Line::Start || self.has_data || self.event_len != 0 {
            return None;
        }
        let value = rest.strip_prefix(b"data:")?;
        let start = 5 + usize::from(value.first() == Some(&b' '));
        let end = start + memchr::memchr2(b'\n', b'\r', rest.get(start..)?)?;
        let blank = rest.get(end..end + 2) == Some(b"\n\n");
        (blank && end + 2 <= MAX_EVENT).then(|| (end + 2, &rest[start..end]))
    }

    /// At the end of the body: reports an event left without its blank line, at offset 0
    /// of an empty chunk, if it carried data (the SSE grammar would drop it; usage is
    /// better read than lost).
    pub(crate) fn finish(&mut self, sink: &mut impl FnMut(Boundary<'_>)) {
        self.after_cr = false;
        if self.line == Line::Field(4) {
            self.begin_data_line();
        }
        self.line = Line::Start;
        if self.has_data || self.oversized {
            self.dispatch(0, sink);
        }
    }

    /// Counts `n` more raw bytes of the current event, switching to overflow past the cap.
    fn grow(&mut self, n: usize) {
        self.event_len = self.event_len.saturating_add(n);
        if self.event_len > MAX_EVENT && !self.oversized {
            self.oversized = true;
            self.overflow = self.overflow_path.map(|path| {
                let mut scanner = MemberScanner::new(path);
                scanner.feed(&self.data);
                scanner
            });
            self.data.clear();
        }
    }

    /// Reads bytes of the current line that hold no terminator.
    fn content(&mut self, mut seg: &[u8]) {
        while let Some(&first) = seg.first() {
            match self.line {
                Line::Start | Line::Field(_) => {
                    let n = match self.line {
                        Line::Field(n) => n,
                        _ => 0,
                    };
                    let want = b"data:".get(n..).unwrap_or_default();
                    let k = seg.iter().zip(want).take_while(|(a, b)| a == b).count();
                    if k == want.len() {
                        self.line = Line::DataStart;
                        self.begin_data_line();
                        seg = seg.get(k..).unwrap_or_default();
                    } else if k == seg.len() {
                        self.line = Line::Field(n + k);
                        return;
                    } else {
                        self.line = Line::Other;
                        return;
                    }
                }
                Line::DataStart => {
                    self.line = Line::Data;
                    if first == b' ' {
                        seg = seg.get(1..).unwrap_or_default();
                    }
                }
                Line::Data => {
                    self.push_data(seg);
                    return;
                }
                Line::Other => return,
            }
        }
    }

    /// A line ended just before offset `end`'s terminator; a blank one ends the event.
    fn end_line(&mut self, end: usize, sink: &mut impl FnMut(Boundary<'_>)) {
        match self.line {
            Line::Start => self.dispatch(end, sink),
            // A bare `data` line: the field with an empty value.
            Line::Field(4) => self.begin_data_line(),
            _ => {}
        }
        self.line = Line::Start;
    }

    /// A new data line starts: values are joined by `\n`.
    fn begin_data_line(&mut self) {
        if self.has_data {
            self.push_data(b"\n");
        }
        self.has_data = true;
    }

    fn push_data(&mut self, bytes: &[u8]) {
        if !self.oversized {
            self.data.extend_from_slice(bytes);
        } else if let Some(scanner) = &mut self.overflow {
            scanner.feed(bytes);
        }
    }

    /// Reports the current event as ending at `end`, then starts the next one.
    fn dispatch(&mut self, end: usize, sink: &mut impl FnMut(Boundary<'_>)) {
        let event = if self.oversized {
            Event::Oversized(self.overflow.as_mut().and_then(|s| s.take()))
        } else if self.has_data {
            Event::Data(&self.data)
        } else {
            Event::Empty
        };
        sink(Boundary { end, event });
        self.data.clear();
        if self.data.capacity() > KEEP_CAPACITY {
            self.data = Vec::new();
        }
        self.has_data = false;
        self.event_len = 0;
        self.oversized = false;
        self.overflow = None;
    }
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;
