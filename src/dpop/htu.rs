//! The `htu` comparison (RFC 9449 §4.3): both sides normalised per RFC 3986 §6.2.2 (syntax) and
//! §6.2.3 (scheme), without query and fragment.

use url::Url;

/// `uri` normalised for the `htu` comparison: scheme and host lower-cased, the default port
/// removed, percent-encoding and dot segments normalised by the WHATWG parser, query and
/// fragment dropped. `None` when `uri` is not an absolute `http`/`https` URL with a host.
pub(crate) fn normalise(uri: &str) -> Option<String> {
    let mut url = Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.into())
}

/// The URL the client addressed, as the proof must name it: the configured public base URL
/// (origin, and an optional path prefix added by a proxy) followed by the request's path. The
/// request's own authority (`Host`, absolute-form URI) is never used.
pub(crate) fn expected(public_base: &str, path: &str) -> Option<String> {
    let base = public_base.trim_end_matches('/');
    let path = if path.starts_with('/') { path } else { "/" };
    normalise(&format!("{base}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_default_port_query_and_fragment_are_normalised() {
        let want = Some("https://api.example.com/mcp".to_owned());
        assert_eq!(normalise("https://API.Example.COM/mcp"), want);
        assert_eq!(normalise("HTTPS://api.example.com:443/mcp"), want);
        assert_eq!(normalise("https://api.example.com/mcp?x=1#f"), want);
        assert_eq!(
            normalise("http://localhost:80/a/./b/../mcp"),
            Some("http://localhost/a/mcp".to_owned())
        );
        assert_eq!(
            normalise("https://api.example.com:8443/mcp"),
            Some("https://api.example.com:8443/mcp".to_owned())
        );
    }

    #[test]
    fn different_paths_ports_and_schemes_stay_different() {
        assert_ne!(normalise("https://h/mcp"), normalise("https://h/MCP"));
        assert_ne!(normalise("https://h/mcp"), normalise("http://h/mcp"));
        assert_ne!(normalise("https://h/mcp"), normalise("https://h:8443/mcp"));
    }

    #[test]
    fn non_http_or_relative_urls_are_refused() {
        assert_eq!(normalise("/mcp"), None);
        assert_eq!(normalise("ftp://h/mcp"), None);
        assert_eq!(normalise("mailto:a@b"), None);
        assert_eq!(normalise(""), None);
    }

    #[test]
    fn the_expected_url_is_the_public_base_plus_the_path() {
        assert_eq!(
            expected("https://public.example.com", "/mcp"),
            Some("https://public.example.com/mcp".to_owned())
        );
        assert_eq!(
            expected("https://public.example.com/prefix/", "/mcp"),
            Some("https://public.example.com/prefix/mcp".to_owned())
        );
    }
}
