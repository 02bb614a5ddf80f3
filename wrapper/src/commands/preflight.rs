//! The stock-aware preflight (`cloudcode_alicloud::preflight`) as `doctor` (and a cloud `deploy`) show it: one line
//! per check, each failure one sentence naming what to change, warnings marked as such.

use cloudcode_alicloud::preflight::{self, PreflightRequest, Report, FALLBACK_TYPES};
use cloudcode_alicloud::ClientConfig;

use crate::i18n::tr;

/// Below this available balance (in the account's currency) the preflight warns.
pub const MIN_BALANCE: f64 = 50.0;

/// The request for a stack in `region`: its instance type first (when it has one), then the ranked fallbacks.
pub fn request(
    region: &str,
    instance_type: Option<&str>,
    zone_id: Option<&str>,
    spot: bool,
) -> PreflightRequest {
    let mut types: Vec<String> = instance_type.map(str::to_string).into_iter().collect();
    for t in FALLBACK_TYPES {
        if !types.iter().any(|x| x == t) {
            types.push(t.to_string());
        }
    }
    PreflightRequest {
        region: region.to_string(),
        instance_types: types,
        zone_id: zone_id.map(str::to_string),
        system_disk_category: "cloud_essd".into(),
        system_disk_size: 40,
        vcpus: 2,
        spot,
        min_balance: MIN_BALANCE,
    }
}

/// Runs the preflight on a fresh runtime.
pub fn run(config: &ClientConfig, req: &PreflightRequest) -> Result<Report, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(preflight::run(config, req))
        .map_err(|e| e.to_string())
}

/// Prints the report, one line per check (`ok  `, `warn`, `FAIL`); true when nothing failed.
pub fn print(r: &Report) -> bool {
    let say = |tag: &str, en: String, zh: String| println!("{tag} {}", tr(en, zh));
    if let Some(id) = &r.identity {
        say(
            "ok  ",
            format!(
                "account {} ({}, {})",
                id.account_id, id.identity_type, id.arn
            ),
            format!("账号 {}（{}，{}）", id.account_id, id.identity_type, id.arn),
        );
    }
    if let Some(c) = &r.choice {
        let low = if c.low_stock { " (low stock)" } else { "" };
        say(
            "ok  ",
            format!("stock: {} in {}{low}", c.instance_type, c.zone_id),
            format!(
                "库存：{} 在 {}{}",
                c.instance_type,
                c.zone_id,
                if c.low_stock {
                    "（库存紧张）"
                } else {
                    ""
                }
            ),
        );
    }
    if let Some((max, used)) = r.vcpu_quota {
        say(
            "ok  ",
            format!("vCPU quota: {used} of {max} in use"),
            format!("vCPU 配额：已用 {used}/{max}"),
        );
    }
    if let Some((amount, currency)) = &r.balance {
        say(
            "ok  ",
            format!("balance: {amount:.2} {currency}"),
            format!("余额：{amount:.2} {currency}"),
        );
    }
    if let Some(p) = &r.price {
        say(
            "ok  ",
            format!(
                "price: about {:.2} {c} a month running (instance {:.2}, disk {:.2}), {:.2} {c} suspended; EIP traffic extra",
                p.running, p.instance, p.system_disk, p.suspended, c = p.currency
            ),
            format!(
                "价格：运行约每月 {:.2} {c}（实例 {:.2}，磁盘 {:.2}），挂起时 {:.2} {c}；EIP 流量另计",
                p.running, p.instance, p.system_disk, p.suspended, c = p.currency
            ),
        );
    }
    for w in &r.warnings {
        say("warn", w.clone(), w.clone());
    }
    for p in &r.problems {
        say(
            "FAIL",
            format!("{}: {}", p.check, p.sentence),
            format!("{}：{}", p.check, p.sentence),
        );
    }
    r.ok()
}
