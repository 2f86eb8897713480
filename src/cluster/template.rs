//! `{name}` placeholders in descriptor strings, filled per node. Pure.

use std::collections::BTreeMap;

/// Values available to a descriptor's templates for one node.
pub type Vars = BTreeMap<String, String>;

/// Replaces each `{name}` with its value; `{{` and `}}` are literal braces.
/// Errors with the unknown or unterminated placeholder's text.
pub fn render(template: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(format!("stray `}}` in `{template}`"));
        }
        let end = tail
            .find('}')
            .ok_or_else(|| format!("unterminated placeholder in `{template}`"))?;
        let name = &tail[1..end];
        let value = vars.get(name).ok_or_else(|| {
            let known: Vec<&str> = vars.keys().map(String::as_str).collect();
            format!(
                "unknown placeholder `{{{name}}}` (known: {})",
                known.join(", ")
            )
        })?;
        out.push_str(value);
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::new();
        v.insert("id".into(), "n1".into());
        v.insert("addr".into(), "10.0.0.11".into());
        v
    }

    #[test]
    fn fills_placeholders() {
        assert_eq!(
            render("http://{addr}:80/{id}", &vars()).unwrap(),
            "http://10.0.0.11:80/n1"
        );
    }

    #[test]
    fn literal_braces() {
        assert_eq!(render("{{x}} {id}", &vars()).unwrap(), "{x} n1");
    }

    #[test]
    fn unknown_placeholder_is_named() {
        let e = render("{nope}", &vars()).unwrap_err();
        assert!(e.contains("`{nope}`"), "{e}");
        assert!(e.contains("addr, id"), "{e}");
    }

    #[test]
    fn unterminated() {
        assert!(render("{id", &vars()).is_err());
        assert!(render("id}", &vars()).is_err());
    }
}
