//! The value-level face of resources and data sources that the gRPC server calls, and the generic
//! behaviour every resource gets for free: attribute validation, write-only handling, defaults, computed
//! attributes becoming unknown on change, plan modifiers, and typed conversion.

use std::sync::Arc;

use async_trait::async_trait;

use crate::framework::diag::{AttrPath, Diagnostics};
use crate::framework::schema::{Attribute, Block, Nesting, PlanModifier, Schema};
use crate::framework::traits::{
    ApplyRequest, Ctx, DataSource, DeleteRequest, PlanRequest, Private, ReadRequest, Resource,
    Typed,
};
use crate::framework::typed::{from_value, to_value, unknown_attributes};
use crate::value::{Type, Value};

/// The result of planning at the value level.
pub struct PlannedChange {
    pub planned: Value,
    pub requires_replace: Vec<AttrPath>,
    pub private: Private,
}

/// A resource as the server sees it.
#[async_trait]
pub trait AnyResource: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    async fn validate(&self, config: &Value, write_only_allowed: bool, diags: &mut Diagnostics);
    async fn plan(
        &self,
        prior: &Value,
        proposed: &Value,
        config: &Value,
        private: Private,
        ctx: Ctx,
        diags: &mut Diagnostics,
    ) -> PlannedChange;
    /// Create, update or delete, decided by which of prior/planned is null.
    async fn apply(
        &self,
        prior: &Value,
        planned: &Value,
        config: &Value,
        private: Private,
        ctx: Ctx,
        diags: &mut Diagnostics,
    ) -> (Value, Private);
    async fn read(
        &self,
        current: &Value,
        private: Private,
        ctx: Ctx,
        diags: &mut Diagnostics,
    ) -> (Value, Private);
    async fn import(&self, id: &str, ctx: Ctx, diags: &mut Diagnostics)
        -> Option<(Value, Private)>;
    async fn upgrade(
        &self,
        version: i64,
        raw: serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value>;
}

/// A data source as the server sees it.
#[async_trait]
pub trait AnyDataSource: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    async fn validate(&self, config: &Value, diags: &mut Diagnostics);
    async fn read(&self, config: &Value, ctx: Ctx, diags: &mut Diagnostics) -> Value;
}

/// Wraps a typed resource for the server.
pub fn resource<R: Resource>(r: R) -> Arc<dyn AnyResource> {
    Arc::new(ResourceAdapter(r))
}

/// Wraps a typed data source for the server.
pub fn data_source<D: DataSource>(d: D) -> Arc<dyn AnyDataSource> {
    Arc::new(DataSourceAdapter(d))
}

struct ResourceAdapter<R>(R);
struct DataSourceAdapter<D>(D);

/// Decodes a typed value, turning a mismatch into an error diagnostic (a provider bug, reported plainly).
pub(crate) fn typed<S: serde::de::DeserializeOwned + Default>(
    v: &Value,
    ty: &Type,
    what: &str,
    diags: &mut Diagnostics,
) -> Typed<S> {
    match from_value::<S>(v, ty) {
        Ok(value) => Typed {
            value,
            unknown: unknown_attributes(v),
        },
        Err(e) => {
            diags.error(format!("Could not read the {what}"), e.to_string());
            Typed::default()
        }
    }
}

pub(crate) fn encode<S: serde::Serialize>(
    s: &S,
    ty: &Type,
    what: &str,
    diags: &mut Diagnostics,
) -> Value {
    match to_value(s, ty) {
        Ok(v) => v,
        Err(e) => {
            diags.error(format!("Could not write the {what}"), e.to_string());
            Value::Null
        }
    }
}

fn attr<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.get_attr(name).unwrap_or(&Value::Null)
}

/// Nulls every write-only attribute, including those of nested blocks and nested attributes: they never reach plan
/// or state.
fn null_write_only(schema: &Schema, v: &mut Value) {
    null_write_only_in(&schema.block, v);
}

fn null_write_only_in(block: &Block, v: &mut Value) {
    if !v.is_known() || v.is_null() {
        return;
    }
    null_write_only_attrs(&block.attributes, v);
    for b in &block.blocks {
        if let Some(Value::List(items)) = v.get_attr_mut(&b.name) {
            for item in items.iter_mut() {
                null_write_only_in(&b.block, item);
            }
        }
    }
}

