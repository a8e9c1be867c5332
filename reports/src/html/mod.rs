//! `report.html`: one self-contained page per run (inline CSS, inline SVG, a little vanilla
//! JavaScript for the filters), rendered from the [`Report`] alone, so any bundle, merged ones
//! included, can be drawn again. Readable without JavaScript (everything shown, the filters
//! hidden) and printable.

mod failures;
mod matrix;
mod rules;

use std::fmt::Write;

use crate::model::{Report, Verdict};

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The verdict's CSS class and label.
pub(crate) fn verdict_badge(verdict: Verdict) -> String {
    let class = match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Inconclusive => "inconclusive",
        Verdict::Skipped => "skip",
    };
    format!(r#"<span class="verdict {class}">{}</span>"#, verdict.label())
}

/// The whole page.
pub fn report_html(report: &Report) -> String {
    let mut page = String::with_capacity(64 * 1024 + report.cases.len() * 400);
    let title = format!("certify: {}", report.spec);
    let _ = write!(
        page,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body>
"#,
        title = escape(&title)
    );
    header(&mut page, report);
    filters(&mut page, report);
    page.push_str("<main>\n");
    matrix::render(&mut page, report);
    failures::render(&mut page, report);
    rules::render(&mut page, report);
    page.push_str("</main>\n");
    environment(&mut page, report);
    let _ = write!(page, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    page
}

/// The attributes the filters read, on every element that stands for one trial.
fn trial_attributes(case: &crate::model::CaseRecord) -> String {
    format!(
        r#"data-trial="{}" data-component="{}" data-block="{}" data-driver="{}" data-verdict="{}""#,
        escape(&case.trial),
        escape(&case.component),
        escape(case.block_name()),
        escape(&case.driver),
        case.verdict.label()
    )
}

fn header(page: &mut String, report: &Report) {
    let s = &report.summary;
    let verdict = if s.ok() && s.complete() {
        r#"<span class="verdict pass">CERTIFIED</span>"#
    } else {
        r#"<span class="verdict fail">NOT CERTIFIED</span>"#
    };
    let _ = write!(
        page,
        r#"<header>
<h1>certify report {verdict}</h1>
<p class="subtitle">{spec} · started {started} · {secs:.1} s · seed <code>{seed}</code></p>
<ul class="totals" aria-label="Totals">
<li data-total="{total}"><strong>{total}</strong> trials</li>
<li class="pass" data-passed="{passed}"><strong>{passed}</strong> passed</li>
<li class="fail" data-failed="{failed}"><strong>{failed}</strong> failed</li>
<li class="inconclusive" data-inconclusive="{inconclusive}"><strong>{inconclusive}</strong> inconclusive</li>
<li class="skip" data-skipped="{skipped}"><strong>{skipped}</strong> skipped</li>
</ul>
</header>
"#,
        spec = escape(&report.spec),
        started = escape(&report.started_at),
        secs = report.duration_ms / 1000.0,
        seed = escape(&report.seed),
        total = s.total,
        passed = s.passed,
        failed = s.failed,
        inconclusive = s.inconclusive,
        skipped = s.skipped,
    );
    let notes = report.notes();
    if !notes.is_empty() {
        page.push_str("<ul class=\"notes\">");
        for note in notes {
            let _ = write!(page, "<li>{}</li>", escape(&note));
        }
        page.push_str("</ul>\n");
    }
}

/// The filters: hidden until the script shows them, so a page without JavaScript is whole.
fn filters(page: &mut String, report: &Report) {
    let distinct = |f: &dyn Fn(&crate::model::CaseRecord) -> String| {
        let mut values: Vec<String> = report.cases.iter().map(f).collect();
        values.sort();
        values.dedup();
        values
    };
    page.push_str(r#"<nav aria-label="Filters"><form id="filters" hidden>"#);
    page.push('\n');
    select(page, "component", "Component", distinct(&|c| c.component.clone()));
    select(page, "block", "Block", distinct(&|c| c.block_name().to_owned()));
    select(page, "driver", "Driver", distinct(&|c| c.driver.clone()));
    select(page, "verdict", "Verdict", ["PASS", "FAIL", "INCONCL", "SKIP"].iter().map(|v| (*v).to_owned()).collect());
    page.push_str("<output id=\"shown\" aria-live=\"polite\"></output>\n</form></nav>\n");
}

fn select(page: &mut String, id: &str, label: &str, values: Vec<String>) {
    let _ = write!(
        page,
        r#"<label for="f-{id}">{label}</label> <select id="f-{id}" data-filter="{id}"><option value="">all</option>"#
    );
    for v in values {
        let _ = write!(page, r#"<option value="{v}">{v}</option>"#, v = escape(&v));
    }
    page.push_str("</select>\n");
}

fn environment(page: &mut String, report: &Report) {
    let env = &report.environment;
    let _ = write!(
        page,
        r#"<footer>
<h2>Environment</h2>
<dl>
<dt>certify</dt><dd>{version}</dd>
<dt>platform</dt><dd>{os} / {arch}</dd>
<dt>spec</dt><dd>{spec}{digest}</dd>
"#,
        version = escape(&env.certify_version),
        os = escape(&env.os),
        arch = escape(&env.arch),
        spec = escape(&report.spec),
        digest = env.spec_digest.as_deref().map(|d| format!(" <code>{}</code>", escape(d))).unwrap_or_default(),
    );
    for backend in &report.backends {
        let _ = writeln!(
            page,
            "<dt>{}</dt><dd>{} · {} at {}</dd>",
            escape(&backend.kind),
            escape(&backend.server),
            escape(&backend.provider),
            escape(&backend.host)
        );
    }
    page.push_str("</dl>\n</footer>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere_it_lands() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
