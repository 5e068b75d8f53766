//! Where a key of an experiment file is: its line, from the TOML parser's spans, so that every
//! problem of `proglab experiment check` can name it.

/// The 1-based line of byte `offset` in `text`.
pub(super) fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Lines of the keys of a TOML document, from the parser's spans.
pub(super) struct KeyLines<'a> {
    text: &'a str,
    root: Option<toml::de::DeTable<'a>>,
}

impl<'a> KeyLines<'a> {
    pub(super) fn new(text: &'a str) -> KeyLines<'a> {
        KeyLines {
            text,
            root: toml::de::DeTable::parse(text)
                .ok()
                .map(toml::Spanned::into_inner),
        }
    }

    /// The line of `key` (`tasks[2].level`, `consent.text.file`), or of the nearest enclosing key
    /// the file has (a missing `level` is reported at its `[[tasks]]` table).
    pub(super) fn line(&self, key: &str) -> Option<usize> {
        let mut table = self.root.as_ref()?;
        let mut found = None;
        for segment in key.split('.') {
            let (name, indices) = split_indices(segment);
            let Some((k, mut value)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name)
            else {
                break;
            };
            found = Some(k.span().start);
            for index in indices {
                let toml::de::DeValue::Array(array) = value.get_ref() else {
                    break;
                };
                let Some(element) = array.get(index) else {
                    break;
                };
                value = element;
                found = Some(element.span().start);
            }
            match value.get_ref() {
                toml::de::DeValue::Table(inner) => table = inner,
                _ => break,
            }
        }
        found.map(|offset| line_at(self.text, offset))
    }
}

/// `tasks[2][1]` as (`tasks`, [2, 1]).
fn split_indices(segment: &str) -> (&str, Vec<usize>) {
    let name_end = segment.find('[').unwrap_or(segment.len());
    let indices = segment[name_end..]
        .split(['[', ']'])
        .filter_map(|part| part.parse().ok())
        .collect();
    (&segment[..name_end], indices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_on_their_lines() {
        let text = "slug = \"x\"\nlight = \"blink\"\n\n[consent]\ntext = { file = \"c.md\" }\n\n[[tasks]]\nmap = \"l.json\"\n\n[[tasks]]\nmap = \"l.json\"\nlevel = 1\n";
        let lines = KeyLines::new(text);
        assert_eq!(lines.line("light"), Some(2));
        assert_eq!(lines.line("consent.text.file"), Some(5));
        assert_eq!(lines.line("tasks[1].level"), Some(12));
        assert_eq!(lines.line("tasks[0].map"), Some(8));
        // A missing key is placed at what encloses it.
        let missing = lines.line("tasks[0].level").unwrap();
        assert!((7..=8).contains(&missing), "{missing}");
        assert_eq!(lines.line("nothing"), None);
    }
}
