//! Entry point of terraform-provider-cloudcode.
fn main() {}
