//! Tests of the walker: order, stat fields, filters, follow paths, errors.

use super::*;
use crate::fsutil::go_mode;
use crate::fsutil::validator::{OrderError, OrderValidator};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(p, content).unwrap();
}

fn paths(s: &ContextSnapshot) -> Vec<&str> {
    s.entries.iter().map(|e| e.path.as_str()).collect()
}

fn walk(root: &Path, f: impl FnOnce(&mut WalkOptions)) -> ContextSnapshot {
    let mut o = WalkOptions::default();
    f(&mut o);
    let s = walk_context(root, &o).unwrap();
    OrderValidator::check(&s.entries).unwrap();
    s
}

#[test]
fn order_is_depth_first_by_name_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for f in [
        "a/b", "a/c/d", "a.txt", "a-b", "B", "b", "_x", "z/y/x", "ä", "a0",
    ] {
        write(r, f, f);
    }
    fs::create_dir(r.join("empty")).unwrap();
    let s = walk(r, |_| {});
    assert_eq!(
        paths(&s),
        vec![
            "B", "_x", "a", "a/b", "a/c", "a/c/d", "a-b", "a.txt", "a0", "b", "empty", "z", "z/y",
            "z/y/x", "ä"
        ]
    );
    // A full-path sort would be rejected by the receiver.
    let mut sorted: Vec<ContextEntry> = s.entries.clone();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    assert!(matches!(
        OrderValidator::check(&sorted),
        Err(OrderError::OutOfOrder { .. })
    ));
}

#[test]
fn stat_fields() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "file.txt", "hello");
    fs::set_permissions(r.join("file.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    write(r, "suid", "x");
    fs::set_permissions(r.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::create_dir(r.join("sticky")).unwrap();
    fs::set_permissions(r.join("sticky"), fs::Permissions::from_mode(0o1777)).unwrap();
    symlink("file.txt", r.join("link")).unwrap();
    symlink("/etc/passwd", r.join("abs-link")).unwrap();
    let when = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
    fs::File::options()
        .write(true)
        .open(r.join("file.txt"))
        .unwrap()
        .set_modified(when)
        .unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(r.join("sock")).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(r.join("fifo"))
        .status();

    let s = walk(r, |_| {});
    let get = |p: &str| s.entries.iter().find(|e| e.path == p).unwrap().clone();

    let f = get("file.txt");
    assert_eq!(f.kind, EntryKind::File);
    assert_eq!(f.mode, 0o640);
    assert_eq!(f.size, 5);
    assert_eq!(f.mod_time, 1_700_000_000_123_456_789);
    assert_eq!((f.uid, f.gid), (0, 0));
    assert!(f.linkname.is_empty());
    assert!(f.can_request_data());

    assert_eq!(get("suid").mode, go_mode::SETUID | 0o755);
    let st = get("sticky");
    assert_eq!(st.mode, go_mode::DIR | go_mode::STICKY | 0o777);
    assert_eq!(st.size, 0);
    assert!(!st.can_request_data());

    let l = get("link");
    assert_eq!(l.kind, EntryKind::Symlink);
    assert_eq!(l.mode & go_mode::SYMLINK, go_mode::SYMLINK);
    assert_eq!(l.linkname, "file.txt");
    assert_eq!(l.size, 8);
    assert_eq!(get("abs-link").linkname, "/etc/passwd");

    let sock = get("sock");
    assert_eq!(sock.kind, EntryKind::Socket);
    assert_eq!(
        sock.mode & go_mode::TYPE,
        0,
        "socket bit is cleared like fsutil"
    );

    if matches!(fifo, Ok(status) if status.success()) {
        let p = get("fifo");
        assert_eq!(p.kind, EntryKind::NamedPipe);
        assert_eq!(p.mode & go_mode::NAMED_PIPE, go_mode::NAMED_PIPE);
        assert!(!p.can_request_data());
    }

    let owned = walk(r, |o| o.keep_ownership = true);
    let meta = fs::symlink_metadata(r.join("file.txt")).unwrap();
    let e = owned.entries.iter().find(|e| e.path == "file.txt").unwrap();
    assert_eq!((e.uid, e.gid), (meta.uid(), meta.gid()));
}

#[test]
fn hardlinks_point_at_the_first_sent_path() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "a/orig", "data!");
    fs::hard_link(r.join("a/orig"), r.join("b")).unwrap();
    fs::hard_link(r.join("a/orig"), r.join("c")).unwrap();
    let s = walk(r, |_| {});
    let get = |p: &str| s.entries.iter().find(|e| e.path == p).unwrap().clone();
    assert!(get("a/orig").linkname.is_empty());
    assert_eq!(get("b").linkname, "a/orig");
    assert_eq!(get("c").linkname, "a/orig");
    assert_eq!(get("b").size, 5);
    assert!(get("b").is_hardlink());
    // With the first path excluded, the next sent path becomes the target.
    let s = walk(r, |o| o.exclude_patterns = vec!["a".into()]);
    assert_eq!(paths(&s), vec!["b", "c"]);
    assert!(s.entries[0].linkname.is_empty());
    assert_eq!(s.entries[1].linkname, "b");
    assert_eq!(s.total_file_bytes(), 5);
}

