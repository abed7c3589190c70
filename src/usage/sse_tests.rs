//! Tests for the SSE event splitter, checked against a whole-input reference reading of the SSE grammar.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

/// An event as the tests see it: absolute end offset, and data (`None`: no data lines;
/// `Some(None)`: oversized).
type Seen = (usize, Option<Option<Vec<u8>>>);

/// Feeds `input` cut at `cuts`, then finishes; a `Trailer` extends the previous event.
fn read(input: &[u8], cuts: &[usize]) -> Vec<Seen> {
    let mut r = SseReader::new(None);
    let mut seen: Vec<Seen> = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain([&input.len()]) {
        let base = from;
        r.feed(&input[from..cut], &mut |b| {
            let end = base + b.end;
            match b.event {
                Event::Trailer => seen.last_mut().unwrap().0 = end,
                Event::Data(d) => seen.push((end, Some(Some(d.to_vec())))),
                Event::Empty => seen.push((end, None)),
                Event::Oversized(_) => seen.push((end, Some(None))),
            }
        });
        from = cut;
    }
    r.finish(&mut |b| match b.event {
        Event::Data(d) => seen.push((input.len(), Some(Some(d.to_vec())))),
        _ => seen.push((input.len(), Some(None))),
    });
    seen
}

/// The SSE grammar applied to the whole input at once.
fn reference(input: &[u8]) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut data: Option<Vec<u8>> = None;
    let mut pos = 0;
    while pos < input.len() {
        let rest = &input[pos..];
        let (line, term) = match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            None => (rest, 0),
            Some(i) if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') => (&rest[..i], 2),
            Some(i) => (&rest[..i], 1),
        };
        pos += line.len() + term;
        if term == 0 {
            // Unterminated last line.
            if let Some(v) = field_value(line) {
                push_line(&mut data, v);
            }
            break;
        }
        if line.is_empty() {
            seen.push((pos, data.take().map(Some)));
        } else if let Some(v) = field_value(line) {
            push_line(&mut data, v);
        }
    }
    if let Some(d) = data {
        seen.push((input.len(), Some(Some(d))));
    }
    seen
}

fn push_line(data: &mut Option<Vec<u8>>, v: &[u8]) {
    match data {
        Some(d) => {
            d.push(b'\n');
            d.extend_from_slice(v);
        }
        None => *data = Some(v.to_vec()),
    }
}

/// The value of a `data` field line.
fn field_value(line: &[u8]) -> Option<&[u8]> {
    if line == b"data" {
        return Some(b"");
    }
    let v = line.strip_prefix(b"data:")?;
    Some(v.strip_prefix(b" ").unwrap_or(v))
}

#[test]
fn data_lines_are_joined_and_other_fields_ignored() {
    let input =
        b": comment\nevent: x\ndata: a\ndata:b\ndata\ndata:  c\nid: 1\nretry: 5\ndatum: no\n\n";
    let seen = read(input, &[]);
    assert_eq!(
        seen,
        vec![(input.len(), Some(Some(b"a\nb\n\n c".to_vec())))]
    );
}

#[test]
fn crlf_split_between_cr_and_lf_belongs_to_the_event_before() {
    let input = b"data: a\r\n\r\ndata: b\r\n\r\n";
    for cut in 0..=input.len() {
        assert_eq!(read(input, &[cut]), reference(input), "cut at {cut}");
    }
    assert_eq!(read(input, &[10]).first().map(|e| e.0), Some(11));
}

#[test]
fn event_without_data_is_empty() {
    let input = b"event: ping\n\n\n";
    assert_eq!(read(input, &[]), vec![(13, None), (14, None)]);
}

#[test]
fn oversized_event_is_reported_without_data() {
    let mut input = b"data: ".to_vec();
    input.extend(std::iter::repeat_n(b'x', MAX_EVENT));
    input.extend_from_slice(b"\n\ndata: after\n\n");
    let seen = read(&input, &[100, MAX_EVENT / 2, MAX_EVENT + 3]);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], (MAX_EVENT + 8, Some(None)));
    assert_eq!(seen[1], (input.len(), Some(Some(b"after".to_vec()))));
}

#[test]
fn oversized_event_is_scanned_for_the_path() {
    let mut r = SseReader::new(Some(&["usage"]));
    let big = "y".repeat(MAX_EVENT);
    let input = format!("data: {{\"pad\":\"{big}\", \"usage\":{{\"n\":1}}}}\n\n");
    let mut found = Vec::new();
    for piece in input.as_bytes().chunks(4096) {
        r.feed(piece, &mut |b| {
            if let Event::Oversized(v) = b.event {
                found.push(v.map(<[u8]>::to_vec));
            }
        });
    }
    assert_eq!(found, vec![Some(br#"{"n":1}"#.to_vec())]);
}

/// Random SSE text: field lines, comments, blank lines, with mixed terminators.
fn sse_text() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(b"data: {\"a\":1}".to_vec()),
        Just(b"data:x".to_vec()),
        Just(b"data".to_vec()),
        Just(b"data: ".to_vec()),
        Just(b"dat".to_vec()),
        Just(b"event: message_start".to_vec()),
        Just(b": keep-alive".to_vec()),
        Just(b"id: 7".to_vec()),
        Just(Vec::new()),
        "[a-z:é ]{0,12}".prop_map(|s| format!("data:{s}").into_bytes()),
    ];
    let term = prop_oneof![Just(&b"\n"[..]), Just(&b"\r\n"[..]), Just(&b"\r"[..])];
    proptest::collection::vec((line, term), 0..24).prop_map(|lines| {
        lines
            .into_iter()
            .flat_map(|(l, t)| [l, t.to_vec()].concat())
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn matches_the_reference_for_any_chunking(
        (input, cuts) in sse_text().prop_flat_map(|t| {
            let len = t.len();
            (Just(t), proptest::collection::vec(0..=len, 0..8))
        })
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        prop_assert_eq!(read(&input, &cuts), reference(&input));
    }
}
