//! The gRPC services: `tfplugin6.Provider` translated onto the framework traits, go-plugin's
//! `GRPCController.Shutdown`, and [`serve`], which runs the whole plugin life cycle.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::framework::diag::{AttrPath, Diagnostics};
use crate::framework::erased::{AnyDataSource, AnyResource};
use crate::framework::traits::{Ctx, Function, Parameter, Private, Provider};
use crate::handshake::{handshake_line, HandshakeEnv, HandshakeError};
use crate::proto::plugin;
use crate::proto::tfplugin6 as pb;
use crate::tls::{parse_pem_cert, server_config, ServerIdentity, TlsError};
use crate::value::{decode_json, decode_msgpack, encode_msgpack, Type, Value};

/// Why the plugin could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Runs the provider as a Terraform plugin until Terraform shuts it down.
pub async fn serve<P: Provider>(provider: P) -> Result<(), ServeError> {
    let name = provider.name();
    serve_service(name, PluginServer::new(provider)).await
}

/// Serves any `tfplugin6.Provider` implementation (e.g. a schema-only test stub) with the same handshake,
/// pinned mTLS, controller and signal handling as [`serve`].
pub async fn serve_service<S: pb::provider_server::Provider>(
    name: &str,
    service: S,
) -> Result<(), ServeError> {
    let hs = HandshakeEnv::from_env(name, |k| std::env::var(k).ok())?;
    let pinned = parse_pem_cert(&hs.client_cert_pem)?;
    let identity = ServerIdentity::generate()?;
    let tls = server_config(&identity, pinned)?;
    let listener = hs.bind().await?;
    let addr = listener.local_addr()?;

    // Terraform forwards Ctrl-C to the whole process group, then sends StopProvider: the signal itself must
    // not kill us in the middle of an apply.
    tokio::spawn(async {
        while tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("interrupt received; waiting for Terraform's StopProvider");
        }
    });

    let shutdown = Arc::new(Notify::new());
    let controller = Controller {
        shutdown: shutdown.clone(),
    };
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", handshake_line(addr, &identity.cert_der))?;
        out.flush()?;
    }
    tracing::debug!("serving plugin protocol 6 on {addr}");
    let stop = shutdown.clone();
    tonic::transport::Server::builder()
        .add_service(pb::provider_server::ProviderServer::new(service))
        .add_service(plugin::grpc_controller_server::GrpcControllerServer::new(
            controller,
        ))
        .serve_with_incoming_shutdown(crate::transport::incoming(listener, tls), async move {
            stop.notified().await
        })
        .await?;
    Ok(())
}

struct Controller {
    shutdown: Arc<Notify>,
}

#[tonic::async_trait]
impl plugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _: Request<plugin::Empty>) -> Result<Response<plugin::Empty>, Status> {
        tracing::debug!("shutdown requested by Terraform");
        self.shutdown.notify_one();
        Ok(Response::new(plugin::Empty {}))
    }
}

/// The provider as a `tfplugin6.Provider` service.
pub struct PluginServer<P: Provider> {
    provider: Arc<P>,
    resources: BTreeMap<&'static str, Arc<dyn AnyResource>>,
    data_sources: BTreeMap<&'static str, Arc<dyn AnyDataSource>>,
    functions: BTreeMap<&'static str, Arc<dyn Function>>,
    stop: CancellationToken,
}

impl<P: Provider> PluginServer<P> {
    pub fn new(provider: P) -> Self {
        let resources = provider
            .resources()
            .into_iter()
            .map(|r| (r.type_name(), r))
            .collect();
        let data_sources = provider
            .data_sources()
            .into_iter()
            .map(|d| (d.type_name(), d))
            .collect();
        let functions = provider
            .functions()
            .into_iter()
            .map(|f| (f.name(), f))
            .collect();
        Self {
            provider: Arc::new(provider),
            resources,
            data_sources,
            functions,
            stop: CancellationToken::new(),
        }
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            cancel: self.stop.child_token(),
        }
    }

    fn resource(&self, name: &str) -> Result<&Arc<dyn AnyResource>, Status> {
        self.resources
            .get(name)
            .ok_or_else(|| Status::not_found(format!("unknown resource type {name}")))
    }

    fn data_source(&self, name: &str) -> Result<&Arc<dyn AnyDataSource>, Status> {
        self.data_sources
            .get(name)
            .ok_or_else(|| Status::not_found(format!("unknown data source {name}")))
    }
}

