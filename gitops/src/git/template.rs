//! Commit message templates.
//!
//! Syntax: literal text with `{name}` placeholders. Names: `{image}`, `{old_tag}`,
//! `{new_tag}`, `{digest}`, `{source_commit}`, `{files}` (changed paths, comma separated).
//! `{{` and `}}` write literal braces. Unknown names, unclosed `{` and a lone `}` are errors
//! when the template is parsed, not when a commit is made.
//!
//! It is deliberately not a template language: no conditionals, no loops, no expressions, no
//! nested expansion (a value containing `{new_tag}` is written as is). Control characters
//! (including line breaks) in substituted values are replaced by spaces, so a value cannot add
//! lines such as trailers to the message. A missing value renders as an empty string.

use std::fmt;

use crate::error::GitError;

/// Values available to a [`MessageTemplate`]. Empty strings for what is unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitVars {
    /// The image (repository) name, e.g. `registry.local:5000/team/app`.
    pub image: String,
    /// The tag before the update.
    pub old_tag: String,
    /// The tag after the update.
    pub new_tag: String,
    /// The image digest (`sha256:…`).
    pub digest: String,
    /// The commit of the application source the image was built from.
    pub source_commit: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Image,
    OldTag,
    NewTag,
    Digest,
    SourceCommit,
    Files,
}

impl Var {
    fn from_name(name: &str) -> Option<Var> {
        Some(match name {
            "image" => Var::Image,
            "old_tag" => Var::OldTag,
            "new_tag" => Var::NewTag,
            "digest" => Var::Digest,
            "source_commit" => Var::SourceCommit,
            "files" => Var::Files,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Var::Image => "image",
            Var::OldTag => "old_tag",
            Var::NewTag => "new_tag",
            Var::Digest => "digest",
            Var::SourceCommit => "source_commit",
            Var::Files => "files",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

/// A parsed commit message template.
///
/// Syntax: literal text with `{name}` placeholders. Names: `{image}`, `{old_tag}`,
/// `{new_tag}`, `{digest}`, `{source_commit}`, `{files}` (changed paths, comma separated).
/// `{{` and `}}` write literal braces. Unknown names, unclosed `{` and a lone `}` are errors
/// when the template is parsed, not when a commit is made.
///
/// It is deliberately not a template language: no conditionals, no loops, no expressions, no
/// nested expansion (a value containing `{new_tag}` is written as is). Control characters
/// (including line breaks) in substituted values are replaced by spaces, so a value cannot add
/// lines such as trailers to the message. A missing value renders as an empty string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplate {
    parts: Vec<Part>,
}

/// The default template.
pub const DEFAULT_TEMPLATE: &str =
    "Update {image} to {new_tag}\n\nPrevious tag: {old_tag}\nDigest: {digest}\nSource commit: {source_commit}\nFiles: {files}\n";

impl Default for MessageTemplate {
    fn default() -> Self {
        // The default template is a constant known to parse; fall back to a literal otherwise.
        MessageTemplate::parse(DEFAULT_TEMPLATE).unwrap_or_else(|_| MessageTemplate {
            parts: vec![Part::Text("Update image".into())],
        })
    }
}

impl MessageTemplate {
    /// Parses a template.
    pub fn parse(template: &str) -> Result<Self, GitError> {
        let err = |position: usize, reason: String| GitError::InvalidTemplate { position, reason };
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut iter = template.char_indices().peekable();
        while let Some((i, c)) = iter.next() {
            match c {
                '{' if iter.peek().map(|&(_, c)| c) == Some('{') => {
                    iter.next();
                    text.push('{');
                }
                '}' if iter.peek().map(|&(_, c)| c) == Some('}') => {
                    iter.next();
                    text.push('}');
                }
                '}' => return Err(err(i, "lone `}` (write `}}` for a literal brace)".into())),
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in iter.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(err(
                            i,
                            "unclosed `{` (write `{{` for a literal brace)".into(),
                        ));
                    }
                    let var = Var::from_name(name.trim()).ok_or_else(|| {
                        err(
                            i,
                            format!(
                                "unknown variable `{{{name}}}`; known: {{image}}, {{old_tag}}, {{new_tag}}, {{digest}}, {{source_commit}}, {{files}}"
                            ),
                        )
                    })?;
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var(var));
                }
                _ => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        let has_text = parts
            .iter()
            .any(|p| matches!(p, Part::Text(t) if !t.trim().is_empty()));
        if !has_text {
            return Err(err(
                0,
                "the template needs some literal text so that the message is never empty".into(),
            ));
        }
        Ok(Self { parts })
    }

    /// Renders the message.
    pub fn render(&self, vars: &CommitVars, files: &[String]) -> String {
        let files = files.join(", ");
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => {
                    let value = match v {
                        Var::Image => &vars.image,
                        Var::OldTag => &vars.old_tag,
                        Var::NewTag => &vars.new_tag,
                        Var::Digest => &vars.digest,
                        Var::SourceCommit => &vars.source_commit,
                        Var::Files => &files,
                    };
                    out.extend(value.chars().map(|c| if c.is_control() { ' ' } else { c }));
                }
            }
        }
        out
    }
}

impl fmt::Display for MessageTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(t) => f.write_str(&t.replace('{', "{{").replace('}', "}}"))?,
                Part::Var(v) => write!(f, "{{{}}}", v.name())?,
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for MessageTemplate {
    type Err = GitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageTemplate::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> CommitVars {
        CommitVars {
            image: "app".into(),
            old_tag: "1.0".into(),
            new_tag: "1.1".into(),
            digest: "sha256:ab".into(),
            source_commit: "abc123".into(),
        }
    }

    #[test]
    fn renders_variables_and_escapes() {
        let t = MessageTemplate::parse("deploy {image}: {old_tag} -> {new_tag} {{literal}} ({digest}, {source_commit}) [{files}]")
            .map_err(|e| e.to_string());
        let t = t.as_ref().map_err(String::as_str);
        assert_eq!(
            t.map(|t| t.render(&vars(), &["a.yaml".into(), "b.yaml".into()])),
            Ok("deploy app: 1.0 -> 1.1 {literal} (sha256:ab, abc123) [a.yaml, b.yaml]".to_string())
        );
    }

    #[test]
    fn values_cannot_add_lines_or_expand() {
        let t = MessageTemplate::parse("x {image}").ok();
        let v = CommitVars {
            image: "a\nSigned-off-by: evil {new_tag}".into(),
            ..vars()
        };
        assert_eq!(
            t.map(|t| t.render(&v, &[])).as_deref(),
            Some("x a Signed-off-by: evil {new_tag}")
        );
    }

    #[test]
    fn rejects_bad_templates() {
        for bad in ["{nope}", "a {image", "a } b", "{image}", "  {new_tag}  "] {
            assert!(MessageTemplate::parse(bad).is_err(), "{bad:?}");
        }
        assert!(MessageTemplate::parse(DEFAULT_TEMPLATE).is_ok());
    }

    #[test]
    fn display_round_trips() {
        let src = "a {{b}} {new_tag}";
        assert_eq!(
            MessageTemplate::parse(src)
                .map(|t| t.to_string())
                .ok()
                .as_deref(),
            Some(src)
        );
    }
}
