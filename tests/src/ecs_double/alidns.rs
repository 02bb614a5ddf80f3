//! Alibaba Cloud DNS (Alidns API 2015-01-09) as the official provider drives it: the account's domains (seeded)
//! listed by DescribeDomains, and their records — AddDomainRecord, DescribeDomainRecordInfo, UpdateDomainRecord,
//! UpdateDomainRecordRemark, SetDomainRecordStatus, DeleteDomainRecord. A domain the account does not have is
//! `IncorrectDomainUser`; an unknown record is `DomainRecordNotBelongToUser` (both HTTP 400, as documented; the
//! provider reads the latter as not found, and as done when deleting); an identical record, or an update that
//! changes nothing, is `DomainRecordDuplicate`; a CNAME beside another record of the same name and line is
//! `DomainRecordConflict`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::state::{paged, required, ApiError};

/// The Alidns API version the double serves.
pub const ALIDNS_API_VERSION: &str = "2015-01-09";

const RECORD_TYPES: [&str; 10] = [
    "A",
    "NS",
    "MX",
    "TXT",
    "CNAME",
    "SRV",
    "AAAA",
    "CAA",
    "REDIRECT_URL",
    "FORWARD_URL",
];

#[derive(Debug, Clone)]
struct Domain {
    id: String,
    name: String,
    created: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    id: String,
    domain: String,
    rr: String,
    kind: String,
    value: String,
    ttl: u64,
    line: String,
    priority: u64,
    /// `ENABLE` or `DISABLE`.
    status: String,
    remark: String,
}

/// What a test can see of a DNS record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecordView {
    pub domain: String,
    pub rr: String,
    /// `A`, `CNAME`, ...
    pub kind: String,
    pub value: String,
    pub ttl: u64,
    pub remark: String,
}

/// The account's DNS domains and records behind the server.
#[derive(Default)]
pub(crate) struct Dns {
    domains: BTreeMap<String, Domain>,
    records: BTreeMap<String, Record>,
    next_record: u64,
}

fn record_not_found() -> ApiError {
    ApiError::new(
        400,
        "DomainRecordNotBelongToUser",
        "The domain record does not belong to this user.",
    )
}

fn duplicate() -> ApiError {
    ApiError::new(
        400,
        "DomainRecordDuplicate",
        "The domain record is duplicated.",
    )
}

/// The record a request describes (RR, Type, Value, TTL, Line, Priority), checked as the API does.
fn record_of(p: &BTreeMap<String, String>, id: String, domain: String) -> Result<Record, ApiError> {
    let rr = required(p, "RR")?;
    let kind = required(p, "Type")?.to_ascii_uppercase();
    let value = required(p, "Value")?;
    if !RECORD_TYPES.contains(&kind.as_str()) {
        return Err(ApiError::invalid("Type"));
    }
    let ip_ok = match kind.as_str() {
        "A" => value.parse::<std::net::Ipv4Addr>().is_ok(),
        "AAAA" => value.parse::<std::net::Ipv6Addr>().is_ok(),
        _ => true,
    };
    if !ip_ok {
        return Err(ApiError::invalid("Value"));
    }
    let number = |name: &str, default: u64| -> Result<u64, ApiError> {
        p.get(name)
            .filter(|v| !v.is_empty())
            .map_or(Ok(default), |v| {
                v.parse().map_err(|_| ApiError::invalid(name))
            })
    };
    let priority = number("Priority", 0)?;
    if kind == "MX" && !(1..=50).contains(&priority) {
        return Err(ApiError::invalid("Priority"));
    }
    Ok(Record {
        id,
        domain,
        rr,
        kind,
        value,
        ttl: number("TTL", 600)?,
        line: p
            .get("Line")
            .filter(|l| !l.is_empty())
            .cloned()
            .unwrap_or_else(|| "default".into()),
        priority,
        status: "ENABLE".into(),
        remark: String::new(),
    })
}

impl Dns {
    /// Runs one Alidns action.
    pub(crate) fn handle(
        &mut self,
        action: &str,
        p: &BTreeMap<String, String>,
    ) -> Result<Value, ApiError> {
        match action {
            "DescribeDomains" => self.describe_domains(p),
            "AddDomainRecord" => self.add(p),
            "DescribeDomainRecordInfo" => self.info(p),
            "UpdateDomainRecord" => self.update(p),
            "UpdateDomainRecordRemark" => self.remark(p),
            "SetDomainRecordStatus" => self.set_status(p),
            "DeleteDomainRecord" => self.delete(p),
            _ => Err(ApiError::new(
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            )),
        }
    }

