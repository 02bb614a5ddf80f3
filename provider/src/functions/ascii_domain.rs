//! `provider::cloudcode::ascii_domain(domain)`: a domain in the ASCII form `cloudcode_stack` deploys (lower case,
//! `xn--` labels for an internationalised name), for DNS records and anything else written beside the stack.

use cloudcode_tfplugin::framework::{Function, FunctionError, Parameter};
use cloudcode_tfplugin::value::{Type, Value};

pub struct AsciiDomain;

impl Function for AsciiDomain {
    fn name(&self) -> &'static str {
        "ascii_domain"
    }
    fn summary(&self) -> &'static str {
        "A domain name in the ASCII form the stack deploys"
    }
    fn description(&self) -> &'static str {
        "Returns `domain` in its UTS 46 ASCII form, as `cloudcode_stack` serves it: lower case, and `xn--` labels \
         for an internationalised name, e.g. `\"例子.中国\"` → `\"xn--fsqu00a.xn--fiqs8s\"`, `\"Code.Example.COM\"` → \
         `\"code.example.com\"`. Fails, naming the reason, on a name that is not a valid domain."
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![Parameter {
            name: "domain",
            ty: Type::String,
            description: "A domain name, in Unicode or ASCII.",
        }]
    }
    fn return_type(&self) -> Type {
        Type::String
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let domain = args.first().and_then(Value::as_str).ok_or(FunctionError {
            text: "domain must be a string".into(),
            argument: Some(0),
        })?;
        let ascii = cloudcode_bundle::validate::ascii_domain(domain);
        cloudcode_bundle::validate::domain(&ascii)
            .map(|()| Value::string(ascii))
            .map_err(|e| FunctionError {
                text: format!("domain: {e}"),
                argument: Some(0),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internationalised_and_upper_case_names_become_their_ascii_form() {
        let v = AsciiDomain.call(&[Value::string("例子.中国")]).unwrap();
        assert_eq!(v.as_str(), Some("xn--fsqu00a.xn--fiqs8s"));
        let v = AsciiDomain
            .call(&[Value::string("Code.Example.COM")])
            .unwrap();
        assert_eq!(v.as_str(), Some("code.example.com"));
    }

    #[test]
    fn a_name_that_is_no_domain_is_refused_naming_the_argument() {
        let e = AsciiDomain
            .call(&[Value::string("not a domain")])
            .unwrap_err();
        assert_eq!(e.argument, Some(0));
        assert!(e.text.starts_with("domain: "), "{}", e.text);
    }
}
