use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn branch_names_follow_check_ref_format() {
    for ok in [
        "main",
        "release/1.2",
        "a#b",
        "feature/x-y_z",
        "deploy-lock",
        "x.lock.y",
        "ünïcode",
        "a@b",
        "v1.0",
    ] {
        assert_eq!(BranchName::new(ok).unwrap().as_str(), ok);
    }
    for bad in [
        "",
        "deploy.lock",
        "x/y.lock",
        ".hidden/x",
        "x/.hidden",
        "a..b",
        "a b",
        "a\tb",
        "a~b",
        "a^b",
        "a:b",
        "a?b",
        "a*b",
        "a[b",
        "a\\b",
        "x@{1}",
        "@",
        "a/",
        "/a",
        "a//b",
        "a.",
        "-a",
        "HEAD",
        "refs/heads/main",
        "a\u{7f}",
    ] {
        let err = BranchName::new(bad).unwrap_err();
        assert_eq!(err.name, bad);
        assert!(err.to_string().contains("branch name"), "{err}");
    }
    assert_eq!(
        BranchName::new("main").unwrap().to_ref().as_str(),
        "refs/heads/main"
    );
    assert!(GitRef::new("refs/heads/main").is_ok());
    assert!(GitRef::new("HEAD").is_ok());
    assert!(GitRef::new("a..b").is_err());
}

#[test]
fn urls() {
    let url = GitUrl::new("https://git.example:8443/org/repo.git").unwrap();
    assert_eq!(url.scheme(), GitUrlScheme::Https);
    assert_eq!(url.host(), Some("git.example"));
    assert_eq!(url.port(), Some(8443));
    assert_eq!(url.path(), "/org/repo.git");
    assert_eq!(url.origin().as_deref(), Some("https://git.example:8443"));
    assert!(!url.has_userinfo());
    assert_eq!(url.to_string(), "https://git.example:8443/org/repo.git");

    let url = GitUrl::new("http://[::1]:3000/r.git").unwrap();
    assert_eq!(url.host(), Some("::1"));
    assert_eq!(url.host_port().as_deref(), Some("[::1]:3000"));
    assert!(url.is_loopback());

    let url = GitUrl::new("file:///srv/git/repo.git").unwrap();
    assert_eq!(url.host(), None);
    assert_eq!(url.path(), "/srv/git/repo.git");

    let url = GitUrl::new("https://user:pa/ss@word@host/r.git").unwrap();
    assert!(url.has_userinfo());
    assert_eq!(url.host(), Some("host"));
    assert_eq!(url.to_string(), "https://***@host/r.git");
    assert!(!format!("{url:?}").contains("pa/ss"));
    assert_eq!(url.as_secret_str(), "https://user:pa/ss@word@host/r.git");

    let scp = GitUrl::new("git@github.com:org/repo.git").unwrap();
    assert_eq!(scp.scheme(), GitUrlScheme::Scp);
    assert_eq!(scp.to_string(), "***@github.com:org/repo.git");
    assert_eq!(scp.origin(), None);

    for bad in [
        "",
        "host",
        "/local/path",
        "ftp://host/r",
        "https:///r.git",
        "https://host:0/r",
        "https://host:99999/r",
        "https://ho st/r",
        "https://[::1/r",
        "file://user@/x",
        "https://h%t/r",
    ] {
        assert!(GitUrl::new(bad).is_err(), "{bad}");
    }
}

/// Random user information made of distinctive runs (`secret_runs`) joined by the characters
/// that break naive parsers.
fn random_userinfo(rng: &mut StdRng) -> (String, Vec<String>) {
    const ALPHABET: &[char] = &['Q', 'Z', 'J', 'X', 'Ж', 'ü', '€', '7'];
    const SEPARATORS: &[&str] = &[
        "/",
        "@",
        ":",
        "://",
        "%",
        " ",
        "%2F",
        "?",
        "#",
        "\u{1F512}",
        "//",
        "",
    ];
    let mut password = String::new();
    let mut runs = Vec::new();
    for _ in 0..rng.random_range(1..5) {
        let run: String = (0..rng.random_range(3..8))
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
            .collect();
        password.push_str(&run);
        password.push_str(SEPARATORS[rng.random_range(0..SEPARATORS.len())]);
        runs.push(run);
    }
    (password, runs)
}

/// No error and no display of any URL shows its password, whatever the password contains.
#[test]
fn no_output_shows_the_password() {
    let mut rng = StdRng::seed_from_u64(0x5eed_1234);
    let prefixes = [
        "https://",
        "http://",
        "ssh://",
        "git://",
        "file://",
        "tcp://",
        "docker://tcp://",
        "",
    ];
    let tails = [
        "host/org/r.git",
        "host:22/r",
        "h:x",
        "[::1]:1/r",
        "",
        "/",
        "host:org/r.git",
    ];
    for _ in 0..5000 {
        let (password, runs) = random_userinfo(&mut rng);
        let prefix = prefixes[rng.random_range(0..prefixes.len())];
        let tail = tails[rng.random_range(0..tails.len())];
        // Without a scheme, text starting `QZJ://` would read as a URL with scheme `QZJ`.
        let user = if prefix.is_empty() || rng.random_bool(0.5) {
            "user:"
        } else {
            ""
        };
        let input = format!("{prefix}{user}{password}@{tail}");
        let shown = match GitUrl::new(&input) {
            Ok(url) => format!("{url} {url:?}"),
            Err(err) => format!("{err} {err:?}"),
        };
        let redacted = redact_userinfo(&input);
        for text in [shown.as_str(), &redacted] {
            assert!(!text.contains(&password), "{input:?} shown as {text:?}");
            for run in &runs {
                assert!(!text.contains(run.as_str()), "{input:?} shown as {text:?}");
            }
        }
    }
}
