//! Scopes: the OAuth scope tokens a resource requires, which broad scopes imply narrower
//! ones ([`ScopeHierarchy`]), and the caller's granted scopes as a tool handler sees them
//! ([`GrantedScopes`], [`MissingScopes`]).
//!
//! A scope is a token of RFC 6749 §3.3: one or more printable ASCII characters other than
//! space, `"` and `\`. Every setter that takes scopes (the bearer guard's, the per-operation
//! policy's) refuses anything else when the configuration is built, with
//! [`ConfigError::InvalidScope`].
//!
//! ```
//! use mcp_auth::scope::{GrantedScopes, ScopeHierarchy};
//!
//! let hierarchy = ScopeHierarchy::new().implies("files:admin", ["files:write", "files:read"]);
//! let scopes = GrantedScopes::new(["files:admin"], hierarchy);
//! assert!(scopes.has("files:read"));
//! assert_eq!(scopes.require(["mail:send"]).unwrap_err().scopes(), ["mail:send"]);
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::error::ConfigError;

/// The OpenID Connect scope that asks for a refresh token. MCP (2026-07-28) says resource
/// servers should not name it in challenges or `scopes_supported`: refresh tokens are a matter
/// between the client and the authorization server, not a resource requirement.
pub(crate) const OFFLINE_ACCESS: &str = "offline_access";

/// Whether a byte may appear in a scope token (RFC 6749 §3.3: %x21 / %x23-5B / %x5D-7E).
pub(crate) fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// Whether `scope` is one RFC 6749 §3.3 scope token: one or more scope characters.
pub(crate) fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty() && scope.bytes().all(is_scope_char)
}

/// `Ok` when every one of `scopes` is a scope token; otherwise the first that is not, as the
/// error of the setter `setting`.
pub(crate) fn check_scopes<'a>(
    setting: &'static str,
    scopes: impl IntoIterator<Item = &'a str>,
) -> Result<(), ConfigError> {
    match scopes.into_iter().find(|scope| !is_scope_token(scope)) {
        Some(scope) => Err(ConfigError::InvalidScope {
            setting,
            scope: scope.to_owned(),
        }),
        None => Ok(()),
    }
}

/// Which scopes imply which: with `files:admin` implying `files:read`, a token granted
/// `files:admin` satisfies a requirement for `files:read`.
///
/// MCP (2026-07-28, *Server Scope Management*) asks servers to account for scope hierarchies
/// when deciding whether a token is sufficient. Implications are transitive (`admin` →
/// `write` → `read` makes `admin` satisfy `read`) and cycles are harmless. The default is
/// empty: every scope stands for itself only.
///
/// ```
/// use mcp_auth::scope::ScopeHierarchy;
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

/// The caller's granted scopes together with the guard's [`ScopeHierarchy`]: what a tool
/// handler asks when its decision depends on the arguments.
///
/// [`McpGuard`](crate::tower::McpGuard)'s layer (its
/// [`OperationScopesLayer`](crate::tower::OperationScopesLayer)) inserts it into the request
/// extensions of every request it lets through; with the `rmcp` feature a `#[tool]` function
/// takes it as an argument (see [`OperationScopes`](crate::tower::OperationScopes) for how a
/// handler should answer when a scope is missing).
/// [`AuthInfo::has_scope`](crate::AuthInfo::has_scope) is the exact-match check without the
/// hierarchy.
///
/// ```
/// use mcp_auth::ScopeHierarchy;
/// use mcp_auth::scope::GrantedScopes;
///
/// let scopes = GrantedScopes::new(["files:admin"], ScopeHierarchy::new().implies("files:admin", ["files:read"]));
/// assert!(scopes.has("files:read"));
/// assert!(scopes.require(["files:read", "files:admin"]).is_ok());
/// let missing = scopes.require(["files:read", "mail:send"]).unwrap_err();
/// assert_eq!(missing.scopes(), ["mail:send"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantedScopes {
    granted: Vec<String>,
    hierarchy: Arc<ScopeHierarchy>,
}

impl GrantedScopes {
    /// The scopes `granted`, read through `hierarchy`.
    pub fn new(
        granted: impl IntoIterator<Item = impl Into<String>>,
        hierarchy: ScopeHierarchy,
    ) -> Self {
        Self::shared(
            granted.into_iter().map(Into::into).collect(),
            Arc::new(hierarchy),
        )
    }

    /// The scopes `granted` read through a hierarchy shared with the layer that made them.
    pub(crate) fn shared(granted: Vec<String>, hierarchy: Arc<ScopeHierarchy>) -> Self {
        Self { granted, hierarchy }
    }

    /// The scopes the token grants, as the token lists them.
    pub fn granted(&self) -> &[String] {
        &self.granted
    }

    /// Whether `scope` is granted, directly or through the hierarchy.
    pub fn has(&self, scope: &str) -> bool {
        self.hierarchy.satisfies(&self.granted, scope)
    }

    /// `Ok` when every one of `required` is granted (directly or through the hierarchy).
    ///
    /// # Errors
    ///
    /// [`MissingScopes`] listing the ones that are not, in the order given.
    pub fn require(
        &self,
        required: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<(), MissingScopes> {
        let required: Vec<String> = required
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect();
        let missing = self.hierarchy.missing(&self.granted, &required);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(MissingScopes {
                missing: missing.into_iter().map(str::to_owned).collect(),
            })
        }
    }
}

/// Scopes a call needs that the access token does not grant: from [`GrantedScopes::require`].
///
/// The message is meant for the client (a tool error's text): it names the scopes and says
/// how to get them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this call needs the scope(s) `{}`, which the access token does not grant; authorize again \
     with them and retry",
    missing.join(" ")
)]
pub struct MissingScopes {
    missing: Vec<String>,
}

impl MissingScopes {
    /// The scopes that are missing.
    pub fn scopes(&self) -> &[String] {
        &self.missing
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

    #[test]
    fn granted_scopes_follow_the_hierarchy() {
        let scopes = GrantedScopes::new(
            ["admin"],
            ScopeHierarchy::new()
                .implies("admin", ["write"])
                .implies("write", ["read"]),
        );
        assert!(scopes.has("read") && scopes.has("admin") && !scopes.has("other"));
        assert_eq!(scopes.granted(), ["admin"]);
        let missing = scopes.require(["other", "read", "more"]).unwrap_err();
        assert_eq!(missing.scopes(), ["other", "more"]);
        assert!(missing.to_string().contains("`other more`"), "{missing}");
    }

    #[test]
    fn only_rfc_6749_scope_tokens_pass_the_check() {
        assert!(check_scopes("s", ["read", "files:read", "a!#[]~"]).is_ok());
        for bad in [
            "",
            "has space",
            "quote\"",
            "back\\slash",
            "caf\u{e9}",
            "tab\t",
        ] {
            let err = check_scopes("required_scopes", ["ok", bad]).unwrap_err();
            assert!(
                matches!(&err, ConfigError::InvalidScope { setting: "required_scopes", scope } if scope == bad),
                "{bad:?}: {err:?}"
            );
        }
    }
}