/// Decodes a request value (absent or empty means null).
fn decode(dv: Option<&pb::DynamicValue>, ty: &Type, diags: &mut Diagnostics) -> Value {
    let Some(dv) = dv else { return Value::Null };
    let result = if !dv.msgpack.is_empty() {
        decode_msgpack(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        decode_json(&dv.json, ty)
    } else {
        return Value::Null;
    };
    result.unwrap_or_else(|e| {
        diags.error("Could not decode a value sent by Terraform", e.to_string());
        Value::Null
    })
}

fn encode(v: &Value, ty: &Type, diags: &mut Diagnostics) -> Option<pb::DynamicValue> {
    match encode_msgpack(v, ty) {
        Ok(msgpack) => Some(pb::DynamicValue {
            msgpack,
            json: Vec::new(),
        }),
        Err(e) => {
            diags.error("Could not encode a value for Terraform", e.to_string());
            None
        }
    }
}

/// Runs provider code, turning a panic into an error diagnostic instead of a dead connection.
async fn guarded<T>(
    diags: &mut Diagnostics,
    fallback: T,
    fut: impl std::future::Future<Output = T>,
) -> T {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(v) => v,
        Err(_) => {
            diags.error(
                "The cloudcode provider hit an internal error",
                "This is a bug in the provider; please report it with the log (TF_LOG_PROVIDER=debug).",
            );
            fallback
        }
    }
}

fn write_only_allowed(c: Option<&pb::ClientCapabilities>) -> bool {
    c.is_some_and(|c| c.write_only_attributes_allowed)
}

fn function_proto(f: &dyn Function) -> pb::Function {
    let parameter = |p: Parameter| pb::function::Parameter {
        name: p.name.to_string(),
        r#type: p.ty.to_json(),
        allow_null_value: false,
        allow_unknown_values: false,
        description: p.description.to_string(),
        description_kind: pb::StringKind::Markdown as i32,
    };
    pb::Function {
        parameters: f.parameters().into_iter().map(parameter).collect(),
        variadic_parameter: f.variadic().map(parameter),
        r#return: Some(pb::function::Return {
            r#type: f.return_type().to_json(),
        }),
        summary: f.summary().to_string(),
        description: f.description().to_string(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecation_message: String::new(),
    }
}

