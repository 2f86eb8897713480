//! A generic EDN reader (the data notation Jepsen, Knossos and Elle write histories in).
//!
//! It parses the whole of EDN that histories use: nil, booleans, integers (with an `N`
//! suffix kept as text when too big), floats, strings, characters, keywords, symbols,
//! lists, vectors, maps, sets, `#_` discards, `;` comments and tagged values such as
//! `#jepsen.history.Op{...}` or `#inst "..."`. Every value remembers the line it starts
//! on, so importers can name the line of a malformed op.

use serde_json::{Map, Number, Value};

/// One EDN value.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    /// An integer too large for i64 (or written with an `N` suffix), as written.
    BigInt(String),
    Float(f64),
    Str(String),
    Char(char),
    /// A keyword without its leading colon: `:f` is `Keyword("f")`.
    Keyword(String),
    Symbol(String),
    List(Vec<Edn>),
    Vector(Vec<Edn>),
    /// Entries in the order written.
    Map(Vec<(Edn, Edn)>),
    Set(Vec<Edn>),
    /// `#tag value`, e.g. `#jepsen.history.Op{...}`; the tag without its `#`.
    Tagged(String, Box<Edn>),
}

/// A parse failure, with the 1-based line and column where it was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct EdnError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A value together with the 1-based line it starts on.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned {
    pub line: usize,
    pub value: Edn,
}

impl Edn {
    /// Looks up `:name` (or the string key `"name"`) in a map, also through a tag such as
    /// `#jepsen.history.Op{...}`.
    pub fn get(&self, name: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => entries.iter().find_map(|(k, v)| match k {
                Edn::Keyword(k) | Edn::Str(k) if k == name => Some(v),
                _ => None,
            }),
            Edn::Tagged(_, inner) => inner.get(name),
            _ => None,
        }
    }

    /// The elements of a list, vector or set.
    pub fn as_seq(&self) -> Option<&[Edn]> {
        match self {
            Edn::List(v) | Edn::Vector(v) | Edn::Set(v) => Some(v),
            _ => None,
        }
    }

    /// Keyword, symbol or string text.
    pub fn as_name(&self) -> Option<&str> {
        match self {
            Edn::Keyword(s) | Edn::Symbol(s) | Edn::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Edn::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Converts to JSON: nil is null, keywords and symbols become their name as a
    /// string, sets and lists become arrays, map keys become text (keywords without the
    /// colon), tagged values become their inner value.
    pub fn to_json(&self) -> Value {
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(i) => Value::from(*i),
            Edn::BigInt(s) => Value::String(s.clone()),
            Edn::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
            Edn::Char(c) => Value::String(c.to_string()),
            Edn::List(v) | Edn::Vector(v) | Edn::Set(v) => {
                Value::Array(v.iter().map(Edn::to_json).collect())
            }
            Edn::Map(entries) => {
                let mut m = Map::new();
                for (k, v) in entries {
                    m.insert(k.key_text(), v.to_json());
                }
                Value::Object(m)
            }
            Edn::Tagged(_, inner) => inner.to_json(),
        }
    }

    /// Text for a JSON object key.
    fn key_text(&self) -> String {
        match self {
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

impl std::fmt::Display for Edn {
    /// Writes the value back as EDN.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn seq(
            f: &mut std::fmt::Formatter<'_>,
            open: &str,
            v: &[Edn],
            close: &str,
        ) -> std::fmt::Result {
            f.write_str(open)?;
            for (i, e) in v.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{e}")?;
            }
            f.write_str(close)
        }
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::BigInt(s) => write!(f, "{s}N"),
            Edn::Float(x) if x.fract() == 0.0 && x.is_finite() => write!(f, "{x:.1}"),
            Edn::Float(x) => write!(f, "{x}"),
            Edn::Str(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Edn::Char(c) => match c {
                '\n' => f.write_str("\\newline"),
                ' ' => f.write_str("\\space"),
                '\t' => f.write_str("\\tab"),
                '\r' => f.write_str("\\return"),
                c => write!(f, "\\{c}"),
            },
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::List(v) => seq(f, "(", v, ")"),
            Edn::Vector(v) => seq(f, "[", v, "]"),
            Edn::Set(v) => seq(f, "#{", v, "}"),
            Edn::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
            Edn::Tagged(tag, inner) => write!(f, "#{tag} {inner}"),
        }
    }
}

/// Converts JSON to EDN: objects become maps with keyword keys, strings stay strings.
pub fn from_json(v: &Value) -> Edn {
    match v {
        Value::Null => Edn::Nil,
        Value::Bool(b) => Edn::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map(Edn::Int)
            .unwrap_or_else(|| Edn::Float(n.as_f64().unwrap_or(f64::NAN))),
        Value::String(s) => Edn::Str(s.clone()),
        Value::Array(a) => Edn::Vector(a.iter().map(from_json).collect()),
        Value::Object(m) => Edn::Map(
            m.iter()
                .map(|(k, v)| (Edn::Keyword(k.clone()), from_json(v)))
                .collect(),
        ),
    }
}

