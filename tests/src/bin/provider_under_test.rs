//! The provider binary for the acceptance tests: the same entry point as `terraform-provider-cloudcode`, built
//! in this crate so that `CARGO_BIN_EXE_cloudcode-provider-under-test` always points at a fresh build.

fn main() -> std::process::ExitCode {
    cloudcode_provider::run()
}
