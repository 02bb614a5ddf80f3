//! RAM policy documents: the checks RAM makes before it stores one (JSON, `"Version": "1"`, a non-empty
//! `Statement` list whose statements have an `Effect` of Allow or Deny; a permission policy's statements name an
//! `Action` and a `Resource`, a trust policy's allow `sts:AssumeRole` to a `Principal`), and the evaluation of a
//! role's permission policies for one action on one resource: an explicit Deny wins, else an Allow is needed;
//! `*` and `?` are wildcards in actions (case-insensitive) and resources.

use serde_json::Value;

/// The principals a trust policy may name.
const PRINCIPAL_KINDS: [&str; 3] = ["Service", "RAM", "Federated"];

/// A permission statement as the evaluator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
    /// `NotAction`, `NotResource` or `Condition`: not evaluated here, so the statement never matches.
    unsupported: bool,
}

/// A string or a non-empty list of strings (how policies write `Action`, `Resource`, principals).
fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) if !s.is_empty() => Some(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().filter(|s| !s.is_empty()).map(str::to_string))
            .collect(),
        _ => None,
    }
}

/// The statements of a document after the checks every policy document passes.
fn statements(text: &str) -> Result<Vec<serde_json::Map<String, Value>>, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("it is not valid JSON ({e})"))?;
    let doc = doc.as_object().ok_or("it is not a JSON object")?;
    if doc.get("Version").and_then(Value::as_str) != Some("1") {
        return Err("\"Version\" must be \"1\"".into());
    }
    let list = doc
        .get("Statement")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or("\"Statement\" must be a non-empty list")?;
    list.iter()
        .map(|s| {
            let s = s.as_object().ok_or("a statement is not an object")?;
            match s.get("Effect").and_then(Value::as_str) {
                Some("Allow" | "Deny") => Ok(s.clone()),
                _ => Err("a statement's \"Effect\" must be \"Allow\" or \"Deny\"".to_string()),
            }
        })
        .collect()
}

/// A permission policy's statements (CreatePolicy, CreatePolicyVersion); the error says what is malformed.
pub(crate) fn permission_statements(text: &str) -> Result<Vec<Statement>, String> {
    statements(text)?
        .into_iter()
        .map(|s| {
            let list = |name: &str, not: &str| match (s.get(name), s.get(not)) {
                (Some(v), None) => strings(v)
                    .map(Some)
                    .ok_or(format!("\"{name}\" must be a string or a list of strings")),
                (None, Some(v)) => strings(v)
                    .map(|_| None)
                    .ok_or(format!("\"{not}\" must be a string or a list of strings")),
                _ => Err(format!("a statement needs one of \"{name}\" or \"{not}\"")),
            };
            let (actions, resources) = (
                list("Action", "NotAction")?,
                list("Resource", "NotResource")?,
            );
            if let Some(bad) = actions
                .iter()
                .flatten()
                .find(|a| *a != "*" && !a.contains(':'))
            {
                return Err(format!("the action {bad:?} is not <product>:<action>"));
            }
            let unsupported =
                actions.is_none() || resources.is_none() || s.contains_key("Condition");
            Ok(Statement {
                allow: s.get("Effect").and_then(Value::as_str) == Some("Allow"),
                actions: actions.unwrap_or_default(),
                resources: resources.unwrap_or_default(),
                unsupported,
            })
        })
        .collect()
}

/// Checks a trust policy (CreateRole, UpdateRole): each statement lets a principal `sts:AssumeRole`.
pub(crate) fn check_trust_policy(text: &str) -> Result<(), String> {
    for s in statements(text)? {
        let actions = s.get("Action").and_then(strings).unwrap_or_default();
        if !actions
            .iter()
            .any(|a| a.eq_ignore_ascii_case("sts:AssumeRole"))
        {
            return Err("a trust statement's \"Action\" must be \"sts:AssumeRole\"".into());
        }
        let principal = s
            .get("Principal")
            .and_then(Value::as_object)
            .ok_or("a trust statement needs a \"Principal\"")?;
        let named = PRINCIPAL_KINDS
            .iter()
            .any(|k| principal.get(*k).and_then(strings).is_some());
        if !named
            || principal
                .keys()
                .any(|k| !PRINCIPAL_KINDS.contains(&k.as_str()))
        {
            return Err("a \"Principal\" names a Service, RAM or Federated principal".into());
        }
    }
    Ok(())
}

/// The services a (valid) trust policy lets assume the role (`Principal.Service`).
pub(crate) fn trusted_services(text: &str) -> Vec<String> {
    statements(text)
        .unwrap_or_default()
        .iter()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
        .filter_map(|s| s.get("Principal")?.get("Service").and_then(strings))
        .flatten()
        .collect()
}

