//! The typed schema builder: attributes (with nested attributes), blocks, markdown descriptions, `sensitive`,
//! `write_only`, defaults, plan modifiers and per-attribute validators — and its translation to the protocol.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::framework::diag::{AttrPath, Diagnostics};
use crate::proto::tfplugin6 as pb;
use crate::value::{Type, Value};

/// A validator for one known, non-null attribute value. It returns a human sentence on failure; the
/// framework attaches the attribute path. It never sees unknown or null values.
pub type Validator = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

/// How a planned value is derived beyond Terraform's proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanModifier {
    /// A change to this attribute replaces the resource.
    RequiresReplace,
    /// A computed attribute keeps its prior value instead of becoming unknown on update.
    UseStateForUnknown,
}

/// How a nested attribute holds its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// One object: `name = { ... }`.
    Single,
    /// Objects by key: `name = { key = { ... } }`.
    Map,
}

/// One attribute of a block.
#[derive(Clone)]
pub struct Attribute {
    pub name: String,
    pub ty: Type,
    /// Nested attributes instead of a plain type, held as `nesting` says.
    pub nested: Option<Vec<Attribute>>,
    pub nesting: Nesting,
    pub description: String,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    pub write_only: bool,
    pub deprecated: bool,
    pub default: Option<Value>,
    pub modifiers: Vec<PlanModifier>,
    pub validators: Vec<Validator>,
}

impl std::fmt::Debug for Attribute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attribute")
            .field("name", &self.name)
            .field("required", &self.required)
            .field("optional", &self.optional)
            .field("computed", &self.computed)
            .finish_non_exhaustive()
    }
}

