//! A schema-only stand-in for the official `aliyun/alicloud` provider: it serves the real provider's schema
//! (`../shared/alicloud-schema.json`, the JSON format of `terraform providers schema -json`) over the
//! `tfplugin6.Provider` service and answers schema, metadata, validation and configuration calls with no
//! diagnostics, and hands stored state back unchanged (UpgradeResourceState, which `tofu test` calls for mocked
//! resources). Everything else stays UNIMPLEMENTED: `validate` needs only these calls, and under `terraform
//! test`/`tofu test` `mock_provider "alicloud"` supplies every value. `subnet_id` and `io_optimized` of
//! `alicloud_instance` are dropped, as in the real provider (they were removed there).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cloudcode_tfplugin::proto::tfplugin6 as pb;
use serde_json::Value as Json;
use tonic::{Request, Response, Status};

/// Environment variable naming the schema file; otherwise [`default_schema_path`] is used.
pub const SCHEMA_ENV: &str = "CLOUDCODE_ALICLOUD_SCHEMA";
/// The provider address whose schema the file must hold.
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/aliyun/alicloud";
/// The provider version the schema was taken from (the harness installs the stub as this version).
pub const VERSION: &str = "1.289.0";
/// Attributes removed from the real provider that the schema file still lists.
const REMOVED: &[(&str, &str)] = &[
    ("alicloud_instance", "subnet_id"),
    ("alicloud_instance", "io_optimized"),
];

/// Why the schema could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StubError {
    #[error("cannot read the alicloud schema {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the alicloud schema is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the alicloud schema has no {0}")]
    Missing(String),
    #[error("{0}: unsupported schema element")]
    Unsupported(String),
}

/// `shared/alicloud-schema.json` beside the repository (CI clones the repository with `shared/` next to it).
pub fn default_schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/alicloud-schema.json")
}