fn sample_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for f in [
        "Dockerfile",
        "README.md",
        "src/main.rs",
        "src/lib/a.rs",
        "src/lib/b.txt",
        "node_modules/x/index.js",
        "node_modules/keep/k.js",
        "docs/a.md",
        "docs/public/p.html",
        "target/debug/out",
    ] {
        write(r, f, f);
    }
    dir
}

#[test]
fn excludes_with_exceptions_send_needed_parents() {
    let dir = sample_tree();
    let s = walk(dir.path(), |o| {
        o.exclude_patterns = vec![
            "node_modules".into(),
            "!node_modules/keep".into(),
            "docs".into(),
            "!docs/public/**".into(),
            "target".into(),
            "*.md".into(),
        ]
    });
    assert_eq!(
        paths(&s),
        vec![
            "Dockerfile",
            "docs",
            "docs/public",
            "docs/public/p.html",
            "node_modules",
            "node_modules/keep",
            "node_modules/keep/k.js",
            "src",
            "src/lib",
            "src/lib/a.rs",
            "src/lib/b.txt",
            "src/main.rs",
        ]
    );
}

#[test]
fn includes_select_paths_and_their_parents() {
    let dir = sample_tree();
    let s = walk(dir.path(), |o| {
        o.include_patterns = vec!["src/lib/*.rs".into(), "Dockerfile".into()]
    });
    assert_eq!(
        paths(&s),
        vec!["Dockerfile", "src", "src/lib", "src/lib/a.rs"]
    );
    let s = walk(dir.path(), |o| {
        o.include_patterns = vec!["src".into()];
        o.exclude_patterns = vec!["**/*.txt".into()];
    });
    assert_eq!(
        paths(&s),
        vec!["src", "src/lib", "src/lib/a.rs", "src/main.rs"]
    );
    // Include "." without follow paths matches nothing, as upstream.
    let s = walk(dir.path(), |o| o.include_patterns = vec![".".into()]);
    assert!(s.is_empty());
    // Missing includes send nothing, not even parents.
    let s = walk(dir.path(), |o| {
        o.include_patterns = vec!["src/nope/x".into()]
    });
    assert!(s.is_empty());
}

#[test]
fn follow_paths_resolve_symlinks_inside_the_context() {
    let dir = sample_tree();
    let r = dir.path();
    write(r, "build/Dockerfile.real", "FROM scratch");
    symlink("build/Dockerfile.real", r.join("Dockerfile.link")).unwrap();
    // An absolute target is taken relative to the context root.
    symlink("/src/lib", r.join("abs")).unwrap();
    // A directory symlink in the middle of a path.
    symlink("docs", r.join("d")).unwrap();
    // A link pointing outside is clamped to the root.
    symlink("../../../../etc/passwd", r.join("escape")).unwrap();

    let s = walk(r, |o| {
        o.follow_paths = vec![
            "Dockerfile.link".into(),
            "Dockerfile.link.dockerignore".into(),
        ]
    });
    assert_eq!(
        paths(&s),
        vec!["Dockerfile.link", "build", "build/Dockerfile.real"]
    );

    let s = walk(r, |o| o.follow_paths = vec!["abs/a.rs".into()]);
    assert_eq!(paths(&s), vec!["abs", "src", "src/lib", "src/lib/a.rs"]);

    let s = walk(r, |o| o.follow_paths = vec!["d/public".into()]);
    assert_eq!(
        paths(&s),
        vec!["d", "docs", "docs/public", "docs/public/p.html"]
    );

    let s = walk(r, |o| o.follow_paths = vec!["escape".into()]);
    assert_eq!(paths(&s), vec!["escape"]);
    assert_eq!(
        resolve_follow_paths(&fs::canonicalize(r).unwrap(), &["escape".into()]).unwrap(),
        Some(vec!["escape".to_string(), "etc/passwd".to_string()])
    );

    // Wildcards in follow paths expand symlinks too.
    let s = walk(r, |o| o.follow_paths = vec!["Dockerfile*".into()]);
    assert_eq!(
        paths(&s),
        vec![
            "Dockerfile",
            "Dockerfile.link",
            "build",
            "build/Dockerfile.real"
        ]
    );

    // "." means everything.
    let all = walk(r, |_| {});
    let s = walk(r, |o| o.follow_paths = vec!["src".into(), ".".into()]);
    assert_eq!(paths(&s), paths(&all));

    // Follow paths combine with excludes.
    let s = walk(r, |o| {
        o.follow_paths = vec!["src".into()];
        o.exclude_patterns = vec!["src/lib".into()];
    });
    assert_eq!(paths(&s), vec!["src", "src/main.rs"]);
}

