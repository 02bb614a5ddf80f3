//! Zones of the ECS API (2014-05-26): a region catalog (per zone: billing methods, instance types with their stock,
//! disk categories, creatable resources) and the actions that read it, DescribeZones and DescribeAvailableResource,
//! with the parameters and refusals Alibaba Cloud documents for them; tests give or take a type's stock per zone.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::state::{required, ApiError};

/// How much of an instance type a zone has, as DescribeAvailableResource's `StatusCategory` reports it.
/// Ordered from none to plenty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stock {
    /// `WithoutStock`: sold out.
    Out,
    /// `ClosedWithStock`: sold, but close to running out.
    Low,
    /// `WithStock`.
    Plenty,
}

impl Stock {
    /// `Status`: `SoldOut` without stock, else `Available`.
    fn status(self) -> &'static str {
        match self {
            Stock::Out => "SoldOut",
            Stock::Low | Stock::Plenty => "Available",
        }
    }

    fn category(self) -> &'static str {
        match self {
            Stock::Out => "WithoutStock",
            Stock::Low => "ClosedWithStock",
            Stock::Plenty => "WithStock",
        }
    }

    fn available(self) -> bool {
        self != Stock::Out
    }
}

#[derive(Debug, Clone)]
struct Zone {
    id: String,
    region: String,
    /// LocalName in English (also answered for `ja`) and in Chinese (the API's default language).
    name_en: String,
    name_zh: String,
    /// `PrePaid` / `PostPaid`: the billing methods the zone sells.
    charge_types: Vec<&'static str>,
    /// Every instance type the zone offers, with its stock (I/O optimized, VPC).
    types: BTreeMap<String, Stock>,
    /// Disk categories, for system and data disks alike.
    disks: Vec<&'static str>,
    /// `AvailableResourceCreation`.
    creation: Vec<&'static str>,
}

/// vCPUs and memory (GiB) of the instance types in the catalog (DescribeAvailableResource's `Cores`/`Memory`).
pub(crate) const TYPE_SPECS: &[(&str, u32, f64)] = &[
    ("ecs.e-c1m2.large", 2, 4.0),
    ("ecs.c7.large", 2, 4.0),
    ("ecs.g7.large", 2, 8.0),
    ("ecs.g7.xlarge", 4, 16.0),
    ("ecs.t6-c1m1.large", 2, 2.0),
];

/// Sizes (GiB) per disk category: system disk min, max; data disk min, max.
const DISK_SIZES: &[(&str, u32, u32, u32, u32)] = &[
    ("cloud_efficiency", 20, 2048, 20, 32768),
    ("cloud_ssd", 20, 2048, 20, 32768),
    ("cloud_essd", 20, 2048, 20, 65536),
    ("cloud_auto", 1, 2048, 1, 65536),
];

const CHARGE_TYPES: &[&str] = &["PrePaid", "PostPaid"];
const SPOT_STRATEGIES: &[&str] = &["NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"];
const LANGUAGES: &[&str] = &["zh-CN", "en-US", "ja"];

/// The catalog behind DescribeZones and DescribeAvailableResource.
pub(crate) struct Zones {
    /// Region → its zones, by zone id.
    regions: BTreeMap<String, BTreeMap<String, Zone>>,
}

struct ZoneSeed {
    suffix: char,
    charge_types: &'static [&'static str],
    types: &'static [(&'static str, Stock)],
    disks: &'static [&'static str],
}

const BOTH: &[&str] = &["PrePaid", "PostPaid"];
const STANDARD_CREATION: &[&str] = &["Instance", "Disk", "VSwitch", "IoOptimized"];

