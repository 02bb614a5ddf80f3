//! Entry point of terraform-provider-cloudcode (see [`cloudcode_provider::run`]).

fn main() -> std::process::ExitCode {
    cloudcode_provider::run()
}