/// Parses exactly one value (surrounding whitespace and comments allowed).
pub fn parse_str(text: &str) -> Result<Edn, EdnError> {
    let mut p = Parser::new(text);
    let v = p
        .next_value()?
        .ok_or_else(|| p.error("expected a value, found the end of the input"))?;
    if p.next_value()?.is_some() {
        return Err(p.error("more than one value"));
    }
    Ok(v.value)
}

/// Reads a history-shaped document: if the input is a single top-level vector or list,
/// its elements; otherwise every top-level value (one map a line). Each with its line.
pub fn read_seq(text: &str) -> Result<Vec<Spanned>, EdnError> {
    let mut p = Parser::new(text);
    let mut top = Vec::new();
    while let Some(v) = p.next_value_spanned_items()? {
        top.push(v);
    }
    if top.len() == 1 && matches!(top[0].0.value, Edn::Vector(_) | Edn::List(_)) {
        let (_, items) = top.pop().expect("one value");
        return Ok(items);
    }
    Ok(top.into_iter().map(|(v, _)| v).collect())
}

/// A streaming parser over EDN text.
pub struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    line: usize,
    line_start: usize,
}

impl<'a> Parser<'a> {
    pub fn new(text: &'a str) -> Self {
        Parser {
            src: text.as_bytes(),
            text,
            pos: 0,
            line: 1,
            line_start: 0,
        }
    }

    /// The next top-level value, or `None` at the end of the input.
    pub fn next_value(&mut self) -> Result<Option<Spanned>, EdnError> {
        self.skip_ws()?;
        if self.pos >= self.src.len() {
            return Ok(None);
        }
        let line = self.line;
        let value = self.value()?;
        Ok(Some(Spanned { line, value }))
    }

