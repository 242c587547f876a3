//! The library's errors in command-line words: which flag an invalid value came
//! from (the library names the option by a typed field, never by a flag).

use cicd_agents_buildkit::flags::OptionField;
use cicd_agents_buildkit::Error;

/// The flag that sets `field`.
pub fn flag(field: OptionField) -> &'static str {
    match field {
        OptionField::Context => "context",
        OptionField::Dockerfile => "--file",
        OptionField::BuildArg => "--build-arg",
        OptionField::Label => "--label",
        OptionField::Platform => "--platform",
        OptionField::Network => "--network",
        OptionField::AddHost => "--add-host",
        OptionField::BuildContext => "--build-context",
        OptionField::Secret => "--secret",
        OptionField::Ssh => "--ssh",
        OptionField::Tag => "--tag",
        OptionField::Push => "--push",
        OptionField::Output => "--output",
        OptionField::CacheFrom => "--cache-from",
        OptionField::CacheTo => "--cache-to",
        OptionField::Allow => "--allow",
        OptionField::FrontendAttr => "--opt",
        OptionField::SharedKey => "shared key",
        OptionField::Progress => "--progress",
        OptionField::Attest => "--attest",
        OptionField::Annotation => "--annotation",
        OptionField::ShmSize => "--shm-size",
        OptionField::Ulimit => "--ulimit",
        OptionField::CgroupParent => "--cgroup-parent",
        OptionField::MetadataFile => "--metadata-file",
        OptionField::IidFile => "--iidfile",
        OptionField::Keepalive => "--keepalive",
    }
}

/// The message for a library error that the command line words itself, or `None`
/// to print the library's own.
pub fn describe(err: &Error) -> Option<String> {
    match err {
        Error::InvalidOption {
            field,
            value,
            reason,
        } if value.is_empty() => Some(format!("invalid {}: {reason}", flag(*field))),
        Error::InvalidOption {
            field,
            value,
            reason,
        } => Some(format!("invalid {} {value:?}: {reason}", flag(*field))),
        // The ways out of an unverifiable daemon certificate, in flags.
        Error::Connect { reason, .. } if reason.contains("certificate could not be verified") => {
            Some(format!(
                "{err} (--tlscacert CA.pem, --tlsservername NAME, or --tls-skip-verify)"
            ))
        }
        Error::NoDaemonFound { tried } => Some(format!(
            "no BuildKit daemon found; tried {}. Pass --addr or set BUILDKIT_HOST",
            tried.join(", ")
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_values_name_the_flag() {
        let err = cicd_agents_buildkit::Secret::parse("id=a,type=floppy").unwrap_err();
        let text = describe(&err).unwrap();
        assert!(text.starts_with("invalid --secret"), "{text}");
        let err = "nofile"
            .parse::<cicd_agents_buildkit::flags::Ulimit>()
            .unwrap_err();
        assert_eq!(
            describe(&err).unwrap(),
            "invalid --ulimit \"nofile\": expected NAME=SOFT[:HARD], e.g. nofile=1024:2048"
        );
        let none = Error::NoDaemonFound {
            tried: vec!["$BUILDKIT_HOST (unset)".into()],
        };
        assert!(describe(&none).unwrap().contains("Pass --addr"));
    }
}
