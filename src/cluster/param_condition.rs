//! A condition on a descriptor's `[params]`, such as `r + w <= n` or
//! `read_repair == "blocking" and r + w > n`: it picks the promise envelope a run's settings
//! get (`[[guarantees_when]]`), so `--param r=1` cannot leave a promise in force that the
//! setting broke.
//!
//! Grammar: clauses joined by `and`; a clause is `SUM OP SUM` with OP one of `<`, `<=`, `>`,
//! `>=`, `==`, `!=`; a SUM is parameter names and integers joined by `+` and `-`, or one
//! quoted string. Numbers compare as integers; a side that is not a number compares as text,
//! and only with `==` or `!=`.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    text: String,
    clauses: Vec<Clause>,
}

#[derive(Clone, Debug, PartialEq)]
struct Clause {
    left: Vec<Term>,
    op: Cmp,
    right: Vec<Term>,
}

/// One signed summand.
#[derive(Clone, Debug, PartialEq)]
struct Term {
    negative: bool,
    atom: Atom,
}

#[derive(Clone, Debug, PartialEq)]
enum Atom {
    Param(String),
    Int(i64),
    Text(String),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Name(String),
    Int(i64),
    Text(String),
    Plus,
    Minus,
    Cmp(Cmp),
    And,
}

/// What a side of a clause is worth under the run's settings.
enum Side {
    Number(i64),
    Text(String),
}

