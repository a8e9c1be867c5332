//! The workflows and activities certify's worker runs: a fixed catalogue, each small enough
//! that its every expected history is known. Names start `certify.` so that they never meet
//! an app's own.

use std::time::Duration;

use runtime_api::durabletask::TaskFailureDetails;

use super::replay::{Outcome, Replay, Step, failure};

/// A workflow: its body over a replay.
pub type Workflow = fn(&mut Replay<'_>) -> Step<Outcome>;

/// Three `double` activities in a row: input n gives 8n.
pub const CHAIN: &str = "certify.chain";
/// A durable timer of the input's milliseconds; outputs the ms between its first turn and the
/// turn the timer fired in.
pub const SLEEP: &str = "certify.sleep";
/// Waits for event `go` after an optional timer (input: its ms), outputs the event's data.
pub const AWAIT: &str = "certify.await";
/// Waits for two `tick` events: their data, in order, joined by `,`.
pub const TWO_TICKS: &str = "certify.two-ticks";
/// Calls activity `fail` once: outputs `caught: <message>`.
pub const CATCH: &str = "certify.catch";
/// Runs [`CHILD`] as `<id>-child` on its input; outputs the child's output.
pub const PARENT: &str = "certify.parent";
/// `double` of the input, plus one.
pub const CHILD: &str = "certify.child";
/// Continues as new with input n+1 until n is 3: outputs 3.
pub const COUNT: &str = "certify.count";
/// Waits for event `never`.
pub const FOREVER: &str = "certify.forever";
/// A timer of the input's milliseconds, then [`CHAIN`] on 1: outputs 8.
pub const SLEEP_THEN_CHAIN: &str = "certify.sleep-then-chain";

/// Doubles an integer.
pub const DOUBLE: &str = "certify.double";
/// Always fails.
pub const FAIL: &str = "certify.fail";

/// The workflow named `name`.
pub fn workflow(name: &str) -> Option<Workflow> {
    Some(match name {
        CHAIN => chain,
        SLEEP => sleep,
        AWAIT => await_go,
        TWO_TICKS => two_ticks,
        CATCH => catch,
        PARENT => parent,
        CHILD => child,
        COUNT => count,
        FOREVER => forever,
        SLEEP_THEN_CHAIN => sleep_then_chain,
        _ => return None,
    })
}

/// Runs activity `name` on `input`.
pub fn activity(name: &str, input: Option<&str>) -> Result<Option<String>, TaskFailureDetails> {
    match name {
        DOUBLE => Ok(Some((int(input)? * 2).to_string())),
        FAIL => Err(failure("CertifyActivityError", "certify fails this activity on purpose")),
        other => Err(failure("ActivityNotRegistered", format!("certify's worker has no activity `{other}`"))),
    }
}

fn int(input: Option<&str>) -> Result<i64, TaskFailureDetails> {
    input
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| failure("BadInput", format!("expected an integer, got {input:?}")))
}

fn done(output: impl ToString) -> Step<Outcome> {
    Ok(Outcome::Done(Ok(Some(output.to_string()))))
}

fn chain(r: &mut Replay<'_>) -> Step<Outcome> {
    let mut value = r.input.clone();
    for _ in 0..3 {
        match r.activity(DOUBLE, value)? {
            Ok(v) => value = v,
            Err(e) => return Ok(Outcome::Done(Err(e))),
        }
    }
    Ok(Outcome::Done(Ok(value)))
}

fn sleep_then_chain(r: &mut Replay<'_>) -> Step<Outcome> {
    r.timer(Duration::from_millis(millis(r)))?;
    let mut value = Some("1".to_owned());
    for _ in 0..3 {
        match r.activity(DOUBLE, value)? {
            Ok(v) => value = v,
            Err(e) => return Ok(Outcome::Done(Err(e))),
        }
    }
    Ok(Outcome::Done(Ok(value)))
}

fn millis(r: &Replay<'_>) -> u64 {
    r.input.as_deref().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

fn sleep(r: &mut Replay<'_>) -> Step<Outcome> {
    r.timer(Duration::from_millis(millis(r)))?;
    done(r.now().duration_since(r.started()).unwrap_or_default().as_millis())
}

fn await_go(r: &mut Replay<'_>) -> Step<Outcome> {
    let ms = millis(r);
    if ms > 0 {
        r.timer(Duration::from_millis(ms))?;
    }
    let data = r.event("go")?;
    Ok(Outcome::Done(Ok(data)))
}

fn two_ticks(r: &mut Replay<'_>) -> Step<Outcome> {
    let first = r.event("tick")?.unwrap_or_default();
    let second = r.event("tick")?.unwrap_or_default();
    done(format!("{first},{second}"))
}

fn catch(r: &mut Replay<'_>) -> Step<Outcome> {
    match r.activity(FAIL, None)? {
        Ok(_) => Ok(Outcome::Done(Err(failure("Unexpected", "activity `fail` succeeded")))),
        Err(e) => done(format!("caught: {}", e.error_message)),
    }
}

fn parent(r: &mut Replay<'_>) -> Step<Outcome> {
    let id = format!("{}-child", r.instance_id);
    let input = r.input.clone();
    Ok(Outcome::Done(r.child(CHILD, &id, input)?))
}

fn child(r: &mut Replay<'_>) -> Step<Outcome> {
    let doubled = match r.activity(DOUBLE, r.input.clone())? {
        Ok(v) => v,
        Err(e) => return Ok(Outcome::Done(Err(e))),
    };
    let n: i64 = doubled.as_deref().and_then(|s| s.parse().ok()).unwrap_or_default();
    done(n + 1)
}

fn count(r: &mut Replay<'_>) -> Step<Outcome> {
    let n = millis(r);
    if n < 3 {
        return Ok(Outcome::ContinueAsNew(Some((n + 1).to_string())));
    }
    done(n)
}

fn forever(r: &mut Replay<'_>) -> Step<Outcome> {
    let data = r.event("never")?;
    Ok(Outcome::Done(Ok(data)))
}
