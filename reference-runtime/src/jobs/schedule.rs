//! The Jobs API's time grammar (actors-workflows-jobs.md §3.2) and the plan it makes of a job:
//! when it fires first, how it goes on, when it stops.
//!
//! - `schedule`: `@every <Go duration>`, the `@yearly` … `@hourly` shorthands, or a 6-field
//!   cron with seconds (`sec min hour dom month dow`).
//! - `dueTime` and `ttl`: an RFC 3339 time, a Go duration, or an ISO 8601 duration without
//!   repetition; durations count from creation (a `ttl`, from `dueTime` when there is one).

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

/// How a job repeats.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every period, counted from the previous trigger.
    Every(Duration),
    /// On the times a cron expression names.
    Cron(Box<cron::Schedule>),
}

impl Schedule {
    /// Parses a `schedule`.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if let Some(period) = text.strip_prefix("@every ") {
            let period = go_duration(period.trim())?;
            if period.is_zero() {
                return Err(format!("`{text}`: the period must be positive"));
            }
            return Ok(Schedule::Every(period));
        }
        let expression = match text {
            "@yearly" | "@annually" => "0 0 0 1 1 *",
            "@monthly" => "0 0 0 1 * *",
            "@weekly" => "0 0 0 * * 0",
            "@daily" | "@midnight" => "0 0 0 * * *",
            "@hourly" => "0 0 * * * *",
            cron if cron.split_whitespace().count() == 6 => cron,
            other => {
                return Err(format!(
                    "`{other}` is not a schedule: `@every <duration>`, `@daily` and the like, or a cron with seconds (6 fields)"
                ));
            }
        };
        let cron = cron::Schedule::from_str(expression).map_err(|e| format!("`{text}` is not a valid cron: {e}"))?;
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// The first time after `after` the schedule names.
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        match self {
            Schedule::Every(period) => after.checked_add(*period),
            Schedule::Cron(cron) => cron.after(&DateTime::<Utc>::from(after)).next().map(SystemTime::from),
        }
    }
}

/// A Go duration: `1h30m`, `500ms`, `1.5s`, `2us`; `0` alone is zero.
pub fn go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration such as `1s`, `500ms` or `1h30m`");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// An ISO 8601 duration without repetition: `PT1S`, `P1DT2H`, `P2W`.
pub fn iso_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not an ISO 8601 duration such as `PT1S` or `P1DT2H`");
    let body = text.strip_prefix('P').ok_or_else(bad)?;
    let (date, time) = match body.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, t),
        Some(_) => return Err(bad()),
        None => (body, ""),
    };
    if date.is_empty() && time.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    for (part, units) in [
        (date, &[('Y', 365.0 * 86400.0), ('M', 30.0 * 86400.0), ('W', 7.0 * 86400.0), ('D', 86400.0)][..]),
        (time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)][..]),
    ] {
        let mut rest = part;
        while !rest.is_empty() {
            let at = rest.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(bad)?;
            let value: f64 = rest[..at].parse().map_err(|_| bad())?;
            let unit = rest[at..].chars().next().ok_or_else(bad)?;
            let seconds = units.iter().find(|(u, _)| *u == unit).map(|(_, s)| *s).ok_or_else(bad)?;
            total += value * seconds;
            rest = &rest[at + 1..];
        }
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// A `dueTime` or `ttl`: an RFC 3339 time, or a duration after `from`.
pub fn point_in_time(text: &str, from: SystemTime) -> Result<SystemTime, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(SystemTime::from(at));
    }
    if text.starts_with('R') {
        return Err(format!("`{text}`: a repeating ISO 8601 interval cannot be a point in time"));
    }
    let offset = if text.starts_with('P') { iso_duration(text)? } else { go_duration(text)? };
    from.checked_add(offset).ok_or_else(|| format!("`{text}` is too far away"))
}

/// When a job fires, decided once when it is scheduled.
#[derive(Debug, Clone)]
pub struct Plan {
    next: Option<SystemTime>,
    schedule: Option<Schedule>,
    left: Option<u32>,
    expires: Option<SystemTime>,
}

