//! Escaping for text placed in HTML/XML, and for JSON embedded in a `<script>` element.

/// Escapes `&`, `<`, `>`, `"` and `'` so text is safe in element content and attributes.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_html(&mut out, text);
    out
}

pub fn push_html(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 forbids most control characters even as references; drop them.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
}

/// JSON text that can sit inside `<script type="application/json">`: `<` only occurs inside
/// JSON strings, where `\u003c` reads back the same, so `</script>` and `<!--` cannot appear.
pub fn script_json(json: &str) -> String {
    json.replace('<', "\\u003c")
}

/// Shortens `text` to at most `max` characters, marking the cut with an ellipsis.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Pretty JSON of `v`, cut at about `max` bytes without serializing the rest (a witness
/// can be megabytes; the page shows its start and says how it was cut).
pub fn json_preview(v: &serde_json::Value, max: usize) -> String {
    struct Limited {
        buf: Vec<u8>,
        max: usize,
    }
    impl std::io::Write for Limited {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.buf.len() >= self.max {
                return Err(std::io::Error::other("full"));
            }
            self.buf.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = Limited {
        buf: Vec::new(),
        max,
    };
    let complete = serde_json::to_writer_pretty(&mut w, v).is_ok();
    let text = String::from_utf8_lossy(&w.buf).into_owned();
    if complete {
        text
    } else {
        format!("{}\n… (cut at {max} bytes)", truncate(&text, max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(
            html("<a href=\"x\">&'\u{1}</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn script_json_cannot_close_the_element_and_reads_back() {
        let json = serde_json::to_string(&"</script><!--").unwrap();
        let safe = script_json(&json);
        assert!(!safe.contains('<'));
        let back: String = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, "</script><!--");
    }

    #[test]
    fn json_preview_stops_early() {
        let big = serde_json::json!({"prefix": (0..100_000).collect::<Vec<u32>>()});
        let p = json_preview(&big, 1000);
        assert!(p.len() < 1100 && p.ends_with("(cut at 1000 bytes)"), "{p}");
        assert_eq!(json_preview(&serde_json::json!([1]), 1000), "[\n  1\n]");
    }

    #[test]
    fn truncates_on_characters() {
        assert_eq!(truncate("héllo", 10), "héllo");
        assert_eq!(truncate("héllo wörld", 5), "héll…");
    }
}
