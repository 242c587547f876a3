//! `Debug` output of the pipeline's credential-holding types never shows a token.

use cicd_agents_pipeline::git::{Author, GitAuth, WriteBackConfig};

const TOKEN: &str = "ghp_secret-token-81c2";

#[test]
fn git_auth() {
    let auth = GitAuth::token(TOKEN);
    for debug in [format!("{auth:?}"), format!("{auth:#?}")] {
        assert!(!debug.contains(TOKEN), "{debug}");
        assert!(
            debug.contains("x-access-token") && debug.contains("REDACTED"),
            "{debug}"
        );
    }
}

#[test]
fn write_back_config() {
    let mut config = WriteBackConfig::new(
        "https://git.example/org/charts.git",
        "main",
        Author {
            name: "ci".into(),
            email: "ci@example.com".into(),
        },
    );
    config.auth = Some(GitAuth::token(TOKEN));
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("git.example"), "{debug}");
}