    /// Like `next_value`, but for a top-level vector or list also returns its elements
    /// with their own lines (so a history vector's ops keep their line numbers).
    fn next_value_spanned_items(&mut self) -> Result<Option<(Spanned, Vec<Spanned>)>, EdnError> {
        self.skip_ws()?;
        if self.pos >= self.src.len() {
            return Ok(None);
        }
        let line = self.line;
        let close = match self.src[self.pos] {
            b'[' => b']',
            b'(' => b')',
            _ => {
                let value = self.value()?;
                return Ok(Some((Spanned { line, value }, Vec::new())));
            }
        };
        self.bump();
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                None => return Err(self.error(&format!("unclosed '{}'", (close as char)))),
                Some(c) if c == close => {
                    self.bump();
                    break;
                }
                Some(_) => {
                    let l = self.line;
                    let v = self.value()?;
                    items.push(Spanned { line: l, value: v });
                }
            }
        }
        // The value itself is only needed to tell a vector from a map; avoid a deep copy.
        let value = if close == b']' {
            Edn::Vector(Vec::new())
        } else {
            Edn::List(Vec::new())
        };
        Ok(Some((Spanned { line, value }, items)))
    }

    pub fn error(&self, message: &str) -> EdnError {
        EdnError {
            line: self.line,
            column: self.pos - self.line_start + 1,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn bump(&mut self) {
        if self.src[self.pos] == b'\n' {
            self.line += 1;
            self.line_start = self.pos + 1;
        }
        self.pos += 1;
    }

    fn skip_ws(&mut self) -> Result<(), EdnError> {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b',' | 0x0c => self.bump(),
                b';' => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                b'#' if self.src.get(self.pos + 1) == Some(&b'_') => {
                    self.pos += 2;
                    self.skip_ws()?;
                    if self.peek().is_none() {
                        return Err(self.error("#_ discards nothing"));
                    }
                    self.value()?;
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Edn, EdnError> {
        self.skip_ws()?;
        let Some(c) = self.peek() else {
            return Err(self.error("unexpected end of input"));
        };
        match c {
            b'(' => {
                self.bump();
                Ok(Edn::List(self.seq_until(b')')?))
            }
            b'[' => {
                self.bump();
                Ok(Edn::Vector(self.seq_until(b']')?))
            }
            b'{' => {
                self.bump();
                self.map_body()
            }
            b'#' => self.dispatch(),
            b'"' => self.string(),
            b'\\' => self.character(),
            b':' => {
                self.bump();
                let tok = self.token();
                if tok.is_empty() {
                    return Err(self.error("empty keyword"));
                }
                Ok(Edn::Keyword(tok.trim_start_matches(':').to_string()))
            }
            b')' | b']' | b'}' => Err(self.error(&format!("unexpected '{}'", c as char))),
            _ => {
                let tok = self.token();
                if tok.is_empty() {
                    return Err(self.error(&format!("unexpected character '{}'", c as char)));
                }
                self.atom(tok)
            }
        }
    }

    fn seq_until(&mut self, close: u8) -> Result<Vec<Edn>, EdnError> {
        let (line, col) = (self.line, self.pos - self.line_start);
        let mut out = Vec::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                None => {
                    return Err(EdnError {
                        line,
                        column: col,
                        message: format!("unclosed collection (expected '{}')", close as char),
                    });
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(out);
                }
                Some(_) => out.push(self.value()?),
            }
        }
    }

    fn map_body(&mut self) -> Result<Edn, EdnError> {
        let items = self.seq_until(b'}')?;
        if items.len() % 2 != 0 {
            return Err(self.error("a map needs an even number of forms"));
        }
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            entries.push((k, v));
        }
        Ok(Edn::Map(entries))
    }

    fn dispatch(&mut self) -> Result<Edn, EdnError> {
        self.bump(); // '#'
        match self.peek() {
            Some(b'{') => {
                self.bump();
                Ok(Edn::Set(self.seq_until(b'}')?))
            }
            Some(b'#') => {
                // ##Inf, ##-Inf, ##NaN
                self.bump();
                let tok = self.token();
                match tok {
                    "Inf" => Ok(Edn::Float(f64::INFINITY)),
                    "-Inf" => Ok(Edn::Float(f64::NEG_INFINITY)),
                    "NaN" => Ok(Edn::Float(f64::NAN)),
                    other => Err(self.error(&format!("unknown symbolic value ##{other}"))),
                }
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let tag = self.token().to_string();
                // A record literal `#ns.Rec{...}` has no space before its map.
                let inner = self.value()?;
                Ok(Edn::Tagged(tag, Box::new(inner)))
            }
            _ => Err(self.error("unsupported '#' dispatch")),
        }
    }

    fn string(&mut self) -> Result<Edn, EdnError> {
        let (line, col) = (self.line, self.pos - self.line_start + 1);
        self.bump(); // opening quote
        let mut out = String::new();
        let mut run_start = self.pos;
        loop {
            let Some(c) = self.peek() else {
                return Err(EdnError {
                    line,
                    column: col,
                    message: "unterminated string".into(),
                });
            };
            match c {
                b'"' => {
                    out.push_str(&self.text[run_start..self.pos]);
                    self.bump();
                    return Ok(Edn::Str(out));
                }
                b'\\' => {
                    out.push_str(&self.text[run_start..self.pos]);
                    self.bump();
                    let Some(e) = self.peek() else {
                        continue;
                    };
                    self.bump();
                    match e {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'u' => {
                            let hex = self.text.get(self.pos..self.pos + 4).unwrap_or("");
                            let ch = u32::from_str_radix(hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.error("bad \\u escape in string"))?;
                            out.push(ch);
                            self.pos += 4;
                        }
                        other => {
                            return Err(self.error(&format!(
                                "unknown escape '\\{}' in string",
                                other as char
                            )));
                        }
                    }
                    run_start = self.pos;
                }
                _ => self.bump(),
            }
        }
    }

    fn character(&mut self) -> Result<Edn, EdnError> {
        self.bump(); // backslash
        let start = self.pos;
        // At least one character, then the rest of a token.
        let first = self.text[start..]
            .chars()
            .next()
            .ok_or_else(|| self.error("empty character literal"))?;
        self.pos += first.len_utf8();
        let rest = self.token();
        let tok = &self.text[start..start + first.len_utf8() + rest.len()];
        let c = match tok {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            "formfeed" => '\u{c}',
            "backspace" => '\u{8}',
            t if t.chars().count() == 1 => first,
            t if t.starts_with('u') && t.len() == 5 => u32::from_str_radix(&t[1..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| self.error(&format!("bad character literal \\{t}")))?,
            t => return Err(self.error(&format!("bad character literal \\{t}"))),
        };
        Ok(Edn::Char(c))
    }

    /// The longest run of token characters from here (possibly empty).
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            let delim = matches!(
                c,
                b' ' | b'\t'
                    | b'\n'
                    | b'\r'
                    | b','
                    | b'('
                    | b')'
                    | b'['
                    | b']'
                    | b'{'
                    | b'}'
                    | b'"'
                    | b';'
                    | 0x0c
            );
            if delim {
                break;
            }
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn atom(&self, tok: &str) -> Result<Edn, EdnError> {
        match tok {
            "nil" => return Ok(Edn::Nil),
            "true" => return Ok(Edn::Bool(true)),
            "false" => return Ok(Edn::Bool(false)),
            _ => {}
        }
        let b = tok.as_bytes();
        let numeric = b[0].is_ascii_digit()
            || (matches!(b[0], b'-' | b'+') && b.len() > 1 && b[1].is_ascii_digit());
        if !numeric {
            return Ok(Edn::Symbol(tok.to_string()));
        }
        let bad = || self.error(&format!("bad number {tok:?}"));
        if let Some(digits) = tok.strip_suffix('N') {
            return match digits.parse::<i64>() {
                Ok(i) => Ok(Edn::Int(i)),
                Err(_)
                    if digits
                        .trim_start_matches(['-', '+'])
                        .bytes()
                        .all(|c| c.is_ascii_digit()) =>
                {
                    Ok(Edn::BigInt(digits.to_string()))
                }
                Err(_) => Err(bad()),
            };
        }
        if let Some(dec) = tok.strip_suffix('M') {
            return dec.parse::<f64>().map(Edn::Float).map_err(|_| bad());
        }
        if let Ok(i) = tok.parse::<i64>() {
            return Ok(Edn::Int(i));
        }
        if tok
            .trim_start_matches(['-', '+'])
            .bytes()
            .all(|c| c.is_ascii_digit())
        {
            return Ok(Edn::BigInt(tok.to_string()));
        }
        if let Some((n, d)) = tok.split_once('/') {
            let (n, d) = (
                n.parse::<f64>().map_err(|_| bad())?,
                d.parse::<f64>().map_err(|_| bad())?,
            );
            return Ok(Edn::Float(n / d));
        }
        tok.parse::<f64>().map(Edn::Float).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scalars_and_collections() {
        let v = parse_str(
            r#"{:process 0, :type :invoke, :f :cas, :value [1 2] :s "a\"b\n" :set #{1 2}
                :l (nil true false) :c \a :sym foo/bar :big 123456789012345678901234N :x -1.5}"#,
        )
        .unwrap();
        assert_eq!(v.get("process"), Some(&Edn::Int(0)));
        assert_eq!(v.get("type").and_then(Edn::as_name), Some("invoke"));
        assert_eq!(
            v.get("value"),
            Some(&Edn::Vector(vec![Edn::Int(1), Edn::Int(2)]))
        );
        assert_eq!(v.get("s"), Some(&Edn::Str("a\"b\n".into())));
        assert_eq!(v.get("set").unwrap().as_seq().unwrap().len(), 2);
        assert_eq!(
            v.get("l"),
            Some(&Edn::List(vec![
                Edn::Nil,
                Edn::Bool(true),
                Edn::Bool(false)
            ]))
        );
        assert_eq!(v.get("c"), Some(&Edn::Char('a')));
        assert_eq!(v.get("sym"), Some(&Edn::Symbol("foo/bar".into())));
        assert_eq!(
            v.get("big"),
            Some(&Edn::BigInt("123456789012345678901234".into()))
        );
        assert_eq!(v.get("x"), Some(&Edn::Float(-1.5)));
    }

    #[test]
    fn comments_discards_tags_and_lines() {
        let text = "; a comment\n[{:a 1}\n #_ {:skipped true}\n ; note\n #jepsen.history.Op{:a 2}\n #inst \"2020\"]";
        let items = read_seq(text).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].line, 2);
        assert_eq!(items[1].line, 5);
        assert_eq!(items[1].value.get("a"), Some(&Edn::Int(2)));
        assert_eq!(
            items[2].value,
            Edn::Tagged("inst".into(), Box::new(Edn::Str("2020".into())))
        );
    }

    #[test]
    fn one_map_a_line() {
        let items = read_seq("{:a 1}\n{:a 2}\n\n{:a 3}\n").unwrap();
        let lines: Vec<usize> = items.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![1, 2, 4]);
    }

    #[test]
    fn to_json_and_back_to_text() {
        let v = parse_str("{:f :txn :value [[:append :x 1] [:r \"y\" nil]]}").unwrap();
        assert_eq!(
            v.to_json(),
            serde_json::json!({"f":"txn","value":[["append","x",1],["r","y",null]]})
        );
        assert_eq!(parse_str(&v.to_string()).unwrap(), v);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse_str("[1 2\n 3").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("unclosed"), "{e}");
        let e = parse_str("{:a 1\n :b}").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("even number"), "{e}");
        let e = parse_str("\n\n  \"abc").unwrap_err();
        assert_eq!((e.line, e.column), (3, 3));
        assert!(parse_str(")").is_err());
        assert!(parse_str("1 2").is_err());
        assert!(parse_str("#?x").is_err());
    }

    #[test]
    fn never_panics_on_truncations() {
        let text = r#"[{:process 0, :type :invoke, :f :write, :value "x\u0041"} #{\a \newline} ##Inf 1/2 3M]"#;
        for i in 0..text.len() {
            if text.is_char_boundary(i) {
                let _ = read_seq(&text[..i]);
            }
        }
        assert!(read_seq(text).is_ok());
    }
}