    /// Adds `name` to the account's domains.
    pub(crate) fn add_domain(&mut self, name: &str, seq: u64, now: String) {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.domains.entry(name.clone()).or_insert(Domain {
            id: format!("00cc{seq:04x}-d0b1-4c1d-8e5a-{seq:012x}"),
            name,
            created: now,
        });
    }

    fn describe_domains(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let key_word = p.get("KeyWord").map(|k| k.to_ascii_lowercase());
        let exact = p
            .get("SearchMode")
            .is_some_and(|m| m.eq_ignore_ascii_case("EXACT"));
        let items: Vec<Value> = self
            .domains
            .values()
            .filter(|d| {
                key_word.as_ref().is_none_or(|k| {
                    if exact {
                        d.name == *k
                    } else {
                        d.name.contains(k.as_str())
                    }
                })
            })
            .map(|d| {
                let count = self.records.values().filter(|r| r.domain == d.name).count();
                json!({
                    "DomainId": d.id, "DomainName": d.name, "PunyCode": d.name, "AliDomain": false,
                    "RecordCount": count, "GroupId": "", "GroupName": "", "InstanceId": "",
                    "VersionCode": "mianfei", "VersionName": "Alibaba Cloud DNS", "Remark": "",
                    "CreateTime": d.created, "CreateTimestamp": 0, "ResourceGroupId": "rg-cloudcodedefault",
                    "Starmark": false, "InstanceExpired": false, "InstanceEndTime": "", "RegistrantEmail": "",
                    "DnsServers": { "DnsServer": ["ns1.alidns.com", "ns2.alidns.com"] },
                    "Tags": { "Tag": [] },
                })
            })
            .collect();
        // Alidns pages 20 to a page unless asked otherwise.
        let mut paging = p.clone();
        paging
            .entry("PageSize".into())
            .or_insert_with(|| "20".into());
        Ok(paged(&paging, "Domains", "Domain", items))
    }

    /// `DomainRecordDuplicate` if another record is the same, `DomainRecordConflict` if a CNAME meets another
    /// record of the same name and line.
    fn check_against_others(&self, r: &Record) -> Result<(), ApiError> {
        let same_name = self
            .records
            .values()
            .filter(|o| o.id != r.id && o.domain == r.domain && o.line == r.line)
            .filter(|o| o.rr.eq_ignore_ascii_case(&r.rr));
        for o in same_name {
            if o.kind == r.kind && o.value == r.value {
                return Err(duplicate());
            }
            if o.kind == "CNAME" || r.kind == "CNAME" {
                return Err(ApiError::new(
                    400,
                    "DomainRecordConflict",
                    "The domain record is conflict with other records.",
                ));
            }
        }
        Ok(())
    }

    fn add(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let domain = required(p, "DomainName")?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if !self.domains.contains_key(&domain) {
            return Err(ApiError::new(
                400,
                "IncorrectDomainUser",
                "The domain name does not belong to this user.",
            ));
        }
        let id = (100_000_000_000 + self.next_record + 1).to_string();
        let r = record_of(p, id, domain)?;
        self.check_against_others(&r)?;
        self.next_record += 1;
        let out = json!({ "RecordId": r.id });
        self.records.insert(r.id.clone(), r);
        Ok(out)
    }

    fn find(&mut self, p: &BTreeMap<String, String>) -> Result<&mut Record, ApiError> {
        let id = required(p, "RecordId")?;
        self.records.get_mut(&id).ok_or_else(record_not_found)
    }

    fn info(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let r = self.find(p)?.clone();
        let domain_id = self
            .domains
            .get(&r.domain)
            .map(|d| d.id.clone())
            .unwrap_or_default();
        Ok(json!({
            "RecordId": r.id, "DomainId": domain_id, "DomainName": r.domain, "PunyCode": r.domain,
            "RR": r.rr, "Type": r.kind, "Value": r.value, "TTL": r.ttl, "Line": r.line,
            "Priority": r.priority, "Status": r.status, "Locked": false, "Remark": r.remark,
            "GroupId": "", "GroupName": "",
        }))
    }

    fn update(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let old = self.find(p)?.clone();
        let mut new = record_of(p, old.id.clone(), old.domain.clone())?;
        new.status = old.status.clone();
        new.remark = old.remark.clone();
        if new == old {
            return Err(duplicate());
        }
        self.check_against_others(&new)?;
        let out = json!({ "RecordId": new.id });
        self.records.insert(new.id.clone(), new);
        Ok(out)
    }

