use super::*;

#[test]
fn parses_porcelain_push_output() {
    let ok = "To http://h/r.git\n \tHEAD:refs/heads/main\t1111111..2222222\nDone\n";
    assert_eq!(
        parse_push_porcelain(ok, "refs/heads/main"),
        Some(PushStatus::Pushed)
    );
    let new = "To http://h/r.git\n*\tHEAD:refs/heads/deploy\t[new branch]\nDone\n";
    assert_eq!(
        parse_push_porcelain(new, "refs/heads/deploy"),
        Some(PushStatus::Pushed)
    );
    let rejected = "To http://h/r.git\n!\tHEAD:refs/heads/main\t[rejected] (fetch first)\nDone\n";
    assert!(matches!(
        parse_push_porcelain(rejected, "refs/heads/main"),
        Some(PushStatus::Rejected {
            retryable: true,
            ..
        })
    ));
    let lock = "!\tHEAD:refs/heads/main\t[remote rejected] (cannot lock ref 'refs/heads/main': is at 1 but expected 2)\n";
    assert!(matches!(
        parse_push_porcelain(lock, "refs/heads/main"),
        Some(PushStatus::Rejected {
            retryable: true,
            ..
        })
    ));
    let hook = "!\tHEAD:refs/heads/main\t[remote rejected] (pre-receive hook declined)\n";
    assert!(matches!(
        parse_push_porcelain(hook, "refs/heads/main"),
        Some(PushStatus::Rejected {
            retryable: false,
            ..
        })
    ));
    // Another ref's status does not count.
    assert_eq!(parse_push_porcelain(rejected, "refs/heads/other"), None);
}

#[test]
fn validates_urls() {
    assert!(validate_url("https://git.example.com/org/chart.git", true, false).is_ok());
    assert!(validate_url("http://127.0.0.1:8418/chart.git", true, false).is_ok());
    assert!(validate_url("http://localhost/chart.git", true, false).is_ok());
    assert!(validate_url("http://[::1]:80/chart.git", true, false).is_ok());
    assert!(validate_url("http://git.example.com/chart.git", true, false).is_err());
    assert!(validate_url("http://git.example.com/chart.git", true, true).is_ok());
    assert!(validate_url("file:///tmp/x.git", false, false).is_ok());
    assert!(validate_url("file:///tmp/x.git", true, false).is_err());
    assert!(validate_url("ssh://git@h/x.git", false, false).is_err());
    assert!(validate_url("git@h:x.git", false, false).is_err());
    let err = validate_url("https://user:hunter2@h/x.git", false, false)
        .map(|_| ())
        .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let (origin, _) = validate_url("https://h:8443/x.git", true, false).unwrap_or_default();
    assert_eq!(origin, "https://h:8443");
}

#[test]
fn validates_branches() {
    for ok in ["main", "deploy/app-1", "release-1.2"] {
        assert!(validate_branch(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "-x",
        "a..b",
        "a b",
        "a:b",
        "x.lock",
        "refs/heads/main",
        "a/.b",
        "a~1",
        "@",
    ] {
        assert!(validate_branch(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn backoff_is_bounded_and_jittered() {
    let p = RetryPolicy {
        timeout: Duration::from_secs(5),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(1000),
    };
    for attempt in 1..10 {
        let d = p.backoff(attempt).as_millis() as u64;
        let full = (100u64 << (attempt - 1)).min(1000);
        assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d}");
    }
}

#[test]
fn the_budget_cuts_the_backoff_at_the_deadline_and_then_stops() {
    let p = RetryPolicy {
        timeout: Duration::from_millis(300),
        initial_backoff: Duration::from_secs(10),
        max_backoff: Duration::from_secs(10),
    };
    let budget = Budget::start(&p);
    let delay = budget.next_delay(1).unwrap_or_default();
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_millis(300),
        "{delay:?}"
    );
    std::thread::sleep(Duration::from_millis(320));
    assert_eq!(budget.next_delay(2), None);
}

#[test]
fn elapsed_times_read_naturally() {
    let ms = Duration::from_millis;
    assert_eq!(format_elapsed(ms(350)), "350ms");
    assert_eq!(format_elapsed(ms(4_250)), "4.2s");
    assert_eq!(format_elapsed(ms(120_000)), "2m");
    assert_eq!(format_elapsed(ms(123_500)), "2m 3.5s");
    assert_eq!(format_elapsed(ms(61_000)), "1m 1s");
}

#[test]
fn worktree_resolve_refuses_escapes() {
    let dir = tempfile::tempdir().map_err(|e| e.to_string());
    let Ok(dir) = dir else { return };
    let root = dir.path();
    let _ = std::fs::create_dir_all(root.join("chart"));
    let _ = std::fs::create_dir_all(root.join(".git"));
    let _ = std::fs::write(root.join("chart/values.yaml"), "a: 1\n");
    let wt = Worktree { root, attempt: 1 };
    assert!(wt.resolve("chart/values.yaml").is_ok());
    assert!(wt.resolve("./chart/new.yaml").is_ok());
    for bad in [
        "../x.yaml",
        "/etc/passwd",
        "chart/../../x",
        ".git/config",
        "",
    ] {
        assert!(
            matches!(wt.resolve(bad), Err(GitError::PathOutsideRepo { .. })),
            "{bad:?}"
        );
    }
    #[cfg(unix)]
    {
        let _ = std::os::unix::fs::symlink("/etc", root.join("escape"));
        assert!(wt.resolve("escape/passwd").is_err());
    }
}
