//! `cloudcode_preflight`: what a deploy needs, checked before anything is created — whose credentials these are,
//! a zone with the instance type in stock (or the next ranked type), the vCPU quota, the balance and the monthly
//! price — for a module to choose its zone and type from and to refuse a plan in a precondition.
//!
//! Read top-down: schema, read, state struct.

use async_trait::async_trait;
use cloudcode_alicloud::preflight::{self, PreflightRequest, FALLBACK_TYPES};
use cloudcode_tfplugin::framework::{
    AttrPath, Attribute, Block, Ctx, DataSource, Diagnostics, Schema,
};
use cloudcode_tfplugin::value::Type;
use serde::{Deserialize, Serialize};

use crate::provider::{cancellable, ecs_access, report_ecs, SharedEcs};

pub struct PreflightData {
    ecs: SharedEcs,
}

impl PreflightData {
    pub fn new(ecs: SharedEcs) -> Self {
        Self { ecs }
    }
}

fn schema() -> Schema {
    let s = Attribute::string;
    let n = Attribute::number;
    let b = Attribute::bool;
    Schema::new(
        0,
        Block::new(
            "Checks, before anything is created, what a deploy in the provider's region needs: whose credentials \
             these are (STS), a zone with the instance type in stock (falling back through `instance_types` in \
             order), the pay-as-you-go vCPU quota, the balance and the monthly price. `ok` is false with `problems` \
             (one sentence each, naming what to change) when the deploy would fail; use it in a precondition.",
        )
        .attribute(Attribute::list_of("instance_types", Type::String).optional().description(
            "Instance types in order of preference. Default: the 2 vCPU / 4 GiB types `ecs.e-c1m2.large`, \
             `ecs.u1-c1m2.large`, `ecs.c7.large`, `ecs.g7.large`.",
        ))
        .attribute(s("zone_id").optional().description("Only this zone. Default: any zone of the region."))
        .attribute(s("system_disk_category").optional().description("Default `cloud_essd`."))
        .attribute(n("system_disk_size").optional().description("GiB. Default `40`."))
        .attribute(b("spot").optional().description(
            "Price and check spot instances (SpotAsPriceGo): far cheaper, but Alibaba Cloud may reclaim one with \
             five minutes' notice when it needs the capacity. Default `false`.",
        ))
        .attribute(n("min_balance").optional().description(
            "Warn when the available balance is below this, in the account's currency. Default `50`.",
        ))
        .attribute(s("account_id").computed().description("The account the credentials belong to."))
        .attribute(s("zone").computed().description("The zone chosen (null when nothing is in stock)."))
        .attribute(s("instance_type").computed().description("The instance type chosen (null when nothing is in stock)."))
        .attribute(n("balance").computed().description("Available balance (null when it could not be read)."))
        .attribute(s("currency").computed().description("Currency of `balance` and the prices."))
        .attribute(n("monthly_price").computed().description("Instance and system disk, a month running (720 h)."))
        .attribute(n("monthly_price_suspended").computed().description(
            "What a month suspended costs (StopCharging: the disk only); EIP traffic is extra in both.",
        ))
        .attribute(b("ok").computed().description("True when no check failed."))
        .attribute(Attribute::list_of("problems", Type::String).computed().description(
            "Each failed check as one sentence naming what to change.",
        ))
        .attribute(Attribute::list_of("warnings", Type::String).computed().description(
            "What does not stop a deploy: a fallback type, a low balance, a price that could not be read.",
        )),
    )
}

#[async_trait]
impl DataSource for PreflightData {
    type State = PreflightState;

    fn type_name(&self) -> &'static str {
        "cloudcode_preflight"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn read(
        &self,
        config: PreflightState,
        ctx: &Ctx,
        diags: &mut Diagnostics,
    ) -> Option<PreflightState> {
        let access = ecs_access(&self.ecs, diags)?;
        let size = match config.system_disk_size.map(u32::try_from) {
            None => 40,
            Some(Ok(s)) if (20..=2048).contains(&s) => s,
            Some(_) => {
                diags.error_at(
                    AttrPath::attr("system_disk_size"),
                    "Invalid value for system_disk_size",
                    "must be between 20 and 2048 GiB",
                );
                return None;
            }
        };
        let req = PreflightRequest {
            region: access.config.region.clone(),
            instance_types: config
                .instance_types
                .clone()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| FALLBACK_TYPES.iter().map(|t| t.to_string()).collect()),
            zone_id: config.zone_id.clone().filter(|z| !z.is_empty()),
            system_disk_category: config
                .system_disk_category
                .clone()
                .unwrap_or_else(|| "cloud_essd".into()),
            system_disk_size: size,
            vcpus: 2,
            spot: config.spot.unwrap_or(false),
            min_balance: config.min_balance.unwrap_or(50.0),
        };
        let report = match cancellable(ctx, preflight::run(&access.config, &req)).await {
            Ok(r) => r,
            Err(e) => {
                report_ecs(diags, "The preflight could not run", &e);
                return None;
            }
        };
        for w in &report.warnings {
            diags.warning("Preflight", w.clone());
        }
        let mut state = config;
        state.account_id = report.identity.as_ref().map(|i| i.account_id.clone());
        state.zone = report.choice.as_ref().map(|c| c.zone_id.clone());
        state.instance_type = report.choice.as_ref().map(|c| c.instance_type.clone());
        state.balance = report.balance.as_ref().map(|b| b.0);
        state.currency = report
            .price
            .as_ref()
            .map(|p| p.currency.clone())
            .or_else(|| report.balance.as_ref().map(|b| b.1.clone()));
        state.monthly_price = report.price.as_ref().map(|p| p.running);
        state.monthly_price_suspended = report.price.as_ref().map(|p| p.suspended);
        state.ok = Some(report.ok());
        state.problems = Some(
            report
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.check, p.sentence))
                .collect(),
        );
        state.warnings = Some(report.warnings.clone());
        Some(state)
    }
}

/// `cloudcode_preflight` as Rust sees it (absent = null). Holds no secret.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PreflightState {
    pub instance_types: Option<Vec<String>>,
    pub zone_id: Option<String>,
    pub system_disk_category: Option<String>,
    pub system_disk_size: Option<i64>,
    pub spot: Option<bool>,
    pub min_balance: Option<f64>,
    pub account_id: Option<String>,
    pub zone: Option<String>,
    pub instance_type: Option<String>,
    pub balance: Option<f64>,
    pub currency: Option<String>,
    pub monthly_price: Option<f64>,
    pub monthly_price_suspended: Option<f64>,
    pub ok: Option<bool>,
    pub problems: Option<Vec<String>>,
    pub warnings: Option<Vec<String>>,
}