/// `pattern` (with `*` any run, `?` any one character) matches all of `text`.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it currently swallows up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl Statement {
    fn matches(&self, action: &str, resource: &str) -> bool {
        !self.unsupported
            && self
                .actions
                .iter()
                .any(|a| glob(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
            && self.resources.iter().any(|r| glob(r, resource))
    }
}

/// Whether `statements` (all of a role's policies) allow `action` (`ecs:StopInstance`) on every one of `resources`
/// (ARNs); never for no resource.
pub(crate) fn allows(statements: &[Statement], action: &str, resources: &[String]) -> bool {
    !resources.is_empty()
        && resources.iter().all(|r| {
            !statements.iter().any(|s| !s.allow && s.matches(action, r))
                && statements.iter().any(|s| s.allow && s.matches(action, r))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOX: &str = "acs:ecs:cn-hangzhou:1968132000123456:instance/i-box";
    const OTHER: &str = "acs:ecs:cn-hangzhou:1968132000123456:instance/i-other";

    fn policy(statements: &str) -> Vec<Statement> {
        permission_statements(&format!(r#"{{"Version":"1","Statement":[{statements}]}}"#)).unwrap()
    }

    #[test]
    fn wildcards_match_runs_and_single_characters() {
        assert!(glob("acs:ecs:*:*:instance/*", BOX));
        assert!(glob("acs:ecs:cn-hangzhou:*:instance/i-bo?", BOX));
        assert!(glob("*", ""));
        assert!(!glob("acs:ecs:*:*:instance/i-b", BOX));
        assert!(!glob("acs:ecs:cn-shanghai:*:instance/*", BOX));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn an_allow_on_one_instance_allows_only_that_action_there() {
        let only_box = policy(&format!(
            r#"{{"Effect":"Allow","Action":["ecs:StopInstance","ecs:TagResources"],"Resource":"{BOX}"}}"#
        ));
        assert!(allows(&only_box, "ecs:StopInstance", &[BOX.into()]));
        // Actions are case-insensitive, resources are not.
        assert!(allows(&only_box, "ECS:stopinstance", &[BOX.into()]));
        assert!(!allows(
            &only_box,
            "ecs:StopInstance",
            &[BOX.to_uppercase()]
        ));
        assert!(!allows(&only_box, "ecs:StopInstance", &[OTHER.into()]));
        assert!(!allows(
            &only_box,
            "ecs:StopInstance",
            &[BOX.into(), OTHER.into()]
        ));
        assert!(!allows(&only_box, "ecs:DeleteInstance", &[BOX.into()]));
        assert!(!allows(&only_box, "ecs:StopInstance", &[]));
    }

    #[test]
    fn an_explicit_deny_wins_and_conditions_are_not_guessed() {
        let denied = policy(&format!(
            r#"{{"Effect":"Allow","Action":"ecs:*","Resource":"*"}},{{"Effect":"Deny","Action":"ecs:Stop*","Resource":"{BOX}"}}"#
        ));
        assert!(!allows(&denied, "ecs:StopInstance", &[BOX.into()]));
        assert!(allows(&denied, "ecs:StopInstance", &[OTHER.into()]));
        assert!(allows(&denied, "ecs:TagResources", &[BOX.into()]));
        let conditional = policy(
            r#"{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}}"#,
        );
        assert!(!allows(&conditional, "ecs:StopInstance", &[BOX.into()]));
    }

    #[test]
    fn malformed_documents_say_why() {
        for (doc, why) in [
            ("not json", "not valid JSON"),
            (r#"["Version"]"#, "not a JSON object"),
            (
                r#"{"Version":"2","Statement":[]}"#,
                "\"Version\" must be \"1\"",
            ),
            (r#"{"Version":"1","Statement":[]}"#, "non-empty list"),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Maybe","Action":"ecs:*","Resource":"*"}]}"#,
                "\"Effect\"",
            ),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
                "\"Action\"",
            ),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"StopInstance","Resource":"*"}]}"#,
                "<product>:<action>",
            ),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":[]}]}"#,
                "\"Resource\"",
            ),
        ] {
            let err = permission_statements(doc).unwrap_err();
            assert!(err.contains(why), "{doc}: {err}");
        }
    }

    #[test]
    fn a_trust_policy_names_who_may_assume_the_role() {
        let ecs = r#"{"Version":"1","Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":["ecs.aliyuncs.com"]}}]}"#;
        check_trust_policy(ecs).unwrap();
        assert_eq!(trusted_services(ecs), vec!["ecs.aliyuncs.com"]);
        let account = r#"{"Version":"1","Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"RAM":"acs:ram::1968132000123456:root"}}]}"#;
        check_trust_policy(account).unwrap();
        assert!(trusted_services(account).is_empty());
        for (doc, why) in [
            (
                r#"{"Version":"1","Statement":[{"Action":"sts:AssumeRole","Effect":"Allow"}]}"#,
                "\"Principal\"",
            ),
            (
                r#"{"Version":"1","Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":[]}}]}"#,
                "Service, RAM or Federated",
            ),
            (
                r#"{"Version":"1","Statement":[{"Action":"ecs:*","Effect":"Allow","Principal":{"Service":"ecs.aliyuncs.com"}}]}"#,
                "sts:AssumeRole",
            ),
        ] {
            let err = check_trust_policy(doc).unwrap_err();
            assert!(err.contains(why), "{doc}: {err}");
        }
    }
}
