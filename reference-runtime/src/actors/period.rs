//! Reminder and timer periods (actors-workflows-jobs.md §1.3): a Go duration, an ISO 8601
//! duration, or `R<n>/<duration>` for n fires in all; kept as the Scheduler keeps them,
//! `@every <duration>` with `repeats`.

use std::time::Duration;

use crate::jobs::schedule::{go_duration, iso_duration};

/// A period as the Scheduler takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// Between fires.
    pub every: Duration,
    /// Fires in all, when limited.
    pub repeats: Option<u32>,
}

impl Period {
    /// Parses a period; Y and M (month) parts are refused, as daprd does. A zero period (the
    /// Python SDK sends `0h0m0s0ms0μs` for none) is [`Period::none`].
    pub fn parse(text: &str) -> Result<Period, String> {
        let text = text.trim();
        let (repeats, rest) = match text.strip_prefix('R') {
            Some(rest) => {
                let (n, duration) = rest.split_once('/').ok_or_else(|| format!("unsupported period format: {text}"))?;
                let n: u32 = n.parse().map_err(|_| format!("unsupported period format: {text}"))?;
                if n == 0 {
                    return Err(format!("repetition {text} has zero repetitions"));
                }
                (Some(n), duration)
            }
            None => (None, text),
        };
        let every = if rest.starts_with('P') {
            if rest.split('T').next().is_some_and(|date| date.contains(['Y', 'M'])) {
                return Err(format!("unsupported period format: {text}"));
            }
            iso_duration(rest)?
        } else {
            go_duration(rest)?
        };
        Ok(Period { every, repeats })
    }

    /// True for a zero period: the reminder or timer fires once.
    pub fn none(&self) -> bool {
        self.every.is_zero()
    }

    /// The Scheduler's form: `@every` and the period as Go writes a duration (`1s`, `2h0m0s`).
    pub fn schedule(&self) -> String {
        format!("@every {}", go_string(self.every))
    }
}

/// A duration as Go's `Duration.String()` writes it (whole milliseconds below a second).
fn go_string(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let total = d.as_secs();
    let (h, m) = (total / 3600, total % 3600 / 60);
    let mut secs = format!("{}", total % 60);
    if d.subsec_nanos() > 0 {
        let fraction = format!("{:09}", d.subsec_nanos());
        secs = format!("{secs}.{}", fraction.trim_end_matches('0'));
    }
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_iso_and_repetitions() {
        assert_eq!(Period::parse("1s").expect("a period"), Period { every: Duration::from_secs(1), repeats: None });
        assert_eq!(Period::parse("0h0m3s0ms").expect("a period").every, Duration::from_secs(3));
        assert_eq!(Period::parse("PT2S").expect("a period").every, Duration::from_secs(2));
        assert_eq!(
            Period::parse("R5/PT1S").expect("a period"),
            Period { every: Duration::from_secs(1), repeats: Some(5) }
        );
        assert_eq!(Period::parse("R3/1s").expect("a period").repeats, Some(3));
        assert_eq!(Period::parse("1s").expect("a period").schedule(), "@every 1s");
        assert_eq!(Period::parse("1500ms").expect("a period").schedule(), "@every 1.5s");
        assert_eq!(Period::parse("PT2H").expect("a period").schedule(), "@every 2h0m0s");
        assert_eq!(Period::parse("90s").expect("a period").schedule(), "@every 1m30s");
        assert_eq!(Period::parse("250ms").expect("a period").schedule(), "@every 250ms");
        for bad in ["R0/PT1S", "P1Y", "P1M", "soon", "-1s", "R/PT1S", "Rx/1s"] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
    }
}