/// cn-hangzhou: the default `ecs.e-c1m2.large` with cloud_essd in h and i; j lacks the type, k lacks
/// cloud_essd (and sells pay-as-you-go only).
const HANGZHOU: &[ZoneSeed] = &[
    ZoneSeed {
        suffix: 'h',
        charge_types: BOTH,
        types: &[
            ("ecs.e-c1m2.large", Stock::Plenty),
            ("ecs.g7.large", Stock::Plenty),
            ("ecs.c7.large", Stock::Low),
        ],
        disks: &["cloud_efficiency", "cloud_ssd", "cloud_essd"],
    },
    ZoneSeed {
        suffix: 'i',
        charge_types: BOTH,
        types: &[
            ("ecs.e-c1m2.large", Stock::Plenty),
            ("ecs.g7.large", Stock::Plenty),
            ("ecs.g7.xlarge", Stock::Plenty),
        ],
        disks: &["cloud_essd", "cloud_auto"],
    },
    ZoneSeed {
        suffix: 'j',
        charge_types: BOTH,
        types: &[
            ("ecs.g7.large", Stock::Plenty),
            ("ecs.c7.large", Stock::Plenty),
        ],
        disks: &["cloud_efficiency", "cloud_essd"],
    },
    ZoneSeed {
        suffix: 'k',
        charge_types: &["PostPaid"],
        types: &[
            ("ecs.e-c1m2.large", Stock::Plenty),
            ("ecs.t6-c1m1.large", Stock::Plenty),
        ],
        disks: &["cloud_efficiency"],
    },
];

/// ap-southeast-1: `ecs.e-c1m2.large` in a (plenty) and b (low stock); c lacks it.
const SINGAPORE: &[ZoneSeed] = &[
    ZoneSeed {
        suffix: 'a',
        charge_types: BOTH,
        types: &[
            ("ecs.e-c1m2.large", Stock::Plenty),
            ("ecs.g7.large", Stock::Plenty),
        ],
        disks: &["cloud_efficiency", "cloud_essd"],
    },
    ZoneSeed {
        suffix: 'b',
        charge_types: BOTH,
        types: &[
            ("ecs.e-c1m2.large", Stock::Low),
            ("ecs.c7.large", Stock::Plenty),
        ],
        disks: &["cloud_essd"],
    },
    ZoneSeed {
        suffix: 'c',
        charge_types: BOTH,
        types: &[("ecs.g7.large", Stock::Plenty)],
        disks: &["cloud_essd", "cloud_auto"],
    },
];

impl Default for Zones {
    fn default() -> Self {
        let mut regions = BTreeMap::new();
        for (region, sep, en, zh, seeds) in [
            ("cn-hangzhou", "-", "Hangzhou", "华东 1", HANGZHOU),
            ("ap-southeast-1", "", "Singapore", "新加坡", SINGAPORE),
        ] {
            let zones = seeds
                .iter()
                .map(|s| {
                    let id = format!("{region}{sep}{}", s.suffix);
                    let letter = s.suffix.to_ascii_uppercase();
                    let zone = Zone {
                        id: id.clone(),
                        region: region.to_string(),
                        name_en: format!("{en} Zone {letter}"),
                        name_zh: format!("{zh} 可用区 {letter}"),
                        charge_types: s.charge_types.to_vec(),
                        types: s.types.iter().map(|(t, s)| (t.to_string(), *s)).collect(),
                        disks: s.disks.to_vec(),
                        creation: STANDARD_CREATION.to_vec(),
                    };
                    (id, zone)
                })
                .collect();
            regions.insert(region.to_string(), zones);
        }
        Self { regions }
    }
}

/// What DescribeAvailableResource is asked to list (`DestinationResource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    Zone,
    IoOptimized,
    InstanceType,
    Network,
    Ddh,
    SystemDisk,
    DataDisk,
}

impl Destination {
    fn parse(v: &str) -> Option<Self> {
        Some(match v {
            "Zone" => Self::Zone,
            "IoOptimized" => Self::IoOptimized,
            "InstanceType" => Self::InstanceType,
            "Network" => Self::Network,
            "ddh" => Self::Ddh,
            "SystemDisk" => Self::SystemDisk,
            "DataDisk" => Self::DataDisk,
            _ => return None,
        })
    }
}

