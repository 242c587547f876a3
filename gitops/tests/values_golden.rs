//! Golden tests for format-preserving values edits.
//!
//! Each case reads `tests/fixtures/values/NAME.in.yaml`, applies edits, and compares the result
//! byte for byte with `NAME.out.yaml`. Every case also checks that:
//! * only the lines reported by the edits differ (same line count, all other lines identical);
//! * the result reads back with the new values;
//! * applying the same edits again changes nothing (idempotent).
//!
//! Set `UPDATE_GOLDEN=1` to (re)write the `.out.yaml` files, then review them with `git diff`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use cicd_agents_gitops::error::{NodeKind, ValuesError};
use cicd_agents_gitops::values::{
    edit_file, set_image, Digest, DigestPin, ImageKeys, ImageTag, KeyPath, ScalarStyle,
    ValuesDocument,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/values")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap_or_else(|e| panic!("reading fixture {name}: {e}"))
}

/// Applies `(document, path, value)` edits to `NAME.in.yaml` and checks against `NAME.out.yaml`.
fn golden(name: &str, edits: &[(usize, &str, &str)]) -> Vec<cicd_agents_gitops::values::Change> {
    let input = read(&format!("{name}.in.yaml"));
    let mut doc = ValuesDocument::parse_named(input.clone(), format!("{name}.in.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut changes = Vec::new();
    for (d, path, value) in edits {
        let path = KeyPath::parse(path).unwrap_or_else(|e| panic!("{e}"));
        let change = doc
            .set_in(*d, &path, value)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(change.new_value, *value);
        changes.push(change);
    }
    let output = doc.to_string();
    let out_name = format!("{name}.out.yaml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(fixture(&out_name), &output).unwrap_or_else(|e| panic!("{e}"));
    }
    let expected = read(&out_name);
    assert_eq!(output, expected, "{name}: output differs from {out_name}");

    // Only the edited lines differ.
    let a: Vec<&str> = input.split_inclusive('\n').collect();
    let b: Vec<&str> = output.split_inclusive('\n').collect();
    assert_eq!(a.len(), b.len(), "{name}: line count changed");
    let differing: BTreeSet<usize> = (0..a.len())
        .filter(|&i| a[i] != b[i])
        .map(|i| i + 1)
        .collect();
    let reported: BTreeSet<usize> = changes
        .iter()
        .filter(|c| c.changed)
        .map(|c| c.line)
        .collect();
    assert_eq!(
        differing, reported,
        "{name}: changed lines differ from the reported ones"
    );

    // Reads back, and a second application is a no-op.
    let mut again = ValuesDocument::parse(output.clone()).unwrap_or_else(|e| panic!("{e}"));
    for (d, path, value) in edits {
        let path = KeyPath::parse(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            again.get_in(*d, &path).ok().as_deref(),
            Some(*value),
            "{name}: {path}"
        );
        let c = again
            .set_in(*d, &path, value)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !c.changed,
            "{name}: second application of {path} changed the text"
        );
    }
    assert_eq!(again.to_string(), output);
    changes
}

fn first(edits: &[(&'static str, &'static str)]) -> Vec<(usize, &'static str, &'static str)> {
    edits.iter().map(|(p, v)| (0, *p, *v)).collect()
}

#[test]
fn basic_keeps_comments_blank_lines_and_indentation() {
    let changes = golden("basic", &first(&[("image.tag", "1.3.0")]));
    assert_eq!(changes[0].old_value, "1.2.3");
    assert_eq!(changes[0].line, 10);
    assert_eq!(changes[0].new_style, ScalarStyle::Plain);
}

#[test]
fn quote_styles_are_kept() {
    let changes = golden(
        "quote_styles",
        &first(&[
            ("app.image.tag", "1.2.0"),
            ("worker.image.tag", "1.10"),
            ("cron.image.tag", "v1.0"),
            ("escaped.image.tag", "x\"y\\z"),
        ]),
    );
    let styles: Vec<ScalarStyle> = changes.iter().map(|c| c.new_style).collect();
    assert_eq!(
        styles,
        [
            ScalarStyle::DoubleQuoted,
            ScalarStyle::SingleQuoted,
            ScalarStyle::Plain,
            ScalarStyle::DoubleQuoted
        ]
    );
}

#[test]
fn values_yaml_would_not_read_as_strings_are_single_quoted() {
    let values = [
        "1.10",
        "20240101",
        "yes",
        "on",
        "off",
        "no",
        "y",
        "n",
        "true",
        "null",
        "~",
        "1e3",
        "0x1F",
        "0o17",
        ".inf",
        "-.nan",
        "a: b",
        "a #b",
        "-leading-dash",
        " leading space",
        "trailing space ",
        "",
        "'quoted'",
        "*alias",
        "2024-01-01",
        "1_000",
    ];
    let keys: Vec<String> = (1..=values.len()).map(|i| format!("t{i:02}")).collect();
    let edits: Vec<(usize, &str, &str)> = keys
        .iter()
        .zip(values)
        .map(|(k, v)| (0, k.as_str(), v))
        .collect();
    let changes = golden("unsafe_values", &edits);
    for c in &changes {
        assert_eq!(c.new_style, ScalarStyle::SingleQuoted, "{}", c.path);
    }
}

#[test]
fn sequence_indexes() {
    golden(
        "sequences",
        &first(&[
            ("sidecars[0].image.tag", "v1.29.1"),
            ("sidecars[1].image.tag", "3.0"),
            ("matrix[1][1]", "e"),
            ("matrix[0][0]", "1.5"),
        ]),
    );
}

#[test]
fn anchors_aliases_and_merge_keys_survive() {
    golden(
        "anchors_merge",
        &first(&[
            ("api.tag", "1.1.0"),
            ("web.tag", "2.1.0"),
            ("worker.tag", "3.1.0"),
            ("web.repository", "web-2"),
        ]),
    );
}

#[test]
fn flow_collections() {
    let changes = golden(
        "flow",
        &first(&[
            ("image.tag", "1.10"),
            ("other.tag", "0.2.0"),
            ("nested.a.b[1].tag", "new:1"),
            ("tags[1]", "new"),
        ]),
    );
    // `:` inside a flow collection is quoted (libyaml-era parsers reject `a:b` there).
    assert_eq!(changes[2].new_style, ScalarStyle::SingleQuoted);
}

#[test]
fn document_markers_and_directives() {
    golden("document_markers", &first(&[("image.tag", "1.1.0")]));
}

#[test]
fn multiple_documents_first_by_default_others_by_index() {
    let input = read("multi_document.in.yaml");
    let mut doc = ValuesDocument::parse(input).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc.document_count(), 3);
    // `set` edits only the first document (the one Helm reads).
    let c = doc
        .set("image.tag", "first-2")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.document, c.line), (0, 3));
    assert_eq!(
        doc.get_in(
            1,
            &KeyPath::parse("image.tag").unwrap_or_else(|e| panic!("{e}"))
        )
        .ok()
        .as_deref(),
        Some("second-1")
    );
    golden(
        "multi_document",
        &[
            (0, "image.tag", "first-2"),
            (1, "image.tag", "second-2"),
            (2, "image.tag", "third-2"),
        ],
    );
    let err = doc
        .set_in(
            5,
            &KeyPath::parse("image.tag").unwrap_or_else(|e| panic!("{e}")),
            "x",
        )
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, ValuesError::NoDocument { document: 5, .. }),
        "{err}"
    );
}

