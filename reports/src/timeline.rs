//! A timeline (SVG, no network assets) of a failing history: one row per client, one bar per
//! operation from invoke to completion, open-ended when the outcome is unknown.

use serde_json::Value;

/// Where a trial's timeline goes in the bundle.
pub fn timeline_file(trial: &str) -> String {
    let slug: String =
        trial.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    format!("timelines/{slug}.svg")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn label(op: &Value) -> String {
    let input = &op["input"];
    let output = &op["output"];
    let what = match input["op"].as_str().unwrap_or_default() {
        "read" => "read".to_owned(),
        "write" => format!("w {}", input["value"].as_str().unwrap_or_default()),
        "cas-write" => format!(
            "w {} if {}",
            input["value"].as_str().unwrap_or_default(),
            input["etag"].as_str().unwrap_or_default()
        ),
        "first-write" => format!("fw {}", input["value"].as_str().unwrap_or_default()),
        "delete" => "del".to_owned(),
        "cas-delete" => format!("del if {}", input["etag"].as_str().unwrap_or_default()),
        other => other.to_owned(),
    };
    let result = match output["result"].as_str().unwrap_or_default() {
        "found" => output["value"].as_str().unwrap_or_default().to_owned(),
        "absent" => "∅".to_owned(),
        "indeterminate" => "?".to_owned(),
        other => other.to_owned(),
    };
    format!("{what} → {result}")
}

/// The timeline of evidence holding a `minimal` history, if it holds one.
pub fn timeline_svg(evidence: &Value) -> Option<String> {
    let ops = evidence.get("minimal")?.as_array()?;
    if ops.is_empty() {
        return None;
    }
    let start = ops.iter().filter_map(|o| o["invoke_ns"].as_u64()).min()?;
    let end = ops.iter().filter_map(|o| o["complete_ns"].as_u64().or(o["invoke_ns"].as_u64())).max()?.max(start + 1);
    let mut clients: Vec<u64> = ops.iter().filter_map(|o| o["client"].as_u64()).collect();
    clients.sort_unstable();
    clients.dedup();
    let (width, left, row) = (960.0, 90.0, 44.0);
    let scale = |t: u64| left + (t - start) as f64 / (end - start) as f64 * (width - left - 180.0);
    let height = 40.0 + row * clients.len() as f64;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">"#
    );
    let key = evidence.get("key").and_then(Value::as_str).unwrap_or_default();
    svg.push_str(&format!(
        r#"<text x="8" y="16">minimal failing history on key {} ({:.3} ms)</text>"#,
        escape(key),
        (end - start) as f64 / 1e6
    ));
    for (r, client) in clients.iter().enumerate() {
        let y = 30.0 + row * r as f64;
        svg.push_str(&format!(r#"<text x="8" y="{}">client {client}</text>"#, y + 18.0));
        for op in ops.iter().filter(|o| o["client"].as_u64() == Some(*client)) {
            let invoke = op["invoke_ns"].as_u64().unwrap_or(start);
            let (x1, open) = match op["complete_ns"].as_u64() {
                Some(c) => (scale(c), false),
                None => (width - 170.0, true),
            };
            let x0 = scale(invoke);
            let dash = if open { r#" stroke-dasharray="4 3""# } else { "" };
            svg.push_str(&format!(
                r#"<rect x="{x0:.1}" y="{y}" width="{:.1}" height="24" fill="{}" stroke="{}"{dash}/><text x="{:.1}" y="{}">{}</text>"#,
                (x1 - x0).max(2.0),
                if open { "#fff4d6" } else { "#dbe8ff" },
                if open { "#c08a00" } else { "#3b6fd8" },
                x0 + 3.0,
                y + 16.0,
                escape(&label(op))
            ));
        }
    }
    svg.push_str("</svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_bars_per_client() {
        let evidence = serde_json::json!({"key": "k", "minimal": [
            {"client": 0, "key": "k", "input": {"op": "write", "value": "a"}, "output": {"result": "ok"}, "invoke_ns": 0, "complete_ns": 10},
            {"client": 1, "key": "k", "input": {"op": "read"}, "output": {"result": "found", "value": "b", "etag": "1"}, "invoke_ns": 20, "complete_ns": 30},
            {"client": 1, "key": "k", "input": {"op": "delete"}, "output": {"result": "indeterminate", "reason": "timeout"}, "invoke_ns": 31, "complete_ns": null}
        ]});
        let svg = timeline_svg(&evidence).expect("svg");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("client 0") && svg.contains("read → b") && svg.contains("stroke-dasharray"));
        assert!(timeline_svg(&serde_json::json!({})).is_none());
        assert_eq!(timeline_file("s@http::state.x"), "timelines/s_http__state.x.svg");
    }
}