/// A non-empty parameter.
fn opt<'a>(p: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// A parameter restricted to `allowed` (absent: `default`), else `refused`.
fn one_of(
    p: &BTreeMap<String, String>,
    name: &str,
    allowed: &[&'static str],
    default: &'static str,
    refused: impl FnOnce() -> ApiError,
) -> Result<&'static str, ApiError> {
    match opt(p, name) {
        None => Ok(default),
        Some(v) => allowed
            .iter()
            .find(|a| **a == v)
            .copied()
            .ok_or_else(refused),
    }
}

/// `AcceptLanguage` of DescribeZones and DescribeRegions (default zh-CN).
fn language(p: &BTreeMap<String, String>) -> Result<&'static str, ApiError> {
    one_of(p, "AcceptLanguage", LANGUAGES, "zh-CN", || {
        ApiError::new(
            404,
            "InvalidAcceptLanguage.NotFound",
            "Only Chinese (zh-CN), English (en-US), and Japanese (ja) are allowed.",
        )
    })
}

/// `InstanceChargeType` of DescribeZones and DescribeRegions (default PostPaid).
fn charge_type(p: &BTreeMap<String, String>) -> Result<&'static str, ApiError> {
    one_of(p, "InstanceChargeType", CHARGE_TYPES, "PostPaid", || {
        ApiError::new(
            404,
            "InvalidInstanceChargeType.NotFound",
            "The InstanceChargeType does not exist in our records",
        )
    })
}

fn not_valid(status: u16, code: &str, param: &str) -> ApiError {
    ApiError::new(status, code, format!("The specified {param} is not valid."))
}

/// One listed resource: value, stock, and (for disks) its size range in GiB.
type Supported = (String, Stock, Option<(u32, u32)>);

impl Zones {
    /// Runs one zone action; `None` when the action is not one of these.
    pub(crate) fn handle(
        &self,
        action: &str,
        p: &BTreeMap<String, String>,
    ) -> Option<Result<Value, ApiError>> {
        Some(match action {
            "DescribeZones" => self.describe_zones(p),
            "DescribeAvailableResource" => self.describe_available_resource(p),
            "DescribeRegions" => self.describe_regions(p),
            _ => return None,
        })
    }

    /// DescribeRegions: every region of the catalog, its name in `AcceptLanguage` (default zh-CN).
    fn describe_regions(&self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let lang = language(p)?;
        charge_type(p)?;
        let regions: Vec<Value> = self
            .regions
            .iter()
            .map(|(id, zones)| {
                let first = zones.values().next();
                let name = first.map_or(id.clone(), |z| {
                    let n = if lang == "zh-CN" {
                        &z.name_zh
                    } else {
                        &z.name_en
                    };
                    n.rsplit_once(' ').map_or(n.clone(), |(r, _)| {
                        r.trim_end_matches(" Zone")
                            .trim_end_matches(" 可用区")
                            .to_string()
                    })
                });
                json!({
                    "RegionId": id,
                    "LocalName": name,
                    "RegionEndpoint": format!("ecs.{id}.aliyuncs.com"),
                    "Status": "available",
                })
            })
            .collect();
        Ok(json!({ "Regions": { "Region": regions } }))
    }

    /// Whether `zone_id` is a zone of `region`.
    pub(crate) fn has_zone(&self, region: &str, zone_id: &str) -> bool {
        self.regions
            .get(region)
            .is_some_and(|zones| zones.contains_key(zone_id))
    }

    /// Whether `zone_id` offers `instance_type` and has stock of it (RunInstances: `OperationDenied.NoStock`).
    pub(crate) fn has_stock(&self, zone_id: &str, instance_type: &str) -> bool {
        self.regions
            .values()
            .find_map(|zones| zones.get(zone_id))
            .and_then(|z| z.types.get(instance_type))
            .is_some_and(|s| s.available())
    }

    /// Gives `zone_id` stock of `instance_type` (offering the type there if it did not) or takes it away.
    pub(crate) fn set_stock(
        &mut self,
        zone_id: &str,
        instance_type: &str,
        with_stock: bool,
    ) -> Result<(), String> {
        let zone = self
            .regions
            .values_mut()
            .find_map(|zones| zones.get_mut(zone_id))
            .ok_or_else(|| format!("the double's zone catalog has no zone {zone_id}"))?;
        let stock = if with_stock {
            Stock::Plenty
        } else {
            Stock::Out
        };
        zone.types.insert(instance_type.to_string(), stock);
        Ok(())
    }