#[test]
fn symlink_cycles_terminate() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    symlink("b", r.join("a")).unwrap();
    symlink("a", r.join("b")).unwrap();
    symlink("self/x", r.join("self")).unwrap();
    let s = walk(r, |o| o.follow_paths = vec!["a".into(), "self/y".into()]);
    assert_eq!(paths(&s), vec!["a", "b", "self"]);
}

#[test]
fn non_utf8_names() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let bad = std::ffi::OsStr::from_bytes(b"bad\xff");
    fs::write(r.join(bad), "x").unwrap();
    write(r, "good", "y");
    let err = walk_context(r, &WalkOptions::default()).unwrap_err();
    assert!(matches!(err, WalkError::NonUtf8 { .. }), "{err}");
    let s = walk(r, |o| o.exclude_patterns = vec!["bad*".into()]);
    assert_eq!(paths(&s), vec!["good"]);
}

#[test]
fn parallel_and_serial_walks_agree() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for i in 0..40 {
        for j in 0..15 {
            write(r, &format!("d{i}/s{}/f{j}", j % 3), "x");
        }
    }
    let serial = walk(r, |o| o.threads = 1);
    let parallel = walk(r, |o| o.threads = 4);
    assert_eq!(serial.entries, parallel.entries);
    assert_eq!(serial.len(), 40 + 40 * 3 + 40 * 15);
}

#[test]
fn root_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "f", "x");
    assert!(matches!(
        walk_context(&dir.path().join("f"), &WalkOptions::default()),
        Err(WalkError::NotADirectory { .. })
    ));
    assert!(matches!(
        walk_context(&dir.path().join("missing"), &WalkOptions::default()),
        Err(WalkError::Root { .. })
    ));
    let bad = WalkOptions {
        exclude_patterns: vec!["[".into()],
        ..WalkOptions::default()
    };
    assert!(matches!(
        walk_context(dir.path(), &bad),
        Err(WalkError::Patterns {
            which: "exclude",
            ..
        })
    ));
}

#[test]
fn unreadable_excluded_dirs_are_tolerated() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "locked/secret", "x");
    write(r, "ok", "y");
    fs::set_permissions(r.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let readable = fs::read_dir(r.join("locked")).is_ok(); // root can read anyway
    let s = walk(r, |o| {
        o.exclude_patterns = vec!["locked".into(), "!locked/secret".into()]
    });
    if !readable {
        assert_eq!(paths(&s), vec!["ok"]);
    }
    fs::set_permissions(r.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn async_walk() {
    let dir = sample_tree();
    let s = walk_context_async(dir.path().to_path_buf(), WalkOptions::default())
        .await
        .unwrap();
    assert_eq!(s.len(), 19);
    assert!(s.root.is_absolute());
    assert_eq!(s.disk_path(0).unwrap(), s.root.join("Dockerfile"));
}

/// `cargo test -- --ignored --nocapture walk_20k_files` prints timings.
#[test]
#[ignore]
fn walk_20k_files() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let mut n = 0;
    for a in 0..20 {
        for b in 0..20 {
            let d = r.join(format!("pkg{a:02}/mod{b:02}"));
            fs::create_dir_all(&d).unwrap();
            for c in 0..50 {
                fs::write(d.join(format!("file{c:03}.rs")), b"fn main() {}\n").unwrap();
                n += 1;
            }
        }
    }
    let excludes = vec![
        "**/file00*.rs".to_string(),
        "pkg19".to_string(),
        "!pkg19/mod00/**".to_string(),
    ];
    for (label, threads, patterns) in [
        ("1 thread, no patterns", 1, vec![]),
        ("auto threads, no patterns", 0, vec![]),
        ("1 thread, 3 excludes", 1, excludes.clone()),
        ("auto threads, 3 excludes", 0, excludes.clone()),
    ] {
        let opts = WalkOptions {
            threads,
            exclude_patterns: patterns,
            ..WalkOptions::default()
        };
        let _warm = walk_context(r, &opts).unwrap();
        let runs = 5;
        let start = std::time::Instant::now();
        let mut len = 0;
        for _ in 0..runs {
            len = walk_context(r, &opts).unwrap().len();
        }
        let per = start.elapsed() / runs;
        println!("{n} files: {label}: {len} entries in {per:?} per walk");
    }
    let _ = SystemTime::now();
}
