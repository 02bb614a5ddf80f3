//! `modules/static-site` through `examples/static-site`, run by real Terraform and OpenTofu with the real alicloud
//! provider 1.240.0 against the API double (OSS with its V1 signature, reached through the double's CONNECT proxy
//! as `<bucket>.oss.double.test`; CDN; Alidns): with the certificate referenced in Certificate Management Service
//! (the default), plan, apply (no private key in state), a change of one file and the removal of another, and
//! destroy, each checked on the double's state and call log; a variable refused at plan; the upload form planned
//! with its key hidden, and both or neither forms refused, under every engine; a bad OSS signature refused beside
//! a good one; the module's mocked test file under every engine.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use cloudcode_tests::ecs_double::{EcsDouble, RecordedCall, OSS_ENDPOINT_HOST};
use cloudcode_tests::engine::{self, Engine, Kind};
use cloudcode_tests::provider_bin;
use cloudcode_tests::terraform::{repo_root, Run, Workdir};
use hmac::{Hmac, Mac};

const AK: &str = "LTAI5tStaticSiteDoubleKey";
const SK: &str = "static-site-double-test-secret";
const DIR: &str = "examples/static-site";
const BUCKET: &str = "cloudcode-site-e2e";
const DOMAIN: &str = "static.example.com";
const ZONE: &str = "example.com";
/// The site's certificate in the double's Certificate Management Service.
const CAS_ID: u64 = 8089870;

/// How the example gets the certificate: by its Certificate Management Service id, or uploaded with its key.
#[derive(Clone, Copy, PartialEq)]
enum CertForm {
    Cas,
    Upload,
}

/// The example and the module copied into a working directory for one engine, pointed at a new double.
struct Site {
    double: EcsDouble,
    wd: Workdir,
    certificate: String,
    private_key: String,
    _files: tempfile::TempDir,
}

/// The alicloud provider block's endpoints on the double (an override file merges it into the example's block):
/// every RPC product at its address, OSS at its name (the proxy tunnels `<bucket>.oss.double.test` to it).
fn provider_override(double: &EcsDouble) -> String {
    let addr = double.addr();
    format!(
        r#"
provider "alicloud" {{
  skip_region_validation = true
  account_type           = "Domestic"
  endpoints {{
    ecs    = "{addr}"
    vpc    = "{addr}"
    alidns = "{addr}"
    ram    = "{addr}"
    cdn    = "{addr}"
    oss    = "{OSS_ENDPOINT_HOST}:{port}"
  }}
}}
"#,
        port = addr.port()
    )
}

fn site(e: &Engine, form: CertForm) -> Site {
    let double = EcsDouble::start_https().expect("double");
    double.add_access_key(AK, SK);
    double.add_dns_domain(ZONE);
    let files = tempfile::tempdir().unwrap();
    let ca = files.path().join("ca.pem");
    std::fs::write(&ca, double.ca_pem().unwrap()).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec![DOMAIN.to_string()]).unwrap();
    let (certificate, private_key) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let cert_path = files.path().join("site.crt");
    std::fs::write(&cert_path, &certificate).unwrap();
    double.add_cas_certificate(CAS_ID, "cn-hangzhou", "static-example-com", &certificate);

    let mut wd = Workdir::with_alicloud(e, provider_bin!()).unwrap();
    let root = repo_root();
    wd.copy_tree(&root.join(DIR), DIR).unwrap();
    wd.copy_tree(&root.join("modules/static-site"), "modules/static-site")
        .unwrap();
    // A third file, removed later to show the delete.
    wd.write(
        &format!("{DIR}/site/about.html"),
        "<!doctype html>\n<title>about</title>\n",
    )
    .unwrap();
    wd.write(
        &format!("{DIR}/double_override.tf"),
        &provider_override(&double),
    )
    .unwrap();
    let certificate_vars = match form {
        CertForm::Cas => format!("certificate_id = \"{CAS_ID}\"\n"),
        CertForm::Upload => format!("certificate_path = \"{}\"\n", cert_path.display()),
    };
    wd.write(
        &format!("{DIR}/terraform.tfvars"),
        &format!("bucket_name = \"{BUCKET}\"\ndomain = \"{DOMAIN}\"\n{certificate_vars}"),
    )
    .unwrap();
    for (k, v) in [
        ("ALICLOUD_ACCESS_KEY", AK),
        ("ALICLOUD_SECRET_KEY", SK),
        ("SSL_CERT_FILE", &ca.display().to_string()),
        ("HTTPS_PROXY", &double.proxy_url().unwrap()),
    ] {
        wd.set_env(k, v);
    }
    if form == CertForm::Upload {
        wd.set_env("TF_VAR_private_key", &private_key);
    }
    wd.init_in(DIR).unwrap();
    Site {
        double,
        wd,
        certificate,
        private_key,
        _files: files,
    }
}