    /// DescribeZones: the region's zones that sell `InstanceChargeType` (default PostPaid), each with the instance
    /// types it has stock of; `Verbose=false` gives only id, name and type.
    fn describe_zones(&self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let charge = charge_type(p)?;
        one_of(p, "SpotStrategy", SPOT_STRATEGIES, "NoSpot", || {
            not_valid(400, "InvalidSpotStrategy", "SpotStrategy")
        })?;
        let lang = language(p)?;
        let verbose = opt(p, "Verbose") != Some("false");
        let zones = self.regions.get(&region).ok_or_else(|| {
            ApiError::new(
                404,
                "InvalidRegionId.NotFound",
                "The specified RegionId does not exist.",
            )
        })?;
        let items: Vec<Value> = zones
            .values()
            .filter(|z| z.charge_types.contains(&charge))
            .map(|z| {
                let name = if lang == "zh-CN" {
                    &z.name_zh
                } else {
                    &z.name_en
                };
                if !verbose {
                    return json!({ "ZoneId": z.id, "LocalName": name, "ZoneType": "AvailabilityZone" });
                }
                let types: Vec<&String> = z
                    .types
                    .iter()
                    .filter(|(_, s)| s.available())
                    .map(|(t, _)| t)
                    .collect();
                let mut families: Vec<String> = types.iter().filter_map(|t| family(t)).collect();
                families.sort();
                families.dedup();
                json!({
                    "ZoneId": z.id, "LocalName": name, "ZoneType": "AvailabilityZone",
                    "AvailableResourceCreation": { "ResourceTypes": z.creation },
                    "AvailableInstanceTypes": { "InstanceTypes": types },
                    "AvailableDiskCategories": { "DiskCategories": z.disks },
                    "AvailableVolumeCategories": { "VolumeCategories": [] },
                    "AvailableDedicatedHostTypes": { "DedicatedHostType": [] },
                    "DedicatedHostGenerations": { "DedicatedHostGeneration": [] },
                    "NetworkTypes": { "NetworkType": ["vpc"] },
                    "AvailableResources": { "ResourcesInfo": [{
                        "IoOptimized": true,
                        "NetworkTypes": { "supportedNetworkCategory": ["vpc"] },
                        "SystemDiskCategories": { "supportedSystemDiskCategory": z.disks },
                        "DataDiskCategories": { "supportedDataDiskCategory": z.disks },
                        "InstanceTypes": { "supportedInstanceType": types },
                        "InstanceTypeFamilies": { "supportedInstanceTypeFamily": families },
                        "InstanceGenerations": { "supportedInstanceGeneration": [] },
                    }] },
                })
            })
            .collect();
        Ok(json!({ "Zones": { "Zone": items } }))
    }

