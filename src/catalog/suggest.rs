//! "Did you mean": the catalog names closest to an unknown one (error path only).

/// Up to `n` candidates within a small edit distance of `name`, closest first.
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
    let mut scored: Vec<(usize, &str)> = candidates
        .filter_map(|c| {
            let d = if c.contains(name.as_str()) || name.contains(c) {
                1
            } else {
                levenshtein(&name, c)
            };
            (d <= limit).then_some((d, c))
        })
        .collect();
    scored.sort_unstable();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(n).map(|(_, c)| c).collect()
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
    fn distance() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "ab"), 2);
    }
}
