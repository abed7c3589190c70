//! The line of a config field, for `tollgate check`'s messages: a field path as
//! validation names it (`access_keys[1].key`, `providers.openai.keys[0]`,
//! `upstream.connect_timeout`) looked up in the YAML text by indentation.
//! Block style is followed to the field; a flow mapping (`- {name: a, key: b}`)
//! gives its own line. `None` when the path is not in the text (a default).

/// The 1-based line of `path` in `text`.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    // `access_keys[0] (name)`: the name is for the reader, not the path.
    let path = path.split(" (").next().unwrap_or(path);
    let lines: Vec<&str> = text.lines().collect();
    let mut region = (0, lines.len());
    let mut parent: Option<usize> = None; // column the region's entries are right of
    let mut found = None;
    for segment in path.split('.') {
        let (key, indices) = match segment.find('[') {
            Some(i) => segment.split_at(i),
            None => (segment, ""),
        };
        let Some((line, column)) = find_key(&lines, region, parent, key) else {
            break;
        };
        found = Some(line);
        region = (
            line + 1,
            block_end(&lines, line + 1, region.1, column, true),
        );
        parent = Some(column);
        for index in indices
            .split(['[', ']'])
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse::<usize>().ok())
        {
            let Some((item, dash)) = find_item(&lines, region, index) else {
                return found.map(|l| l + 1);
            };
            found = Some(item);
            region = (item, block_end(&lines, item + 1, region.1, dash, false));
            parent = Some(dash);
        }
    }
    found.map(|l| l + 1)
}

/// Indentation and content of a line, after an optional list dash; `None`
/// for blank and comment lines.
fn entry(line: &str) -> Option<(usize, &str)> {
    let content = line.trim_start();
    if content.is_empty() || content.starts_with('#') {
        return None;
    }
    let indent = line.len() - content.len();
    match content.strip_prefix("- ") {
        Some(rest) => Some((
            indent + 2 + (rest.len() - rest.trim_start().len()),
            rest.trim_start(),
        )),
        None => Some((indent, content)),
    }
}

/// The first `key:` in the region right of `parent`, at the smallest column.
fn find_key(
    lines: &[&str],
    (from, to): (usize, usize),
    parent: Option<usize>,
    key: &str,
) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for (i, line) in lines.iter().enumerate().take(to).skip(from) {
        let Some((column, content)) = entry(line) else {
            continue;
        };
        if parent.is_some_and(|p| column <= p) {
            continue;
        }
        let name = content.split(':').next().unwrap_or_default().trim();
        let name = name.trim_matches(|c| c == '"' || c == '\'');
        if name == key && content.contains(':') && best.is_none_or(|(_, c)| column < c) {
            best = Some((i, column));
        }
    }
    best
}

/// The `index`th list item (`- `) at the region's first dash column.
fn find_item(lines: &[&str], (from, to): (usize, usize), index: usize) -> Option<(usize, usize)> {
    let mut dash = None;
    let mut seen = 0;
    for (i, line) in lines.iter().enumerate().take(to).skip(from) {
        let content = line.trim_start();
        if !content.starts_with("- ") && content != "-" {
            continue;
        }
        let column = line.len() - content.len();
        if *dash.get_or_insert(column) != column {
            continue;
        }
        if seen == index {
            return Some((i, column));
        }
        seen += 1;
    }
    None
}

/// Where the block that starts at `from` ends: the first entry at or left of
/// `column` (a key's list items may sit at its own column: `dashes_in`).
fn block_end(lines: &[&str], from: usize, to: usize, column: usize, dashes_in: bool) -> usize {
    (from..to)
        .find(|&i| {
            let line = lines[i];
            let content = line.trim_start();
            let indent = line.len() - content.len();
            let own_item = dashes_in && indent == column && content.starts_with('-');
            !content.is_empty() && !content.starts_with('#') && indent <= column && !own_item
        })
        .unwrap_or(to)
}

#[cfg(test)]
mod tests {
    use super::line_of;

    const TEXT: &str = "\
# tollgate
listen: 0.0.0.0:8080
access_keys:
  - name: a
    key: tg-a
  - name: b
    # the second key
    key: sk-b
  - {name: c, key: tg-c}
providers:
  openai:
    keys:
      - name: k0
        key_env: X
upstream:
  connect_timeout: 10q
routes:
  auto: []
";

    #[test]
    fn fields_are_found_by_their_path() {
        assert_eq!(line_of(TEXT, "listen"), Some(2));
        assert_eq!(line_of(TEXT, "access_keys[0].key"), Some(5));
        assert_eq!(line_of(TEXT, "access_keys[1] (b)"), Some(6));
        assert_eq!(line_of(TEXT, "access_keys[1].key"), Some(8));
        assert_eq!(line_of(TEXT, "access_keys[2].key"), Some(9), "a flow item");
        assert_eq!(
            line_of(TEXT, "providers.openai.keys[0].key"),
            Some(13),
            "no `key`: its item"
        );
        assert_eq!(line_of(TEXT, "providers.openai.keys[0].key_env"), Some(14));
        assert_eq!(line_of(TEXT, "upstream.connect_timeout"), Some(16));
        assert_eq!(line_of(TEXT, "routes.auto"), Some(18));
        assert_eq!(line_of(TEXT, "downstream.read_timeout"), None);
        assert_eq!(line_of(TEXT, "access_keys[7].key"), Some(3));
        assert_eq!(line_of("", "listen"), None);
        // A sequence at its key's own column.
        let compact = "access_keys:\n- name: a\n  key: x\n- name: b\n  key: y\nlisten: z\n";
        assert_eq!(line_of(compact, "access_keys[1].key"), Some(5));
        assert_eq!(line_of(compact, "listen"), Some(6));
    }
}