/// The schema file: `$CLOUDCODE_ALICLOUD_SCHEMA` or [`default_schema_path`].
pub fn schema_path() -> PathBuf {
    std::env::var_os(SCHEMA_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(default_schema_path)
}

/// The provider's schemas, converted once at start-up.
#[derive(Debug, Clone)]
pub struct AlicloudStub {
    provider: pb::Schema,
    resources: BTreeMap<String, pb::Schema>,
    data_sources: BTreeMap<String, pb::Schema>,
}

impl AlicloudStub {
    /// Loads and converts the schema file at `path`.
    pub fn load(path: &Path) -> Result<Self, StubError> {
        let text = std::fs::read_to_string(path).map_err(|source| StubError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&serde_json::from_str(&text)?)
    }

    /// Converts a `terraform providers schema -json` document holding [`PROVIDER_ADDRESS`].
    pub fn from_json(doc: &Json) -> Result<Self, StubError> {
        let p = doc
            .get("provider_schemas")
            .and_then(|s| s.get(PROVIDER_ADDRESS))
            .ok_or_else(|| {
                StubError::Missing(format!("provider_schemas.\"{PROVIDER_ADDRESS}\""))
            })?;
        let provider = schema(
            p.get("provider")
                .ok_or_else(|| StubError::Missing("provider".into()))?,
            "provider",
            &[],
        )?;
        let section = |key: &str| -> Result<BTreeMap<String, pb::Schema>, StubError> {
            let Some(map) = p.get(key).and_then(Json::as_object) else {
                return Ok(BTreeMap::new());
            };
            map.iter()
                .map(|(name, s)| {
                    let drop: Vec<&str> = REMOVED
                        .iter()
                        .filter(|(t, _)| t == name)
                        .map(|(_, a)| *a)
                        .collect();
                    Ok((name.clone(), schema(s, name, &drop)?))
                })
                .collect()
        };
        Ok(Self {
            provider,
            resources: section("resource_schemas")?,
            data_sources: section("data_source_schemas")?,
        })
    }

    /// Names of the resource types served.
    pub fn resource_types(&self) -> impl Iterator<Item = &str> {
        self.resources.keys().map(String::as_str)
    }

    /// The converted schema of one resource type.
    pub fn resource_schema(&self, name: &str) -> Option<&pb::Schema> {
        self.resources.get(name)
    }
}

fn schema(s: &Json, at: &str, drop: &[&str]) -> Result<pb::Schema, StubError> {
    let block = s
        .get("block")
        .ok_or_else(|| StubError::Missing(format!("{at}.block")))?;
    Ok(pb::Schema {
        version: s.get("version").and_then(Json::as_i64).unwrap_or(0),
        block: Some(convert_block(block, at, drop)?),
    })
}

fn flag(v: &Json, key: &str) -> bool {
    v.get(key).and_then(Json::as_bool).unwrap_or(false)
}

fn text(v: &Json, key: &str) -> String {
    v.get(key)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}

fn description_kind(v: &Json) -> i32 {
    match v.get("description_kind").and_then(Json::as_str) {
        Some("markdown") => pb::StringKind::Markdown as i32,
        _ => pb::StringKind::Plain as i32,
    }
}

fn convert_block(b: &Json, at: &str, drop: &[&str]) -> Result<pb::schema::Block, StubError> {
    let mut attributes = Vec::new();
    if let Some(attrs) = b.get("attributes").and_then(Json::as_object) {
        for (name, a) in attrs {
            if drop.contains(&name.as_str()) {
                continue;
            }
            let path = format!("{at}.{name}");
            let ty = a.get("type").ok_or_else(|| {
                StubError::Unsupported(format!("{path} (no `type`; nested attributes)"))
            })?;
            attributes.push(pb::schema::Attribute {
                name: name.clone(),
                r#type: serde_json::to_vec(ty)?,
                nested_type: None,
                description: text(a, "description"),
                required: flag(a, "required"),
                optional: flag(a, "optional"),
                computed: flag(a, "computed"),
                sensitive: flag(a, "sensitive"),
                description_kind: description_kind(a),
                deprecated: flag(a, "deprecated"),
                write_only: flag(a, "write_only"),
            });
        }
    }
    let mut block_types = Vec::new();
    if let Some(blocks) = b.get("block_types").and_then(Json::as_object) {
        for (name, nb) in blocks {
            let path = format!("{at}.{name}");
            use pb::schema::nested_block::NestingMode as N;
            let nesting = match nb.get("nesting_mode").and_then(Json::as_str) {
                Some("single") => N::Single,
                Some("list") => N::List,
                Some("set") => N::Set,
                Some("map") => N::Map,
                Some("group") => N::Group,
                other => {
                    return Err(StubError::Unsupported(format!(
                        "{path} nesting_mode {other:?}"
                    )))
                }
            };
            let inner = nb
                .get("block")
                .ok_or_else(|| StubError::Missing(format!("{path}.block")))?;
            block_types.push(pb::schema::NestedBlock {
                type_name: name.clone(),
                block: Some(convert_block(inner, &path, &[])?),
                nesting: nesting as i32,
                min_items: nb.get("min_items").and_then(Json::as_i64).unwrap_or(0),
                max_items: nb.get("max_items").and_then(Json::as_i64).unwrap_or(0),
            });
        }
    }
    Ok(pb::schema::Block {
        version: 0,
        attributes,
        block_types,
        description: text(b, "description"),
        description_kind: description_kind(b),
        deprecated: flag(b, "deprecated"),
    })
}

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: false,
        get_provider_schema_optional: false,
        move_resource_state: false,
    }
}

