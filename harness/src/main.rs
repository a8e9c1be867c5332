//! `certify`: the command line, with every component type this build knows (see `harness::cli`).

fn main() -> std::process::ExitCode {
    harness::cli::main(reference_runtime::builtin_registry())
}
