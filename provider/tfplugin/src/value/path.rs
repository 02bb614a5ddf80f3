//! Paths into a value (`.attr[0]["key"]`), carried by codec errors so callers can point a diagnostic at the
//! offending attribute.

use std::fmt;

/// One step from a value into one of its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathStep {
    /// An object attribute.
    Attr(String),
    /// A list, set or tuple position.
    Index(u64),
    /// A map key.
    Key(String),
}

/// A sequence of steps from the root value; empty means the root itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(pub Vec<PathStep>);

impl Path {
    /// The steps, root first.
    pub fn steps(&self) -> &[PathStep] {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        for step in &self.0 {
            match step {
                PathStep::Attr(name) => write!(f, ".{name}")?,
                PathStep::Index(i) => write!(f, "[{i}]")?,
                PathStep::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

/// Path under construction during a recursive walk; cheap to push/pop, turned into a [`Path`] only on error.
#[derive(Default)]
pub(crate) struct Cursor(Vec<PathStep>);

impl Cursor {
    pub(crate) fn path(&self) -> Path {
        Path(self.0.clone())
    }

    /// Runs `f` with `step` appended to the path.
    pub(crate) fn with<T>(&mut self, step: PathStep, f: impl FnOnce(&mut Self) -> T) -> T {
        self.0.push(step);
        let out = f(self);
        self.0.pop();
        out
    }
}