    fn remark(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let r = self.find(p)?;
        r.remark = p.get("Remark").cloned().unwrap_or_default();
        Ok(json!({}))
    }

    fn set_status(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let status = required(p, "Status")?.to_ascii_uppercase();
        if status != "ENABLE" && status != "DISABLE" {
            return Err(ApiError::invalid("Status"));
        }
        let r = self.find(p)?;
        r.status = status;
        let shown = if r.status == "ENABLE" {
            "Enable"
        } else {
            "Disable"
        };
        Ok(json!({ "RecordId": r.id, "Status": shown }))
    }

    fn delete(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let id = self.find(p)?.id.clone();
        self.records.remove(&id);
        Ok(json!({ "RecordId": id }))
    }

    /// Every record that exists.
    pub(crate) fn views(&self) -> Vec<DnsRecordView> {
        self.records
            .values()
            .map(|r| DnsRecordView {
                domain: r.domain.clone(),
                rr: r.rr.clone(),
                kind: r.kind.clone(),
                value: r.value.clone(),
                ttl: r.ttl,
                remark: r.remark.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dns: &mut Dns, action: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiError> {
        let p = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        dns.handle(action, &p)
    }

    fn code(r: Result<Value, ApiError>) -> String {
        r.err().map(|e| e.code).unwrap_or_default()
    }

    const A: [(&str, &str); 4] = [
        ("DomainName", "example.com"),
        ("RR", "box"),
        ("Type", "A"),
        ("Value", "192.0.2.1"),
    ];

    #[test]
    fn duplicates_conflicts_and_foreign_domains_are_refused() {
        let mut dns = Dns::default();
        dns.add_domain("Example.com.", 1, String::new());
        let id = run(&mut dns, "AddDomainRecord", &A).unwrap()["RecordId"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            code(run(&mut dns, "AddDomainRecord", &A)),
            "DomainRecordDuplicate"
        );
        let cname = [
            A[0],
            A[1],
            ("Type", "CNAME"),
            ("Value", "elsewhere.example"),
        ];
        assert_eq!(
            code(run(&mut dns, "AddDomainRecord", &cname)),
            "DomainRecordConflict"
        );
        let foreign = [("DomainName", "not-mine.example"), A[1], A[2], A[3]];
        assert_eq!(
            code(run(&mut dns, "AddDomainRecord", &foreign)),
            "IncorrectDomainUser"
        );
        // An update that changes nothing is a duplicate; one that does is kept.
        let same = [("RecordId", id.as_str()), A[1], A[2], A[3]];
        assert_eq!(
            code(run(&mut dns, "UpdateDomainRecord", &same)),
            "DomainRecordDuplicate"
        );
        let moved = [
            ("RecordId", id.as_str()),
            A[1],
            A[2],
            ("Value", "192.0.2.2"),
            ("TTL", "1200"),
        ];
        run(&mut dns, "UpdateDomainRecord", &moved).unwrap();
        let info = run(&mut dns, "DescribeDomainRecordInfo", &[("RecordId", &id)]).unwrap();
        assert_eq!(
            (info["Value"].as_str(), info["TTL"].as_u64()),
            (Some("192.0.2.2"), Some(1200))
        );
        assert_eq!(info["Status"], "ENABLE");
    }

    #[test]
    fn a_deleted_record_does_not_belong_to_the_user() {
        let mut dns = Dns::default();
        dns.add_domain("example.com", 1, String::new());
        let id = run(&mut dns, "AddDomainRecord", &A).unwrap()["RecordId"]
            .as_str()
            .unwrap()
            .to_string();
        run(&mut dns, "DeleteDomainRecord", &[("RecordId", &id)]).unwrap();
        for action in [
            "DescribeDomainRecordInfo",
            "DeleteDomainRecord",
            "UpdateDomainRecordRemark",
        ] {
            assert_eq!(
                code(run(&mut dns, action, &[("RecordId", &id)])),
                "DomainRecordNotBelongToUser",
                "{action}"
            );
        }
        let listed = run(
            &mut dns,
            "DescribeDomains",
            &[("KeyWord", "example"), ("SearchMode", "LIKE")],
        )
        .unwrap();
        assert_eq!(listed["Domains"]["Domain"][0]["DomainName"], "example.com");
        assert_eq!(listed["PageSize"], 20);
    }
}
