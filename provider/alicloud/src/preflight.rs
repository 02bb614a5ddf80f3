//! Preflight: what a deploy needs, checked before anything is created — whose credentials these are (STS
//! GetCallerIdentity), the region (DescribeRegions), a zone with the instance type in stock (DescribeAvailableResource,
//! falling back through a ranked list of types), the pay-as-you-go vCPU quota (DescribeAccountAttributes), the
//! balance (BSS QueryAccountBalance; a warning below a threshold), and the monthly price of instance and disk
//! (DescribePrice) with what suspending saves. Each problem is one sentence naming what to change.

use serde::Deserialize;

use crate::client::{p, ClientConfig, EcsClient, Product};
use crate::error::Error;

/// The 2 vCPU / 4 GiB types tried in order when the first choice is out of stock (burstable first: cheapest).
pub const FALLBACK_TYPES: [&str; 4] = [
    "ecs.e-c1m2.large",
    "ecs.u1-c1m2.large",
    "ecs.c7.large",
    "ecs.g7.large",
];

/// What to check.
#[derive(Debug, Clone)]
pub struct PreflightRequest {
    pub region: String,
    /// Ranked: the first one in stock wins.
    pub instance_types: Vec<String>,
    /// Only this zone; `None`: any zone of the region.
    pub zone_id: Option<String>,
    pub system_disk_category: String,
    pub system_disk_size: u32,
    /// vCPUs the box needs (the ranked types all have this many).
    pub vcpus: u32,
    /// Pay-as-you-go spot (SpotAsPriceGo) instead of regular pay-as-you-go.
    pub spot: bool,
    /// Warn when the available balance is below this (in the account's currency).
    pub min_balance: f64,
}

/// Whose credentials these are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Identity {
    pub account_id: String,
    pub arn: String,
    pub identity_type: String,
}

/// The zone and type a deploy would use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub zone_id: String,
    pub instance_type: String,
    /// `ClosedWithStock`: sold, but close to running out.
    pub low_stock: bool,
}

/// Monthly prices (720 hours, as DescribePrice bills a month).
#[derive(Debug, Clone, PartialEq)]
pub struct MonthlyPrice {
    pub currency: String,
    pub instance: f64,
    pub system_disk: f64,
    /// What the box costs running: instance and disk.
    pub running: f64,
    /// What it costs suspended (StopCharging: the instance is not billed, the disk is).
    pub suspended: f64,
}

/// A check that failed, as one sentence naming what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `credentials`, `region`, `stock`, `quota`, `price`.
    pub check: &'static str,
    pub sentence: String,
}

/// The outcome of every check that could run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub identity: Option<Identity>,
    /// Available amount and currency.
    pub balance: Option<(f64, String)>,
    /// Region ids the account can use.
    pub regions: Vec<String>,
    pub choice: Option<Choice>,
    /// (quota, in use) of pay-as-you-go vCPUs in the region.
    pub vcpu_quota: Option<(u32, u32)>,
    pub price: Option<MonthlyPrice>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, check: &'static str, sentence: String) {
        self.problems.push(Problem { check, sentence });
    }
}

/// Runs every check; stops after the credentials when they are refused (everything else would be refused too).
pub async fn run(config: &ClientConfig, req: &PreflightRequest) -> Result<Report, Error> {
    let mut report = Report::default();
    let sts = EcsClient::for_product(config.clone(), Product::Sts)?;
    match sts.call::<Identity>("GetCallerIdentity", &[]).await {
        Ok(id) => report.identity = Some(id),
        Err(e) => {
            report.problem("credentials", credentials_sentence(&e));
            return Ok(report);
        }
    }
    let ecs = EcsClient::new(config.clone())?;
    // A key without permission for a check skips that check with a warning (least-privilege keys still deploy).
    let r = regions(&ecs, req, &mut report).await;
    permitted(r, "ecs:DescribeRegions", &mut report)?;
    if !report.ok() {
        return Ok(report);
    }
    let r = stock(&ecs, req, &mut report).await;
    permitted(r, "ecs:DescribeAvailableResource", &mut report)?;
    let r = quota(&ecs, req, &mut report).await;
    permitted(r, "ecs:DescribeAccountAttributes", &mut report)?;
    balance(config, req, &mut report).await;
    if let Some(choice) = report.choice.clone() {
        price(&ecs, req, &choice, &mut report).await;
    }
    Ok(report)
}