impl Site {
    fn tf(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-no-color", "-input=false"]);
        self.wd.tf_in(DIR, &all).unwrap()
    }

    fn apply(&self) -> Run {
        let run = self.tf(&["apply", "-auto-approve"]);
        assert!(
            run.success,
            "apply failed under {}:\n{}{}\nlast calls: {:#?}",
            run.engine,
            run.stdout,
            run.stderr,
            last_calls(&self.double, 25)
        );
        run
    }

    /// The plan of the working directory as `show -json` reads it.
    fn plan_json(&self) -> (Run, serde_json::Value) {
        let run = self.tf(&["plan", "-out=site.tfplan"]);
        assert!(run.success, "plan: {}{}", run.stdout, run.stderr);
        let shown = self
            .wd
            .tf_in(DIR, &["show", "-json", "site.tfplan"])
            .unwrap();
        (run, serde_json::from_str(&shown.stdout).unwrap())
    }

    /// The local state as the engine wrote it.
    fn raw_state(&self) -> String {
        std::fs::read_to_string(self.wd.path().join(DIR).join("terraform.tfstate")).unwrap()
    }

    /// The second line of the private key's PEM (its first body line): what a leak of the key would contain.
    fn key_line(&self) -> String {
        self.private_key.lines().nth(1).unwrap().to_string()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.wd.path().join(DIR).join("site").join(name)
    }
}

fn last_calls(double: &EcsDouble, n: usize) -> Vec<String> {
    let calls = double.calls();
    calls[calls.len().saturating_sub(n)..]
        .iter()
        .map(|c| format!("{} {:?} → {}", c.action, c.params.get("Key"), c.outcome))
        .collect()
}

/// The calls of `action` from `from` on in the log.
fn since(calls: &[RecordedCall], from: usize, action: &str) -> Vec<RecordedCall> {
    calls[from..]
        .iter()
        .filter(|c| c.action == action)
        .cloned()
        .collect()
}

