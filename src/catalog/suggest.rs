//! "Did you mean": the catalog names closest to an unknown one (error path only).

/// Up to `n` candidates, closest first: those within a small edit distance of
/// `name` (or containing it, or contained in it, ranked after closer ones);
/// when none is, those sharing its longest prefix of at least three bytes
/// (`gpt-9000` → the `gpt-` models).
pub fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
    n: usize,
) -> Vec<&'a str> {
    let name = name.to_ascii_lowercase();
    if name.is_empty() || name.len() > 256 {
        return Vec::new();
    }
    let limit = (name.len() / 3).max(2);
    let candidates: Vec<&str> = candidates.collect();
    let mut scored: Vec<(usize, usize, &str)> = candidates
        .iter()
        .filter_map(|&c| {
            let mut d = levenshtein(&name, c);
            if d > limit && (c.contains(name.as_str()) || name.contains(c)) {
                d = limit;
            }
            (d <= limit).then_some((d, c.len().abs_diff(name.len()), c))
        })
        .collect();
    if scored.is_empty() {
        let shared = |c: &str| {
            c.bytes()
                .zip(name.bytes())
                .take_while(|(a, b)| a == b)
                .count()
        };
        let best = candidates.iter().map(|c| shared(c)).max().unwrap_or(0);
        if best >= 3 {
            scored = candidates
                .iter()
                .filter(|c| shared(c) == best)
                .map(|&c| (levenshtein(&name, c), 0, c))
                .collect();
        }
    }
    scored.sort_unstable();
    scored.dedup_by(|a, b| a.2 == b.2);
    scored.into_iter().take(n).map(|(_, _, c)| c).collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names() {
        let names = ["gpt-4o", "gpt-4o-mini", "claude-opus-4-1", "o3"];
        let got = closest("gpt-4x", names.iter().copied(), 3);
        assert_eq!(got.first(), Some(&"gpt-4o"));
        assert!(closest("zzzzzzzzzz", names.iter().copied(), 3).is_empty());
    }

    #[test]
    fn the_nearest_name_comes_first() {
        let names = [
            "gpt-4",
            "gpt-4o",
            "gpt-4o-mini",
            "claude-sonnet-4",
            "claude-sonnet-4-6",
            "claude-opus-4-1",
        ];
        let got = closest("gpt-4o-minii", names.iter().copied(), 3);
        assert_eq!(got.first(), Some(&"gpt-4o-mini"));
        let got = closest("claude-sonnet-4.6", names.iter().copied(), 3);
        assert_eq!(got.first(), Some(&"claude-sonnet-4-6"));
        // Nothing near: the names sharing the longest prefix.
        let got = closest("gpt-9000", names.iter().copied(), 3);
        assert_eq!(got, ["gpt-4", "gpt-4o", "gpt-4o-mini"]);
        let got = closest("claude-9", names.iter().copied(), 3);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got.iter().all(|c| c.starts_with("claude-")));
    }

    #[test]
    fn distance() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "ab"), 2);
    }
}