impl Condition {
    /// Parses `text`; every name must be one of `known` (the descriptor's `[params]`).
    pub fn parse(text: &str, known: &BTreeMap<String, String>) -> Result<Condition, String> {
        let tokens = tokenize(text)?;
        let mut clauses = Vec::new();
        for part in tokens.split(|t| *t == Token::And) {
            let Some(at) = part.iter().position(|t| matches!(t, Token::Cmp(_))) else {
                return Err(format!(
                    "`{text}`: each clause needs a comparison (<, <=, >, >=, ==, !=)"
                ));
            };
            let Token::Cmp(op) = part[at] else {
                unreachable!()
            };
            let left = sum(&part[..at], text)?;
            let right = sum(&part[at + 1..], text)?;
            for t in left.iter().chain(&right) {
                if let Atom::Param(name) = &t.atom
                    && !known.contains_key(name)
                {
                    let names: Vec<&str> = known.keys().map(String::as_str).collect();
                    return Err(format!(
                        "`{text}`: unknown parameter `{name}` (known: {})",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ));
                }
            }
            clauses.push(Clause { left, op, right });
        }
        Ok(Condition {
            text: text.to_string(),
            clauses,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the condition holds for `params`; an error when a setting cannot be compared
    /// as the condition asks (a sum over a value that is not an integer).
    pub fn holds(&self, params: &BTreeMap<String, String>) -> Result<bool, String> {
        for c in &self.clauses {
            let (l, r) = (self.side(&c.left, params)?, self.side(&c.right, params)?);
            let holds = match (l, r) {
                (Side::Number(a), Side::Number(b)) => match c.op {
                    Cmp::Lt => a < b,
                    Cmp::Le => a <= b,
                    Cmp::Gt => a > b,
                    Cmp::Ge => a >= b,
                    Cmp::Eq => a == b,
                    Cmp::Ne => a != b,
                },
                (a, b) => {
                    let text = |s: Side| match s {
                        Side::Number(n) => n.to_string(),
                        Side::Text(t) => t,
                    };
                    let (a, b) = (text(a), text(b));
                    match c.op {
                        Cmp::Eq => a == b,
                        Cmp::Ne => a != b,
                        _ => {
                            return Err(format!(
                                "`{}`: `{a}` and `{b}` are not both integers, so they can only be \
                                 compared with == or !=",
                                self.text
                            ));
                        }
                    }
                }
            };
            if !holds {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn side(&self, terms: &[Term], params: &BTreeMap<String, String>) -> Result<Side, String> {
        let value = |a: &Atom| match a {
            Atom::Param(n) => params.get(n).cloned().unwrap_or_default(),
            Atom::Int(i) => i.to_string(),
            Atom::Text(t) => t.clone(),
        };
        if let [
            Term {
                negative: false,
                atom,
            },
        ] = terms
        {
            let v = value(atom);
            return Ok(match (atom, v.parse::<i64>()) {
                (Atom::Text(_), _) | (_, Err(_)) => Side::Text(v),
                (_, Ok(n)) => Side::Number(n),
            });
        }
        let mut total: i64 = 0;
        for t in terms {
            let v = value(&t.atom);
            let n = match (&t.atom, v.parse::<i64>()) {
                (Atom::Text(_), _) | (_, Err(_)) => {
                    return Err(format!(
                        "`{}`: `{v}` is not an integer, and a sum needs integers",
                        self.text
                    ));
                }
                (_, Ok(n)) => n,
            };
            total = if t.negative {
                total.saturating_sub(n)
            } else {
                total.saturating_add(n)
            };
        }
        Ok(Side::Number(total))
    }
}

/// Terms joined by `+` / `-` (a leading `-` negates the first); a quoted string stands alone.
fn sum(tokens: &[Token], text: &str) -> Result<Vec<Term>, String> {
    let mut terms = Vec::new();
    let mut negative = false;
    let mut want_atom = true;
    for t in tokens {
        match (t, want_atom) {
            (Token::Minus, true) if terms.is_empty() && !negative => {
                negative = true;
                continue;
            }
            (Token::Name(n), true) => terms.push(Term {
                negative,
                atom: Atom::Param(n.clone()),
            }),
            (Token::Int(i), true) => terms.push(Term {
                negative,
                atom: Atom::Int(*i),
            }),
            (Token::Text(s), true) if tokens.len() == 1 => terms.push(Term {
                negative,
                atom: Atom::Text(s.clone()),
            }),
            (Token::Plus | Token::Minus, false) => {
                negative = *t == Token::Minus;
                want_atom = true;
                continue;
            }
            _ => return Err(format!("`{text}`: unexpected {} in a comparison", show(t))),
        }
        want_atom = false;
        negative = false;
    }
    if want_atom {
        return Err(format!(
            "`{text}`: a comparison is missing a side or a term"
        ));
    }
    Ok(terms)
}

fn show(t: &Token) -> String {
    match t {
        Token::Name(n) => format!("`{n}`"),
        Token::Int(i) => format!("`{i}`"),
        Token::Text(s) => format!("\"{s}\" (a string stands alone on its side)"),
        Token::Plus => "`+`".into(),
        Token::Minus => "`-`".into(),
        Token::Cmp(_) => "a second comparison (join clauses with `and`)".into(),
        Token::And => "`and`".into(),
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let cmp = match two.as_str() {
            "<=" => Some((Cmp::Le, 2)),
            ">=" => Some((Cmp::Ge, 2)),
            "==" => Some((Cmp::Eq, 2)),
            "!=" => Some((Cmp::Ne, 2)),
            _ if c == '<' => Some((Cmp::Lt, 1)),
            _ if c == '>' => Some((Cmp::Gt, 1)),
            _ => None,
        };
        if let Some((op, len)) = cmp {
            out.push(Token::Cmp(op));
            i += len;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '+' || c == '-' {
            out.push(if c == '+' { Token::Plus } else { Token::Minus });
            i += 1;
        } else if c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == '"')
                .ok_or_else(|| format!("`{text}`: a string is not closed"))?;
            out.push(Token::Text(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if c.is_ascii_digit() {
            let len = chars[i..].iter().take_while(|d| d.is_ascii_digit()).count();
            let digits: String = chars[i..i + len].iter().collect();
            let n = digits
                .parse()
                .map_err(|_| format!("`{text}`: {digits} is too large"))?;
            out.push(Token::Int(n));
            i += len;
        } else if c.is_ascii_lowercase() || c == '_' {
            let len = chars[i..]
                .iter()
                .take_while(|d| d.is_ascii_lowercase() || d.is_ascii_digit() || **d == '_')
                .count();
            let word: String = chars[i..i + len].iter().collect();
            out.push(if word == "and" {
                Token::And
            } else {
                Token::Name(word)
            });
            i += len;
        } else {
            return Err(format!("`{text}`: unexpected character {c:?}"));
        }
    }
    if out.is_empty() {
        return Err("an empty condition".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn holds(cond: &str, pairs: &[(&str, &str)]) -> Result<bool, String> {
        let p = params(pairs);
        Condition::parse(cond, &p)?.holds(&p)
    }

    #[test]
    fn quorum_arithmetic_and_text_settings_decide() {
        let nrw = |n, r, w| [("n", n), ("r", r), ("w", w), ("read_repair", "async")];
        assert_eq!(holds("r + w > n", &nrw("3", "2", "2")), Ok(true));
        assert_eq!(holds("r + w > n", &nrw("3", "1", "2")), Ok(false));
        assert_eq!(holds("r+w<=n", &nrw("3", "1", "2")), Ok(true));
        assert_eq!(holds("n - r >= 1", &nrw("3", "2", "2")), Ok(true));
        assert_eq!(holds("-r + 3 == w - 1", &nrw("3", "2", "2")), Ok(true));
        assert_eq!(
            holds("read_repair == \"async\"", &nrw("3", "2", "2")),
            Ok(true)
        );
        assert_eq!(
            holds("read_repair != \"async\"", &nrw("3", "2", "2")),
            Ok(false)
        );
        assert_eq!(
            holds(
                "read_repair == \"async\" and r + w > n",
                &nrw("3", "1", "1")
            ),
            Ok(false)
        );
        // a number written as text is still the number
        assert_eq!(holds("r == \"2\"", &nrw("3", "2", "2")), Ok(true));
        assert_eq!(holds("w == 2", &nrw("3", "2", "02")), Ok(true));
    }

    #[test]
    fn settings_the_condition_cannot_compare_are_errors() {
        let p = params(&[("r", "two"), ("n", "3"), ("mode", "abd")]);
        let c = Condition::parse("r + 1 > n", &p).unwrap();
        let e = c.holds(&p).unwrap_err();
        assert!(e.contains("`two` is not an integer"), "{e}");
        let e = Condition::parse("mode < n", &p)
            .unwrap()
            .holds(&p)
            .unwrap_err();
        assert!(e.contains("== or !="), "{e}");
    }

    #[test]
    fn malformed_conditions_say_what_is_wrong() {
        let p = params(&[("r", "2"), ("n", "3")]);
        for (cond, says) in [
            ("r + w > n", "unknown parameter `w` (known: n, r)"),
            ("r n", "needs a comparison"),
            ("r > ", "missing a side"),
            ("r + > n", "missing a side or a term"),
            ("r > n > 1", "a second comparison"),
            ("r > n and", "needs a comparison"),
            ("\"a\" + r == n", "stands alone"),
            ("r == \"open", "not closed"),
            ("R > n", "unexpected character 'R'"),
            ("", "empty"),
        ] {
            let e = Condition::parse(cond, &p).unwrap_err();
            assert!(e.contains(says), "{cond:?}: {e}");
        }
    }
}