#[test]
fn crlf_line_endings() {
    golden("crlf", &first(&[("image.tag", "1.1")]));
    let out = read("crlf.out.yaml");
    assert_eq!(
        out.matches("\r\n").count(),
        out.matches('\n').count(),
        "every line still ends in CRLF"
    );
}

#[test]
fn keys_with_dots_and_quotes() {
    golden(
        "dotted_keys",
        &first(&[
            ("\"a.b\".tag", "new"),
            (
                "ingress.annotations.\"nginx.ingress.kubernetes.io/rewrite-target\"",
                "/api",
            ),
            ("ingress.annotations.'it''s'", "y"),
            ("image.tag", "json-2"),
        ]),
    );
}

#[test]
fn empty_and_null_values_are_filled() {
    golden(
        "empty_values",
        &first(&[
            ("a.tag", "v1"),
            ("b.tag", "v2"),
            ("c.tag", "v3"),
            ("d.tag", "v4"),
            ("e.tag", "v5"),
            ("f.tag", "1.0"),
        ]),
    );
}

#[test]
fn unicode_and_bom() {
    golden(
        "unicode_bom",
        &first(&[("image.tag", "v2"), ("image.description", "thé ☕ \"x\"")]),
    );
    assert!(read("unicode_bom.out.yaml").starts_with('\u{feff}'));
}

