//! `provider::cloudcode::fallback_domain(ip[, service])`: the `<a-b-c-d>.sslip.io` (or `.nip.io`) name a stack
//! uses when it has no domain of its own. Pure; the same rule `cloudcode_stack` applies to an empty `domain`.

use cloudcode_tfplugin::framework::{Function, FunctionError, Parameter};
use cloudcode_tfplugin::value::{Type, Value};

pub struct FallbackDomain;

impl Function for FallbackDomain {
    fn name(&self) -> &'static str {
        "fallback_domain"
    }
    fn summary(&self) -> &'static str {
        "The sslip.io (or nip.io) domain of an IPv4 address"
    }
    fn description(&self) -> &'static str {
        "Returns the wildcard-DNS name `<a-b-c-d>.sslip.io` that resolves to the IPv4 address `ip`, e.g. \
         `\"47.1.2.3\"` → `\"47-1-2-3.sslip.io\"`; with a second argument `\"nip.io\"`, `\"47-1-2-3.nip.io\"`. \
         `cloudcode_stack` uses the same name when `domain` is empty (its `fallback_domain_service`)."
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![Parameter {
            name: "ip",
            ty: Type::String,
            description: "An IPv4 address such as `47.1.2.3`.",
        }]
    }
    fn variadic(&self) -> Option<Parameter> {
        Some(Parameter {
            name: "service",
            ty: Type::String,
            description: "Optional: `sslip.io` (the default) or `nip.io`.",
        })
    }
    fn return_type(&self) -> Type {
        Type::String
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let ip = args.first().and_then(Value::as_str).ok_or(FunctionError {
            text: "ip must be a string".into(),
            argument: Some(0),
        })?;
        let service = match args {
            [_] => cloudcode_bundle::validate::FALLBACK_DOMAIN_SERVICES[0],
            [_, s] => s.as_str().ok_or(FunctionError {
                text: "service must be a string".into(),
                argument: Some(1),
            })?,
            _ => {
                return Err(FunctionError {
                    text: format!(
                    "fallback_domain takes an IP address and at most one service, got {} arguments",
                    args.len()
                ),
                    argument: Some(2),
                })
            }
        };
        if let Err(e) = cloudcode_bundle::validate::fallback_domain_service(service) {
            return Err(FunctionError {
                text: format!("service: {e}"),
                argument: Some(1),
            });
        }
        cloudcode_bundle::fallback_domain_on(ip, service)
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
    fn a_second_argument_chooses_nip_io_and_refuses_others() {
        let v = FallbackDomain
            .call(&[Value::string("47.1.2.3"), Value::string("nip.io")])
            .unwrap();
        assert_eq!(v.as_str(), Some("47-1-2-3.nip.io"));
        let e = FallbackDomain
            .call(&[Value::string("47.1.2.3"), Value::string("xip.io")])
            .unwrap_err();
        assert_eq!(e.argument, Some(1));
        assert!(
            e.text.starts_with("service: ") && e.text.contains("sslip.io or nip.io"),
            "{}",
            e.text
        );
    }

    #[test]
    fn ipv6_is_refused_naming_the_argument() {
        let e = FallbackDomain.call(&[Value::string("::1")]).unwrap_err();
        assert_eq!(e.argument, Some(0));
        assert!(e.text.contains("IPv4"), "{}", e.text);
    }
}
