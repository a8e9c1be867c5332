//! The component × block matrix: each component's claims, and per block its trials' verdicts
//! counted.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::escape;
use crate::model::{Report, Verdict};

#[derive(Default)]
struct Counts {
    pass: usize,
    fail: usize,
    inconclusive: usize,
    skip: usize,
}

/// The matrix section.
pub(super) fn render(page: &mut String, report: &Report) {
    let mut cells: BTreeMap<(&str, &str), Counts> = BTreeMap::new();
    for case in &report.cases {
        let counts = cells.entry((case.component.as_str(), case.block_name())).or_default();
        match case.verdict {
            Verdict::Pass => counts.pass += 1,
            Verdict::Fail => counts.fail += 1,
            Verdict::Inconclusive => counts.inconclusive += 1,
            Verdict::Skipped => counts.skip += 1,
        }
    }
    let mut blocks: Vec<&str> = cells.keys().map(|(_, b)| *b).collect();
    blocks.sort_unstable();
    blocks.dedup();
    let mut components: Vec<&str> = report.components.iter().map(|c| c.name.as_str()).collect();
    for (component, _) in cells.keys() {
        if !components.contains(component) {
            components.push(component);
        }
    }
    page.push_str(
        r#"<section id="matrix" aria-labelledby="matrix-title"><h2 id="matrix-title">Components × blocks</h2>"#,
    );
    page.push_str("\n<table>\n<thead><tr><th scope=\"col\">Component</th><th scope=\"col\">Claims</th>");
    for block in &blocks {
        let _ = write!(page, r#"<th scope="col">{}</th>"#, escape(block));
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    for component in components {
        let record = report.components.iter().find(|c| c.name == component);
        let claims = record.map(|r| r.claims.join(", ")).unwrap_or_default();
        let kind = record.map(|r| r.type_name.as_str()).unwrap_or_default();
        let _ = write!(
            page,
            r#"<tr data-component="{c}"><th scope="row">{c}<br><small>{kind}</small></th><td>{claims}</td>"#,
            c = escape(component),
            kind = escape(kind),
            claims = escape(&claims)
        );
        for block in &blocks {
            match cells.get(&(component, *block)) {
                None => page.push_str("<td></td>"),
                Some(n) => {
                    let state = if n.fail > 0 {
                        "fail"
                    } else if n.inconclusive > 0 {
                        "inconclusive"
                    } else if n.pass > 0 {
                        "pass"
                    } else {
                        "skip"
                    };
                    let _ = write!(
                        page,
                        r#"<td class="cell {state}" data-block="{b}" data-pass="{p}" data-fail="{f}" data-inconclusive="{i}" data-skip="{s}"><span title="passed">{p}✓</span> <span title="failed">{f}✗</span> <span title="inconclusive">{i}?</span> <span title="skipped">{s}–</span></td>"#,
                        b = escape(block),
                        p = n.pass,
                        f = n.fail,
                        i = n.inconclusive,
                        s = n.skip
                    );
                }
            }
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody>\n</table>\n</section>\n");
}