/// Nulls the write-only ones of `attrs` in the object `v`, and those of their nested objects.
fn null_write_only_attrs(attrs: &[Attribute], v: &mut Value) {
    if !v.is_known() || v.is_null() {
        return;
    }
    for a in attrs {
        if a.write_only {
            v.set_attr(a.name.clone(), Value::Null);
            continue;
        }
        let Some(nested) = &a.nested else { continue };
        match (a.nesting, v.get_attr_mut(&a.name)) {
            (Nesting::Single, Some(object)) => null_write_only_attrs(nested, object),
            (Nesting::Map, Some(Value::Map(m))) => {
                for object in m.values_mut() {
                    null_write_only_attrs(nested, object);
                }
            }
            _ => {}
        }
    }
}

/// Write-only attributes set in the object `v` of `attrs` (those of nested attributes included), with their paths.
fn write_only_set_attrs(
    attrs: &[Attribute],
    v: &Value,
    path: &AttrPath,
    out: &mut Vec<(AttrPath, String)>,
) {
    for a in attrs {
        let value = attr(v, &a.name);
        let p = path.clone().then_attr(a.name.clone());
        if a.write_only && !value.is_null() {
            out.push((p.clone(), a.name.clone()));
        }
        for (op, object) in a.nested_objects(value, &p) {
            write_only_set_attrs(a.nested.as_deref().unwrap_or_default(), object, &op, out);
        }
    }
}

/// Write-only attributes set in `config` (nested blocks and attributes included), with their paths.
fn write_only_set(
    block: &Block,
    config: &Value,
    path: &AttrPath,
    out: &mut Vec<(AttrPath, String)>,
) {
    write_only_set_attrs(&block.attributes, config, path, out);
    for b in &block.blocks {
        if let Some(Value::List(items)) = config.get_attr(&b.name) {
            for (i, item) in items.iter().enumerate() {
                let p = path.clone().then_attr(b.name.clone()).then_index(i as i64);
                write_only_set(&b.block, item, &p, out);
            }
        }
    }
}

/// Is the attribute's value taken from the configuration (rather than computed by the provider)?
fn from_config(a: &Attribute, config: &Value) -> bool {
    !a.computed || !attr(config, &a.name).is_null()
}

