//! The `cloudcode` CLI for the acceptance tests: the same entry point as the released binary, built in this
//! crate so that `CARGO_BIN_EXE_cloudcode-cli-under-test` always points at a fresh build.

fn main() -> std::process::ExitCode {
    cloudcode_cli::main_entry()
}