impl Attribute {
    fn new(name: &str, ty: Type) -> Self {
        Self {
            name: name.to_string(),
            ty,
            nested: None,
            nesting: Nesting::Single,
            description: String::new(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecated: false,
            default: None,
            modifiers: Vec::new(),
            validators: Vec::new(),
        }
    }
    pub fn string(name: &str) -> Self {
        Self::new(name, Type::String)
    }
    pub fn number(name: &str) -> Self {
        Self::new(name, Type::Number)
    }
    pub fn bool(name: &str) -> Self {
        Self::new(name, Type::Bool)
    }
    pub fn map_of(name: &str, element: Type) -> Self {
        Self::new(name, Type::Map(Box::new(element)))
    }
    pub fn list_of(name: &str, element: Type) -> Self {
        Self::new(name, Type::List(Box::new(element)))
    }
    /// A single nested object made of `attributes` (shown in HCL as `name = { ... }`).
    pub fn object(name: &str, attributes: Vec<Attribute>) -> Self {
        let ty = object_type(&attributes);
        let mut a = Self::new(name, ty);
        a.nested = Some(attributes);
        a
    }
    /// A map of nested objects made of `attributes` (`name = { key = { ... } }`); each object's attributes may be
    /// optional, write-only or validated like a block's.
    pub fn map_of_objects(name: &str, attributes: Vec<Attribute>) -> Self {
        let ty = Type::Map(Box::new(object_type(&attributes)));
        let mut a = Self::new(name, ty);
        a.nested = Some(attributes);
        a.nesting = Nesting::Map;
        a
    }
    /// The objects of a nested attribute's value `v` with their paths below `path` (none for a plain attribute or a
    /// null/unknown value).
    pub fn nested_objects<'v>(&self, v: &'v Value, path: &AttrPath) -> Vec<(AttrPath, &'v Value)> {
        if self.nested.is_none() || !v.is_known() || v.is_null() {
            return Vec::new();
        }
        match (self.nesting, v) {
            (Nesting::Single, _) => vec![(path.clone(), v)],
            (Nesting::Map, Value::Map(m)) => m
                .iter()
                .filter(|(_, o)| o.is_known() && !o.is_null())
                .map(|(k, o)| (path.clone().then_key(k.clone()), o))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn description(mut self, markdown: &str) -> Self {
        self.description = markdown.to_string();
        self
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    pub fn computed(mut self) -> Self {
        self.computed = true;
        self
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    /// Never stored in plan or state; needs Terraform/OpenTofu >= 1.11.
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }
    /// The value planned when the configuration leaves the attribute null (makes it optional + computed).
    pub fn default(mut self, value: Value) -> Self {
        self.default = Some(value);
        self.optional = true;
        self.computed = true;
        self
    }
    pub fn requires_replace(mut self) -> Self {
        self.modifiers.push(PlanModifier::RequiresReplace);
        self
    }
    pub fn use_state_for_unknown(mut self) -> Self {
        self.modifiers.push(PlanModifier::UseStateForUnknown);
        self
    }
    /// Adds a validator on the raw value.
    pub fn validate(
        mut self,
        f: impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.validators.push(Arc::new(f));
        self
    }
    /// Adds a validator for a string attribute.
    pub fn validate_str<E: std::fmt::Display>(
        self,
        f: impl Fn(&str) -> Result<(), E> + Send + Sync + 'static,
    ) -> Self {
        self.validate(move |v| match v.as_str() {
            Some(s) => f(s).map_err(|e| e.to_string()),
            None => Ok(()),
        })
    }
    /// Adds a validator for a whole-number attribute.
    pub fn validate_i64<E: std::fmt::Display>(
        self,
        f: impl Fn(i64) -> Result<(), E> + Send + Sync + 'static,
    ) -> Self {
        self.validate(move |v| match v.as_i64() {
            Some(n) => f(n).map_err(|e| e.to_string()),
            None => Err("must be a whole number".to_string()),
        })
    }

    pub fn has(&self, m: PlanModifier) -> bool {
        self.modifiers.contains(&m)
    }

    fn to_proto(&self) -> pb::schema::Attribute {
        let (ty, nested_type) = match &self.nested {
            Some(attrs) => (
                Vec::new(),
                Some(pb::schema::Object {
                    attributes: attrs.iter().map(Attribute::to_proto).collect(),
                    nesting: match self.nesting {
                        Nesting::Single => pb::schema::object::NestingMode::Single,
                        Nesting::Map => pb::schema::object::NestingMode::Map,
                    } as i32,
                    ..Default::default()
                }),
            ),
            None => (self.ty.to_json(), None),
        };
        pb::schema::Attribute {
            name: self.name.clone(),
            r#type: ty,
            nested_type,
            description: self.description.clone(),
            required: self.required,
            optional: self.optional,
            computed: self.computed,
            sensitive: self.sensitive,
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: self.deprecated,
            write_only: self.write_only,
        }
    }
}

/// A nested block (`name { ... }` in HCL), used for provider configuration such as `endpoints { ecs = ... }`.
#[derive(Debug, Clone)]
pub struct NestedBlock {
    pub name: String,
    pub block: Block,
    pub max_items: i64,
}

/// A block: attributes and nested blocks.
#[derive(Debug, Clone, Default)]
pub struct Block {
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
    pub description: String,
}

impl Block {
    pub fn new(description: &str) -> Self {
        Self {
            description: description.to_string(),
            ..Default::default()
        }
    }
    pub fn attribute(mut self, a: Attribute) -> Self {
        self.attributes.push(a);
        self
    }
    /// A nested block that appears at most once (nesting `LIST`, max 1, as most providers do).
    pub fn single_block(mut self, name: &str, block: Block) -> Self {
        self.blocks.push(NestedBlock {
            name: name.to_string(),
            block,
            max_items: 1,
        });
        self
    }

    /// The object type of a value conforming to this block.
    pub fn value_type(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect();
        for b in &self.blocks {
            attrs.insert(b.name.clone(), Type::List(Box::new(b.block.value_type())));
        }
        Type::Object(attrs)
    }

    pub fn find(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    fn to_proto(&self, version: i64) -> pb::schema::Block {
        pb::schema::Block {
            version,
            attributes: self.attributes.iter().map(Attribute::to_proto).collect(),
            block_types: self
                .blocks
                .iter()
                .map(|b| pb::schema::NestedBlock {
                    type_name: b.name.clone(),
                    block: Some(b.block.to_proto(0)),
                    nesting: pb::schema::nested_block::NestingMode::List as i32,
                    min_items: 0,
                    max_items: b.max_items,
                })
                .collect(),
            description: self.description.clone(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: false,
        }
    }

    /// Runs every attribute validator on the known values of `value`, reporting at each attribute's path.
    pub fn validate_value(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        for a in &self.attributes {
            let v = value.get_attr(&a.name).unwrap_or(&Value::Null);
            let p = path.clone().then_attr(a.name.clone());
            validate_attribute(a, v, &p, diags);
        }
        for b in &self.blocks {
            if let Some(Value::List(items)) = value.get_attr(&b.name) {
                for (i, item) in items.iter().enumerate() {
                    let p = path.clone().then_attr(b.name.clone()).then_index(i as i64);
                    b.block.validate_value(item, &p, diags);
                }
            }
        }
    }
}

fn validate_attribute(a: &Attribute, v: &Value, path: &AttrPath, diags: &mut Diagnostics) {
    if !v.is_known() || v.is_null() {
        return;
    }
    for (p, object) in a.nested_objects(v, path) {
        for n in a.nested.iter().flatten() {
            let nv = object.get_attr(&n.name).unwrap_or(&Value::Null);
            validate_attribute(n, nv, &p.clone().then_attr(n.name.clone()), diags);
        }
    }
    for check in &a.validators {
        if let Err(reason) = check(v) {
            diags.error_at(path.clone(), format!("Invalid value for {path}"), reason);
        }
    }
}

fn object_type(attributes: &[Attribute]) -> Type {
    Type::Object(
        attributes
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect(),
    )
}

/// A resource's, data source's or provider's schema with its version.
#[derive(Debug, Clone)]
pub struct Schema {
    pub version: i64,
    pub block: Block,
}

impl Schema {
    pub fn new(version: i64, block: Block) -> Self {
        Self { version, block }
    }
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }
    pub fn to_proto(&self) -> pb::Schema {
        pb::Schema {
            version: self.version,
            block: Some(self.block.to_proto(self.version)),
        }
    }
}
