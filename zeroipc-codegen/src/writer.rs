//! An indentation-aware line writer shared by the backends.

/// Accumulates lines at the current indentation; blank lines carry no trailing spaces.
#[derive(Debug)]
pub(crate) struct Writer {
    out: String,
    indent: usize,
    unit: &'static str,
}

impl Writer {
    /// A writer indenting by `unit` per level.
    pub(crate) fn new(unit: &'static str) -> Self {
        Self {
            out: String::new(),
            indent: 0,
            unit,
        }
    }

    /// Writes one line (or several, each indented) at the current level.
    pub(crate) fn line(&mut self, text: impl AsRef<str>) {
        for line in text.as_ref().split('\n') {
            if !line.is_empty() {
                for _ in 0..self.indent {
                    self.out.push_str(self.unit);
                }
                self.out.push_str(line);
            }
            self.out.push('\n');
        }
    }

    /// An empty line.
    pub(crate) fn blank(&mut self) {
        self.out.push('\n');
    }

    /// Writes `open`, then `body` one level deeper, then `close`.
    pub(crate) fn block(&mut self, open: &str, close: &str, body: impl FnOnce(&mut Self)) {
        self.line(open);
        self.indent += 1;
        body(self);
        self.indent -= 1;
        self.line(close);
    }

    /// Writes `text` as comment lines with `prefix` (`"# "`, `" * "`), one per line of `text`
    /// (see [`doc_lines`]).
    pub(crate) fn comment(&mut self, prefix: &str, text: &str) {
        for line in doc_lines(text) {
            self.line(format!("{prefix}{line}").trim_end());
        }
    }

    /// The text written so far.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// The lines of a doc comment, safe to place after a line-comment marker in any language: every
/// line break (`\n`, `\r\n`, a lone `\r`, which Python also ends a line on) starts a new line,
/// and every other control character (NUL, form feed, ...) becomes a space.
pub(crate) fn doc_lines(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .split(['\n', '\r'])
        .map(|line| {
            line.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_lines_break_on_every_line_end_and_drop_control_characters() {
        assert_eq!(doc_lines("a\rb\r\nc\nd\0e\u{c}f"), ["a", "b", "c", "d e f"]);
    }
}
