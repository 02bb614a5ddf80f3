//! The ECS client and snapshot life cycle against the Alibaba Cloud API contract double:
//! signed requests, retries, the destroy → snapshot → prune cycle, image-held snapshots, and
//! credential errors.

use std::sync::Mutex;

use cloudcode_alicloud::{
    ClientConfig, Credentials, DestroySnapshotRequest, Ecs, EcsClient, Error, ImageFilter,
    Lifecycle, PollConfig, Progress, RetryPolicy, SnapshotFilter, StoppedMode, TAG_STACK,
    TAG_VERSION,
};
use cloudcode_tests::ecs_double::{EcsDouble, Fault, InstanceSeed};

const REGION: &str = "cn-hangzhou";
const AK: &str = "LTAI5tDoubleTestKey";
const SK: &str = "double-test-secret-value";
const INSTANCE: &str = "i-bp1cloudcode0001";

fn double_with_instance() -> EcsDouble {
    let double = EcsDouble::start().expect("start ECS double");
    double.add_access_key(AK, SK);
    double.add_instance(InstanceSeed::running(INSTANCE, REGION));
    double
}

fn client_with(double: &EcsDouble, creds: Credentials, attempts: u32) -> EcsClient {
    EcsClient::new(ClientConfig {
        endpoint: Some(double.base_url()),
        retry: RetryPolicy::fast(attempts),
        ..ClientConfig::new(REGION, creds)
    })
    .expect("client")
}

fn client(double: &EcsDouble) -> EcsClient {
    client_with(double, Credentials::new(AK, SK), 5)
}

fn destroy_request(stack: &str, version: &str) -> DestroySnapshotRequest {
    DestroySnapshotRequest {
        instance_id: INSTANCE.to_string(),
        stack_name: stack.to_string(),
        version: version.to_string(),
        stop_first: true,
        keep: 1,
    }
}

/// Brings the instance back to Running, as a fresh deploy of the stack would.
async fn start_again(ecs: &EcsClient) {
    ecs.start_instance(INSTANCE).await.expect("start");
    for _ in 0..20 {
        let inst = ecs.describe_instance(INSTANCE).await.unwrap().unwrap();
        if inst.status == "Running" {
            return;
        }
    }
    panic!("instance did not come back to Running");
}

#[tokio::test]
async fn destroy_cycle_twice_keeps_only_the_newest_tagged_snapshot() {
    let double = double_with_instance();
    let ecs = client(&double);
    let life = Lifecycle::new(&ecs, PollConfig::fast());
    let events = Mutex::new(Vec::new());
    let record = |p: Progress| events.lock().unwrap().push(p);

    let first = life
        .snapshot_on_destroy(&destroy_request("dev", "0.2.0"), &record)
        .await
        .expect("first snapshot");
    assert_eq!(double.instance_status(INSTANCE).as_deref(), Some("Stopped"));
    assert_eq!(first.snapshot.status, "accomplished");
    assert_eq!(first.snapshot.progress, "100%");
    assert!(first.prune.deleted.is_empty());
    let snaps = double.snapshots();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].tag(TAG_STACK), Some("dev"));
    assert_eq!(snaps[0].tag(TAG_VERSION), Some("0.2.0"));
    assert_eq!(snaps[0].disk_id, "d-bp1cloudcode0001");
    {
        let ev = events.lock().unwrap();
        assert!(
            matches!(ev.first(), Some(Progress::StoppingInstance { .. })),
            "{ev:?}"
        );
        let percents: Vec<u8> = ev
            .iter()
            .filter_map(|e| match e {
                Progress::SnapshotProgress { percent, .. } => Some(*percent),
                _ => None,
            })
            .collect();
        assert_eq!(percents, vec![33, 66, 100], "{ev:?}");
        assert!(
            matches!(ev.last(), Some(Progress::SnapshotAccomplished { .. })),
            "{ev:?}"
        );
    }
    let stop = double.calls_of("StopInstance");
    assert_eq!(stop.len(), 1);
    assert_eq!(
        stop[0].params.get("StoppedMode").map(String::as_str),
        Some("KeepCharging")
    );
    let create = double.calls_of("CreateSnapshot");
    assert_eq!(
        create[0].params.get("Tag.1.Key").map(String::as_str),
        Some(TAG_STACK)
    );

    start_again(&ecs).await;
    let second = life
        .snapshot_on_destroy(&destroy_request("dev", "0.2.1"), &|_| {})
        .await
        .expect("second snapshot");
    assert_eq!(
        second.prune.deleted,
        vec![first.snapshot.snapshot_id.clone()]
    );
    let snaps = double.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(snaps[0].snapshot_id, second.snapshot.snapshot_id);

    let newest = life.newest_snapshot("dev").await.unwrap().expect("newest");
    assert_eq!(newest.snapshot_id, second.snapshot.snapshot_id);
    assert_eq!(newest.version.as_deref(), Some("0.2.1"));
    assert_eq!(newest.size_gib, 40);
    assert!(newest.created_at.ends_with('Z'), "{}", newest.created_at);
}

