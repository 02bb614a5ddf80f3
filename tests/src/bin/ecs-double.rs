//! Runs the ECS API contract double standalone (for benchmarks and manual CLI runs).
//!
//! `ecs-double --access-key ID:SECRET [--instance i-id[@region]]...`
//! Prints one JSON line `{"base_url": "..."}` on stdout, then serves until stdin closes.

use std::io::Read;

use cloudcode_tests::ecs_double::{EcsDouble, InstanceSeed};

const DEFAULT_REGION: &str = "cn-hangzhou";

fn main() -> anyhow::Result<()> {
    let double = EcsDouble::start()?;
    let mut args = std::env::args().skip(1);
    let mut have_key = false;
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--access-key" => {
                let (id, secret) = value
                    .split_once(':')
                    .ok_or_else(|| anyhow::anyhow!("--access-key wants ID:SECRET"))?;
                double.add_access_key(id, secret);
                have_key = true;
            }
            "--instance" => {
                let (id, region) = value.split_once('@').unwrap_or((&value, DEFAULT_REGION));
                double.add_instance(InstanceSeed::running(id, region));
            }
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    if !have_key {
        anyhow::bail!("at least one --access-key ID:SECRET is required");
    }
    println!("{}", serde_json::json!({ "base_url": double.base_url() }));
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    Ok(())
}
