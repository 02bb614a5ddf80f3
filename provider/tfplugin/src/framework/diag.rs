//! Diagnostics and attribute paths: what a resource reports back to Terraform, and where.

use crate::proto::tfplugin6 as pb;

/// One step of a path into a value: an attribute, a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    Attr(String),
    Key(String),
    Index(i64),
}

/// A path to an attribute, e.g. `jump_host.port` or `images["devbox"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttrPath(pub Vec<PathStep>);

impl AttrPath {
    /// The path of a top-level attribute.
    pub fn attr(name: impl Into<String>) -> Self {
        Self(vec![PathStep::Attr(name.into())])
    }
    /// This path extended by an attribute.
    pub fn then_attr(mut self, name: impl Into<String>) -> Self {
        self.0.push(PathStep::Attr(name.into()));
        self
    }
    /// This path extended by a map key.
    pub fn then_key(mut self, key: impl Into<String>) -> Self {
        self.0.push(PathStep::Key(key.into()));
        self
    }
    /// This path extended by a list index.
    pub fn then_index(mut self, index: i64) -> Self {
        self.0.push(PathStep::Index(index));
        self
    }

    pub(crate) fn to_proto(&self) -> pb::AttributePath {
        use pb::attribute_path::step::Selector;
        pb::AttributePath {
            steps: self
                .0
                .iter()
                .map(|s| pb::attribute_path::Step {
                    selector: Some(match s {
                        PathStep::Attr(a) => Selector::AttributeName(a.clone()),
                        PathStep::Key(k) => Selector::ElementKeyString(k.clone()),
                        PathStep::Index(i) => Selector::ElementKeyInt(*i),
                    }),
                })
                .collect(),
        }
    }

    pub fn from_proto(p: &pb::AttributePath) -> Self {
        use pb::attribute_path::step::Selector;
        Self(
            p.steps
                .iter()
                .filter_map(|s| {
                    s.selector.as_ref().map(|sel| match sel {
                        Selector::AttributeName(a) => PathStep::Attr(a.clone()),
                        Selector::ElementKeyString(k) => PathStep::Key(k.clone()),
                        Selector::ElementKeyInt(i) => PathStep::Index(*i),
                    })
                })
                .collect(),
        )
    }
}

impl std::fmt::Display for AttrPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                PathStep::Attr(a) if i == 0 => write!(f, "{a}")?,
                PathStep::Attr(a) => write!(f, ".{a}")?,
                PathStep::Key(k) => write!(f, "[{k:?}]")?,
                PathStep::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One diagnostic; `path` makes Terraform underline the attribute in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub summary: String,
    pub detail: String,
    pub path: Option<AttrPath>,
}

/// The sink every framework callback writes to.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Error, summary, detail, None);
    }
    pub fn warning(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Warning, summary, detail, None);
    }
    pub fn error_at(
        &mut self,
        path: AttrPath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.push(Severity::Error, summary, detail, Some(path));
    }
    pub fn warning_at(
        &mut self,
        path: AttrPath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.push(Severity::Warning, summary, detail, Some(path));
    }
    fn push(
        &mut self,
        severity: Severity,
        summary: impl Into<String>,
        detail: impl Into<String>,
        path: Option<AttrPath>,
    ) {
        self.items.push(Diagnostic {
            severity,
            summary: summary.into(),
            detail: detail.into(),
            path,
        });
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn into_proto(self) -> Vec<pb::Diagnostic> {
        self.items
            .into_iter()
            .map(|d| pb::Diagnostic {
                severity: match d.severity {
                    Severity::Error => pb::diagnostic::Severity::Error as i32,
                    Severity::Warning => pb::diagnostic::Severity::Warning as i32,
                },
                summary: d.summary,
                detail: d.detail,
                attribute: d.path.map(|p| p.to_proto()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_displays_like_terraform() {
        let p = AttrPath::attr("images").then_key("devbox");
        assert_eq!(p.to_string(), "images[\"devbox\"]");
        let p = AttrPath::attr("jump_host").then_attr("port");
        assert_eq!(p.to_string(), "jump_host.port");
    }

    #[test]
    fn path_round_trips_through_proto() {
        let p = AttrPath::attr("a").then_key("k").then_index(3);
        assert_eq!(AttrPath::from_proto(&p.to_proto()), p);
    }
}
