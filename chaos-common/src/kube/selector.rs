//! Label selector validation on the client, by apimachinery's grammar (`labels.Parse`),
//! so that a malformed `--selector` is bad input (exit 2) before anything is touched
//! instead of the API server's 400 in the middle of a run:
//!
//! ```text
//! selector    := requirement ("," requirement)*
//! requirement := ["!"] KEY | KEY ("=" | "==" | "!=") VALUE | KEY ("in" | "notin") "(" VALUES ")"
//!              | KEY (">" | "<") INTEGER
//! ```
//!
//! KEY is a qualified name (optional DNS subdomain prefix and `/`, a name of at most 63
//! characters), VALUE a label value (empty, or at most 63 alphanumerics, `-`, `_`, `.`,
//! starting and ending alphanumeric).

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Op(&'static str),
}

const OPERATORS: [&str; 9] = ["==", "!=", "=", "!", "(", ")", ",", ">", "<"];

fn lex(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(**op)) {
            tokens.push(Token::Op(op));
            rest = rest[op.len()..].trim_start();
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || "=!(),><".contains(c))
            .unwrap_or(rest.len());
        tokens.push(match &rest[..end] {
            "in" => Token::Op("in"),
            "notin" => Token::Op("notin"),
            word => Token::Word(word.to_owned()),
        });
        rest = rest[end..].trim_start();
    }
    tokens
}

fn is_name_part(s: &str) -> bool {
    s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if prefix.is_some_and(|p| !is_dns_subdomain(p)) || !is_name_part(name) {
        return Err(format!(
            "'{key}' is not a valid label key (an optional DNS subdomain prefix and '/', then at most 63 \
             letters, digits, '-', '_' or '.', starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_name_part(value) {
        Ok(())
    } else {
        Err(format!(
            "'{value}' is not a valid label value (empty, or at most 63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit)"
        ))
    }
}

fn shown(token: Option<&Token>) -> String {
    match token {
        Some(Token::Word(w)) => format!("'{w}'"),
        Some(Token::Op(o)) => format!("'{o}'"),
        None => "the end".into(),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn requirement(&mut self) -> Result<(), String> {
        let negated = self.peek() == Some(&Token::Op("!"));
        if negated {
            self.next();
        }
        let key = match self.next() {
            Some(Token::Word(key)) => key,
            other => {
                return Err(format!(
                    "found {}, expected a label key",
                    shown(other.as_ref())
                ));
            }
        };
        check_key(&key)?;
        if matches!(self.peek(), None | Some(Token::Op(","))) {
            return Ok(());
        }
        if negated {
            return Err(format!(
                "found {} after '!{key}', expected ',' or the end",
                shown(self.peek())
            ));
        }
        match self.next() {
            Some(Token::Op("=" | "==" | "!=")) => match self.peek().cloned() {
                Some(Token::Word(value)) => {
                    self.next();
                    check_value(&value)
                }
                None | Some(Token::Op(",")) => Ok(()),
                other => Err(format!(
                    "found {}, expected a label value",
                    shown(other.as_ref())
                )),
            },
            Some(Token::Op(">" | "<")) => match self.next() {
                Some(Token::Word(n)) if n.parse::<i64>().is_ok() => Ok(()),
                other => Err(format!(
                    "found {}, expected an integer after '>' or '<'",
                    shown(other.as_ref())
                )),
            },
            Some(Token::Op("in" | "notin")) => self.value_set(),
            other => Err(format!(
                "found {} after '{key}', expected one of =, ==, !=, in, notin, >, <",
                shown(other.as_ref())
            )),
        }
    }

    fn value_set(&mut self) -> Result<(), String> {
        if self.next() != Some(Token::Op("(")) {
            return Err(
                "'in' and 'notin' need a parenthesised list of values, e.g. 'tier in (web,api)'"
                    .into(),
            );
        }
        let mut values = 0;
        loop {
            match self.next() {
                Some(Token::Op(")")) if values > 0 => return Ok(()),
                Some(Token::Word(v)) => {
                    check_value(&v)?;
                    values += 1;
                    match self.next() {
                        Some(Token::Op(",")) => {}
                        Some(Token::Op(")")) => return Ok(()),
                        other => {
                            return Err(format!(
                                "found {}, expected ',' or ')'",
                                shown(other.as_ref())
                            ));
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "found {}, expected a label value in the list",
                        shown(other.as_ref())
                    ));
                }
            }
        }
    }
}

/// Checks `selector` against the grammar above; the error says what is wrong where.
pub fn validate(selector: &str) -> Result<(), String> {
    let mut p = Parser {
        tokens: lex(selector),
        at: 0,
    };
    if p.tokens.is_empty() {
        return Err("the selector is empty".into());
    }
    loop {
        p.requirement()?;
        match p.next() {
            None => return Ok(()),
            Some(Token::Op(",")) if p.peek().is_some() => {}
            Some(Token::Op(",")) => {
                return Err("a ',' must be followed by another requirement".into());
            }
            other => {
                return Err(format!(
                    "found {}, expected ',' or the end",
                    shown(other.as_ref())
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn valid_selectors_pass() {
        for ok in [
            "app=product-service",
            "app==a,tier!=web",
            "app in (a, b),!legacy",
            "tier notin (x)",
            "app.kubernetes.io/name=redis",
            "release",
            "replicas>2",
            "app=",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn malformed_selectors_are_refused_with_a_reason() {
        for bad in [
            "",
            "app in a,b",
            "app=(x)",
            "app=a,",
            "=a",
            "app in ()",
            "a b",
            "app=a b",
            "n>x",
            "bad key=x",
            "app=a/b",
            "Bad_Prefix/app=x",
            "!app=x",
            "app=x,,b=y",
            "app notin",
            &format!("app={}", "x".repeat(64)),
        ] {
            let result = validate(bad);
            assert!(result.is_err(), "{bad:?} accepted");
        }
        assert!(
            validate("app in a,b")
                .unwrap_err()
                .contains("parenthesised")
        );
    }
}
