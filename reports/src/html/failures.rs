//! Every failed and inconclusive trial, opened: the rule, what was expected and seen, the
//! evidence, the command that reruns it, and for concurrency cases the timeline of the minimal
//! failing history.

use std::fmt::Write;

use super::{escape, trial_attributes, verdict_badge};
use crate::model::{Report, Verdict};
use crate::timeline::timeline_svg;

/// Evidence longer than this is cut in the page (the whole of it is in report.json).
const EVIDENCE_LIMIT: usize = 16 * 1024;

/// The failures section.
pub(super) fn render(page: &mut String, report: &Report) {
    let failed: Vec<_> =
        report.cases.iter().filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Inconclusive)).collect();
    page.push_str(r#"<section id="failures" aria-labelledby="failures-title">"#);
    let _ = writeln!(page, "<h2 id=\"failures-title\">Failures ({})</h2>", failed.len());
    if failed.is_empty() {
        page.push_str("<p>Every trial passed or was skipped with its reason.</p>\n");
    }
    for case in failed {
        let _ = write!(
            page,
            r#"<details open class="failure" {attributes}>
<summary>{badge} <code>{trial}</code></summary>
<p class="rule"><strong>Rule</strong> ({source}): {rule}</p>
"#,
            attributes = trial_attributes(case),
            trial = escape(&case.trial),
            badge = verdict_badge(case.verdict),
            source = escape(&case.source),
            rule = escape(&case.rule),
        );
        if let Some(reason) = &case.reason {
            let _ = writeln!(page, "<p class=\"reason\"><strong>Seen</strong>: {}</p>", escape(reason));
        }
        if let Some(rerun) = &case.rerun {
            let _ = writeln!(page, "<p><strong>Rerun</strong>: <code class=\"rerun\">{}</code></p>", escape(rerun));
        }
        if let Some(evidence) = &case.evidence {
            if let Some(svg) = timeline_svg(evidence) {
                let _ = writeln!(
                    page,
                    "<figure class=\"timeline\">{svg}<figcaption>The minimal failing history</figcaption></figure>"
                );
            }
            let mut text = serde_json::to_string_pretty(evidence).unwrap_or_default();
            if text.len() > EVIDENCE_LIMIT {
                text.truncate(text.floor_char_boundary(EVIDENCE_LIMIT));
                text.push_str("\n… (cut; the whole evidence is in report.json)");
            }
            let _ = writeln!(page, "<details><summary>Evidence</summary><pre>{}</pre></details>", escape(&text));
        }
        page.push_str("</details>\n");
    }
    page.push_str("</section>\n");
}
