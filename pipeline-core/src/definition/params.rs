//! Parameters: names, defaults, overrides and `${name}` substitution.
//!
//! Syntax in any string value of the definition (outside `parameters:` itself):
//!
//! * `${name}` is replaced by the parameter's value;
//! * `$$` writes a single `$`;
//! * a `$` followed by anything else is kept as it is (so `$HOME` or `$BASE_IMAGE` in a value
//!   stay literal);
//! * `${` without a closing `}`, an empty or malformed name, and a name that is not a parameter
//!   are errors naming the key and the line.
//!
//! Substitution is one pass: a value that contains `${…}` is not expanded again.

use std::collections::BTreeMap;

use super::error::DefinitionError;
use super::reader::Str;

/// Built-in parameters and their defaults (the original Argo workflow's parameters).
pub const BUILTIN_PARAMETERS: [(&str, &str); 3] = [
    ("image-tag", "latest"),
    ("git-ref", "refs/heads/main"),
    ("dockerfile", "Dockerfile"),
];

/// Whether `name` is a valid parameter name: `[A-Za-z0-9][A-Za-z0-9_-]*`, at most 64
/// characters.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Substitutes `${name}` in `s`.
pub(crate) fn substitute(
    file: &str,
    s: &Str,
    params: &BTreeMap<String, String>,
) -> Result<String, DefinitionError> {
    let text = &s.value;
    if !text.contains('$') {
        return Ok(text.clone());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let Some(end) = tail.find('}') else {
                return Err(s.invalid(file, "`${` without a closing `}`"));
            };
            let name = &tail[..end];
            if !valid_name(name) {
                return Err(s.invalid(
                    file,
                    format!(
                        "`${{{name}}}`: a parameter name is letters, digits, `-` and `_` (write `$$` for a literal `$`)"
                    ),
                ));
            }
            match params.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    let known: Vec<&str> = params.keys().map(String::as_str).collect();
                    return Err(s.invalid(
                        file,
                        format!(
                            "unknown parameter `${{{name}}}`; the pipeline's parameters are: {}",
                            known.join(", ")
                        ),
                    ));
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses `name=value` (as given to `--set`).
///
/// ```
/// use cicd_agents_pipeline::definition::parse_override;
///
/// assert_eq!(parse_override("image-tag=1.2.3")?, ("image-tag".to_string(), "1.2.3".to_string()));
/// assert!(parse_override("image-tag").is_err());
/// # Ok::<(), cicd_agents_pipeline::definition::DefinitionError>(())
/// ```
pub fn parse_override(text: &str) -> Result<(String, String), DefinitionError> {
    let Some((name, value)) = text.split_once('=') else {
        return Err(DefinitionError::InvalidOverride {
            text: text.to_string(),
            reason: "expected NAME=VALUE".into(),
        });
    };
    let name = name.trim();
    if !valid_name(name) {
        return Err(DefinitionError::InvalidOverride {
            text: text.to_string(),
            reason: "a parameter name is letters, digits, `-` and `_`".into(),
        });
    }
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Str {
        Str {
            value: text.into(),
            key: "build.images[0]".into(),
            line: 7,
            column: 9,
        }
    }

    #[test]
    fn substitutes() {
        let params: BTreeMap<String, String> = [
            ("image-tag".to_string(), "1.2.3".to_string()),
            ("registry".to_string(), "r:5000".to_string()),
        ]
        .into();
        let ok = |t: &str| substitute("p.yaml", &s(t), &params).unwrap_or_else(|e| e.to_string());
        assert_eq!(ok("${registry}/app:${image-tag}"), "r:5000/app:1.2.3");
        assert_eq!(ok("cost $$5 and $HOME and $"), "cost $5 and $HOME and $");
        assert_eq!(ok("$${image-tag}"), "${image-tag}");
        assert_eq!(ok("no params"), "no params");
        let err = substitute("p.yaml", &s("x:${imagetag}"), &params)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("p.yaml:7:9: `build.images[0]`: unknown parameter `${imagetag}`"),
            "{err}"
        );
        assert!(err.contains("image-tag, registry"), "{err}");
        assert!(substitute("p.yaml", &s("${image-tag"), &params).is_err());
        assert!(substitute("p.yaml", &s("${}"), &params).is_err());
    }

    #[test]
    fn names() {
        assert!(valid_name("image-tag"));
        assert!(valid_name("A_1"));
        assert!(!valid_name("-x"));
        assert!(!valid_name(""));
        assert!(!valid_name("a.b"));
    }
}
