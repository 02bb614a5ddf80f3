//! The account as a preflight sees it, with the parameters, answers and refusals Alibaba Cloud documents: who the
//! credentials belong to (STS 2015-04-01 GetCallerIdentity), the balance (BSS OpenAPI 2017-12-14
//! QueryAccountBalance, amounts as strings with thousands separators), the ECS quotas (DescribeAccountAttributes)
//! and the regions and prices (DescribeRegions, DescribePrice). Tests set the balance, the vCPU quota and use.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::state::{required, ApiError, Caller};

/// STS's API version.
pub const STS_API_VERSION: &str = "2015-04-01";
/// BSS OpenAPI's API version.
pub const BSS_API_VERSION: &str = "2017-12-14";

/// The double's account id (every access key belongs to it).
pub const ACCOUNT_ID: &str = "1968132000123456";

/// Hourly pay-as-you-go price (CNY) of the instance types the zone catalog sells.
const HOURLY: [(&str, f64); 3] = [
    ("ecs.e-c1m2.large", 0.118),
    ("ecs.g7.large", 0.486),
    ("ecs.c7.large", 0.433),
];
/// Monthly price (CNY) of one GiB of system disk, per category.
const DISK_GIB_MONTH: [(&str, f64); 4] = [
    ("cloud_essd", 1.0),
    ("cloud_ssd", 1.0),
    ("cloud_efficiency", 0.35),
    ("cloud_auto", 1.0),
];
/// Hours in the month DescribePrice's `PriceUnit=Month` bills.
const HOURS_PER_MONTH: f64 = 720.0;
/// SpotAsPriceGo pays about this share of the pay-as-you-go price.
const SPOT_SHARE: f64 = 0.2;

/// The attribute names DescribeAccountAttributes knows.
const ATTRIBUTES: [&str; 6] = [
    "max-postpaid-instance-vcpu-count",
    "used-postpaid-instance-vcpu-count",
    "max-spot-instance-vcpu-count",
    "used-spot-instance-vcpu-count",
    "max-security-groups",
    "real-name-authentication",
];

pub(crate) struct Account {
    /// `Data.AvailableAmount` exactly as BSS sends it (e.g. `"1,234.56"`).
    pub(crate) balance: String,
    pub(crate) max_postpaid_vcpu: u32,
    pub(crate) used_postpaid_vcpu: u32,
}

impl Default for Account {
    fn default() -> Self {
        Self {
            balance: "1,234.56".into(),
            max_postpaid_vcpu: 500,
            used_postpaid_vcpu: 0,
        }
    }
}

impl Account {
    /// STS: GetCallerIdentity of the key that signed: a temporary key is an assumed role (the role it was issued
    /// for, with its `role_id`, else `cloudcode`).
    pub(crate) fn handle_sts(
        &self,
        action: &str,
        caller: &Caller,
        role_id: Option<&str>,
    ) -> Result<Value, ApiError> {
        let key = &caller.access_key_id;
        match action {
            "GetCallerIdentity" if caller.sts => Ok(json!({
                "IdentityType": "AssumedRoleUser",
                "AccountId": ACCOUNT_ID,
                "PrincipalId": format!("3000{}:cloudcode", &key[key.len().saturating_sub(6)..]),
                "RoleId": role_id.unwrap_or("300081234567891234"),
                "Arn": format!(
                    "acs:ram::{ACCOUNT_ID}:assumed-role/{}/cloudcode",
                    caller.role.as_deref().unwrap_or("cloudcode")
                ),
            })),
            "GetCallerIdentity" => Ok(json!({
                "IdentityType": "RAMUser",
                "AccountId": ACCOUNT_ID,
                "PrincipalId": "288774244375211234",
                "UserId": "216959339000123456",
                "Arn": format!("acs:ram::{ACCOUNT_ID}:user/cloudcode"),
            })),
            _ => Err(not_found_action()),
        }
    }

    /// BSS OpenAPI: QueryAccountBalance.
    pub(crate) fn handle_bss(&self, action: &str) -> Result<Value, ApiError> {
        match action {
            "QueryAccountBalance" => Ok(json!({
                "Code": "200",
                "Message": "success",
                "Success": true,
                "Data": {
                    "AvailableAmount": self.balance,
                    "AvailableCashAmount": self.balance,
                    "CreditAmount": "0.00",
                    "MybankCreditAmount": "0.00",
                    "Currency": "CNY",
                    "QuotaLimit": "0.00",
                },
            })),
            _ => Err(not_found_action()),
        }
    }

    /// ECS: DescribeAccountAttributes, DescribePrice (DescribeRegions is the zone catalog's); `None` for others.
    pub(crate) fn handle_ecs(
        &self,
        action: &str,
        p: &BTreeMap<String, String>,
    ) -> Option<Result<Value, ApiError>> {
        Some(match action {
            "DescribeAccountAttributes" => self.attributes(p),
            "DescribePrice" => price(p),
            _ => return None,
        })
    }

    fn attributes(&self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        if p.get("RegionId").is_none_or(String::is_empty) {
            return Err(ApiError::new(
                403,
                "Invalid.Parameter",
                "The required parameter regionId must be not null.",
            ));
        }
        let asked: Vec<&str> = (1..=8)
            .filter_map(|n| p.get(&format!("AttributeName.{n}")).map(String::as_str))
            .collect();
        let value = |name: &str| match name {
            "max-postpaid-instance-vcpu-count" => self.max_postpaid_vcpu.to_string(),
            "used-postpaid-instance-vcpu-count" => self.used_postpaid_vcpu.to_string(),
            "max-spot-instance-vcpu-count" => "800".to_string(),
            "used-spot-instance-vcpu-count" => "0".to_string(),
            "max-security-groups" => "100".to_string(),
            _ => "yes".to_string(),
        };
        let items: Vec<Value> = ATTRIBUTES
            .iter()
            .filter(|a| asked.is_empty() || asked.contains(a))
            .map(|a| {
                json!({
                    "AttributeName": a,
                    "AttributeValues": { "ValueItem": [{ "Value": value(a), "Count": 1 }] },
                })
            })
            .collect();
        Ok(json!({ "AccountAttributeItems": { "AccountAttributeItem": items } }))
    }
}