/// The parts of a job the plan is made from.
pub struct Timing<'a> {
    /// `schedule`.
    pub schedule: Option<&'a str>,
    /// `repeats`.
    pub repeats: Option<u32>,
    /// `dueTime`.
    pub due_time: Option<&'a str>,
    /// `ttl`.
    pub ttl: Option<&'a str>,
}

impl Plan {
    /// The plan of a job created at `created`: its first trigger at `dueTime`, else one
    /// period (or the next cron time) after creation; a job without a schedule fires once.
    pub fn new(timing: &Timing<'_>, created: SystemTime) -> Result<Plan, String> {
        let schedule = timing.schedule.map(Schedule::parse).transpose()?;
        let due = timing.due_time.map(|d| point_in_time(d, created)).transpose()?;
        if timing.repeats == Some(0) {
            return Err("`repeats` must be at least 1".into());
        }
        if schedule.is_none() && timing.repeats.is_some_and(|r| r > 1) {
            return Err("`repeats` over 1 needs a `schedule`".into());
        }
        if schedule.is_none() && timing.ttl.is_some() {
            return Err("`ttl` needs a `schedule`".into());
        }
        let expires = timing.ttl.map(|t| point_in_time(t, due.unwrap_or(created))).transpose()?;
        let next = match (&due, &schedule) {
            (Some(due), _) => Some(*due),
            (None, Some(schedule)) => schedule.next_after(created),
            (None, None) => return Err("Schedule is empty".into()),
        };
        let left = if schedule.is_none() { Some(1) } else { timing.repeats };
        Ok(Plan { next, schedule, left, expires })
    }

    /// The plan of a kept job that has fired `fired` triggers and is next due at `next`: no
    /// replay of what it fired.
    pub fn resume(
        timing: &Timing<'_>,
        created: SystemTime,
        fired: u32,
        next: Option<SystemTime>,
    ) -> Result<Plan, String> {
        let mut plan = Plan::new(timing, created)?;
        plan.left = plan.left.map(|l| l.saturating_sub(fired));
        // Nothing due after some fired: it had none left.
        if next.is_some() || fired > 0 {
            plan.next = next;
        }
        Ok(plan)
    }

    /// When the next trigger is due, if the schedule has one (whether or not it is left).
    pub fn next(&self) -> Option<SystemTime> {
        self.next
    }

    /// The next trigger's time, if the job has one left; the plan moves past it.
    pub fn take(&mut self) -> Option<SystemTime> {
        let at = self.next?;
        if self.left == Some(0) || self.expires.is_some_and(|e| at > e) {
            return None;
        }
        self.left = self.left.map(|n| n - 1);
        self.next = self.schedule.as_ref().and_then(|s| s.next_after(at));
        Some(at)
    }

    /// Moves past the triggers that fell due before `now` but the last of them, and answers how
    /// many: after a restart a job fires once for the time it missed, not once per period.
    pub fn catch_up(&mut self, now: SystemTime) -> u32 {
        if let (Some(at), Some(Schedule::Every(period))) = (self.next, &self.schedule) {
            return self.skip_periods(at, *period, now);
        }
        let mut skipped = 0u32;
        while let (Some(at), Some(schedule)) = (self.next, &self.schedule) {
            let Some(following) = schedule.next_after(at) else { break };
            let last = self.left.is_some_and(|l| l <= 1) || self.expires.is_some_and(|e| following > e);
            if following > now || last {
                break;
            }
            self.take();
            skipped = skipped.saturating_add(1);
        }
        skipped
    }

