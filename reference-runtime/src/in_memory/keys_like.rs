//! SQL LIKE matching for key listing: `%` matches any run of characters, `_` exactly one,
//! and `\` makes the next character literal. Everything else (`.` included) is literal.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    One,
    Run,
}

/// A compiled LIKE pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikePattern {
    tokens: Vec<Token>,
}

impl LikePattern {
    /// Compiles `pattern`. A trailing lone `\` matches a literal backslash.
    pub fn new(pattern: &str) -> Self {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let token = match c {
                '\\' => Token::Literal(chars.next().unwrap_or('\\')),
                '%' => Token::Run,
                '_' => Token::One,
                other => Token::Literal(other),
            };
            // `%%` is the same as `%`; collapsing keeps matching linear in practice.
            if !(token == Token::Run && tokens.last() == Some(&Token::Run)) {
                tokens.push(token);
            }
        }
        Self { tokens }
    }

    /// True when `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        // Classic two-pointer wildcard matching with backtracking to the last `%`.
        let (mut t, mut p) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::Literal(c)) if *c == text[t] => {
                    t += 1;
                    p += 1;
                }
                Some(Token::One) => {
                    t += 1;
                    p += 1;
                }
                Some(Token::Run) => {
                    star = Some((p, t));
                    p += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|tok| *tok == Token::Run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &[
        "%",
        "hello%%wor.kflow",
        "%%wor.kflow",
        "hello%%",
        "_",
        "hello_workflow",
        "_workflow",
        "hello_",
        "%hello_workflow%_yoyo",
    ];

    fn check(pattern: &str, expected: &[&str]) {
        let p = LikePattern::new(pattern);
        let got: Vec<&str> = KEYS.iter().copied().filter(|k| p.matches(k)).collect();
        let mut want = expected.to_vec();
        want.sort_unstable();
        let mut got_sorted = got.clone();
        got_sorted.sort_unstable();
        assert_eq!(got_sorted, want, "pattern `{pattern}`");
    }

    // The escaping rules of conformance rule S57, one line each.
    #[test]
    fn escaping_rules() {
        check("hello%", &["hello%%wor.kflow", "hello%%", "hello_workflow", "hello_"]);
        check("hello_", &["hello_"]);
        check("hello_workflo_", &["hello_workflow"]);
        check(r"hello\_workflow", &["hello_workflow"]);
        check(r"hello\_", &["hello_"]);
        check("hello%%", &["hello%%wor.kflow", "hello%%", "hello_workflow", "hello_"]);
        check(r"hello\%\%", &["hello%%"]);
        check(r"hello%\%", &["hello%%"]);
        check(r"hello\%\%%wor.kflow", &["hello%%wor.kflow"]);
        check(r"\%hello\_workflow\%\_yoyo", &["%hello_workflow%_yoyo"]);
    }

    #[test]
    fn hierarchy_patterns() {
        let keys = [
            "prefix||key1",
            "prefix||key2",
            "prefix||prefix2||key3",
            "other-prefix||key1",
            "no-prefix",
            "abc1",
            "abc33",
        ];
        let matching = |p: &str| -> Vec<&str> {
            let p = LikePattern::new(p);
            keys.iter().copied().filter(|k| p.matches(k)).collect()
        };
        assert_eq!(matching("prefix||%"), vec!["prefix||key1", "prefix||key2", "prefix||prefix2||key3"]);
        assert_eq!(matching("%key1"), vec!["prefix||key1", "other-prefix||key1"]);
        assert_eq!(matching("%||%||%"), vec!["prefix||prefix2||key3"]);
        assert_eq!(matching("abc_"), vec!["abc1"]);
        assert_eq!(matching("%").len(), keys.len());
        assert!(LikePattern::new("é_").matches("éü"), "characters, not bytes");
    }
}