    /// DescribeAvailableResource: per zone of the region matching the filters, the `DestinationResource` asked
    /// for with its stock. A zone offering a requested instance type without stock is listed `SoldOut`.
    fn describe_available_resource(&self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let dest = opt(p, "DestinationResource").ok_or_else(|| {
            ApiError::new(
                400,
                "Invalid.Param",
                "The input parameter DestinationResource that is mandatory for processing this request is not supplied.",
            )
        })?;
        let dest = Destination::parse(dest)
            .ok_or_else(|| not_valid(404, "Invalid.DestinationResource", "DestinationResource"))?;
        let charge = one_of(p, "InstanceChargeType", CHARGE_TYPES, "PostPaid", || {
            not_valid(400, "Invalid.InstanceChargeType", "InstanceChargeType")
        })?;
        one_of(p, "SpotStrategy", SPOT_STRATEGIES, "NoSpot", || {
            not_valid(404, "Invalid.SpotStrategy", "SpotStrategy")
        })?;
        let io = one_of(
            p,
            "IoOptimized",
            &["none", "optimized"],
            "optimized",
            || not_valid(404, "Invalid.IoOptimized", "IoOptimized"),
        )?;
        let network = one_of(p, "NetworkCategory", &["vpc", "classic"], "vpc", || {
            not_valid(404, "Invalid.NetworkCategory", "NetworkCategory")
        })?;
        let resource_type = match opt(p, "ResourceType").map(str::to_ascii_lowercase) {
            None => "instance".to_string(),
            Some(t) if ["instance", "disk", "reservedinstance", "ddh"].contains(&t.as_str()) => t,
            Some(_) => {
                return Err(ApiError::new(
                    404,
                    "Invalid.ResourceType",
                    "The ResourceType provided does not exist in our records.",
                ))
            }
        };
        let instance_type = opt(p, "InstanceType");
        let cores = opt(p, "Cores")
            .map(|v| v.parse::<u32>().map_err(|_| ApiError::invalid("Cores")))
            .transpose()?;
        let memory = opt(p, "Memory")
            .map(|v| v.parse::<f64>().map_err(|_| ApiError::invalid("Memory")))
            .transpose()?;
        if instance_type.is_some() && (cores.is_some() || memory.is_some()) {
            return Err(ApiError::new(
                403,
                "InvalidParam.TypeAndCpuMem.Conflict",
                "The specified 'InstanceType' and 'Cores','Memory' are not blank at the same time.",
            ));
        }
        if dest != Destination::InstanceType {
            if cores.is_some() {
                return Err(ApiError::new(
                    403,
                    "InvalidParam.Cores",
                    "The specified parameter 'Cores' should be empty",
                ));
            }
            if memory.is_some() {
                return Err(ApiError::new(
                    403,
                    "InvalidParam.Memory",
                    "The specified parameter 'Memory' should be empty",
                ));
            }
        }
        let per_instance = resource_type == "instance";
        if instance_type.is_none()
            && (dest == Destination::SystemDisk || (dest == Destination::DataDisk && per_instance))
        {
            return Err(ApiError::missing("InstanceType"));
        }
        let zones = self.regions.get(&region).ok_or_else(|| {
            ApiError::new(
                404,
                "Invalid.RegionId",
                "The specified RegionId does not exist.",
            )
        })?;
        let zone_id = opt(p, "ZoneId");
        let system_disk = opt(p, "SystemDiskCategory");
        let data_disk = opt(p, "DataDiskCategory");
        // The catalog holds I/O optimized VPC types only, and no dedicated hosts.
        let sells = io == "optimized" && network == "vpc" && dest != Destination::Ddh;

        let mut items = Vec::new();
        for z in zones.values() {
            if !sells
                || zone_id.is_some_and(|id| id != z.id)
                || !z.charge_types.contains(&charge)
                || system_disk.is_some_and(|c| !z.disks.contains(&c))
                || data_disk.is_some_and(|c| !z.disks.contains(&c))
            {
                continue;
            }
            // The stock that stands for the zone: the requested type's, else its best type's.
            let stock = match instance_type {
                Some(t) => match z.types.get(t) {
                    Some(s) => *s,
                    None => continue,
                },
                None if !per_instance => Stock::Plenty,
                None => z.types.values().copied().max().unwrap_or(Stock::Out),
            };
            let disks = |filter: Option<&str>, system: bool, stock: Stock| -> Vec<Supported> {
                z.disks
                    .iter()
                    .filter(|c| filter.is_none_or(|f| f == **c))
                    .map(|c| {
                        let range = DISK_SIZES.iter().find(|d| d.0 == *c).map(|d| {
                            if system {
                                (d.1, d.2)
                            } else {
                                (d.3, d.4)
                            }
                        });
                        (c.to_string(), stock, range)
                    })
                    .collect()
            };
            let (kind, supported): (&str, Vec<Supported>) = match dest {
                Destination::Zone => ("Zone", vec![(z.id.clone(), stock, None)]),
                Destination::IoOptimized => {
                    ("IoOptimized", vec![("optimized".into(), stock, None)])
                }
                Destination::Network => ("Network", vec![("vpc".into(), stock, None)]),
                Destination::InstanceType => (
                    "InstanceType",
                    z.types
                        .iter()
                        .filter(|(t, _)| instance_type.is_none_or(|want| want == t.as_str()))
                        .filter(|(t, _)| {
                            (cores.is_none() && memory.is_none()) || spec_fits(t, cores, memory)
                        })
                        .map(|(t, s)| (t.clone(), *s, None))
                        .collect(),
                ),
                Destination::SystemDisk => ("SystemDisk", disks(system_disk, true, stock)),
                Destination::DataDisk => ("DataDisk", disks(data_disk, false, stock)),
                Destination::Ddh => continue,
            };
            let Some(best) = supported.iter().map(|s| s.1).max() else {
                continue;
            };
            let resources: Vec<Value> = supported
                .into_iter()
                .map(|(value, s, range)| {
                    let mut r = json!({ "Value": value, "Status": s.status(), "StatusCategory": s.category() });
                    if let (Some((min, max)), Value::Object(m)) = (range, &mut r) {
                        m.insert("Min".into(), json!(min));
                        m.insert("Max".into(), json!(max));
                        m.insert("Unit".into(), json!("GiB"));
                    }
                    r
                })
                .collect();
            items.push(json!({
                "RegionId": z.region, "ZoneId": z.id,
                "Status": best.status(), "StatusCategory": best.category(),
                "AvailableResources": { "AvailableResource": [{
                    "Type": kind,
                    "SupportedResources": { "SupportedResource": resources },
                }] },
            }));
        }
        Ok(json!({ "AvailableZones": { "AvailableZone": items } }))
    }
}