/// Addresses the plan creates, by resource type.
fn planned_creates(plan: &serde_json::Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for rc in plan["resource_changes"].as_array().into_iter().flatten() {
        if rc["change"]["actions"] == serde_json::json!(["create"]) {
            *out.entry(rc["type"].as_str().unwrap_or("").to_string())
                .or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn the_example_uploads_serves_through_cdn_updates_incrementally_and_destroys() {
    // Once, under OpenTofu (~6 min, mostly the provider's own fixed waits around CDN changes); Terraform validates and
    // plans the module and the example in module_alicloud, and runs the module's test file below.
    engine::once(&engine::scenario(Kind::Tofu), |e| {
        let s = site(e, CertForm::Cas);
        let key_line = s.key_line();

        // Refused at plan, before any call: a bucket name OSS would refuse.
        let refused = s.tf(&["plan", "-var=bucket_name=Static_Site"]);
        let text = format!("{}{}", refused.stdout, refused.stderr)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(!refused.success, "{text}");
        assert!(
            text.contains("bucket_name must be 3 to 63 lower-case letters, digits or hyphens, starting and ending with a letter or digit."),
            "{text}"
        );
        assert!(
            s.double.oss_buckets().is_empty()
                && s.double.calls().iter().all(|c| c.action != "PutBucket"),
            "nothing created by a refused plan"
        );

        // The plan: bucket, ACL, one object per file, the CDN domain and its three functions, the CNAME.
        let (plan_run, plan) = s.plan_json();
        let creates = planned_creates(&plan);
        let expected: BTreeMap<String, usize> = [
            ("alicloud_oss_bucket", 1),
            ("alicloud_oss_bucket_acl", 1),
            ("alicloud_oss_bucket_object", 3),
            ("alicloud_cdn_domain_new", 1),
            ("alicloud_cdn_domain_config", 3),
            ("alicloud_alidns_record", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(creates, expected);
        assert!(
            !plan_run.stdout.contains(&key_line),
            "the private key is in the plan output"
        );

        let applied = s.apply();
        assert!(
            !applied.stdout.contains(&key_line),
            "the private key is in the apply output"
        );

        // The bucket: private, each file once with its bytes and content type.
        let buckets = s.double.oss_buckets();
        assert_eq!(buckets.len(), 1, "{buckets:?}");
        let bucket = &buckets[0];
        assert_eq!(
            (bucket.name.as_str(), bucket.acl.as_str()),
            (BUCKET, "private")
        );
        let objects: BTreeMap<&str, (&[u8], &str)> = bucket
            .objects
            .iter()
            .map(|o| {
                (
                    o.key.as_str(),
                    (o.bytes.as_slice(), o.content_type.as_str()),
                )
            })
            .collect();
        for (key, content_type) in [
            ("index.html", "text/html; charset=utf-8"),
            ("about.html", "text/html; charset=utf-8"),
            ("css/site.css", "text/css; charset=utf-8"),
        ] {
            let bytes = std::fs::read(s.file(key)).unwrap();
            assert_eq!(
                objects.get(key),
                Some(&(bytes.as_slice(), content_type)),
                "{key}"
            );
        }
        assert_eq!(objects.len(), 3);
        let calls = s.double.calls();
        let puts = since(&calls, 0, "PutObject");
        let mut put_keys: Vec<&str> = puts.iter().map(|c| c.params["Key"].as_str()).collect();
        put_keys.sort();
        assert_eq!(
            put_keys,
            ["about.html", "css/site.css", "index.html"],
            "each file once"
        );
        assert!(puts
            .iter()
            .all(|c| c.outcome == "OK" && !c.params["Content-MD5"].is_empty()));
        assert!(
            since(&calls, 0, "PutBucketAcl")
                .iter()
                .any(|c| c.params["x-oss-acl"] == "private"),
            "alicloud_oss_bucket_acl set it private"
        );
        // The SDKs addressed the bucket virtual-hosted, through the proxy.
        let bucket_host = format!("{BUCKET}.{OSS_ENDPOINT_HOST}:{}", s.double.addr().port());
        assert!(
            s.double.proxied().contains(&bucket_host),
            "{:?}",
            s.double.proxied()
        );
        // Every call the provider signed was accepted, but for the reads OSS answers "not configured".
        let refused: Vec<&RecordedCall> = calls
            .iter()
            .filter(|c| c.outcome != "OK")
            .filter(|c| !c.outcome.starts_with("NoSuch"))
            .collect();
        assert!(refused.is_empty(), "refused calls: {refused:#?}");

        // The CDN domain: online, the bucket as its origin, HTTPS with the certificate, HTTP/2, forced HTTPS,
        // the private-bucket origin.
        let domains = s.double.cdn_domains();
        assert_eq!(domains.len(), 1, "{domains:?}");
        let d = &domains[0];
        assert_eq!(
            (d.name.as_str(), d.status.as_str(), d.scope.as_str()),
            (DOMAIN, "online", "overseas")
        );
        assert_eq!(
            d.sources,
            [(
                "oss".to_string(),
                format!("{BUCKET}.oss-cn-hangzhou.aliyuncs.com"),
                443
            )]
        );
        assert!(d.ssl_on);
        assert_eq!(d.certificate.as_deref(), Some(s.certificate.as_str()));
        let on = |name: &str| BTreeMap::from([(name.to_string(), "on".to_string())]);
        assert_eq!(d.functions.get("https_option"), Some(&on("http2")));
        assert_eq!(d.functions.get("https_force"), Some(&on("enable")));
        assert_eq!(d.functions.get("l2_oss_key"), Some(&on("private_oss_auth")));
        // The certificate by its Certificate Management Service id: no key sent, none in state.
        assert_eq!(
            (d.certificate_type.as_str(), d.certificate_id),
            ("cas", Some(CAS_ID))
        );
        let ssl = since(&calls, 0, "SetCdnDomainSSLCertificate");
        assert_eq!(ssl.len(), 1, "{ssl:#?}");
        let sent = |name: &str| ssl[0].params.get(name).map(String::as_str);
        assert_eq!(
            (sent("CertType"), sent("CertId"), sent("CertRegion")),
            (
                Some("cas"),
                Some(CAS_ID.to_string().as_str()),
                Some("cn-hangzhou")
            )
        );
        assert!(
            sent("SSLPri").is_none_or(str::is_empty),
            "no private key sent: {ssl:#?}"
        );
        let state = s.raw_state();
        assert!(
            state.contains(&format!("\"cert_id\": \"{CAS_ID}\"")),
            "the state references the certificate by id"
        );
        assert!(
            !state.contains(&key_line),
            "the private key is in the state"
        );

        // The CNAME, and the outputs.
        let records = s.double.dns_records();
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(
            (
                records[0].domain.as_str(),
                records[0].rr.as_str(),
                records[0].kind.as_str(),
                records[0].value.as_str()
            ),
            (ZONE, "static", "CNAME", d.cname.as_str())
        );
        let outputs: serde_json::Value =
            serde_json::from_str(&s.wd.tf_in(DIR, &["output", "-json"]).unwrap().stdout).unwrap();
        assert_eq!(outputs["url"]["value"], format!("https://{DOMAIN}/"));
        assert_eq!(outputs["cdn_cname"]["value"], d.cname);
        assert_eq!(outputs["bucket"]["value"], BUCKET);

        // Nothing to do on a second plan.
        let again = s.tf(&["plan", "-detailed-exitcode"]);
        assert!(
            again.success,
            "second plan not empty:\n{}{}",
            again.stdout, again.stderr
        );

        // One file changed, one removed: only that one is uploaded, the other deleted.
        std::fs::write(s.file("css/site.css"), "body { color: #123456; }\n").unwrap();
        std::fs::remove_file(s.file("about.html")).unwrap();
        let mark = s.double.calls().len();
        s.apply();
        let calls = s.double.calls();
        let puts = since(&calls, mark, "PutObject");
        let deletes = since(&calls, mark, "DeleteObject");
        assert_eq!(
            puts.iter()
                .map(|c| c.params["Key"].as_str())
                .collect::<Vec<_>>(),
            ["css/site.css"]
        );
        assert_eq!(
            deletes
                .iter()
                .map(|c| c.params["Key"].as_str())
                .collect::<Vec<_>>(),
            ["about.html"]
        );
        let bucket = s.double.oss_buckets().remove(0);
        let css = bucket
            .objects
            .iter()
            .find(|o| o.key == "css/site.css")
            .unwrap();
        assert_eq!(css.bytes, b"body { color: #123456; }\n");
        assert!(bucket.objects.iter().all(|o| o.key != "about.html"));
        assert!(
            since(&calls, mark, "AddCdnDomain").is_empty()
                && since(&calls, mark, "BatchSetCdnDomainConfig").is_empty()
        );

        // Destroy: the objects, the bucket, the CDN domain and the record.
        let mark = s.double.calls().len();
        let destroyed = s.tf(&["destroy", "-auto-approve"]);
        assert!(
            destroyed.success,
            "destroy:\n{}{}\n{:#?}",
            destroyed.stdout,
            destroyed.stderr,
            last_calls(&s.double, 25)
        );
        let calls = s.double.calls();
        assert!(s.double.oss_buckets().is_empty());
        assert!(s.double.cdn_domains().is_empty());
        assert!(s.double.dns_records().is_empty());
        assert_eq!(since(&calls, mark, "DeleteObject").len(), 2);
        assert_eq!(
            since(&calls, mark, "DeleteBucket")
                .iter()
                .map(|c| c.outcome.as_str())
                .collect::<Vec<_>>(),
            ["OK"],
            "the bucket is deleted once, after its objects"
        );
        assert_eq!(since(&calls, mark, "DeleteCdnDomain").len(), 1);
    });
}

/// The plan's `certificate_config` of the CDN domain and which of its attributes are sensitive.
fn planned_certificate(plan: &serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    let rc = plan["resource_changes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|rc| rc["type"] == "alicloud_cdn_domain_new")
        .expect("the CDN domain is planned");
    (
        rc["change"]["after"]["certificate_config"][0].clone(),
        rc["change"]["after_sensitive"]["certificate_config"][0].clone(),
    )
}

/// One diagnostic text of a run, whitespace folded (engines wrap long messages).
fn folded(run: &Run) -> String {
    format!("{}{}", run.stdout, run.stderr)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_upload_form_plans_with_its_key_hidden_and_both_or_neither_forms_are_refused() {
    // Plan only (the full scenario above runs the CAS form): the upload form is still accepted, sends the PEMs
    // with the key sensitive and out of the plan output; both forms at once, or neither, are refused at plan with
    // the module's sentence, before any call to the CDN.
    engine::each(&engine::smoke(), |e| {
        let s = site(e, CertForm::Upload);
        let (run, plan) = s.plan_json();
        assert!(
            !run.stdout.contains(&s.key_line()),
            "the private key is in the plan output"
        );
        let (config, sensitive) = planned_certificate(&plan);
        assert_eq!(config["cert_type"], "upload", "{config}");
        assert_eq!(config["cert_name"], "static-example-com-cert", "{config}");
        assert_eq!(sensitive["private_key"], true, "{sensitive}");

        let both = s.tf(&["plan", &format!("-var=certificate_id={CAS_ID}")]);
        assert!(!both.success);
        assert!(
            folded(&both).contains("certificate_id cannot be combined with certificate or private_key: reference the certificate by id, or upload it with its key, not both."),
            "{}",
            folded(&both)
        );
        s.wd.write(
            &format!("{DIR}/neither.tfvars"),
            "certificate_path = null\nprivate_key = null\n",
        )
        .unwrap();
        let neither = s.tf(&["plan", "-var-file=neither.tfvars"]);
        assert!(!neither.success);
        assert!(
            folded(&neither).contains("certificate_id must be set (a certificate in Certificate Management Service) unless both certificate and private_key are given to upload one."),
            "{}",
            folded(&neither)
        );
        assert!(
            s.double.calls().iter().all(|c| !c.action.contains("Cdn")),
            "plans only: no CDN call"
        );
    });
}

/// `Authorization: OSS <ak>:<signature>` for a request (V1, signed here independently of the double).
fn oss_v1(
    secret: &str,
    method: &str,
    md5: &str,
    content_type: &str,
    date: &str,
    resource: &str,
) -> String {
    let sts = format!("{method}\n{md5}\n{content_type}\n{date}\n{resource}");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(sts.as_bytes());
    format!(
        "OSS {AK}:{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// (status, `<Code>` of the XML error or "") of one request to the OSS double, through its proxy as the SDKs go.
fn oss_request(
    double: &EcsDouble,
    secret: &str,
    method: &str,
    bucket: &str,
    key: &str,
    body: &[u8],
    md5: Option<&str>,
) -> (u16, String) {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap()
        .replace("+0000", "GMT");
    let md5 = md5
        .map(str::to_string)
        .unwrap_or_else(|| base64::engine::general_purpose::STANDARD.encode(md5::compute(body).0));
    let content_type = "text/plain";
    let auth = oss_v1(
        secret,
        method,
        &md5,
        content_type,
        &date,
        &format!("/{bucket}/{key}"),
    );
    let url = format!(
        "https://{bucket}.{OSS_ENDPOINT_HOST}:{}/{key}",
        double.addr().port()
    );
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(double.ca_pem().unwrap().as_bytes()).unwrap(),
        )
        .proxy(reqwest::Proxy::https(double.proxy_url().unwrap()).unwrap())
        .build()
        .unwrap();
    let request = client
        .request(method.parse().unwrap(), url)
        .header("date", date)
        .header("content-type", content_type)
        .header("content-md5", md5)
        .header("authorization", auth)
        .body(body.to_vec());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            let text = answer.text().await.unwrap();
            let code = text
                .split_once("<Code>")
                .and_then(|(_, rest)| rest.split_once("</Code>"))
                .map(|(c, _)| c.to_string())
                .unwrap_or_default();
            (status, code)
        })
}

#[test]
fn the_oss_double_refuses_a_bad_signature_a_wrong_digest_and_a_non_empty_bucket() {
    let double = EcsDouble::start_https().unwrap();
    double.add_access_key(AK, SK);
    let put = |secret: &str, key: &str, body: &[u8], md5: Option<&str>| {
        oss_request(&double, secret, "PUT", BUCKET, key, body, md5)
    };
    // Signed with the right secret the bucket is created; with another it is SignatureDoesNotMatch (403).
    assert_eq!(
        put("not-the-secret", "", b"", None),
        (403, "SignatureDoesNotMatch".into())
    );
    assert!(double.oss_buckets().is_empty());
    assert_eq!(put(SK, "", b"", None), (200, String::new()));
    assert_eq!(double.oss_buckets()[0].acl, "private");
    // An object whose Content-MD5 is not its bytes' is InvalidDigest (400); the right one is stored.
    let wrong = base64::engine::general_purpose::STANDARD.encode(md5::compute(b"other").0);
    assert_eq!(
        put(SK, "a.txt", b"hello", Some(&wrong)),
        (400, "InvalidDigest".into())
    );
    assert_eq!(put(SK, "a.txt", b"hello", None), (200, String::new()));
    assert_eq!(double.oss_buckets()[0].objects[0].bytes, b"hello");
    // A bucket with an object cannot be deleted (409); empty, it can.
    let delete = |key: &str| oss_request(&double, SK, "DELETE", BUCKET, key, b"", Some(""));
    assert_eq!(delete(""), (409, "BucketNotEmpty".into()));
    assert_eq!(delete("a.txt"), (204, String::new()));
    assert_eq!(delete(""), (204, String::new()));
    assert!(double.oss_buckets().is_empty());
    let outcomes: Vec<(String, String)> = double
        .calls()
        .into_iter()
        .map(|c| (c.action, c.outcome))
        .collect();
    assert_eq!(
        outcomes[..2],
        [
            ("PutBucket".to_string(), "SignatureDoesNotMatch".to_string()),
            ("PutBucket".to_string(), "OK".to_string())
        ]
    );
}

#[test]
fn the_module_test_file_passes_under_every_engine() {
    engine::each(&engine::smoke(), |e| {
        let wd = Workdir::with_alicloud(e, provider_bin!()).unwrap();
        wd.copy_tree(
            &repo_root().join("modules/static-site"),
            "modules/static-site",
        )
        .unwrap();
        wd.init_in("modules/static-site").unwrap();
        let (report, run) = wd.test_in("modules/static-site", &[]).unwrap();
        assert_eq!(
            report.summary["status"], "pass",
            "{e}: {}\n{}\n{}",
            report.summary, run.stdout, run.stderr
        );
        assert_eq!(report.summary["passed"], 17, "{:?}", report.runs);
        assert!(
            report.runs.values().all(|s| s == "pass"),
            "{:?}",
            report.runs
        );
    });
}