type Rpc<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::provider_server::Provider for AlicloudStub {
    async fn get_metadata(
        &self,
        _: Request<pb::get_metadata::Request>,
    ) -> Rpc<pb::get_metadata::Response> {
        use pb::get_metadata as m;
        Ok(Response::new(m::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: Vec::new(),
            data_sources: self
                .data_sources
                .keys()
                .map(|n| m::DataSourceMetadata {
                    type_name: n.clone(),
                })
                .collect(),
            resources: self
                .resources
                .keys()
                .map(|n| m::ResourceMetadata {
                    type_name: n.clone(),
                })
                .collect(),
            functions: Vec::new(),
            ephemeral_resources: Vec::new(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<pb::get_provider_schema::Request>,
    ) -> Rpc<pb::get_provider_schema::Response> {
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(self.provider.clone()),
            resource_schemas: self.resources.clone().into_iter().collect(),
            data_source_schemas: self.data_sources.clone().into_iter().collect(),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(capabilities()),
            functions: Default::default(),
            ephemeral_resource_schemas: Default::default(),
        }))
    }

    async fn validate_provider_config(
        &self,
        _: Request<pb::validate_provider_config::Request>,
    ) -> Rpc<pb::validate_provider_config::Response> {
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: Vec::new(),
        }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Rpc<pb::validate_resource_config::Response> {
        let name = &req.get_ref().type_name;
        if !self.resources.contains_key(name) {
            return Err(Status::not_found(format!("unknown resource type {name}")));
        }
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: Vec::new(),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> Rpc<pb::validate_data_resource_config::Response> {
        let name = &req.get_ref().type_name;
        if !self.data_sources.contains_key(name) {
            return Err(Status::not_found(format!("unknown data source {name}")));
        }
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: Vec::new(),
        }))
    }

    async fn configure_provider(
        &self,
        _: Request<pb::configure_provider::Request>,
    ) -> Rpc<pb::configure_provider::Response> {
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: Vec::new(),
        }))
    }

    /// Stored state is already at the schema's version: handed back as it is (JSON). `tofu test` asks for
    /// this even for resources a `mock_provider` made; Terraform's does not.
    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Rpc<pb::upgrade_resource_state::Response> {
        let req = req.into_inner();
        if !self.resources.contains_key(&req.type_name) {
            return Err(Status::not_found(format!(
                "unknown resource {}",
                req.type_name
            )));
        }
        let json = req.raw_state.map(|r| r.json).unwrap_or_default();
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state: Some(pb::DynamicValue {
                msgpack: Vec::new(),
                json,
            }),
            diagnostics: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr<'a>(s: &'a pb::Schema, name: &str) -> Option<&'a pb::schema::Attribute> {
        s.block.as_ref()?.attributes.iter().find(|a| a.name == name)
    }

    #[test]
    fn shared_schema_converts_and_drops_removed_instance_arguments() {
        let stub = AlicloudStub::load(&schema_path()).unwrap();
        let instance = stub.resource_schema("alicloud_instance").unwrap();
        assert!(attr(instance, "subnet_id").is_none());
        assert!(attr(instance, "io_optimized").is_none());
        let status = attr(instance, "status").unwrap();
        assert!(status.optional && status.computed && !status.required);
        assert_eq!(status.r#type, br#""string""#);
        let password = attr(instance, "password").unwrap();
        assert!(password.sensitive);
        let sg = attr(instance, "security_groups").unwrap();
        assert_eq!(sg.r#type, br#"["set","string"]"#);
        let disks = instance
            .block
            .as_ref()
            .unwrap()
            .block_types
            .iter()
            .find(|b| b.type_name == "data_disks")
            .unwrap();
        assert_eq!(
            disks.nesting,
            pb::schema::nested_block::NestingMode::List as i32
        );
        assert_eq!(disks.max_items, 16);
        // Only the instance loses them: other types keep every attribute of the file.
        assert!(stub
            .resource_types()
            .any(|t| t == "alicloud_eip_association"));
    }

    #[test]
    fn unknown_nesting_mode_is_reported_with_its_path() {
        let doc = serde_json::json!({"provider_schemas": {PROVIDER_ADDRESS: {
            "provider": {"block": {}},
            "resource_schemas": {"x_thing": {"version": 0, "block": {"block_types": {
                "odd": {"nesting_mode": "tuple", "block": {}}}}}}
        }}});
        let err = AlicloudStub::from_json(&doc).unwrap_err().to_string();
        assert!(err.contains("x_thing.odd"), "{err}");
    }

    #[test]
    fn missing_provider_address_is_an_error_not_a_panic() {
        let err = AlicloudStub::from_json(&serde_json::json!({"provider_schemas": {}}))
            .unwrap_err()
            .to_string();
        assert!(err.contains(PROVIDER_ADDRESS), "{err}");
    }
}