/// A check refused for lack of permission becomes a warning; any other failure stays one.
fn permitted(r: Result<(), Error>, action: &str, report: &mut Report) -> Result<(), Error> {
    match r {
        Err(e)
            if e.code().is_some_and(|c| {
                c.starts_with("Forbidden") || c.contains("NoPermission") || c == "Unauthorized"
            }) =>
        {
            report.warnings.push(format!(
                "{action} is not allowed for this key ({}): that check was skipped",
                e.code().unwrap_or_default()
            ));
            Ok(())
        }
        other => other,
    }
}

fn credentials_sentence(e: &Error) -> String {
    match e.code() {
        Some("InvalidAccessKeyId.NotFound" | "InvalidAccessKeyId.Inactive" | "Forbidden.AccessKeyDisabled") => {
            "the access key is unknown or disabled: set ALIBABA_CLOUD_ACCESS_KEY_ID and \
             ALIBABA_CLOUD_ACCESS_KEY_SECRET to an active key"
                .into()
        }
        Some("SignatureDoesNotMatch" | "IncompleteSignature") => {
            "the access key secret does not match the key: set ALIBABA_CLOUD_ACCESS_KEY_SECRET to the key's secret"
                .into()
        }
        Some("InvalidSecurityToken.Expired" | "InvalidSecurityToken.Malformed") => {
            "the STS security token is expired or malformed: set ALIBABA_CLOUD_SECURITY_TOKEN to a fresh one".into()
        }
        Some(code) => format!("the credentials were refused ({code}): check the access key and its RAM permissions"),
        None => format!("Alibaba Cloud could not be reached to check the credentials: {e}"),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RegionsAnswer {
    regions: RegionList,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RegionList {
    #[serde(default)]
    region: Vec<RegionItem>,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RegionItem {
    region_id: String,
}

async fn regions(
    ecs: &EcsClient,
    req: &PreflightRequest,
    report: &mut Report,
) -> Result<(), Error> {
    let answer: RegionsAnswer = ecs
        .call("DescribeRegions", &[p("AcceptLanguage", "en-US")])
        .await?;
    report.regions = answer
        .regions
        .region
        .into_iter()
        .map(|r| r.region_id)
        .collect();
    if !report.regions.contains(&req.region) {
        let sentence = format!(
            "region {} is not one this account can use: set region to one of {}",
            req.region,
            report.regions.join(", ")
        );
        report.problem("region", sentence);
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AvailableAnswer {
    available_zones: Option<AvailableZones>,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AvailableZones {
    #[serde(default)]
    available_zone: Vec<AvailableZone>,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AvailableZone {
    zone_id: String,
    available_resources: Option<AvailableResources>,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AvailableResources {
    #[serde(default)]
    available_resource: Vec<AvailableResource>,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AvailableResource {
    supported_resources: Option<SupportedResources>,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SupportedResources {
    #[serde(default)]
    supported_resource: Vec<SupportedResource>,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SupportedResource {
    value: String,
    status_category: String,
}

/// (zone, type, stock category) of every instance type offered in the region, or in `zone` only.
async fn offers(
    ecs: &EcsClient,
    req: &PreflightRequest,
    zone: Option<&str>,
) -> Result<Vec<(String, String, String)>, Error> {
    let mut params = vec![
        p("RegionId", &req.region),
        p("DestinationResource", "InstanceType"),
        p("InstanceChargeType", "PostPaid"),
        p("SystemDiskCategory", &req.system_disk_category),
    ];
    if req.spot {
        params.push(p("SpotStrategy", "SpotAsPriceGo"));
    }
    if let Some(z) = zone {
        params.push(p("ZoneId", z));
    }
    let answer: AvailableAnswer = ecs.call("DescribeAvailableResource", &params).await?;
    Ok(answer
        .available_zones
        .map(|z| z.available_zone)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|z| {
            let zone = z.zone_id;
            z.available_resources
                .map(|r| r.available_resource)
                .unwrap_or_default()
                .into_iter()
                .flat_map(|r| {
                    r.supported_resources
                        .map(|s| s.supported_resource)
                        .unwrap_or_default()
                })
                .map(move |s| (zone.clone(), s.value, s.status_category))
        })
        .collect())
}

/// The first ranked type some zone has in stock (plenty preferred over low stock within one type).
async fn stock(ecs: &EcsClient, req: &PreflightRequest, report: &mut Report) -> Result<(), Error> {
    let offered = offers(ecs, req, req.zone_id.as_deref()).await?;
    for ty in &req.instance_types {
        let in_stock = |category: &str| {
            offered
                .iter()
                .find(|(_, t, c)| t == ty && c == category)
                .map(|(z, _, _)| z.clone())
        };
        if let Some((zone_id, low_stock)) = in_stock("WithStock")
            .map(|z| (z, false))
            .or_else(|| in_stock("ClosedWithStock").map(|z| (z, true)))
        {
            report.choice = Some(Choice {
                zone_id,
                instance_type: ty.clone(),
                low_stock,
            });
            if ty != &req.instance_types[0] {
                report.warnings.push(format!(
                    "{} is out of stock in {}; {ty} is in stock there (set instance_type = \"{ty}\" to use it)",
                    req.instance_types[0],
                    where_(req),
                ));
            }
            return Ok(());
        }
    }
    // In one zone: say where the types are in stock instead.
    let elsewhere: Vec<String> = match &req.zone_id {
        Some(_) => offers(ecs, req, None)
            .await?
            .into_iter()
            .filter(|(_, t, c)| req.instance_types.contains(t) && c != "WithoutStock")
            .map(|(z, t, _)| format!("{t} in {z}"))
            .collect(),
        None => Vec::new(),
    };
    let sentence = if elsewhere.is_empty() {
        format!(
            "none of {} is in stock in {}: choose another region or instance_type",
            req.instance_types.join(", "),
            where_(req),
        )
    } else {
        format!(
            "none of {} is in stock in {}: set zone_id to a zone that has it ({})",
            req.instance_types.join(", "),
            where_(req),
            elsewhere.join(", ")
        )
    };
    report.problem("stock", sentence);
    Ok(())
}

fn where_(req: &PreflightRequest) -> String {
    match &req.zone_id {
        Some(z) => format!("zone {z}"),
        None => format!("any zone of {}", req.region),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributesAnswer {
    account_attribute_items: AttributeItems,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeItems {
    #[serde(default)]
    account_attribute_item: Vec<AttributeItem>,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeItem {
    attribute_name: String,
    attribute_values: AttributeValues,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeValues {
    #[serde(default)]
    value_item: Vec<ValueItem>,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ValueItem {
    value: String,
}

async fn quota(ecs: &EcsClient, req: &PreflightRequest, report: &mut Report) -> Result<(), Error> {
    let (max_name, used_name) = if req.spot {
        (
            "max-spot-instance-vcpu-count",
            "used-spot-instance-vcpu-count",
        )
    } else {
        (
            "max-postpaid-instance-vcpu-count",
            "used-postpaid-instance-vcpu-count",
        )
    };
    let answer: AttributesAnswer = ecs
        .call(
            "DescribeAccountAttributes",
            &[
                p("RegionId", &req.region),
                p("AttributeName.1", max_name),
                p("AttributeName.2", used_name),
            ],
        )
        .await?;
    let value = |name: &str| {
        answer
            .account_attribute_items
            .account_attribute_item
            .iter()
            .find(|i| i.attribute_name == name)
            .and_then(|i| i.attribute_values.value_item.first())
            .and_then(|v| v.value.trim().parse::<u32>().ok())
    };
    if let (Some(max), Some(used)) = (value(max_name), value(used_name)) {
        report.vcpu_quota = Some((max, used));
        if used.saturating_add(req.vcpus) > max {
            let kind = if req.spot { "spot" } else { "pay-as-you-go" };
            let sentence = format!(
                "the account's {kind} vCPU quota in {} is {max} with {used} in use, and the box needs {} more: \
                 raise the quota in the Quota Center (ECS, vCPU) or free some",
                req.region, req.vcpus
            );
            report.problem("quota", sentence);
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BalanceAnswer {
    data: Option<BalanceData>,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BalanceData {
    available_amount: String,
    currency: String,
}

/// BSS amounts are strings that may carry thousands separators, a minus sign or a trailing newline.
pub fn parse_amount(v: &str) -> Option<f64> {
    v.trim().replace(',', "").parse().ok()
}

/// The balance, from the China site's endpoint, else (`NotApplicable`: an international account) the
/// international one; a failure is a warning (a RAM user may lack the permission, and a deploy does not need it).
async fn balance(config: &ClientConfig, req: &PreflightRequest, report: &mut Report) {
    let mut last = None;
    for international in [false, true] {
        let answer = match EcsClient::for_product(config.clone(), Product::Bss { international }) {
            Ok(c) => c.call::<BalanceAnswer>("QueryAccountBalance", &[]).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(a) => {
                let Some((amount, currency)) = a
                    .data
                    .and_then(|d| parse_amount(&d.available_amount).map(|x| (x, d.currency)))
                else {
                    report
                        .warnings
                        .push("the balance could not be read (no amount in the answer)".into());
                    return;
                };
                if amount < req.min_balance {
                    report.warnings.push(format!(
                        "the available balance is {amount:.2} {currency}, below {:.2}: top it up, or the instance \
                         stops when the account is in arrears",
                        req.min_balance
                    ));
                }
                report.balance = Some((amount, currency));
                return;
            }
            Err(e) if e.code() == Some("NotApplicable") && !international => last = Some(e),
            Err(e) => {
                last = Some(e);
                break;
            }
        }
    }
    if let Some(e) = last {
        report.warnings.push(format!(
            "the balance could not be read ({}): grant bss:QueryAccountBalance to see it here",
            e.code().unwrap_or("no answer")
        ));
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PriceAnswer {
    price_info: PriceInfo,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PriceInfo {
    price: Price,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Price {
    currency: String,
    trade_price: f64,
    detail_infos: Option<DetailInfos>,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DetailInfos {
    #[serde(default)]
    detail_info: Vec<DetailInfo>,
}
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DetailInfo {
    resource: String,
    trade_price: f64,
}

/// Hours DescribePrice bills in a month.
const HOURS_PER_MONTH: f64 = 720.0;

async fn price(ecs: &EcsClient, req: &PreflightRequest, choice: &Choice, report: &mut Report) {
    // Spot is priced by the hour only.
    let (unit, factor) = if req.spot {
        ("Hour", HOURS_PER_MONTH)
    } else {
        ("Month", 1.0)
    };
    let mut params = vec![
        p("RegionId", &req.region),
        p("ResourceType", "instance"),
        p("InstanceType", &choice.instance_type),
        p("ZoneId", &choice.zone_id),
        p("PriceUnit", unit),
        p("Period", "1"),
        p("SystemDisk.Category", &req.system_disk_category),
        p("SystemDisk.Size", req.system_disk_size.to_string()),
        p("InternetChargeType", "PayByTraffic"),
    ];
    if req.spot {
        params.push(p("SpotStrategy", "SpotAsPriceGo"));
    }
    match ecs.call::<PriceAnswer>("DescribePrice", &params).await {
        Ok(a) => {
            let price = a.price_info.price;
            let detail = |r: &str| {
                price
                    .detail_infos
                    .as_ref()
                    .and_then(|d| d.detail_info.iter().find(|i| i.resource == r))
                    .map_or(0.0, |i| i.trade_price * factor)
            };
            let (instance, system_disk) = (detail("instanceType"), detail("systemDisk"));
            report.price = Some(MonthlyPrice {
                currency: price.currency,
                instance,
                system_disk,
                running: price.trade_price * factor,
                suspended: system_disk,
            });
        }
        Err(e) => report.warnings.push(format!(
            "the price could not be read ({}); see the ECS price calculator",
            e.code().unwrap_or("no answer")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bss_amounts_parse_with_separators_signs_and_newlines() {
        assert_eq!(parse_amount("1,234.56"), Some(1234.56));
        assert_eq!(parse_amount("-11.19"), Some(-11.19));
        assert_eq!(parse_amount("10000.00\n"), Some(10000.0));
        assert_eq!(parse_amount("n/a"), None);
    }
}