type Rpc<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl<P: Provider> pb::provider_server::Provider for PluginServer<P> {
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
                    type_name: n.to_string(),
                })
                .collect(),
            resources: self
                .resources
                .keys()
                .map(|n| m::ResourceMetadata {
                    type_name: n.to_string(),
                })
                .collect(),
            functions: self
                .functions
                .keys()
                .map(|n| m::FunctionMetadata {
                    name: n.to_string(),
                })
                .collect(),
            ephemeral_resources: Vec::new(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<pb::get_provider_schema::Request>,
    ) -> Rpc<pb::get_provider_schema::Response> {
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(self.provider.schema().to_proto()),
            resource_schemas: self
                .resources
                .iter()
                .map(|(n, r)| (n.to_string(), r.schema().to_proto()))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(n, d)| (n.to_string(), d.schema().to_proto()))
                .collect(),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(capabilities()),
            functions: self
                .functions
                .iter()
                .map(|(n, f)| (n.to_string(), function_proto(f.as_ref())))
                .collect(),
            ephemeral_resource_schemas: Default::default(),
        }))
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> Rpc<pb::validate_provider_config::Response> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        let schema = self.provider.schema();
        let ty = schema.value_type();
        let config = decode(req.config.as_ref(), &ty, &mut diags);
        if !diags.has_errors() {
            schema
                .block
                .validate_value(&config, &AttrPath::default(), &mut diags);
        }
        if !diags.has_errors() {
            let typed = crate::framework::erased::typed::<P::Config>(
                &config,
                &ty,
                "provider configuration",
                &mut diags,
            );
            let mut inner = Diagnostics::new();
            guarded(&mut diags, (), self.provider.validate(&typed, &mut inner)).await;
            diags.extend(inner);
        }
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: diags.into_proto(),
        }))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Rpc<pb::configure_provider::Response> {
        let req = req.into_inner();
        tracing::debug!(terraform_version = %req.terraform_version, "configure provider");
        let mut diags = Diagnostics::new();
        let ty = self.provider.schema().value_type();
        let config = decode(req.config.as_ref(), &ty, &mut diags);
        if !diags.has_errors() {
            let typed = crate::framework::erased::typed::<P::Config>(
                &config,
                &ty,
                "provider configuration",
                &mut diags,
            );
            let mut inner = Diagnostics::new();
            guarded(&mut diags, (), self.provider.configure(typed, &mut inner)).await;
            diags.extend(inner);
        }
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: diags.into_proto(),
        }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Rpc<pb::validate_resource_config::Response> {
        let req = req.into_inner();
        let r = self.resource(&req.type_name)?;
        let mut diags = Diagnostics::new();
        let config = decode(req.config.as_ref(), &r.schema().value_type(), &mut diags);
        if !diags.has_errors() {
            let allowed = write_only_allowed(req.client_capabilities.as_ref());
            let mut inner = Diagnostics::new();
            guarded(&mut diags, (), r.validate(&config, allowed, &mut inner)).await;
            diags.extend(inner);
        }
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: diags.into_proto(),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> Rpc<pb::validate_data_resource_config::Response> {
        let req = req.into_inner();
        let d = self.data_source(&req.type_name)?;
        let mut diags = Diagnostics::new();
        let config = decode(req.config.as_ref(), &d.schema().value_type(), &mut diags);
        if !diags.has_errors() {
            let mut inner = Diagnostics::new();
            guarded(&mut diags, (), d.validate(&config, &mut inner)).await;
            diags.extend(inner);
        }
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: diags.into_proto(),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Rpc<pb::upgrade_resource_state::Response> {
        let req = req.into_inner();
        let r = self.resource(&req.type_name)?;
        let ty = r.schema().value_type();
        let mut diags = Diagnostics::new();
        let raw: serde_json::Value = match req.raw_state.as_ref().map(|s| s.json.as_slice()) {
            Some(b) if !b.is_empty() => serde_json::from_slice(b).unwrap_or_else(|e| {
                diags.error("Stored state is not valid JSON", e.to_string());
                serde_json::Value::Null
            }),
            _ => {
                diags.error(
                    "Stored state has no JSON form",
                    "Flatmap state (Terraform < 0.12) is not supported.",
                );
                serde_json::Value::Null
            }
        };
        let mut upgraded = None;
        if !diags.has_errors() {
            let mut inner = Diagnostics::new();
            let v = guarded(&mut diags, None, r.upgrade(req.version, raw, &mut inner)).await;
            diags.extend(inner);
            upgraded = v.and_then(|v| encode(&v, &ty, &mut diags));
        }
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state: upgraded,
            diagnostics: diags.into_proto(),
        }))
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Rpc<pb::read_resource::Response> {
        let req = req.into_inner();
        let r = self.resource(&req.type_name)?;
        let ty = r.schema().value_type();
        let mut diags = Diagnostics::new();
        let current = decode(req.current_state.as_ref(), &ty, &mut diags);
        let private = Private::from_bytes(&req.private);
        let (state, private) = if diags.has_errors() {
            (current, private)
        } else {
            let mut inner = Diagnostics::new();
            let fallback = (current.clone(), private.clone());
            let out = guarded(
                &mut diags,
                fallback,
                r.read(&current, private, self.ctx(), &mut inner),
            )
            .await;
            diags.extend(inner);
            out
        };
        Ok(Response::new(pb::read_resource::Response {
            new_state: encode(&state, &ty, &mut diags),
            private: private.to_bytes(),
            diagnostics: diags.into_proto(),
            deferred: None,
        }))
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Rpc<pb::plan_resource_change::Response> {
        let req = req.into_inner();
        let r = self.resource(&req.type_name)?;
        let ty = r.schema().value_type();
        let mut diags = Diagnostics::new();
        let prior = decode(req.prior_state.as_ref(), &ty, &mut diags);
        let proposed = decode(req.proposed_new_state.as_ref(), &ty, &mut diags);
        let config = decode(req.config.as_ref(), &ty, &mut diags);
        let private = Private::from_bytes(&req.prior_private);
        let mut response = pb::plan_resource_change::Response::default();
        if !diags.has_errors() {
            let mut inner = Diagnostics::new();
            let planned = guarded(
                &mut diags,
                None,
                r.plan(&prior, &proposed, &config, private, self.ctx(), &mut inner)
                    .map(Some),
            )
            .await;
            diags.extend(inner);
            if let Some(p) = planned {
                response.planned_state = encode(&p.planned, &ty, &mut diags);
                response.requires_replace =
                    p.requires_replace.iter().map(AttrPath::to_proto).collect();
                response.planned_private = p.private.to_bytes();
            }
        }
        response.diagnostics = diags.into_proto();
        Ok(Response::new(response))
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Rpc<pb::apply_resource_change::Response> {
        let req = req.into_inner();
        let r = self.resource(&req.type_name)?;
        let ty = r.schema().value_type();
        let mut diags = Diagnostics::new();
        let prior = decode(req.prior_state.as_ref(), &ty, &mut diags);
        let planned = decode(req.planned_state.as_ref(), &ty, &mut diags);
        let config = decode(req.config.as_ref(), &ty, &mut diags);
        let private = Private::from_bytes(&req.planned_private);
        let (state, private) = if diags.has_errors() {
            (prior, private)
        } else {
            let mut inner = Diagnostics::new();
            let fallback = (prior.clone(), private.clone());
            let out = guarded(
                &mut diags,
                fallback,
                r.apply(&prior, &planned, &config, private, self.ctx(), &mut inner),
            )
            .await;
            diags.extend(inner);
            out
        };
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state: encode(&state, &ty, &mut diags),
            private: private.to_bytes(),
            diagnostics: diags.into_proto(),
            legacy_type_system: false,
        }))
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Rpc<pb::import_resource_state::Response> {
        let req = req.into_inner();
        let r = self.resource(&req.type_name)?;
        let ty = r.schema().value_type();
        let mut diags = Diagnostics::new();
        let mut inner = Diagnostics::new();
        let imported = guarded(&mut diags, None, r.import(&req.id, self.ctx(), &mut inner)).await;
        diags.extend(inner);
        let imported_resources = imported
            .and_then(|(v, private)| {
                encode(&v, &ty, &mut diags).map(|state| {
                    pb::import_resource_state::ImportedResource {
                        type_name: req.type_name.clone(),
                        state: Some(state),
                        private: private.to_bytes(),
                    }
                })
            })
            .into_iter()
            .collect();
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources,
            diagnostics: diags.into_proto(),
            deferred: None,
        }))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Rpc<pb::read_data_source::Response> {
        let req = req.into_inner();
        let d = self.data_source(&req.type_name)?;
        let ty = d.schema().value_type();
        let mut diags = Diagnostics::new();
        let config = decode(req.config.as_ref(), &ty, &mut diags);
        let mut state = Value::Null;
        if !diags.has_errors() {
            let mut inner = Diagnostics::new();
            state = guarded(
                &mut diags,
                Value::Null,
                d.read(&config, self.ctx(), &mut inner),
            )
            .await;
            diags.extend(inner);
        }
        Ok(Response::new(pb::read_data_source::Response {
            state: encode(&state, &ty, &mut diags),
            diagnostics: diags.into_proto(),
            deferred: None,
        }))
    }

    async fn get_functions(
        &self,
        _: Request<pb::get_functions::Request>,
    ) -> Rpc<pb::get_functions::Response> {
        Ok(Response::new(pb::get_functions::Response {
            functions: self
                .functions
                .iter()
                .map(|(n, f)| (n.to_string(), function_proto(f.as_ref())))
                .collect(),
            diagnostics: Vec::new(),
        }))
    }

    async fn call_function(
        &self,
        req: Request<pb::call_function::Request>,
    ) -> Rpc<pb::call_function::Response> {
        let req = req.into_inner();
        let fail = |text: String, arg: Option<i64>| {
            Ok(Response::new(pb::call_function::Response {
                result: None,
                error: Some(pb::FunctionError {
                    text,
                    function_argument: arg,
                }),
            }))
        };
        let Some(f) = self.functions.get(req.name.as_str()) else {
            return fail(format!("unknown function {}", req.name), None);
        };
        let params = f.parameters();
        let variadic = f.variadic();
        let count_ok = match variadic {
            None => req.arguments.len() == params.len(),
            Some(_) => req.arguments.len() >= params.len(),
        };
        if !count_ok {
            return fail(
                format!(
                    "{} takes {}{} argument(s), got {}",
                    f.name(),
                    if variadic.is_some() { "at least " } else { "" },
                    params.len(),
                    req.arguments.len()
                ),
                None,
            );
        }
        let mut args = Vec::with_capacity(req.arguments.len());
        let each_param = params
            .iter()
            .chain(std::iter::repeat(variadic.as_ref()).map_while(|v| v));
        for (i, (dv, p)) in req.arguments.iter().zip(each_param).enumerate() {
            let mut diags = Diagnostics::new();
            let v = decode(Some(dv), &p.ty, &mut diags);
            if diags.has_errors() || v.is_null() || !v.is_wholly_known() {
                return fail(
                    format!("argument `{}` must be a known, non-null value", p.name),
                    Some(i as i64),
                );
            }
            args.push(v);
        }
        let ret = f.return_type();
        let mut diags = Diagnostics::new();
        let result = guarded(&mut diags, None, async { Some(f.call(&args)) }).await;
        match result {
            Some(Ok(v)) => {
                let result = encode(&v, &ret, &mut diags);
                if diags.has_errors() {
                    return fail(
                        format!("{} produced a value of the wrong type", f.name()),
                        None,
                    );
                }
                Ok(Response::new(pb::call_function::Response {
                    result,
                    error: None,
                }))
            }
            Some(Err(e)) => fail(e.text, e.argument),
            None => fail(format!("{} failed with an internal error", f.name()), None),
        }
    }

    async fn stop_provider(
        &self,
        _: Request<pb::stop_provider::Request>,
    ) -> Rpc<pb::stop_provider::Response> {
        tracing::info!("StopProvider: cancelling in-flight operations");
        self.stop.cancel();
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: false,
        get_provider_schema_optional: false,
        move_resource_state: false,
    }
}
