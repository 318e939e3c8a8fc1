//! The configuration text of API keys (`name:sha256:<hex>:scope1 scope2`, entries separated by
//! `;` or new lines, `#` comments) and the bounded read of a key file.

use std::io::Read as _;

use super::{ApiKeyEntry, MAX_KEY_FILE_BYTES, StoredKey, stored_key};
use crate::error::ConfigError;

/// Parses configuration text into `keys`; errors name `origin` and the line.
pub(super) fn parse_into(
    keys: &mut Vec<StoredKey>,
    text: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.trim_start().starts_with('#') {
            continue;
        }
        for entry in line.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let malformed = |reason| ConfigError::MalformedApiKeyEntry {
                origin: origin.to_owned(),
                line: line_no,
                reason,
            };
            let mut parts = entry.splitn(4, ':');
            let name = parts.next().unwrap_or_default().trim();
            let (Some(label), Some(hex)) = (parts.next(), parts.next()) else {
                return Err(malformed(
                    "the entry has no `:sha256:<hex>` after the name (a key itself is never \
                     configured, only its hash)",
                ));
            };
            if name.is_empty() {
                return Err(malformed("the entry has no name before the first `:`"));
            }
            let scopes = parts.next().unwrap_or_default().split_ascii_whitespace();
            let entry =
                ApiKeyEntry::new(name, format!("{}:{}", label.trim(), hex.trim())).scopes(scopes);
            let key = stored_key(entry).map_err(|source| ConfigError::InvalidApiKeyEntry {
                origin: origin.to_owned(),
                line: line_no,
                source: Box::new(source),
            })?;
            keys.push(key);
        }
    }
    Ok(())
}

pub(super) fn read_key_file(path: &std::path::Path) -> Result<String, ConfigError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| ConfigError::ApiKeyFileUnreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(ConfigError::ApiKeyFileTooLarge {
            path: path.to_owned(),
            limit: MAX_KEY_FILE_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|_| ConfigError::ApiKeyFileUnreadable {
        path: path.to_owned(),
        reason: "it is not UTF-8 text".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn configuration_text_takes_semicolons_new_lines_comments_and_colons_in_scopes() {
        let text = format!(
            "# keys\n ci : {} : read files:write ;dash:{}\n\n;\nbot:{}:",
            ApiKey::hash_of("k1"),
            ApiKey::hash_of("k2")
                .to_uppercase()
                .replace("SHA256:", "sha256:"),
            ApiKey::hash_of("k3"),
        );
        let verifier = ApiKeyVerifier::from_config(&text).unwrap();
        assert_eq!(verifier.names().collect::<Vec<_>>(), ["ci", "dash", "bot"]);
        let ci = block_on(verifier.verify("k1")).unwrap();
        assert_eq!(ci.scopes, ["read", "files:write"]);
        let dash = block_on(verifier.verify("k2")).unwrap();
        assert!(dash.scopes.is_empty());
        assert!(block_on(verifier.verify("k3")).is_ok());
    }

    #[test]
    fn malformed_text_is_refused_with_its_line_and_without_the_entry() {
        let good = format!("ok:{}", ApiKey::hash_of("k"));
        let cases: [(String, usize); 4] = [
            (format!("{good}\nmcpk_secret_pasted_here"), 2),
            (format!("{good}\n\n:{}", ApiKey::hash_of("x")), 3),
            (format!("{good}; x:sha256"), 1),
            ("a:sha256:".to_owned(), 1),
        ];
        for (text, line) in cases {
            let err = ApiKeyVerifier::from_config(&text).unwrap_err();
            match &err {
                ConfigError::MalformedApiKeyEntry { line: at, .. }
                | ConfigError::InvalidApiKeyEntry { line: at, .. } => {
                    assert_eq!(*at, line, "{text:?}: {err}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
            assert!(!err.to_string().contains("mcpk_secret"), "{err}");
        }
    }

    #[test]
    fn a_bad_hash_or_scope_in_text_names_the_line_and_the_cause() {
        let err = ApiKeyVerifier::from_config(&format!(
            "a:{}\nb:sha256:{}:read",
            ApiKey::hash_of("1"),
            "zz".repeat(32)
        ))
        .unwrap_err();
        let ConfigError::InvalidApiKeyEntry {
            line: 2, source, ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert!(matches!(**source, ConfigError::InvalidApiKeyHash { .. }));

        let err =
            ApiKeyVerifier::from_config(&format!("a:{}:re\"ad", ApiKey::hash_of("1"))).unwrap_err();
        let ConfigError::InvalidApiKeyEntry {
            line: 1, source, ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert!(matches!(**source, ConfigError::InvalidScope { .. }));
    }

    #[test]
    fn files_are_read_bounded_and_errors_name_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("mcp-auth-api-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("keys");
        std::fs::write(&good, format!("# CI\nci:{}:read\n", ApiKey::hash_of("k"))).unwrap();
        let verifier = ApiKeyVerifier::from_file(&good).unwrap();
        assert_eq!(verifier.names().collect::<Vec<_>>(), ["ci"]);

        let bad = dir.join("bad");
        std::fs::write(&bad, format!("ci:{}\nbroken\n", ApiKey::hash_of("k"))).unwrap();
        let err = ApiKeyVerifier::from_file(&bad).unwrap_err();
        assert!(
            matches!(&err, ConfigError::MalformedApiKeyEntry { line: 2, origin, .. } if origin.contains("bad")),
            "{err:?}"
        );

        let big = dir.join("big");
        std::fs::write(&big, vec![b'#'; MAX_KEY_FILE_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            ApiKeyVerifier::from_file(&big),
            Err(ConfigError::ApiKeyFileTooLarge { .. })
        ));
        assert!(matches!(
            ApiKeyVerifier::from_file(dir.join("missing")),
            Err(ConfigError::ApiKeyFileUnreadable { .. })
        ));
        let binary = dir.join("binary");
        std::fs::write(&binary, [0xff_u8, 0xfe]).unwrap();
        assert!(matches!(
            ApiKeyVerifier::from_file(&binary),
            Err(ConfigError::ApiKeyFileUnreadable { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
