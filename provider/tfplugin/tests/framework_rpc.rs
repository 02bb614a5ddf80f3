//! The framework through its gRPC face, with a test provider served in-process and a tonic client playing
//! Terraform: write-only refusal for old clients, StopProvider cancelling in-flight work, and planning rules.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cloudcode_tfplugin::framework::{
    resource, AnyResource, ApplyRequest, Attribute, Block, DeleteRequest, Diagnostics, PlanRequest,
    Provider, ReadRequest, Resource, Schema, Typed,
};
use cloudcode_tfplugin::proto::tfplugin6 as pb;
use cloudcode_tfplugin::proto::tfplugin6::provider_client::ProviderClient;
use cloudcode_tfplugin::server::PluginServer;
use cloudcode_tfplugin::value::{decode_msgpack, encode_msgpack, Type, Value};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Thing {
    name: String,
    secret_wo: Option<String>,
    id: Option<String>,
    stamp: Option<String>,
}

struct ThingResource;

#[async_trait]
impl Resource for ThingResource {
    type State = Thing;
    fn type_name(&self) -> &'static str {
        "test_thing"
    }
    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new("test")
                .attribute(Attribute::string("name").required().description("name"))
                .attribute(
                    Attribute::string("secret_wo")
                        .optional()
                        .sensitive()
                        .write_only()
                        .description("s"),
                )
                .attribute(
                    Attribute::string("id")
                        .computed()
                        .use_state_for_unknown()
                        .description("id"),
                )
                .attribute(
                    Attribute::string("stamp")
                        .computed()
                        .description("changes on every update"),
                ),
        )
    }
    async fn plan(&self, _req: &mut PlanRequest<Thing>, _diags: &mut Diagnostics) {}
    async fn create(
        &self,
        req: &mut ApplyRequest<Thing>,
        diags: &mut Diagnostics,
    ) -> Option<Thing> {
        if req.planned.name == "wait" {
            tokio::select! {
                _ = req.ctx.cancel.cancelled() => {
                    diags.error("Cancelled", "StopProvider received");
                    return None;
                }
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        }
        let mut s = req.planned.clone();
        s.id = Some(format!("id-{}", s.name));
        s.stamp = Some("1".into());
        // Write-only values reach apply through the configuration.
        s.secret_wo = req.config.secret_wo.clone();
        Some(s)
    }
    async fn read(&self, req: &mut ReadRequest<Thing>, _: &mut Diagnostics) -> Option<Thing> {
        Some(req.state.clone())
    }
    async fn update(&self, req: &mut ApplyRequest<Thing>, _: &mut Diagnostics) -> Option<Thing> {
        Some(req.planned.clone())
    }
    async fn delete(&self, _: &mut DeleteRequest<Thing>, _: &mut Diagnostics) {}
}

struct TestProvider;

#[async_trait]
impl Provider for TestProvider {
    type Config = serde_json::Map<String, serde_json::Value>;
    fn name(&self) -> &'static str {
        "test"
    }
    fn schema(&self) -> Schema {
        Schema::new(0, Block::new("test provider"))
    }
    async fn configure(&self, _: Typed<Self::Config>, _: &mut Diagnostics) {}
    fn resources(&self) -> Vec<Arc<dyn AnyResource>> {
        vec![resource(ThingResource)]
    }
}

async fn client() -> ProviderClient<Channel> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(pb::provider_server::ProviderServer::new(PluginServer::new(
                TestProvider,
            )))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    ProviderClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn ty() -> Type {
    Type::object([
        ("name", Type::String),
        ("secret_wo", Type::String),
        ("id", Type::String),
        ("stamp", Type::String),
    ])
}

fn dv(v: &Value) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack: encode_msgpack(v, &ty()).unwrap(),
        json: vec![],
    })
}

fn obj(name: &str, secret: Option<&str>, id: Value, stamp: Value) -> Value {
    Value::object([
        ("name", Value::string(name)),
        ("secret_wo", Value::opt_string(secret)),
        ("id", id),
        ("stamp", stamp),
    ])
}

