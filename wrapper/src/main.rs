//! The `cloudcode` binary: everything lives in the library (`cloudcode_cli`), shared with the test harness.

fn main() -> std::process::ExitCode {
    cloudcode_cli::main_entry()
}
