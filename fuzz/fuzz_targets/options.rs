//! Build option parsers: `--output`, `--cache-to`/`--cache-from`, `--secret`, `--ssh`,
//! `--build-arg`/`--label`, `--build-context`, the context argument, git URL hosts, and the
//! planning of exporters from outputs, tags and `--push`.
//!
//! Input: lines `o:OUTPUT`, `t:TAG`, `c:CACHE SPEC`, `s:SECRET`, `h:SSH`, `k:KEY=VALUE`,
//! `x:CONTEXT`, `u:URL`, `p` (push), `d` (Docker daemon); other lines are ignored.
//!
//! Invariants: nothing panics; errors name the option; parsed types are lower case; a cache
//! entry's wire form is its type and attributes; at most one exporter writes to stdout.
#![no_main]

use cicd_agents_buildkit::build::{
    parse_key_values, BuildContext, CacheEntry, NamedContext, Output, TypedSpec,
};
use cicd_agents_buildkit::flags::OptionField;
use cicd_agents_buildkit::fuzzing;
use cicd_agents_buildkit::{Secret, SshAgent};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Input {
    outputs: Vec<String>,
    tags: Vec<String>,
    push: bool,
    docker_daemon: bool,
    cache: Vec<String>,
    secret: String,
    ssh: String,
    key_values: Vec<String>,
    context: String,
    url: String,
}

fn names_option(err: &cicd_agents_buildkit::Error, option: OptionField, input: &str) {
    match err {
        cicd_agents_buildkit::Error::InvalidOption { field, .. } => {
            assert_eq!(*field, option, "wrong field in {err}")
        }
        other => panic!("not an InvalidOption for {option}: {other}"),
    }
    // The library names fields, never flags. An input that holds `--` itself is quoted back in
    // the error, so the check needs an input without it.
    if !input.contains("--") {
        assert!(!err.to_string().contains("--"), "names a flag: {err}");
    }
}

fn input(text: &str) -> Input {
    let mut input = Input::default();
    for line in text.split('\n') {
        let (kind, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.to_string();
        match kind {
            "o" => input.outputs.push(value),
            "t" => input.tags.push(value),
            "c" => input.cache.push(value),
            "s" => input.secret = value,
            "h" => input.ssh = value,
            "k" => input.key_values.push(value),
            "x" => input.context = value,
            "u" => input.url = value,
            "p" => input.push = true,
            "d" => input.docker_daemon = true,
            _ => {}
        }
    }
    input
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let input = input(text);
    let mut outputs = Vec::new();
    for spec in &input.outputs {
        match Output::parse(spec) {
            Ok(output) => {
                assert_eq!(output.kind(), output.kind().to_ascii_lowercase());
                outputs.push(output);
            }
            Err(err) => names_option(&err, OptionField::Output, spec),
        }
    }
    match fuzzing::plan_outputs(&outputs, &input.tags, input.push, input.docker_daemon) {
        Ok(planned) => {
            for (kind, attrs, _) in &planned {
                assert!(!kind.is_empty());
                if kind == "image" {
                    assert!(attrs.contains_key("name"));
                }
            }
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }
    for spec in &input.cache {
        for (option, parsed) in [
            (OptionField::CacheTo, CacheEntry::parse_export(spec)),
            (OptionField::CacheFrom, CacheEntry::parse_import(spec)),
        ] {
            match parsed {
                Ok(entry) => {
                    let (kind, attrs) = fuzzing::cache_entry_wire(&entry);
                    assert_eq!(kind, entry.kind());
                    if kind == "registry" {
                        assert!(attrs.contains_key("ref"));
                    }
                }
                Err(err) => names_option(&err, option, spec),
            }
        }
        let _ = TypedSpec::parse(OptionField::Output, spec, |_| None);
        for field in fuzzing::split_fields(spec) {
            assert!(!field.trim().is_empty());
        }
    }
    match Secret::parse(&input.secret) {
        Ok(secret) => assert!(
            !secret.id.trim().is_empty(),
            "{:?} gave an empty id",
            input.secret
        ),
        Err(err) => names_option(&err, OptionField::Secret, &input.secret),
    }
    match SshAgent::parse(&input.ssh) {
        Ok(agent) => assert!(!agent.id.is_empty()),
        Err(err) => names_option(&err, OptionField::Ssh, &input.ssh),
    }
    for option in [OptionField::BuildArg, OptionField::Label] {
        match parse_key_values(option, &input.key_values) {
            Ok(map) => assert!(map.keys().all(|k| !k.is_empty())),
            Err(err) => names_option(&err, option, &input.key_values.join("\n")),
        }
    }
    let _ = BuildContext::parse(&input.context);
    if let Err(err) = NamedContext::parse(&input.context) {
        names_option(&err, OptionField::BuildContext, &input.context);
    }
    if let Some(host) = fuzzing::url_host(&input.url) {
        assert!(!host.is_empty());
        assert!(!host.contains('/'));
    }
});
