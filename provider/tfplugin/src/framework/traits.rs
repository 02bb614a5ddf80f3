//! What a provider author implements: [`Provider`], [`Resource`], [`DataSource`] and [`Function`], each seeing
//! typed structs, a diagnostics sink and a cancellation token — never protocol messages.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::framework::diag::{AttrPath, Diagnostics};
use crate::framework::schema::Schema;
use crate::value::{Type, Value};

/// Per-call context.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    /// Cancelled when Terraform sends `StopProvider` (Ctrl-C): long operations must stop promptly.
    pub cancel: CancellationToken,
}

/// A typed value plus the names of its top-level attributes that were not (wholly) known.
#[derive(Debug, Clone, Default)]
pub struct Typed<S> {
    pub value: S,
    pub unknown: BTreeSet<String>,
}

impl<S> Typed<S> {
    pub fn is_unknown(&self, attr: &str) -> bool {
        self.unknown.contains(attr)
    }
}

/// Provider-private data stored beside the state (never shown to users; not for secrets either, since it
/// is written to the state file).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Private(pub serde_json::Map<String, serde_json::Value>);

impl Private {
    pub(crate) fn from_bytes(b: &[u8]) -> Self {
        serde_json::from_slice(b).map(Private).unwrap_or_default()
    }
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        if self.0.is_empty() {
            Vec::new()
        } else {
            serde_json::to_vec(&self.0).unwrap_or_default()
        }
    }
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.0
            .get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
    pub fn set<T: Serialize>(&mut self, key: &str, value: &T) {
        if let Ok(v) = serde_json::to_value(value) {
            self.0.insert(key.to_string(), v);
        }
    }
    pub fn remove(&mut self, key: &str) {
        self.0.remove(key);
    }
}

/// Planning input and output. `planned` starts as Terraform's proposal with defaults applied, write-only
/// attributes nulled and computed attributes marked unknown where they may change; the resource refines it.
pub struct PlanRequest<S> {
    pub config: Typed<S>,
    pub prior: Option<S>,
    pub planned: Typed<S>,
    pub private: Private,
    /// Extra attributes whose change replaces the resource (beyond the schema's `requires_replace`).
    pub requires_replace: Vec<AttrPath>,
    pub ctx: Ctx,
}

/// Create or update. `config` carries write-only values (they are null in `planned` and in state).
pub struct ApplyRequest<S> {
    pub config: S,
    pub prior: Option<S>,
    pub planned: S,
    pub private: Private,
    pub ctx: Ctx,
}

pub struct ReadRequest<S> {
    pub state: S,
    pub private: Private,
    pub ctx: Ctx,
}

pub struct DeleteRequest<S> {
    pub prior: S,
    pub private: Private,
    pub ctx: Ctx,
}

/// A managed resource. Its state struct is read with [`crate::framework::typed::from_value`] semantics:
/// unknown and null attributes are absent, so use `Option` and `#[serde(default)]`.
#[async_trait]
pub trait Resource: Send + Sync + 'static {
    type State: Serialize + DeserializeOwned + Default + Clone + Send + Sync;

    /// The full type name, e.g. `cloudcode_stack`.
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;

    /// Checks across attributes; each attribute's own validators already ran.
    async fn validate(&self, _config: &Typed<Self::State>, _diags: &mut Diagnostics) {}
    async fn plan(&self, _req: &mut PlanRequest<Self::State>, _diags: &mut Diagnostics) {}
    async fn create(
        &self,
        req: &mut ApplyRequest<Self::State>,
        diags: &mut Diagnostics,
    ) -> Option<Self::State>;
    /// Returns `None` when the object no longer exists.
    async fn read(
        &self,
        req: &mut ReadRequest<Self::State>,
        diags: &mut Diagnostics,
    ) -> Option<Self::State>;
    async fn update(
        &self,
        req: &mut ApplyRequest<Self::State>,
        diags: &mut Diagnostics,
    ) -> Option<Self::State>;
    async fn delete(&self, req: &mut DeleteRequest<Self::State>, diags: &mut Diagnostics);

    /// Builds the state for `terraform import`; Terraform reads it right after.
    async fn import(
        &self,
        _id: &str,
        _ctx: &Ctx,
        diags: &mut Diagnostics,
    ) -> Option<(Self::State, Private)> {
        diags.error(
            format!("{} cannot be imported", self.type_name()),
            "This resource type does not support import.",
        );
        None
    }

    /// Rewrites state stored by an older schema version (JSON as stored) into the current shape.
    async fn upgrade(
        &self,
        from_version: i64,
        _raw: serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<serde_json::Value> {
        diags.error(
            "Unsupported state version",
            format!(
                "{} has no upgrade from schema version {from_version}.",
                self.type_name()
            ),
        );
        None
    }
}

/// A data source.
#[async_trait]
pub trait DataSource: Send + Sync + 'static {
    type State: Serialize + DeserializeOwned + Default + Clone + Send + Sync;
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    async fn validate(&self, _config: &Typed<Self::State>, _diags: &mut Diagnostics) {}
    async fn read(
        &self,
        config: Self::State,
        ctx: &Ctx,
        diags: &mut Diagnostics,
    ) -> Option<Self::State>;
}

/// One parameter of a provider-defined function.
#[derive(Debug, Clone)]
pub struct Parameter {
    pub name: &'static str,
    pub ty: Type,
    pub description: &'static str,
}

/// A function failure; `argument` names the offending argument (0-based).
#[derive(Debug, Clone)]
pub struct FunctionError {
    pub text: String,
    pub argument: Option<i64>,
}

/// A pure provider-defined function (`provider::<name>::<function>(...)`).
pub trait Function: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn summary(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn parameters(&self) -> Vec<Parameter>;
    /// A trailing parameter that takes zero or more further arguments (after those of `parameters`).
    fn variadic(&self) -> Option<Parameter> {
        None
    }
    fn return_type(&self) -> Type;
    /// Arguments are known and non-null (the framework refuses others before calling).
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError>;
}

/// The provider itself: its configuration block and what it offers.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    type Config: DeserializeOwned + Default + Send + Sync;
    /// The provider's local name, e.g. `cloudcode`.
    fn name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    async fn validate(&self, _config: &Typed<Self::Config>, _diags: &mut Diagnostics) {}
    async fn configure(&self, config: Typed<Self::Config>, diags: &mut Diagnostics);
    fn resources(&self) -> Vec<Arc<dyn crate::framework::erased::AnyResource>>;
    fn data_sources(&self) -> Vec<Arc<dyn crate::framework::erased::AnyDataSource>> {
        Vec::new()
    }
    fn functions(&self) -> Vec<Arc<dyn Function>> {
        Vec::new()
    }
}