fn not_found_action() -> ApiError {
    ApiError::new(
        404,
        "InvalidAction.NotFound",
        "Specified api is not found, please check your url and method.",
    )
}

fn bad(code: &str, param: &str) -> ApiError {
    ApiError::new(
        400,
        code,
        format!("The specified parameter \"{param}\" is not valid."),
    )
}

/// DescribePrice for `ResourceType=instance` (instance type, system disk, bandwidth) and `bandwidth`.
fn price(p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
    required(p, "RegionId")?;
    let get = |k: &str| p.get(k).map(String::as_str);
    let resource = get("ResourceType").unwrap_or("instance");
    if !["instance", "bandwidth", "disk"].contains(&resource) {
        return Err(bad("InvalidResourceType.ValueNotSupported", "ResourceType"));
    }
    let unit = get("PriceUnit").unwrap_or("Hour");
    let hours = match unit {
        "Hour" => 1.0,
        "Month" => HOURS_PER_MONTH,
        "Year" => HOURS_PER_MONTH * 12.0,
        _ => return Err(bad("InvalidPriceUnit.ValueNotSupported", "PriceUnit")),
    };
    let period: f64 = match get("Period").map(str::parse::<u32>) {
        None => 1.0,
        Some(Ok(n))
            if (unit == "Hour" && n == 1)
                || (unit == "Month" && (1..=9).contains(&n))
                || (unit == "Year" && (1..=5).contains(&n)) =>
        {
            f64::from(n)
        }
        Some(_) => return Err(bad("InvalidPeriod", "Period")),
    };
    let spot = match get("SpotStrategy").unwrap_or("NoSpot") {
        "NoSpot" => false,
        "SpotAsPriceGo" | "SpotWithPriceLimit" if unit == "Hour" => true,
        "SpotAsPriceGo" | "SpotWithPriceLimit" => {
            return Err(bad("InvalidPriceUnit.ValueNotSupported", "PriceUnit"))
        }
        _ => return Err(bad("InvalidSpotStrategy", "SpotStrategy")),
    };
    let bandwidth: u32 = match get("InternetMaxBandwidthOut").map(str::parse::<u32>) {
        None => 0,
        Some(Ok(b)) if b <= 100 => b,
        Some(_) => {
            return Err(bad(
                "InvalidInternetMaxBandwidthOut.ValueNotSupported",
                "InternetMaxBandwidthOut",
            ))
        }
    };
    let by_bandwidth = match get("InternetChargeType").unwrap_or("PayByTraffic") {
        "PayByTraffic" => false,
        "PayByBandwidth" => true,
        _ => {
            return Err(bad(
                "InvalidInternetChargeType.ValueNotSupported",
                "InternetChargeType",
            ))
        }
    };
    let mut details = Vec::new();
    if resource == "instance" {
        let ty = get("InstanceType").ok_or_else(|| {
            ApiError::new(
                404,
                "InvalidInstanceType.Missing",
                "The specified InstanceType is missing.",
            )
        })?;
        let hourly = HOURLY
            .iter()
            .find(|(t, _)| *t == ty)
            .map(|(_, h)| *h)
            .ok_or_else(|| {
                ApiError::new(
                    400,
                    "InvalidInstanceType.ValueNotSupported",
                    "The specified InstanceType does not exist or beyond the permitted range.",
                )
            })?;
        let share = if spot { SPOT_SHARE } else { 1.0 };
        details.push(("instanceType", hourly * share * hours * period));
    }
    if resource != "bandwidth" {
        let category = get("SystemDisk.Category").unwrap_or("cloud_essd");
        let per_gib = DISK_GIB_MONTH
            .iter()
            .find(|(c, _)| *c == category)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                bad(
                    "InvalidSystemDiskCategory.ValueNotSupported",
                    "SystemDisk.Category",
                )
            })?;
        let size: f64 = match get("SystemDisk.Size").map(str::parse::<u32>) {
            None => 40.0,
            Some(Ok(s)) if (20..=2048).contains(&s) => f64::from(s),
            Some(_) => {
                return Err(bad(
                    "InvalidSystemDiskSize.ValueNotSupported",
                    "SystemDisk.Size",
                ))
            }
        };
        details.push((
            "systemDisk",
            per_gib * size * hours / HOURS_PER_MONTH * period,
        ));
    }
    if bandwidth > 0 && (by_bandwidth || resource == "bandwidth") {
        details.push(("bandwidth", 0.032 * f64::from(bandwidth) * hours * period));
    }
    let round = |x: f64| (x * 100.0).round() / 100.0;
    let total: f64 = details.iter().map(|(_, v)| round(*v)).sum();
    let infos: Vec<Value> = details
        .iter()
        .map(|(r, v)| json!({ "Resource": r, "OriginalPrice": round(*v), "DiscountPrice": 0.0, "TradePrice": round(*v) }))
        .collect();
    Ok(json!({
        "PriceInfo": {
            "Price": {
                "Currency": "CNY",
                "OriginalPrice": round(total),
                "DiscountPrice": 0.0,
                "TradePrice": round(total),
                "DetailInfos": { "DetailInfo": infos },
            },
            "Rules": { "Rule": [] },
        }
    }))
}