#[tokio::test]
async fn prune_and_newest_only_touch_the_named_stack() {
    let double = double_with_instance();
    let ecs = client(&double);
    let life = Lifecycle::new(&ecs, PollConfig::fast());
    let a = life
        .snapshot_on_destroy(&destroy_request("alpha", "0.2.0"), &|_| {})
        .await
        .unwrap();
    let b = life
        .snapshot_on_destroy(
            &DestroySnapshotRequest {
                stop_first: false,
                ..destroy_request("beta", "0.2.0")
            },
            &|_| {},
        )
        .await
        .unwrap();
    let pruned = life.prune("alpha", 0).await.unwrap();
    assert_eq!(pruned.deleted, vec![a.snapshot.snapshot_id]);
    assert!(life.newest_snapshot("alpha").await.unwrap().is_none());
    let beta = life.newest_snapshot("beta").await.unwrap().unwrap();
    assert_eq!(beta.snapshot_id, b.snapshot.snapshot_id);
}

#[tokio::test]
async fn throttling_is_retried_and_the_retry_reuses_the_client_token() {
    let double = double_with_instance();
    double.inject("CreateSnapshot", Fault::throttling(), 2);
    double.inject("DescribeSnapshots", Fault::service_unavailable(), 1);
    let ecs = client(&double);
    let life = Lifecycle::new(&ecs, PollConfig::fast());
    let out = life
        .snapshot_on_destroy(&destroy_request("dev", "0.2.0"), &|_| {})
        .await
        .expect("succeeds after retries");
    let create = double.calls_of("CreateSnapshot");
    let outcomes: Vec<&str> = create.iter().map(|c| c.outcome.as_str()).collect();
    assert_eq!(outcomes, vec!["Throttling.User", "Throttling.User", "OK"]);
    let tokens: Vec<_> = create
        .iter()
        .map(|c| c.params.get("ClientToken").cloned())
        .collect();
    assert!(
        tokens[0].is_some() && tokens.iter().all(|t| *t == tokens[0]),
        "{tokens:?}"
    );
    assert_eq!(double.snapshots().len(), 1);
    assert_eq!(out.snapshot.status, "accomplished");
}

#[tokio::test]
async fn incorrect_instance_status_is_retried_until_the_stop_is_accepted() {
    let double = double_with_instance();
    double.inject("StopInstance", Fault::incorrect_instance_status(), 2);
    let ecs = client(&double);
    ecs.stop_instance(INSTANCE, StoppedMode::StopCharging)
        .await
        .expect("stop after retries");
    let outcomes: Vec<String> = double
        .calls_of("StopInstance")
        .into_iter()
        .map(|c| c.outcome)
        .collect();
    assert_eq!(
        outcomes,
        vec!["IncorrectInstanceStatus", "IncorrectInstanceStatus", "OK"]
    );
    assert_eq!(
        double.instance_status(INSTANCE).as_deref(),
        Some("Stopping")
    );
}

#[tokio::test]
async fn retries_are_bounded_and_the_last_error_is_returned() {
    let double = double_with_instance();
    double.inject("DescribeDisks", Fault::throttling(), 10);
    let ecs = client_with(&double, Credentials::new(AK, SK), 3);
    let err = ecs
        .describe_disks(INSTANCE, cloudcode_alicloud::DiskType::System)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("Throttling.User"));
    assert_eq!(double.calls_of("DescribeDisks").len(), 3);
}

#[tokio::test]
async fn snapshot_held_by_an_image_is_a_warning_then_pruned_after_delete_image() {
    let double = double_with_instance();
    let ecs = client(&double);
    let life = Lifecycle::new(&ecs, PollConfig::fast());
    let first = life
        .snapshot_on_destroy(&destroy_request("dev", "0.2.0"), &|_| {})
        .await
        .unwrap();
    let old_id = first.snapshot.snapshot_id.clone();
    let image_id = double.create_image_from_snapshot(&old_id).expect("image");

    start_again(&ecs).await;
    let second = life
        .snapshot_on_destroy(&destroy_request("dev", "0.2.0"), &|_| {})
        .await
        .expect("destroy still succeeds");
    assert!(second.prune.deleted.is_empty());
    assert_eq!(second.prune.skipped, vec![old_id.clone()]);
    assert_eq!(second.prune.warnings.len(), 1);
    let w = &second.prune.warnings[0];
    assert!(w.summary.contains(&old_id), "{w:?}");
    assert!(w.detail.contains("SnapshotCreatedImage"), "{w:?}");
    assert_eq!(double.snapshots().len(), 2);

    let images = ecs
        .describe_images(&ImageFilter {
            snapshot_id: Some(old_id.clone()),
            ..ImageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].image_id, image_id);
    assert_eq!(images[0].disk_device_mappings[0].snapshot_id, old_id);
    ecs.delete_image(&image_id).await.unwrap();

    let later = life.prune("dev", 1).await.unwrap();
    assert_eq!(later.deleted, vec![old_id]);
    assert!(later.warnings.is_empty());
    let left = double.snapshots();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].snapshot_id, second.snapshot.snapshot_id);
}