    /// [`Plan::catch_up`] for `@every period` from `at`, by arithmetic: a long outage costs
    /// nothing to step over.
    fn skip_periods(&mut self, at: SystemTime, period: Duration, now: SystemTime) -> u32 {
        let periods =
            |until: SystemTime| until.duration_since(at).map_or(0, |d| d.as_nanos() / period.as_nanos().max(1));
        let mut k = periods(now);
        if let Some(left) = self.left {
            k = k.min(u128::from(left.saturating_sub(1)));
        }
        if let Some(expires) = self.expires {
            k = k.min(periods(expires));
        }
        let k = u32::try_from(k).unwrap_or(u32::MAX);
        let Some(next) =
            u64::try_from(period.as_nanos() * u128::from(k)).ok().and_then(|n| at.checked_add(Duration::from_nanos(n)))
        else {
            return 0;
        };
        self.next = Some(next);
        self.left = self.left.map(|l| l - k);
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn go_durations_parse_as_go_does() {
        assert_eq!(go_duration("1h30m"), Ok(secs(5400.0)));
        assert_eq!(go_duration("500ms"), Ok(secs(0.5)));
        assert_eq!(go_duration("1.5s"), Ok(secs(1.5)));
        assert_eq!(go_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "1", "1x", "-1s", "s", "1s2"] {
            assert!(go_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn iso_durations_parse_and_repetitions_are_refused() {
        assert_eq!(iso_duration("PT1S"), Ok(secs(1.0)));
        assert_eq!(iso_duration("P1DT2H"), Ok(secs(93600.0)));
        assert_eq!(iso_duration("PT0.5S"), Ok(secs(0.5)));
        for bad in ["P", "PT", "1S", "PT1X"] {
            assert!(iso_duration(bad).is_err(), "{bad:?}");
        }
        assert!(point_in_time("R3/PT1S", SystemTime::UNIX_EPOCH).is_err());
    }

    #[test]
    fn catching_up_keeps_only_the_last_missed_trigger_and_the_count() {
        let t0 = SystemTime::UNIX_EPOCH + secs(1_000_000.0);
        let timing = Timing { schedule: Some("@every 1s"), repeats: Some(10), due_time: None, ttl: None };
        let mut plan = Plan::new(&timing, t0).expect("plan");
        // Down from t0 to t0 + 5.5 s: triggers at 1..5 s were missed; only the one at 5 s fires.
        assert_eq!(plan.catch_up(t0 + secs(5.5)), 4);
        assert_eq!(plan.take(), Some(t0 + secs(5.0)));
        assert_eq!(plan.take(), Some(t0 + secs(6.0)));
        // The last trigger of a job is never skipped.
        let mut last = Plan::new(&Timing { repeats: Some(2), ..timing }, t0).expect("plan");
        assert_eq!(last.catch_up(t0 + secs(60.0)), 1);
        assert_eq!(last.take(), Some(t0 + secs(2.0)));
        assert_eq!(last.take(), None);
    }

    #[test]
    fn schedules_parse_and_step() {
        let t0 = SystemTime::UNIX_EPOCH + secs(1_000_000.0);
        let every = Schedule::parse("@every 2s").expect("every");
        assert_eq!(every.next_after(t0), Some(t0 + secs(2.0)));
        let cron = Schedule::parse("*/10 * * * * *").expect("cron");
        assert_eq!(cron.next_after(t0), Some(t0 + secs(10.0)));
        assert!(Schedule::parse("@daily").is_ok());
        for bad in ["@every 0s", "@every x", "* * * * *", "@sometimes", "61 * * * * *"] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn plans_fire_as_the_rules_say() {
        let t0 = SystemTime::UNIX_EPOCH + secs(1_000_000.0);
        let timing = |schedule, repeats, due_time, ttl| Timing { schedule, repeats, due_time, ttl };
        // A due time alone: once.
        let mut once = Plan::new(&timing(None, None, Some("1s"), None), t0).expect("plan");
        assert_eq!((once.take(), once.take()), (Some(t0 + secs(1.0)), None));
        // `@every` without a due time: one period after creation; `repeats` counts.
        let mut twice = Plan::new(&timing(Some("@every 1s"), Some(2), None, None), t0).expect("plan");
        assert_eq!([twice.take(), twice.take(), twice.take()], [Some(t0 + secs(1.0)), Some(t0 + secs(2.0)), None]);
        // `ttl` bounds the triggers: `@every 1s, ttl 3s` fires 3 times.
        let mut bounded = Plan::new(&timing(Some("@every 1s"), None, None, Some("3s")), t0).expect("plan");
        assert_eq!(std::iter::from_fn(|| bounded.take()).count(), 3);
        for (bad, why) in [
            (timing(None, None, None, None), "empty"),
            (timing(Some("@every 1s"), Some(0), None, None), "at least 1"),
            (timing(None, Some(2), Some("1s"), None), "needs a `schedule`"),
            (timing(None, None, Some("1s"), Some("5s")), "needs a `schedule`"),
        ] {
            let err = Plan::new(&bad, t0).expect_err(why);
            assert!(err.contains(why), "{err}");
        }
    }
}
