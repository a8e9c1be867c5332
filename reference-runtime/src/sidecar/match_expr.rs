//! The subset of CEL that subscription routing rules use: `event.<path>` compared with `==` or
//! `!=` to string, number, boolean or null literals, combined with `&&`, `||`, `!` and
//! parentheses. A rule outside this subset is rejected when the subscription is loaded, so it
//! never silently mismatches.

use serde_json::Value;

/// A parsed match expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Literal(Value),
    /// `event.a.b`: a path into the CloudEvent.
    Path(Vec<String>),
    /// `a == b`
    Eq(Box<Expr>, Box<Expr>),
    /// `a != b`
    Ne(Box<Expr>, Box<Expr>),
    /// `a && b`
    And(Box<Expr>, Box<Expr>),
    /// `a || b`
    Or(Box<Expr>, Box<Expr>),
    /// `!a`
    Not(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    Dot,
    EqEq,
    NotEq,
    AndAnd,
    OrOr,
    Bang,
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '.' => {
                tokens.push(Token::Dot);
                i += 1;
            }
            '(' | ')' => {
                tokens.push(if c == '(' { Token::Open } else { Token::Close });
                i += 1;
            }
            '=' if next == Some('=') => {
                tokens.push(Token::EqEq);
                i += 2;
            }
            '!' if next == Some('=') => {
                tokens.push(Token::NotEq);
                i += 2;
            }
            '!' => {
                tokens.push(Token::Bang);
                i += 1;
            }
            '&' if next == Some('&') => {
                tokens.push(Token::AndAnd);
                i += 2;
            }
            '|' if next == Some('|') => {
                tokens.push(Token::OrOr);
                i += 2;
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string".into()),
                        Some('\\') => {
                            s.push(*chars.get(i + 1).ok_or("unterminated escape")?);
                            i += 2;
                        }
                        Some(q) if *q == quote => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(s));
            }
            c if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let start = i;
                i += 1;
                while chars.get(i).is_some_and(|d| d.is_ascii_digit() || *d == '.') {
                    i += 1;
                }
                let n: String = chars[start..i].iter().collect();
                tokens.push(Token::Num(n.parse().map_err(|_| format!("bad number `{n}`"))?));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while chars.get(i).is_some_and(|d| d.is_alphanumeric() || *d == '_') {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected `{other}`")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, t: &Token) -> bool {
        if self.peek() == Some(t) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.eat(&Token::OrOr) {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.eat(&Token::AndAnd) {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat(&Token::Bang) {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        let left = self.primary()?;
        if self.eat(&Token::EqEq) {
            return Ok(Expr::Eq(Box::new(left), Box::new(self.primary()?)));
        }
        if self.eat(&Token::NotEq) {
            return Ok(Expr::Ne(Box::new(left), Box::new(self.primary()?)));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let token = self.peek().cloned().ok_or("unexpected end of expression")?;
        self.at += 1;
        match token {
            Token::Open => {
                let inner = self.or()?;
                if !self.eat(&Token::Close) {
                    return Err("missing `)`".into());
                }
                Ok(inner)
            }
            Token::Str(s) => Ok(Expr::Literal(Value::String(s))),
            Token::Num(n) => {
                Ok(Expr::Literal(serde_json::Number::from_f64(n).map(Value::Number).unwrap_or(Value::Null)))
            }
            Token::Ident(id) if id == "true" || id == "false" => Ok(Expr::Literal(Value::Bool(id == "true"))),
            Token::Ident(id) if id == "null" => Ok(Expr::Literal(Value::Null)),
            Token::Ident(id) if id == "event" => {
                let mut path = Vec::new();
                while self.eat(&Token::Dot) {
                    match self.peek().cloned() {
                        Some(Token::Ident(part)) => {
                            self.at += 1;
                            path.push(part);
                        }
                        _ => return Err("expected a field name after `.`".into()),
                    }
                }
                if path.is_empty() {
                    return Err("`event` must be followed by a field, e.g. `event.type`".into());
                }
                Ok(Expr::Path(path))
            }
            other => Err(format!(
                "unsupported token {other:?} (only `event.<field>`, literals, ==, !=, &&, ||, ! and parentheses are supported)"
            )),
        }
    }
}

impl Expr {
    /// Parses a match expression.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let mut parser = Parser { tokens: tokenize(text)?, at: 0 };
        let expr = parser.or()?;
        if parser.at != parser.tokens.len() {
            return Err(format!("unexpected trailing input in `{text}`"));
        }
        Ok(expr)
    }

    fn value(&self, event: &Value) -> Value {
        match self {
            Expr::Literal(v) => v.clone(),
            Expr::Path(path) => path.iter().try_fold(event, |v, p| v.get(p)).cloned().unwrap_or(Value::Null),
            other => Value::Bool(other.matches(event)),
        }
    }

    /// True when the event satisfies the expression.
    pub fn matches(&self, event: &Value) -> bool {
        let equal = |a: &Expr, b: &Expr| {
            let (x, y) = (a.value(event), b.value(event));
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y,
                _ => x == y,
            }
        };
        match self {
            Expr::Eq(a, b) => equal(a, b),
            Expr::Ne(a, b) => !equal(a, b),
            Expr::And(a, b) => a.matches(event) && b.matches(event),
            Expr::Or(a, b) => a.matches(event) || b.matches(event),
            Expr::Not(a) => !a.matches(event),
            other => other.value(event) == Value::Bool(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(expr: &str, expected: bool) {
        let event = json!({"type": "order", "data": {"qty": 3, "vip": true}, "source": "shop"});
        assert_eq!(Expr::parse(expr).expect(expr).matches(&event), expected, "{expr}");
    }

    #[test]
    fn evaluates_the_supported_subset() {
        check(r#"event.type == "order""#, true);
        check(r#"event.type != "order""#, false);
        check("event.data.qty == 3", true);
        check("event.data.vip", true);
        check(r#"event.type == 'order' && event.source == "web""#, false);
        check(r#"event.type == "x" || (event.data.qty == 3 && !(event.source == "web"))"#, true);
        check("event.missing == null", true);
    }

    #[test]
    fn rejects_what_it_cannot_evaluate() {
        for bad in ["event.type.startsWith('o')", "size(event) > 1", "event.type ==", r#"event.type == "x"#, "event"] {
            assert!(Expr::parse(bad).is_err(), "{bad}");
        }
    }
}