#[tokio::test]
async fn wrong_secret_is_rejected_with_signature_does_not_match_and_request_id() {
    let double = double_with_instance();
    let ecs = client_with(&double, Credentials::new(AK, "not-the-secret"), 5);
    let err = ecs.describe_instance(INSTANCE).await.unwrap_err();
    match &err {
        Error::Api {
            status,
            code,
            request_id,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(code, "SignatureDoesNotMatch");
            assert!(!request_id.is_empty());
        }
        other => panic!("unexpected error {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("SignatureDoesNotMatch") && text.contains("RequestId"),
        "{text}"
    );
    assert!(!text.contains("not-the-secret"), "{text}");
    assert_eq!(double.calls().len(), 1, "signature errors are not retried");
}

#[tokio::test]
async fn unknown_access_key_is_rejected_with_invalid_access_key_id_not_found() {
    let double = double_with_instance();
    let ecs = client_with(&double, Credentials::new("LTAIunknown", SK), 5);
    let err = ecs.describe_instance(INSTANCE).await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidAccessKeyId.NotFound"));
    assert_eq!(err.status(), Some(404));
    assert!(err.request_id().is_some_and(|r| !r.is_empty()));
}

#[tokio::test]
async fn sts_token_is_sent_signed_and_required_for_sts_keys() {
    let double = double_with_instance();
    double.add_sts_access_key("STS.key", "sts-secret", "sts-token");
    let with_token = client_with(
        &double,
        Credentials::new("STS.key", "sts-secret").with_security_token("sts-token"),
        1,
    );
    let inst = with_token.describe_instance(INSTANCE).await.unwrap();
    assert_eq!(inst.map(|i| i.status).as_deref(), Some("Running"));
    let without = client_with(&double, Credentials::new("STS.key", "sts-secret"), 1);
    let err = without.describe_instance(INSTANCE).await.unwrap_err();
    assert_eq!(err.code(), Some("MissingSecurityToken"));
}

#[tokio::test]
async fn describe_snapshots_follows_pages_beyond_one_hundred() {
    let double = double_with_instance();
    let ecs = client(&double);
    let disk = format!("d-{}", INSTANCE.trim_start_matches("i-"));
    for _ in 0..101 {
        ecs.create_snapshot(&cloudcode_alicloud::CreateSnapshotRequest {
            disk_id: disk.clone(),
            tags: vec![(TAG_STACK.into(), "bulk".into())],
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let all = ecs
        .describe_snapshots(&SnapshotFilter {
            tags: vec![(TAG_STACK.into(), "bulk".into())],
            ..SnapshotFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 101);
    let pages: Vec<String> = double
        .calls_of("DescribeSnapshots")
        .into_iter()
        .filter_map(|c| c.params.get("PageNumber").cloned())
        .collect();
    assert_eq!(pages, vec!["1", "2"]);
}

#[tokio::test]
async fn missing_instance_is_a_clear_error_before_any_snapshot() {
    let double = double_with_instance();
    let ecs = client(&double);
    let life = Lifecycle::new(&ecs, PollConfig::fast());
    let err = life
        .snapshot_on_destroy(
            &DestroySnapshotRequest {
                instance_id: "i-gone".into(),
                ..destroy_request("dev", "0.2.0")
            },
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("i-gone"), "{err}");
    assert!(double.snapshots().is_empty());
}

/// Sends one hand-signed DescribeInstances with the given nonce, date and form body.
async fn raw_call(
    double: &EcsDouble,
    nonce: &str,
    date: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    use cloudcode_alicloud::signer;
    let host = double.addr().to_string();
    let query = signer::canonical_query(&[("InstanceIds", format!("[\"{INSTANCE}\"]"))]);
    let body_hash = signer::sha256_hex(body.as_bytes());
    let mut headers = vec![
        ("host", host.as_str()),
        ("x-acs-action", "DescribeInstances"),
        ("x-acs-version", "2014-05-26"),
        ("x-acs-date", date),
        ("x-acs-signature-nonce", nonce),
        ("x-acs-content-sha256", body_hash.as_str()),
    ];
    if !body.is_empty() {
        headers.push(("content-type", "application/x-www-form-urlencoded"));
    }
    let (auth, _) = signer::sign(
        AK,
        SK,
        &signer::SigningInput {
            method: "POST",
            path: "/",
            canonical_query: &query,
            headers: &headers,
            payload_hash: &body_hash,
        },
    );
    let mut req = reqwest::Client::new()
        .post(format!("{}/?{query}", double.base_url()))
        .header("authorization", auth)
        .body(body.to_string());
    for (k, v) in &headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn double_accepts_form_body_params_and_rejects_replayed_nonce_and_stale_date() {
    let double = double_with_instance();
    let now = now_rfc3339();
    let (status, doc) = raw_call(&double, "nonce-1", &now, "RegionId=cn-hangzhou").await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["Instances"]["Instance"][0]["InstanceId"], INSTANCE);
    assert!(doc["RequestId"].is_string());

    let (status, doc) = raw_call(&double, "nonce-1", &now, "RegionId=cn-hangzhou").await;
    assert_eq!(
        (status, doc["Code"].as_str()),
        (400, Some("SignatureNonceUsed")),
        "{doc}"
    );
    for field in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
        assert!(doc[field].is_string(), "{field} missing in {doc}");
    }

    let (status, doc) = raw_call(
        &double,
        "nonce-2",
        "2023-10-26T09:01:01Z",
        "RegionId=cn-hangzhou",
    )
    .await;
    assert_eq!(
        (status, doc["Code"].as_str()),
        (400, Some("InvalidTimeStamp.Expired")),
        "{doc}"
    );

    let (status, doc) = raw_call(&double, "nonce-3", &now, "").await;
    assert_eq!(
        (status, doc["Code"].as_str()),
        (400, Some("MissingParameter")),
        "{doc}"
    );
}

/// Signs like the official alicloud provider's RPC SDK: common parameters in the query, the action's in a form
/// body, HMAC-SHA1 over both (signature version 1.0). Its own encoder (`percent-encoding`), not the double's.
async fn rpc_call(
    double: &EcsDouble,
    secret: &str,
    nonce: &str,
    version: &str,
    tamper: bool,
) -> (u16, serde_json::Value) {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let enc = |s: &str| utf8_percent_encode(s, UNRESERVED).to_string();
    let now = now_rfc3339();
    let query: Vec<(&str, &str)> = vec![
        ("AccessKeyId", AK),
        ("Action", "DescribeInstances"),
        ("Format", "JSON"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", nonce),
        ("SignatureVersion", version),
        ("Timestamp", now.as_str()),
        ("Version", "2014-05-26"),
    ];
    let instance_ids = format!("[\"{INSTANCE}\"]");
    let body: Vec<(&str, &str)> =
        vec![("RegionId", REGION), ("InstanceIds", instance_ids.as_str())];
    let mut all: Vec<(String, String)> = query
        .iter()
        .chain(body.iter())
        .map(|(k, v)| (enc(k), enc(v)))
        .collect();
    all.sort();
    let canonical = all
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let to_sign = format!("POST&{}&{}", enc("/"), enc(&canonical));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).unwrap();
    mac.update(to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let form = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let body_text = if tamper {
        form(&[("RegionId", "cn-beijing"), ("InstanceIds", &instance_ids)])
    } else {
        form(&body)
    };
    let url = format!(
        "{}/?{}&Signature={}",
        double.base_url(),
        form(&query),
        enc(&signature)
    );
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body_text)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn rpc_signature_v1_as_the_official_provider_sends_it_is_verified() {
    let double = double_with_instance();
    let (status, doc) = rpc_call(&double, SK, "rpc-1", "1.0", false).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["Instances"]["Instance"][0]["InstanceId"], INSTANCE);
    let code = |r: (u16, serde_json::Value)| (r.0, r.1["Code"].as_str().unwrap_or("").to_string());
    assert_eq!(
        code(rpc_call(&double, SK, "rpc-1", "1.0", false).await),
        (400, "SignatureNonceUsed".into())
    );
    assert_eq!(
        code(rpc_call(&double, "wrong", "rpc-2", "1.0", false).await),
        (400, "SignatureDoesNotMatch".into())
    );
    assert_eq!(
        code(rpc_call(&double, SK, "rpc-3", "1.0", true).await),
        (400, "SignatureDoesNotMatch".into()),
        "a body changed after signing"
    );
    assert_eq!(
        code(rpc_call(&double, SK, "rpc-4", "2.0", false).await),
        (400, "IncompleteSignature".into())
    );
    let calls = double.calls_of("DescribeInstances");
    assert_eq!(
        calls.iter().filter(|c| c.outcome == "OK").count(),
        1,
        "{calls:?}"
    );
    assert_eq!(
        calls[0].params.get("RegionId").map(String::as_str),
        Some(REGION)
    );
}