#[tokio::test]
async fn write_only_value_is_refused_when_the_client_cannot_keep_it_out_of_state() {
    let mut c = client().await;
    let config = obj("a", Some("hunter2hunter2"), Value::Null, Value::Null);
    let old = c
        .validate_resource_config(pb::validate_resource_config::Request {
            type_name: "test_thing".into(),
            config: dv(&config),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(old.diagnostics.len(), 1, "{:?}", old.diagnostics);
    let d = &old.diagnostics[0];
    assert!(d.summary.contains("Terraform 1.11"), "{}", d.summary);
    let path = cloudcode_tfplugin::framework::AttrPath::from_proto(d.attribute.as_ref().unwrap());
    assert_eq!(path.to_string(), "secret_wo");

    let new = c
        .validate_resource_config(pb::validate_resource_config::Request {
            type_name: "test_thing".into(),
            config: dv(&config),
            client_capabilities: Some(pb::ClientCapabilities {
                deferral_allowed: false,
                write_only_attributes_allowed: true,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(new.diagnostics.is_empty(), "{:?}", new.diagnostics);
}

#[tokio::test]
async fn stop_provider_cancels_an_in_flight_apply() {
    let mut c = client().await;
    let mut c2 = c.clone();
    let planned = obj("wait", None, Value::Unknown, Value::Unknown);
    let apply = tokio::spawn(async move {
        c2.apply_resource_change(pb::apply_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: dv(&Value::Null),
            planned_state: dv(&planned),
            config: dv(&obj("wait", None, Value::Null, Value::Null)),
            ..Default::default()
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.stop_provider(pb::stop_provider::Request {})
        .await
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), apply)
        .await
        .expect("apply did not stop")
        .unwrap()
        .unwrap()
        .into_inner();
    assert!(resp.diagnostics.iter().any(|d| d.summary == "Cancelled"));
    let state = decode_msgpack(&resp.new_state.unwrap().msgpack, &ty()).unwrap();
    assert!(state.is_null(), "a cancelled create must not leave state");
}

#[tokio::test]
async fn plan_and_apply_keep_write_only_values_out_and_follow_computed_rules() {
    let mut c = client().await;
    let config = obj("a", Some("hunter2hunter2"), Value::Null, Value::Null);
    // Create: computed attributes unknown, the write-only value null.
    let plan = c
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: dv(&Value::Null),
            proposed_new_state: dv(&config),
            config: dv(&config),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let planned = decode_msgpack(&plan.planned_state.unwrap().msgpack, &ty()).unwrap();
    assert_eq!(planned.get_attr("secret_wo"), Some(&Value::Null));
    assert_eq!(planned.get_attr("id"), Some(&Value::Unknown));

    let applied = c
        .apply_resource_change(pb::apply_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: dv(&Value::Null),
            planned_state: dv(&planned),
            config: dv(&config),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let state = decode_msgpack(&applied.new_state.unwrap().msgpack, &ty()).unwrap();
    assert_eq!(
        state.get_attr("secret_wo"),
        Some(&Value::Null),
        "write-only value reached state"
    );
    assert_eq!(state.get_attr("id").and_then(Value::as_str), Some("id-a"));

    // Update of a user-set attribute: `id` keeps its value (use_state_for_unknown), `stamp` becomes unknown.
    let changed = obj(
        "b",
        None,
        state.get_attr("id").cloned().unwrap(),
        state.get_attr("stamp").cloned().unwrap(),
    );
    let plan = c
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: dv(&state),
            proposed_new_state: dv(&changed),
            config: dv(&obj("b", None, Value::Null, Value::Null)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let planned = decode_msgpack(&plan.planned_state.unwrap().msgpack, &ty()).unwrap();
    assert_eq!(planned.get_attr("id").and_then(Value::as_str), Some("id-a"));
    assert_eq!(planned.get_attr("stamp"), Some(&Value::Unknown));

    // No change: the plan equals the prior state.
    let same = c
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: dv(&state),
            proposed_new_state: dv(&state),
            config: dv(&obj("a", None, Value::Null, Value::Null)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let planned = decode_msgpack(&same.planned_state.unwrap().msgpack, &ty()).unwrap();
    assert_eq!(planned, state);
}
