//! Why a case did not pass, and the helpers that say so: `ensure!`, `ensure_eq!` and
//! [`Must`].

use serde::{Deserialize, Serialize};

/// Why a case did not pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "kebab-case")]
pub enum Finding {
    /// The rule does not hold.
    Fail(String),
    /// The case could not decide (a timing it could not control, a driver limit found at run time).
    Inconclusive(String),
    /// The case does not apply.
    Skip(String),
}

/// What a case body returns.
pub type CaseResult = Result<(), Finding>;

/// Fails the case with a formatted reason unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::Finding::Fail(format!($($fmt)+)));
        }
    };
}

/// Fails the case unless two values are equal, showing expected and seen.
#[macro_export]
macro_rules! ensure_eq {
    ($seen:expr, $expected:expr, $($fmt:tt)+) => {{
        let (seen, expected) = (&$seen, &$expected);
        if seen != expected {
            return Err($crate::Finding::Fail(format!("{}: expected {:?}, saw {:?}", format!($($fmt)+), expected, seen)));
        }
    }};
}

/// Turns an unexpected error of a call into a failure naming the call.
pub trait Must<T> {
    /// The value, or a failure saying which call failed and how.
    fn must(self, what: &str) -> Result<T, Finding>;
}

impl<T> Must<T> for contract::Result<T> {
    fn must(self, what: &str) -> Result<T, Finding> {
        self.map_err(|e| Finding::Fail(format!("{what} failed: {e}")))
    }
}
