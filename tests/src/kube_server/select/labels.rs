//! The label selector grammar of apimachinery's `labels.Parse`, with its messages.

use super::{Op, Requirement};
use crate::kube_server::api::validation::qualified_name;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Op(&'static str),
    End,
}

fn lex(text: &str) -> Vec<Token> {
    const OPS: [&str; 9] = ["==", "!=", "=", "!", "(", ")", ",", ">", "<"];
    let mut tokens = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
            tokens.push(Token::Op(op));
            rest = rest[op.len()..].trim_start();
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || "=!(),><".contains(c))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        tokens.push(match word {
            "in" => Token::Op("in"),
            "notin" => Token::Op("notin"),
            _ => Token::Ident(word.to_owned()),
        });
        rest = rest[end..].trim_start();
    }
    tokens.push(Token::End);
    tokens
}

fn shown(token: &Token) -> String {
    match token {
        Token::Ident(s) => s.clone(),
        Token::Op(o) => (*o).to_owned(),
        Token::End => String::new(),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.at).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        self.at += 1;
        t
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let negated = self.peek() == &Token::Op("!");
        if negated {
            self.next();
        }
        let key = match self.next() {
            Token::Ident(key) => key,
            other => return Err(format!("found '{}', expected: identifier", shown(&other))),
        };
        if let Some(e) = qualified_name(&key).first() {
            return Err(format!("key: Invalid value: \"{key}\": {e}"));
        }
        if matches!(self.peek(), Token::End | Token::Op(",")) {
            let op = if negated { Op::NotExists } else { Op::Exists };
            return Ok(Requirement {
                key,
                op,
                values: Vec::new(),
            });
        }
        if negated {
            return Err(format!(
                "found '{}', expected: ',' or 'end of string'",
                shown(self.peek())
            ));
        }
        let op = match self.next() {
            Token::Op("=" | "==") => Op::Equals,
            Token::Op("!=") => Op::NotEquals,
            Token::Op("in") => Op::In,
            Token::Op("notin") => Op::NotIn,
            Token::Op(">") => Op::Greater,
            Token::Op("<") => Op::Less,
            other => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    shown(&other)
                ));
            }
        };
        let values = if matches!(op, Op::In | Op::NotIn) {
            self.value_set()?
        } else {
            match self.peek().clone() {
                Token::Ident(v) => {
                    self.next();
                    vec![v]
                }
                Token::End | Token::Op(",") => vec![String::new()],
                other => return Err(format!("found '{}', expected: identifier", shown(&other))),
            }
        };
        check_values(&key, &op, &values)?;
        Ok(Requirement { key, op, values })
    }

    fn value_set(&mut self) -> Result<Vec<String>, String> {
        if self.next() != Token::Op("(") {
            return Err(format!(
                "found '{}', expected: '('",
                shown(&self.tokens[self.at - 1])
            ));
        }
        let mut values = Vec::new();
        loop {
            match self.next() {
                Token::Op(")") => return Ok(values),
                Token::Ident(v) => {
                    values.push(v);
                    match self.next() {
                        Token::Op(",") => {}
                        Token::Op(")") => return Ok(values),
                        other => {
                            return Err(format!("found '{}', expected: ',' or ')'", shown(&other)));
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "found '{}', expected: ',', ')' or identifier",
                        shown(&other)
                    ));
                }
            }
        }
    }
}

fn check_values(key: &str, op: &Op, values: &[String]) -> Result<(), String> {
    match op {
        Op::In | Op::NotIn if values.is_empty() => {
            return Err(
                "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
                    .into(),
            );
        }
        Op::Greater | Op::Less if values[0].parse::<i64>().is_err() => {
            return Err(format!(
                "values[0]: Invalid value: \"{}\": for 'Gt', 'Lt' operators, the value must be an integer",
                values[0]
            ));
        }
        _ => {}
    }
    for (i, v) in values.iter().enumerate() {
        let ok = v.len() <= 63
            && (v.is_empty()
                || (v.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && v.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))));
        if !ok {
            return Err(format!(
                "values[{i}][{key}]: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
            ));
        }
    }
    Ok(())
}

pub(super) fn parse_labels(text: &str) -> Result<Vec<Requirement>, String> {
    let mut p = Parser {
        tokens: lex(text),
        at: 0,
    };
    let mut out = Vec::new();
    loop {
        match p.peek() {
            Token::End => return Ok(out),
            Token::Ident(_) | Token::Op("!") => {
                let r = p
                    .requirement()
                    .map_err(|e| format!("unable to parse requirement: {e}"))?;
                out.push(r);
                match p.next() {
                    Token::End => return Ok(out),
                    Token::Op(",") if matches!(p.peek(), Token::Ident(_) | Token::Op("!")) => {}
                    Token::Op(",") => {
                        return Err(format!(
                            "found '{}', expected: identifier after ','",
                            shown(p.peek())
                        ));
                    }
                    other => {
                        return Err(format!(
                            "found '{}', expected: ',' or 'end of string'",
                            shown(&other)
                        ));
                    }
                }
            }
            other => {
                return Err(format!(
                    "found '{}', expected: !, identifier, or 'end of string'",
                    shown(other)
                ));
            }
        }
    }
}
