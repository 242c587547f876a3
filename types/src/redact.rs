//! The one redaction of credentials in URL-like text.

use std::borrow::Cow;

/// What stands in for hidden user information.
pub const REDACTED: &str = "***";

/// `text` with its user information (a user name, password or token before the host)
/// replaced by [`REDACTED`], for errors, logs and progress.
///
/// * With a scheme (`scheme://…` where the scheme is `[A-Za-z][A-Za-z0-9+.-]*`, including nested ones such as `docker://tcp://…`),
///   everything from after the first `://` up to the **last** `@` of the text is hidden.
///   A password may itself contain `/`, `?`, `#`, `:`, `://` or `@`, so the authority cannot
///   be taken to end at the first `/`: the last `@` is the only safe end. A path that contains
///   an `@` is therefore hidden as well; hiding too much is the safe side.
/// * Without a scheme (scp-like `user@host:path`), everything before the last `@` is hidden.
///   (An image reference with a digest, `app@sha256:…`, looks the same: do not pass image
///   references here.)
/// * Text without an `@` is returned unchanged.
///
/// ```
/// use cicd_agents_types::redact_userinfo;
/// assert_eq!(redact_userinfo("tcp://user:se/cret@host:1234"), "tcp://***@host:1234");
/// assert_eq!(redact_userinfo("tcp://user:se://cret@host"), "tcp://***@host");
/// assert_eq!(redact_userinfo("https://host/repo.git"), "https://host/repo.git");
/// assert_eq!(redact_userinfo("git@host:org/repo.git"), "***@host:org/repo.git");
/// ```
pub fn redact_userinfo(text: &str) -> Cow<'_, str> {
    if let Some(scheme_end) = text.find("://").filter(|end| is_scheme(&text[..*end])) {
        let start = scheme_end + 3;
        return match text[start..].rfind('@') {
            Some(at) => Cow::Owned(format!(
                "{}{REDACTED}{}",
                &text[..start],
                &text[start + at..]
            )),
            None => Cow::Borrowed(text),
        };
    }
    match text.rfind('@') {
        Some(at) => Cow::Owned(format!("{REDACTED}{}", &text[at..])),
        None => Cow::Borrowed(text),
    }
}

/// `[A-Za-z][A-Za-z0-9+.-]*` (RFC 3986).
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_up_to_the_last_at() {
        for (input, expected) in [
            ("tcp://user:se/cret@host:1234", "tcp://***@host:1234"),
            ("tcp://user:se://cret@host", "tcp://***@host"),
            ("docker://tcp://u:p@h:2375", "docker://***@h:2375"),
            ("https://a@b@host/x", "https://***@host/x"),
            ("https://host/x", "https://host/x"),
            ("unix:///run/buildkit.sock", "unix:///run/buildkit.sock"),
            ("git@github.com:org/repo.git", "***@github.com:org/repo.git"),
            ("plain text", "plain text"),
            ("u:p://x@host:r", "***@host:r"),
            ("", ""),
        ] {
            assert_eq!(redact_userinfo(input), expected, "{input}");
        }
    }
}
