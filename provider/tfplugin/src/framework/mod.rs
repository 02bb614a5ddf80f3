//! A small framework so that a resource is one file: typed schema, diagnostics with attribute paths, plan
//! modifiers, private state, import, state upgrades, data sources and provider-defined functions.

pub mod diag;
pub mod erased;
pub mod schema;
pub mod traits;
pub mod typed;

pub use diag::{AttrPath, Diagnostic, Diagnostics, Severity};
pub use erased::{data_source, resource, AnyDataSource, AnyResource};
pub use schema::{Attribute, Block, Nesting, PlanModifier, Schema};
pub use traits::{
    ApplyRequest, Ctx, DataSource, DeleteRequest, Function, FunctionError, Parameter, PlanRequest,
    Private, Provider, ReadRequest, Resource, Typed,
};
