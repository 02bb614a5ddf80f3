//! `provider::cloudcode::fallback_domain(ip)`: the `<a-b-c-d>.sslip.io` name a stack uses when it has no domain
//! of its own. Pure; the same rule `cloudcode_stack` applies to an empty `domain`.

use cloudcode_tfplugin::framework::{Function, FunctionError, Parameter};
use cloudcode_tfplugin::value::{Type, Value};

pub struct FallbackDomain;

impl Function for FallbackDomain {
    fn name(&self) -> &'static str {
        "fallback_domain"
    }
    fn summary(&self) -> &'static str {
        "The sslip.io domain of an IPv4 address"
    }
    fn description(&self) -> &'static str {
        "Returns the wildcard-DNS name `<a-b-c-d>.sslip.io` that resolves to the IPv4 address `ip`, e.g. \
         `\"47.1.2.3\"` → `\"47-1-2-3.sslip.io\"`. `cloudcode_stack` uses the same name when `domain` is empty."
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![Parameter {
            name: "ip",
            ty: Type::String,
            description: "An IPv4 address such as `47.1.2.3`.",
        }]
    }
    fn return_type(&self) -> Type {
        Type::String
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let ip = args.first().and_then(Value::as_str).ok_or(FunctionError {
            text: "ip must be a string".into(),
            argument: Some(0),
        })?;
        cloudcode_bundle::fallback_domain(ip)
            .map(Value::string)
            .map_err(|e| FunctionError {
                text: format!("ip: {e}"),
                argument: Some(0),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_quad_becomes_dashed_sslip_name() {
        let v = FallbackDomain.call(&[Value::string("47.1.2.3")]).unwrap();
        assert_eq!(v.as_str(), Some("47-1-2-3.sslip.io"));
    }

    #[test]
    fn ipv6_is_refused_naming_the_argument() {
        let e = FallbackDomain.call(&[Value::string("::1")]).unwrap_err();
        assert_eq!(e.argument, Some(0));
        assert!(e.text.contains("IPv4"), "{}", e.text);
    }
}