#[async_trait]
impl<R: Resource> AnyResource for ResourceAdapter<R> {
    fn type_name(&self) -> &'static str {
        self.0.type_name()
    }
    fn schema(&self) -> Schema {
        self.0.schema()
    }

    async fn validate(&self, config: &Value, write_only_allowed: bool, diags: &mut Diagnostics) {
        let schema = self.0.schema();
        schema
            .block
            .validate_value(config, &AttrPath::default(), diags);
        if !write_only_allowed {
            let mut set = Vec::new();
            write_only_set(&schema.block, config, &AttrPath::default(), &mut set);
            for (path, name) in set {
                diags.error_at(
                    path,
                    "Write-only attribute needs Terraform 1.11 or later",
                    format!(
                        "`{name}` is write-only: it is sent to the provider but never stored in plan or state. \
                         This Terraform/OpenTofu does not support write-only attributes and would store the \
                         secret in state. Upgrade to Terraform >= 1.11 or OpenTofu >= 1.11."
                    ),
                );
            }
        }
        if diags.has_errors() {
            return;
        }
        let ty = schema.value_type();
        let cfg = typed::<R::State>(config, &ty, "configuration", diags);
        self.0.validate(&cfg, diags).await;
    }

    async fn plan(
        &self,
        prior: &Value,
        proposed: &Value,
        config: &Value,
        private: Private,
        ctx: Ctx,
        diags: &mut Diagnostics,
    ) -> PlannedChange {
        if proposed.is_null() {
            // Destroy: nothing to plan.
            return PlannedChange {
                planned: Value::Null,
                requires_replace: Vec::new(),
                private,
            };
        }
        let schema = self.0.schema();
        let ty = schema.value_type();
        let mut planned = proposed.clone();
        null_write_only(&schema, &mut planned);
        for a in &schema.block.attributes {
            if attr(config, &a.name).is_null() {
                if let Some(d) = &a.default {
                    planned.set_attr(a.name.clone(), d.clone());
                }
            }
        }
        // Does anything the user controls change?
        let changing = prior.is_null()
            || schema.block.attributes.iter().any(|a| {
                !a.write_only
                    && from_config(a, config)
                    && attr(&planned, &a.name) != attr(prior, &a.name)
            })
            || schema
                .block
                .blocks
                .iter()
                .any(|b| attr(&planned, &b.name) != attr(prior, &b.name));
        for a in schema.block.attributes.iter().filter(|a| a.computed) {
            if from_config(a, config) || a.default.is_some() {
                continue;
            }
            let keep = !prior.is_null() && (!changing || a.has(PlanModifier::UseStateForUnknown));
            if !keep {
                planned.set_attr(a.name.clone(), Value::Unknown);
            }
        }

        let mut req = PlanRequest {
            config: typed::<R::State>(config, &ty, "configuration", diags),
            prior: if prior.is_null() {
                None
            } else {
                Some(typed::<R::State>(prior, &ty, "prior state", diags).value)
            },
            planned: typed::<R::State>(&planned, &ty, "planned state", diags),
            private,
            requires_replace: Vec::new(),
            ctx,
        };
        if diags.has_errors() {
            return PlannedChange {
                planned,
                requires_replace: Vec::new(),
                private: req.private,
            };
        }
        self.0.plan(&mut req, diags).await;

        // Values the user set are Terraform's, verbatim (they may be partly unknown); computed ones come
        // from the resource, and whatever it left unknown stays unknown.
        let from_resource = encode(&req.planned.value, &ty, "planned state", diags);
        for a in &schema.block.attributes {
            if from_config(a, config) || a.write_only {
                continue;
            }
            let v = if req.planned.unknown.contains(&a.name) {
                Value::Unknown
            } else {
                attr(&from_resource, &a.name).clone()
            };
            planned.set_attr(a.name.clone(), v);
        }
        null_write_only(&schema, &mut planned);

        let mut requires_replace = req.requires_replace;
        if !prior.is_null() {
            for a in &schema.block.attributes {
                if a.has(PlanModifier::RequiresReplace)
                    && attr(&planned, &a.name) != attr(prior, &a.name)
                {
                    requires_replace.push(AttrPath::attr(a.name.clone()));
                }
            }
        }
        PlannedChange {
            planned,
            requires_replace,
            private: req.private,
        }
    }

    async fn apply(
        &self,
        prior: &Value,
        planned: &Value,
        config: &Value,
        private: Private,
        ctx: Ctx,
        diags: &mut Diagnostics,
    ) -> (Value, Private) {
        let schema = self.0.schema();
        let ty = schema.value_type();
        if planned.is_null() {
            let mut req = DeleteRequest {
                prior: typed::<R::State>(prior, &ty, "prior state", diags).value,
                private,
                ctx,
            };
            if diags.has_errors() {
                return (prior.clone(), req.private);
            }
            self.0.delete(&mut req, diags).await;
            // A failed delete keeps the object in state so the next destroy tries again.
            let state = if diags.has_errors() {
                prior.clone()
            } else {
                Value::Null
            };
            return (state, req.private);
        }
        let mut req = ApplyRequest {
            config: typed::<R::State>(config, &ty, "configuration", diags).value,
            prior: if prior.is_null() {
                None
            } else {
                Some(typed::<R::State>(prior, &ty, "prior state", diags).value)
            },
            planned: typed::<R::State>(planned, &ty, "planned state", diags).value,
            private,
            ctx,
        };
        if diags.has_errors() {
            return (prior.clone(), req.private);
        }
        let result = if prior.is_null() {
            self.0.create(&mut req, diags).await
        } else {
            self.0.update(&mut req, diags).await
        };
        let mut state = match result {
            Some(s) => encode(&s, &ty, "new state", diags),
            None if prior.is_null() => Value::Null,
            None => prior.clone(),
        };
        if !state.is_null() {
            null_write_only(&schema, &mut state);
        }
        (state, req.private)
    }

    async fn read(
        &self,
        current: &Value,
        private: Private,
        ctx: Ctx,
        diags: &mut Diagnostics,
    ) -> (Value, Private) {
        let schema = self.0.schema();
        let ty = schema.value_type();
        let mut req = ReadRequest {
            state: typed::<R::State>(current, &ty, "state", diags).value,
            private,
            ctx,
        };
        if diags.has_errors() {
            return (current.clone(), req.private);
        }
        let state = match self.0.read(&mut req, diags).await {
            Some(s) => {
                let mut v = encode(&s, &ty, "state", diags);
                null_write_only(&schema, &mut v);
                v
            }
            None => Value::Null,
        };
        (state, req.private)
    }

    async fn import(
        &self,
        id: &str,
        ctx: Ctx,
        diags: &mut Diagnostics,
    ) -> Option<(Value, Private)> {
        let schema = self.0.schema();
        let (s, private) = self.0.import(id, &ctx, diags).await?;
        let mut v = encode(&s, &schema.value_type(), "imported state", diags);
        null_write_only(&schema, &mut v);
        Some((v, private))
    }

    async fn upgrade(
        &self,
        version: i64,
        raw: serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let schema = self.0.schema();
        let raw = if version < schema.version {
            self.0.upgrade(version, raw, diags).await?
        } else if version > schema.version {
            diags.error(
                "State from a newer provider",
                format!(
                    "The state of this {} was written by a newer cloudcode provider (schema version {version}, \
                     this provider knows {}). Use that provider version or newer.",
                    self.0.type_name(),
                    schema.version
                ),
            );
            return None;
        } else {
            raw
        };
        let mut v = crate::framework::typed::value_from_json_lenient(raw, &schema.value_type())
            .map_err(|e| diags.error("Could not read the stored state", e.to_string()))
            .ok()?;
        null_write_only(&schema, &mut v);
        Some(v)
    }
}

