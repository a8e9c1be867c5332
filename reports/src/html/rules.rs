//! Every rule: the case, its sentence and source, and each trial of it (component and driver)
//! with its verdict; a row per trial, so the filters can hide what they leave out.

use std::fmt::Write;

use super::{escape, trial_attributes, verdict_badge};
use crate::model::{CaseRecord, Report};

/// The rules section.
pub(super) fn render(page: &mut String, report: &Report) {
    // Rules in the order their first trial was planned.
    let mut ids: Vec<&str> = Vec::new();
    for case in &report.cases {
        if !ids.contains(&case.id.as_str()) {
            ids.push(&case.id);
        }
    }
    page.push_str(r#"<section id="rules" aria-labelledby="rules-title"><h2 id="rules-title">Rules</h2>"#);
    page.push_str("\n<table>\n<thead><tr><th scope=\"col\">Trial</th><th scope=\"col\">Driver</th><th scope=\"col\">Verdict</th><th scope=\"col\">Time</th><th scope=\"col\">Why</th></tr></thead>\n");
    for id in ids {
        let trials: Vec<&CaseRecord> = report.cases.iter().filter(|c| c.id == id).collect();
        let Some(first) = trials.first() else { continue };
        let _ = writeln!(
            page,
            r#"<tbody data-rule="{id}"><tr class="rule-row"><th colspan="5" scope="rowgroup"><code>{id}</code> <span class="source">{source}</span><br><span class="sentence">{rule}</span></th></tr>"#,
            id = escape(id),
            source = escape(&first.source),
            rule = escape(&first.rule)
        );
        for case in trials {
            let why = case.reason.as_deref().unwrap_or_default();
            let _ = writeln!(
                page,
                r#"<tr {attributes}><td>{component}</td><td>{driver}</td><td>{badge}</td><td>{ms:.0} ms</td><td class="why">{why}</td></tr>"#,
                attributes = trial_attributes(case),
                component = escape(&case.component),
                driver = escape(&case.driver),
                badge = verdict_badge(case.verdict),
                ms = case.duration_ms,
                why = escape(why),
            );
        }
        page.push_str("</tbody>\n");
    }
    page.push_str("</table>\n</section>\n");
}
