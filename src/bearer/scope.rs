//! [`ScopeHierarchy`]: broad scopes that imply narrower ones.

use std::collections::{HashMap, HashSet};

/// Which scopes imply which: with `files:admin` implying `files:read`, a token granted
/// `files:admin` satisfies a requirement for `files:read`.
///
/// MCP (2026-07-28, *Server Scope Management*) asks servers to account for scope hierarchies
/// when deciding whether a token is sufficient. Implications are transitive (`admin` →
/// `write` → `read` makes `admin` satisfy `read`) and cycles are harmless. The default is
/// empty: every scope stands for itself only.
///
/// ```
/// use mcp_auth::bearer::ScopeHierarchy;
///
/// let hierarchy = ScopeHierarchy::new()
///     .implies("files:admin", ["files:write"])
///     .implies("files:write", ["files:read"]);
/// let granted = ["files:admin".to_owned()];
/// assert!(hierarchy.satisfies(&granted, "files:read"));
/// assert!(!hierarchy.satisfies(&granted, "mail:read"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeHierarchy {
    implies: HashMap<String, Vec<String>>,
}

impl ScopeHierarchy {
    /// An empty hierarchy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares that `broad` implies each of `narrower` (added to earlier declarations).
    #[must_use]
    pub fn implies(
        mut self,
        broad: impl Into<String>,
        narrower: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.implies
            .entry(broad.into())
            .or_default()
            .extend(narrower.into_iter().map(Into::into));
        self
    }

    /// Whether no implication is declared.
    pub fn is_empty(&self) -> bool {
        self.implies.is_empty()
    }

    /// Every scope named in the hierarchy, broad or narrower (crate-internal: the scopes a
    /// resource recognises).
    pub(crate) fn named_scopes(&self) -> impl Iterator<Item = &str> {
        self.implies
            .iter()
            .flat_map(|(broad, narrower)| std::iter::once(broad).chain(narrower))
            .map(String::as_str)
    }

    /// Every scope the granted scopes stand for: themselves plus everything they imply,
    /// transitively.
    pub fn expand<'a>(&'a self, granted: &'a [String]) -> HashSet<&'a str> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut queue: Vec<&str> = granted.iter().map(String::as_str).collect();
        while let Some(scope) = queue.pop() {
            if seen.insert(scope)
                && let Some(implied) = self.implies.get(scope)
            {
                queue.extend(implied.iter().map(String::as_str));
            }
        }
        seen
    }

    /// Whether `granted` satisfies `required`, directly or through the hierarchy.
    pub fn satisfies(&self, granted: &[String], required: &str) -> bool {
        self.expand(granted).contains(required)
    }

    /// The required scopes `granted` does not satisfy, in the order they were required.
    pub fn missing<'r>(&self, granted: &[String], required: &'r [String]) -> Vec<&'r str> {
        if required.is_empty() {
            return Vec::new();
        }
        let have = self.expand(granted);
        required
            .iter()
            .map(String::as_str)
            .filter(|scope| !have.contains(scope))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn without_hierarchy_every_scope_stands_for_itself() {
        let h = ScopeHierarchy::new();
        assert_eq!(
            h.missing(&owned(&["read"]), &owned(&["read", "write"])),
            ["write"]
        );
        assert!(
            h.missing(&owned(&["write", "read"]), &owned(&["read", "write"]))
                .is_empty()
        );
    }

    #[test]
    fn implications_are_transitive_and_cycles_terminate() {
        let h = ScopeHierarchy::new()
            .implies("admin", ["write"])
            .implies("write", ["read"])
            .implies("read", ["admin"]);
        assert!(h.satisfies(&owned(&["admin"]), "read"));
        // The cycle makes read imply admin too: the declared graph, followed faithfully.
        assert!(h.satisfies(&owned(&["read"]), "admin"));
        assert!(!h.satisfies(&owned(&["other"]), "read"));
    }

    #[test]
    fn narrow_scopes_do_not_imply_broad_ones() {
        let h = ScopeHierarchy::new().implies("files:admin", ["files:read"]);
        assert_eq!(
            h.missing(&owned(&["files:read"]), &owned(&["files:admin"])),
            ["files:admin"]
        );
        assert!(
            h.missing(&owned(&["files:admin"]), &owned(&["files:read"]))
                .is_empty()
        );
    }

    #[test]
    fn missing_keeps_the_required_order() {
        let h = ScopeHierarchy::new();
        assert_eq!(h.missing(&[], &owned(&["c", "a", "b"])), ["c", "a", "b"]);
    }
}
