//! `certify init COMPONENT.yaml`: writes a commented spec for a Component YAML, with every
//! claim of its block and every setting explained (the words come from the spec's JSON Schema,
//! so they are the types' own docs), ready to uncomment. The spec it writes is parsed before it
//! is written, so `certify run --spec` takes it as it is.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use contract::{Registry, Resources};
use serde_json::Value;
use suites::Claim;

use super::{fail, out};

#[derive(Debug, clap::Args)]
pub(super) struct InitArgs {
    /// The Component YAML (one or more `kind: Component` documents).
    component: PathBuf,
    /// Where the spec goes; `-` prints it.
    #[arg(long, short, default_value = "certify.yaml")]
    output: PathBuf,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
}

pub(super) fn init(args: InitArgs, registry: &Registry) -> ExitCode {
    let resources = match Resources::load(std::slice::from_ref(&args.component)) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if resources.components.is_empty() {
        return fail(format!("`{}` holds no `kind: Component` document", args.component.display()));
    }
    let known: Vec<&str> = registry.types().collect();
    if let Some(unknown) = resources.components.iter().find(|c| !known.contains(&c.type_name.as_str())) {
        return fail(format!(
            "`{}`: this build has no component type `{}` (known: {}; a pluggable component needs `pluggable: {{socket: …}}` in the spec)",
            args.component.display(),
            unknown.type_name,
            known.join(", ")
        ));
    }
    let stdout = args.output == Path::new("-");
    let spec_dir = if stdout { Path::new(".") } else { args.output.parent().unwrap_or(Path::new(".")) };
    let file = relative(&args.component, spec_dir);
    let raw = std::fs::read_to_string(&args.component).unwrap_or_default();
    let text = render(&file, &raw, &resources);
    if let Err(e) = crate::Spec::parse("certify init", spec_dir, &text) {
        return fail(format!("the spec certify init wrote does not parse (a bug): {e}"));
    }
    if stdout {
        print!("{text}");
        return ExitCode::SUCCESS;
    }
    if args.output.exists() && !args.force {
        return fail(format!(
            "`{}` exists; give --force to replace it, or --output another path",
            args.output.display()
        ));
    }
    match std::fs::write(&args.output, text) {
        Ok(()) => {
            out(&format!(
                "{:>12} {} (run it: certify run --spec {})",
                "Wrote",
                args.output.display(),
                args.output.display()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("cannot write `{}`: {e}", args.output.display())),
    }
}

/// `path` as the spec in `dir` should name it: relative when both are.
fn relative(path: &Path, dir: &Path) -> String {
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let (path, dir) = (absolute(path), absolute(dir));
    path.strip_prefix(&dir).map(Path::to_owned).unwrap_or(path).display().to_string()
}

fn render(file: &str, raw: &str, resources: &Resources) -> String {
    let schema = crate::spec::json_schema();
    let mut text = format!(
        "# A certify spec for {file}, written by `certify init`. Run it with\n#   certify run --spec <this file>\n# Every field: `certify schema` (JSON Schema), or specs/spec.schema.json.\ncomponents:\n"
    );
    // One Component per file: name the file. Several: each goes inline, as a spec entry holds one.
    let documents: Vec<serde_norway::Value> = match resources.components.len() {
        1 => Vec::new(),
        _ => serde_norway::Deserializer::from_str(raw)
            .filter_map(|d| <serde_norway::Value as serde::Deserialize>::deserialize(d).ok())
            .filter(|d| d["kind"] == "Component")
            .collect(),
    };
    for (i, component) in resources.components.iter().enumerate() {
        let block = component.type_name.split('.').next().unwrap_or_default();
        text.push_str(&format!("  # {} ({})\n", component.name, component.type_name));
        match documents.get(i).and_then(|d| serde_norway::to_string(d).ok()) {
            Some(yaml) => {
                text.push_str("  - component:\n");
                for line in yaml.lines() {
                    text.push_str(&format!("      {line}\n"));
                }
            }
            None => text.push_str(&format!("  - file: {file}\n")),
        }
        text.push_str(&claims(block, &schema));
        text.push_str("    # Through what: in this process, and through the reference sidecar's HTTP API.\n    # drivers: [in-process, http]\n");
        text.push_str(&settings(&schema));
    }
    text.push_str("# How many cases run at once.\n# profile:\n#   concurrency: 8\n");
    text
}

/// The claims of `block`, commented out, each with its meaning.
fn claims(block: &str, schema: &Value) -> String {
    let described = |claim: Claim| {
        schema["$defs"]["Claim"]["oneOf"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["const"] == claim.as_str())
            .and_then(|c| c["description"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let mine: Vec<Claim> =
        Claim::ALL.iter().copied().filter(|c| c.blocks().iter().any(|b| b.prefix() == block)).collect();
    if mine.is_empty() {
        return "    # This block has no claims: every case applies.\n    claims: []\n".into();
    }
    let mut text = String::from(
        "    # What it supports. A claim turns on the cases of that capability; one left out turns on\n    # the cases that check the component does not advertise it. Uncomment what it supports.\n    claims: []\n",
    );
    for claim in mine {
        text.push_str(&format!("    #   - {:<30} # {}\n", claim.as_str(), described(claim)));
    }
    text
}

/// Every setting with its default, commented out.
fn settings(schema: &Value) -> String {
    let mut text = String::from("    # The knobs cases read; the defaults are shown.\n    # settings:\n");
    for (name, property) in schema["$defs"]["Settings"]["properties"].as_object().into_iter().flatten() {
        let default = match &property["default"] {
            Value::Null => "~".to_owned(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let setting = format!("{name}: {default}");
        text.push_str(&format!(
            "    #   {setting:<32} # {}\n",
            first_sentence(property["description"].as_str().unwrap_or_default())
        ));
    }
    text
}

/// The first sentence of a doc comment, on one line.
fn first_sentence(doc: &str) -> String {
    let line = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.find(". ") {
        Some(end) => line[..=end].to_owned(),
        None => line,
    }
}