#[test]
fn anchored_tagged_and_next_line_values() {
    golden(
        "value_forms",
        &first(&[
            ("anchored", "2.0.0"),
            ("tagged", "2.0"),
            ("next_line.tag", "new-value"),
            ("props_then_line", "new"),
            ("quoted_key_value.tag", "y"),
        ]),
    );
}

#[test]
fn same_value_is_a_no_op_but_mistyped_plain_is_requoted() {
    let changes = golden(
        "retype",
        &first(&[("image.tag", "1.10"), ("other.tag", "1.10")]),
    );
    assert!(
        changes[0].changed,
        "plain 1.10 is a float to Helm: re-quoted"
    );
    assert!(!changes[1].changed);
}

#[test]
fn digest_pinning_forms() {
    let digest =
        Digest::new(format!("sha256:{}", "ab".repeat(32))).unwrap_or_else(|e| panic!("{e}"));
    let tag = ImageTag::new("1.1.0").unwrap_or_else(|e| panic!("{e}"));
    let key = |s: &str| KeyPath::parse(s).unwrap_or_else(|e| panic!("{e}"));
    let separate = ImageKeys {
        tag: key("image.tag"),
        repository: Some(key("image.repository")),
        digest: DigestPin::Key(key("image.digest")),
    };
    let in_tag = ImageKeys {
        tag: key("pinned.image.tag"),
        repository: None,
        digest: DigestPin::InTag,
    };
    let mut edits = separate
        .edits(Some("registry.local:5000/app"), &tag, Some(&digest))
        .unwrap_or_else(|e| panic!("{e}"));
    edits.extend(
        in_tag
            .edits(None, &tag, Some(&digest))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let owned: Vec<(String, String)> = edits
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let triples: Vec<(usize, &str, &str)> = owned
        .iter()
        .map(|(k, v)| (0, k.as_str(), v.as_str()))
        .collect();
    golden("digest", &triples);
    // Pinning configured but no digest: an error, not a silent unpinned write.
    assert!(in_tag.edits(None, &tag, None).is_err());
}

// ---------------------------------------------------------------------------------------------
// Error cases

fn error_of(name: &str, path: &str, value: &str) -> ValuesError {
    let mut doc = ValuesDocument::parse_named(read(name), name).unwrap_or_else(|e| panic!("{e}"));
    let before = doc.to_string();
    let err = doc.set(path, value).map(|c| c.line).unwrap_err();
    assert_eq!(
        doc.to_string(),
        before,
        "a failed edit must not change the text"
    );
    let msg = err.to_string();
    assert!(msg.contains(name), "error should name the file: {msg}");
    err
}

#[test]
fn error_key_not_found_names_the_segment_and_line() {
    let err = error_of("errors.in.yaml", "image.tga", "1");
    match &err {
        ValuesError::KeyNotFound {
            segment,
            prefix,
            line,
            ..
        } => {
            assert_eq!(
                (segment.as_str(), prefix.as_str(), *line),
                ("tga", "image", 2)
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("`tga`"), "{err}");
    let err = error_of("errors.in.yaml", "nope.tag", "1");
    assert!(
        matches!(&err, ValuesError::KeyNotFound { segment, .. } if segment == "nope"),
        "{err}"
    );
}

#[test]
fn error_index_out_of_range() {
    let err = error_of("errors.in.yaml", "list[2]", "x");
    assert!(
        matches!(
            err,
            ValuesError::IndexOutOfRange {
                index: 2,
                len: 2,
                line: 5,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn error_path_traverses_a_non_mapping() {
    let err = error_of("errors.in.yaml", "image.tag.x", "1");
    assert!(
        matches!(
            &err,
            ValuesError::NotAContainer {
                found: NodeKind::Scalar,
                expected: NodeKind::Mapping,
                line: 3,
                ..
            }
        ),
        "{err}"
    );
    let err = error_of("errors.in.yaml", "image[0]", "1");
    assert!(
        matches!(
            &err,
            ValuesError::NotAContainer {
                found: NodeKind::Mapping,
                expected: NodeKind::Sequence,
                ..
            }
        ),
        "{err}"
    );
    let err = error_of("errors.in.yaml", "list.x", "1");
    assert!(
        matches!(
            &err,
            ValuesError::NotAContainer {
                found: NodeKind::Sequence,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn error_target_not_a_scalar() {
    let err = error_of("errors.in.yaml", "image", "1");
    assert!(
        matches!(
            err,
            ValuesError::NotAScalar {
                found: NodeKind::Mapping,
                line: 2,
                ..
            }
        ),
        "{err}"
    );
    let err = error_of("errors.in.yaml", "list", "1");
    assert!(
        matches!(
            err,
            ValuesError::NotAScalar {
                found: NodeKind::Sequence,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn error_invalid_yaml_has_line_and_column() {
    let text = read("invalid.in.yaml");
    let err = ValuesDocument::parse_named(text, "invalid.in.yaml")
        .map(|_| ())
        .unwrap_err();
    match &err {
        ValuesError::InvalidYaml { line, column, .. } => {
            assert!(*line >= 3 && *column >= 1, "{err}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("invalid.in.yaml: not valid YAML at line"),
        "{err}"
    );
    let err = ValuesDocument::parse_named(read("invalid_indent.in.yaml"), "invalid_indent.in.yaml")
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, ValuesError::InvalidYaml { line: 3, .. }),
        "{err}"
    );
}

#[test]
fn error_shared_anchor_is_refused() {
    // The scalar itself is anchored and aliased.
    let err = error_of("errors.in.yaml", "shared_scalar", "2.0");
    match &err {
        ValuesError::SharedAnchor { anchor, line, .. } => {
            assert_eq!((anchor.as_str(), *line), ("shared", 13))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("line(s) 14"), "{err}");
    // Inside an anchored mapping that an alias and a merge key use.
    let err = error_of("errors.in.yaml", "base.tag", "2.0");
    assert!(
        matches!(&err, ValuesError::SharedAnchor { anchor, .. } if anchor == "base"),
        "{err}"
    );
    // Through an alias.
    let err = error_of("errors.in.yaml", "alias_user.tag", "2.0");
    assert!(
        err.to_string().contains("runs through the alias `*base`"),
        "{err}"
    );
    // The value itself is an alias.
    let err = error_of("errors.in.yaml", "uses_shared", "2.0");
    assert!(err.to_string().contains("is the alias `*shared`"), "{err}");
    // Reading through aliases is fine.
    let doc = ValuesDocument::parse(read("errors.in.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc.get("alias_user.tag").ok().as_deref(), Some("base-1"));
}

#[test]
fn error_key_only_from_merge_key() {
    let err = error_of("errors.in.yaml", "merged.tag", "2.0");
    assert!(
        matches!(&err, ValuesError::MergedKey { anchor, segment, .. } if anchor == "base" && segment == "tag"),
        "{err}"
    );
    // An explicit key next to the merge key is editable.
    let mut doc = ValuesDocument::parse(read("errors.in.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(doc.set("merged.repository", "m2").is_ok());
}

#[test]
fn error_duplicate_key() {
    let err = error_of("errors.in.yaml", "dup.tag", "x");
    assert!(
        matches!(
            err,
            ValuesError::DuplicateKey {
                first_line: 16,
                second_line: 17,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn error_unsupported_scalars() {
    for path in [
        "block",
        "typed",
        "multi_line_plain",
        "multi_line_quoted",
        "empty_items[0]",
    ] {
        let err = error_of("errors.in.yaml", path, "x");
        assert!(
            matches!(err, ValuesError::UnsupportedScalar { .. }),
            "{path}: {err}"
        );
    }
}

#[test]
fn error_invalid_value_and_key_path() {
    let err = error_of("errors.in.yaml", "image.tag", "a\nb");
    assert!(matches!(err, ValuesError::InvalidValue { .. }), "{err}");
    let mut doc = ValuesDocument::parse(read("errors.in.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let err = doc.set("image..tag", "x").map(|_| ()).unwrap_err();
    assert!(matches!(err, ValuesError::InvalidKeyPath { .. }), "{err}");
}

#[test]
fn set_all_is_all_or_nothing() {
    let mut doc = ValuesDocument::parse(read("errors.in.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let before = doc.to_string();
    let err = doc
        .set_all(&[("image.tag", "2.0.0"), ("image.nope", "x")])
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, ValuesError::KeyNotFound { .. }));
    assert_eq!(doc.to_string(), before);
}

// ---------------------------------------------------------------------------------------------
// File level

#[test]
fn set_image_on_a_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("values.yaml");
    std::fs::copy(fixture("basic.in.yaml"), &path).unwrap_or_else(|e| panic!("{e}"));
    assert!(set_image(&path, &[("image.tag", "1.3.0")]).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap_or_default(),
        read("basic.out.yaml")
    );
    // Second run: nothing to do.
    assert!(!set_image(&path, &[("image.tag", "1.3.0")]).unwrap_or_else(|e| panic!("{e}")));
    // A failing edit leaves the file alone, and the error names file, path and segment.
    let before = std::fs::read(&path).unwrap_or_default();
    let err = set_image(&path, &[("image.tag", "9.9.9"), ("image.missing", "x")]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("values.yaml") && msg.contains("image.missing") && msg.contains("`missing`"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&path).unwrap_or_default(), before);
    // Missing file.
    let err = edit_file(&dir.path().join("nope.yaml"), &[])
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, ValuesError::Io { .. }), "{err}");
}

#[cfg(unix)]
#[test]
fn set_image_keeps_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("values.yaml");
    std::fs::copy(fixture("basic.in.yaml"), &path).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(set_image(&path, &[("image.tag", "1.3.0")]).unwrap_or_else(|e| panic!("{e}")));
    let mode = std::fs::metadata(&path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o640);
}

/// Every prefix of every fixture either fails to parse with an error or can be queried and
/// edited without panicking; successful edits always re-parse.
#[test]
fn truncated_inputs_never_panic() {
    let dir = fixture("");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".in.yaml"))
        .collect();
    names.sort();
    assert!(names.len() > 10);
    for path in names {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for cut in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
            let Ok(mut doc) = ValuesDocument::parse(&text[..cut]) else {
                continue;
            };
            for key in [
                "image.tag",
                "t01",
                "a.tag",
                "sidecars[0].image.tag",
                "image",
                "anchored",
                "[0]",
            ] {
                let _ = doc.get(key);
                if doc.set(key, "1.10").is_ok() {
                    assert!(ValuesDocument::parse(doc.to_string()).is_ok());
                }
            }
        }
    }
}
