//! The network mode of `RUN` steps (`--network default|host|none`).
closed_set! {
    /// Where `RUN` steps' network comes from. Only the modes BuildKit takes from a
    /// client exist; custom networks are a builder setting in buildx. An empty word is
    /// the default.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum NetworkMode for Network {
        /// The daemon's default (a bridge behind Docker).
        #[default]
        Default = "default" | "",
        /// The host's network; needs the `network.host` entitlement, which a
        /// build with this mode asks for.
        Host = "host",
        /// No network.
        None = "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        for mode in [NetworkMode::Default, NetworkMode::Host, NetworkMode::None] {
            assert_eq!(mode.to_string().parse::<NetworkMode>().unwrap(), mode);
        }
        assert_eq!("".parse::<NetworkMode>().unwrap(), NetworkMode::Default);
        let err = "bridge2".parse::<NetworkMode>().unwrap_err().to_string();
        assert!(err.contains("bridge2") && !err.contains("--"), "{err}");
        assert!(err.ends_with("expected default, host or none"), "{err}");
    }
}
