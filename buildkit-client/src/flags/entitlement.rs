//! Extra privileges a build may use (`--allow network.host`).
closed_set! {
    /// An entitlement BuildKit grants when the daemon allows it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Entitlement for Allow {
        /// `network.host`: `RUN --network=host`.
        NetworkHost = "network.host",
        /// `security.insecure`: `RUN --security=insecure`.
        SecurityInsecure = "security.insecure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        for e in [Entitlement::NetworkHost, Entitlement::SecurityInsecure] {
            assert_eq!(e.to_string().parse::<Entitlement>().unwrap(), e);
        }
        assert_eq!(Entitlement::ALL.len(), 2);
        let err = "network.hots"
            .parse::<Entitlement>()
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid entitlement \"network.hots\": expected network.host or security.insecure"
        );
    }
}
