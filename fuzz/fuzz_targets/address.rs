//! Daemon addresses (`--addr`, `BUILDKIT_HOST`, `DOCKER_HOST`).
//!
//! Invariants: nothing panics; an address that parses prints as text that parses back to the
//! same address; errors name the address; resolution from the environment agrees with parsing.
#![no_main]

use std::path::Path;

use arbitrary::Arbitrary;
use cicd_agents_buildkit::{Address, Endpoint};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    text: String,
    buildkit_host: Option<String>,
    docker_host: Option<String>,
}

fuzz_target!(|input: Input| {
    match input.text.parse::<Address>() {
        Ok(address) => {
            let shown = address.to_string();
            let again: Address = shown
                .parse()
                .unwrap_or_else(|err| panic!("{:?} parsed as {address:?}, shown as {shown:?}, which fails: {err}", input.text));
            assert_eq!(again, address, "{:?} shown as {shown:?}", input.text);
            if let Endpoint::Tcp { host, port } = address.endpoint() {
                assert!(!host.is_empty() && *port != 0);
            }
        }
        Err(err) => {
            let message = err.to_string();
            assert!(!message.is_empty());
        }
    }
    let env = |name: &str| match name {
        "BUILDKIT_HOST" => input.buildkit_host.clone(),
        "DOCKER_HOST" => input.docker_host.clone(),
        _ => None,
    };
    let resolved = Address::resolve_with(None, &env, &|_: &Path| false);
    if let (Some(text), Ok(address)) = (input.buildkit_host.as_deref(), &resolved) {
        if !text.trim().is_empty() {
            assert_eq!(text.parse::<Address>().ok().as_ref(), Some(address));
        }
    }
    if let Ok(address) = resolved {
        assert_eq!(address.to_string().parse::<Address>().ok(), Some(address));
    }
});