/// `ecs.g7.large` → `ecs.g7`, `ecs.e-c1m2.large` → `ecs.e`.
fn family(instance_type: &str) -> Option<String> {
    let middle = instance_type.strip_prefix("ecs.")?.split('.').next()?;
    Some(format!("ecs.{}", middle.split('-').next()?))
}

/// The type's vCPUs and memory match the requested ones (a type the catalog has no spec for matches none).
fn spec_fits(instance_type: &str, cores: Option<u32>, memory: Option<f64>) -> bool {
    TYPE_SPECS
        .iter()
        .find(|s| s.0 == instance_type)
        .is_some_and(|s| {
            cores.is_none_or(|c| c == s.1) && memory.is_none_or(|m| (m - s.2).abs() < 1e-6)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ecs_double::state::test_params as params;

    fn call(z: &Zones, action: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiError> {
        z.handle(action, &params(pairs)).expect("a zone action")
    }

    /// (zone, Status, StatusCategory) of a DescribeAvailableResource answer.
    fn zone_status(v: &Value) -> Vec<(String, String, String)> {
        v["AvailableZones"]["AvailableZone"]
            .as_array()
            .unwrap()
            .iter()
            .map(|z| {
                (
                    z["ZoneId"].as_str().unwrap().to_string(),
                    z["Status"].as_str().unwrap().to_string(),
                    z["StatusCategory"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// (zone, instance types) of a DescribeZones answer.
    fn zone_types(v: &Value) -> Vec<(String, Vec<String>)> {
        v["Zones"]["Zone"]
            .as_array()
            .unwrap()
            .iter()
            .map(|z| {
                let types = z["AvailableInstanceTypes"]["InstanceTypes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect();
                (z["ZoneId"].as_str().unwrap().to_string(), types)
            })
            .collect()
    }

    #[test]
    fn describe_zones_lists_the_zones_selling_the_charge_type_with_their_types_in_stock() {
        let mut z = Zones::default();
        let all = call(&z, "DescribeZones", &[("RegionId", "cn-hangzhou")]).unwrap();
        let ids: Vec<String> = zone_types(&all).into_iter().map(|(id, _)| id).collect();
        assert_eq!(
            ids,
            [
                "cn-hangzhou-h",
                "cn-hangzhou-i",
                "cn-hangzhou-j",
                "cn-hangzhou-k"
            ]
        );
        assert_eq!(all["Zones"]["Zone"][0]["LocalName"], "华东 1 可用区 H");
        let prepaid = call(
            &z,
            "DescribeZones",
            &[
                ("RegionId", "cn-hangzhou"),
                ("InstanceChargeType", "PrePaid"),
                ("AcceptLanguage", "en-US"),
            ],
        )
        .unwrap();
        assert_eq!(zone_types(&prepaid).len(), 3, "k sells pay-as-you-go only");
        assert_eq!(prepaid["Zones"]["Zone"][0]["LocalName"], "Hangzhou Zone H");

        z.set_stock("cn-hangzhou-i", "ecs.e-c1m2.large", false)
            .unwrap();
        let after = call(&z, "DescribeZones", &[("RegionId", "cn-hangzhou")]).unwrap();
        let (_, i_types) = &zone_types(&after)[1];
        assert_eq!(i_types, &["ecs.g7.large", "ecs.g7.xlarge"]);
        assert!(z.set_stock("cn-hangzhou-z", "ecs.g7.large", true).is_err());
    }

    #[test]
    fn describe_zones_refuses_what_the_api_documents() {
        let z = Zones::default();
        for (pairs, code) in [
            (
                vec![("RegionId", "mars-north-1")],
                "InvalidRegionId.NotFound",
            ),
            (
                vec![("RegionId", "cn-hangzhou"), ("InstanceChargeType", "Free")],
                "InvalidInstanceChargeType.NotFound",
            ),
            (
                vec![("RegionId", "cn-hangzhou"), ("SpotStrategy", "Cheap")],
                "InvalidSpotStrategy",
            ),
            (
                vec![("RegionId", "cn-hangzhou"), ("AcceptLanguage", "fr")],
                "InvalidAcceptLanguage.NotFound",
            ),
            (vec![], "MissingParameter"),
        ] {
            assert_eq!(
                call(&z, "DescribeZones", &pairs).unwrap_err().code,
                code,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn available_zones_for_an_instance_type_report_its_stock() {
        let mut z = Zones::default();
        let ask = [
            ("RegionId", "ap-southeast-1"),
            ("DestinationResource", "Zone"),
            ("InstanceType", "ecs.e-c1m2.large"),
            ("IoOptimized", "optimized"),
        ];
        let row = |id: &str, status: &str, cat: &str| {
            (id.to_string(), status.to_string(), cat.to_string())
        };
        assert_eq!(
            zone_status(&call(&z, "DescribeAvailableResource", &ask).unwrap()),
            [
                row("ap-southeast-1a", "Available", "WithStock"),
                row("ap-southeast-1b", "Available", "ClosedWithStock")
            ]
        );
        z.set_stock("ap-southeast-1a", "ecs.e-c1m2.large", false)
            .unwrap();
        assert_eq!(
            zone_status(&call(&z, "DescribeAvailableResource", &ask).unwrap())[0],
            row("ap-southeast-1a", "SoldOut", "WithoutStock")
        );
        // Without a type every zone is listed, by its best stock.
        let zones = call(
            &z,
            "DescribeAvailableResource",
            &[
                ("RegionId", "ap-southeast-1"),
                ("DestinationResource", "Zone"),
            ],
        )
        .unwrap();
        assert_eq!(zone_status(&zones).len(), 3);
        // Pay-as-you-go and cloud_essd filter the zones.
        let essd = call(
            &z,
            "DescribeAvailableResource",
            &[
                ("RegionId", "cn-hangzhou"),
                ("DestinationResource", "Zone"),
                ("InstanceType", "ecs.e-c1m2.large"),
                ("SystemDiskCategory", "cloud_essd"),
            ],
        )
        .unwrap();
        let ids: Vec<String> = zone_status(&essd).into_iter().map(|r| r.0).collect();
        assert_eq!(ids, ["cn-hangzhou-h", "cn-hangzhou-i"]);
    }

    #[test]
    fn instance_types_and_system_disks_are_listed_per_zone() {
        let z = Zones::default();
        let types = call(
            &z,
            "DescribeAvailableResource",
            &[
                ("RegionId", "cn-hangzhou"),
                ("DestinationResource", "InstanceType"),
                ("ZoneId", "cn-hangzhou-h"),
                ("Cores", "2"),
                ("Memory", "4"),
            ],
        )
        .unwrap();
        let r = &types["AvailableZones"]["AvailableZone"][0]["AvailableResources"]
            ["AvailableResource"][0];
        assert_eq!(r["Type"], "InstanceType");
        let listed: Vec<(&str, &str)> = r["SupportedResources"]["SupportedResource"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["Value"].as_str().unwrap(),
                    s["StatusCategory"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("ecs.c7.large", "ClosedWithStock"),
                ("ecs.e-c1m2.large", "WithStock")
            ]
        );

        let disks = call(
            &z,
            "DescribeAvailableResource",
            &[
                ("RegionId", "cn-hangzhou"),
                ("DestinationResource", "SystemDisk"),
                ("InstanceType", "ecs.e-c1m2.large"),
                ("SystemDiskCategory", "cloud_essd"),
            ],
        )
        .unwrap();
        let zones = disks["AvailableZones"]["AvailableZone"].as_array().unwrap();
        assert_eq!(zones.len(), 2);
        let d = &zones[0]["AvailableResources"]["AvailableResource"][0]["SupportedResources"]
            ["SupportedResource"][0];
        assert_eq!(
            (d["Value"].as_str(), d["Min"].as_u64(), d["Max"].as_u64()),
            (Some("cloud_essd"), Some(20), Some(2048))
        );
        assert_eq!(d["Unit"], "GiB");
    }

    #[test]
    fn describe_available_resource_refuses_what_the_api_documents() {
        let z = Zones::default();
        let base = [("RegionId", "cn-hangzhou")];
        let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
            base.iter().chain(extra).copied().collect()
        };
        for (pairs, status, code) in [
            (with(&[]), 400, "Invalid.Param"),
            (
                with(&[("DestinationResource", "Galaxy")]),
                404,
                "Invalid.DestinationResource",
            ),
            (
                with(&[
                    ("DestinationResource", "Zone"),
                    ("InstanceChargeType", "Free"),
                ]),
                400,
                "Invalid.InstanceChargeType",
            ),
            (
                with(&[("DestinationResource", "Zone"), ("IoOptimized", "maybe")]),
                404,
                "Invalid.IoOptimized",
            ),
            (
                with(&[("DestinationResource", "Zone"), ("NetworkCategory", "ipx")]),
                404,
                "Invalid.NetworkCategory",
            ),
            (
                with(&[("DestinationResource", "Zone"), ("SpotStrategy", "Cheap")]),
                404,
                "Invalid.SpotStrategy",
            ),
            (
                with(&[("DestinationResource", "Zone"), ("ResourceType", "boat")]),
                404,
                "Invalid.ResourceType",
            ),
            (
                with(&[("DestinationResource", "Zone"), ("Cores", "2")]),
                403,
                "InvalidParam.Cores",
            ),
            (
                with(&[("DestinationResource", "Zone"), ("Memory", "4")]),
                403,
                "InvalidParam.Memory",
            ),
            (
                with(&[
                    ("DestinationResource", "InstanceType"),
                    ("InstanceType", "ecs.g7.large"),
                    ("Cores", "2"),
                ]),
                403,
                "InvalidParam.TypeAndCpuMem.Conflict",
            ),
            (
                with(&[("DestinationResource", "SystemDisk")]),
                400,
                "MissingParameter",
            ),
            (
                vec![
                    ("RegionId", "mars-north-1"),
                    ("DestinationResource", "Zone"),
                ],
                404,
                "Invalid.RegionId",
            ),
        ] {
            let err = call(&z, "DescribeAvailableResource", &pairs).unwrap_err();
            assert_eq!((err.status, err.code.as_str()), (status, code), "{pairs:?}");
        }
        assert!(z.handle("DescribeInstances", &params(&base)).is_none());
    }
}