#[async_trait]
impl<D: DataSource> AnyDataSource for DataSourceAdapter<D> {
    fn type_name(&self) -> &'static str {
        self.0.type_name()
    }
    fn schema(&self) -> Schema {
        self.0.schema()
    }
    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let schema = self.0.schema();
        schema
            .block
            .validate_value(config, &AttrPath::default(), diags);
        if diags.has_errors() {
            return;
        }
        let cfg = typed::<D::State>(config, &schema.value_type(), "configuration", diags);
        self.0.validate(&cfg, diags).await;
    }
    async fn read(&self, config: &Value, ctx: Ctx, diags: &mut Diagnostics) -> Value {
        let schema = self.0.schema();
        let ty = schema.value_type();
        let cfg = typed::<D::State>(config, &ty, "configuration", diags).value;
        if diags.has_errors() {
            return Value::Null;
        }
        match self.0.read(cfg, &ctx, diags).await {
            Some(s) => encode(&s, &ty, "data source result", diags),
            None => Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::new(
            0,
            Block::new("thing")
                .attribute(Attribute::string("name").required())
                .attribute(Attribute::string("secret_wo").optional().write_only())
                .single_block(
                    "inner",
                    Block::new("inner")
                        .attribute(Attribute::string("token_wo").optional().write_only())
                        .attribute(Attribute::number("token_wo_version").optional()),
                ),
        )
    }

    fn value(secret: Value, token: Value) -> Value {
        let obj = |pairs: Vec<(&str, Value)>| {
            Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        };
        obj(vec![
            ("name", Value::string("n")),
            ("secret_wo", secret),
            (
                "inner",
                Value::List(vec![obj(vec![
                    ("token_wo", token),
                    ("token_wo_version", Value::int(1)),
                ])]),
            ),
        ])
    }

    #[test]
    fn write_only_attributes_of_nested_blocks_are_nulled_and_found() {
        let mut v = value(Value::string("s3cret"), Value::string("t0ken"));
        let mut set = Vec::new();
        write_only_set(&schema().block, &v, &AttrPath::default(), &mut set);
        let names: Vec<String> = set.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names[1].contains("inner") && names[1].contains("token_wo"),
            "{names:?}"
        );
        null_write_only(&schema(), &mut v);
        assert_eq!(v, value(Value::Null, Value::Null));
        // Null and unknown blocks are left alone.
        let mut unknown = Value::Unknown;
        null_write_only(&schema(), &mut unknown);
        assert_eq!(unknown, Value::Unknown);
    }

    #[test]
    fn write_only_attributes_of_map_nested_objects_are_nulled_and_found_per_key() {
        let schema = Schema::new(
            0,
            Block::new("thing").attribute(Attribute::map_of_objects(
                "apps",
                vec![
                    Attribute::string("image").optional(),
                    Attribute::map_of("env_wo", Type::String)
                        .optional()
                        .write_only(),
                ],
            )),
        );
        let app = |env: Value| {
            Value::Object(
                [
                    ("image".to_string(), Value::string("i")),
                    ("env_wo".to_string(), env),
                ]
                .into(),
            )
        };
        let env = Value::Map([("K".to_string(), Value::string("v"))].into());
        let apps = |a: Value, b: Value| {
            Value::Object(
                [(
                    "apps".to_string(),
                    Value::Map([("a".to_string(), a), ("b".to_string(), b)].into()),
                )]
                .into(),
            )
        };
        let mut v = apps(app(env), app(Value::Null));
        let mut set = Vec::new();
        write_only_set(&schema.block, &v, &AttrPath::default(), &mut set);
        let names: Vec<String> = set.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(names.len(), 1, "only the app that sets it: {names:?}");
        assert!(
            names[0].contains("\"a\"") && names[0].contains("env_wo"),
            "{names:?}"
        );
        null_write_only(&schema, &mut v);
        assert_eq!(v, apps(app(Value::Null), app(Value::Null)));
    }
}
