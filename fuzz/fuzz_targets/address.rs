//! Daemon addresses (`--addr`, `BUILDKIT_HOST`, `DOCKER_HOST`).
//!
//! Input: text lines `address`, `BUILDKIT_HOST`, `DOCKER_HOST` (missing lines are unset).
//!
//! Invariants: nothing panics; an address that parses prints as text that parses back to the
//! same address; a TCP host is a plain name or IP literal (no brackets, `@`, spaces) and is an
//! IPv6 address when it contains `:`; resolution from the environment agrees with parsing.
#![no_main]

use std::path::Path;

use cicd_agents_buildkit::{Address, Endpoint};
use libfuzzer_sys::fuzz_target;

fn check(text: &str, address: &Address) {
    let shown = address.to_string();
    let again: Address = shown.parse().unwrap_or_else(|err| {
        panic!("{text:?} parsed as {address:?}, shown as {shown:?}, which fails: {err}")
    });
    assert_eq!(&again, address, "{text:?} shown as {shown:?}");
    if let Endpoint::Tcp { host, port } = address.endpoint() {
        assert!(!host.is_empty() && *port != 0);
        assert!(
            !host.contains(['[', ']', '@', ' ', '/']),
            "{text:?} gave the host {host:?}"
        );
        if host.contains(':') {
            let ip = host.split('%').next().unwrap_or_default();
            assert!(
                ip.parse::<std::net::Ipv6Addr>().is_ok(),
                "{text:?} gave the host {host:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let addr = lines.next().unwrap_or_default();
    let buildkit_host = lines.next().map(str::to_string);
    let docker_host = lines.next().map(str::to_string);

    match addr.parse::<Address>() {
        Ok(address) => check(addr, &address),
        Err(err) => assert!(!err.to_string().is_empty()),
    }
    let env = |name: &str| match name {
        "BUILDKIT_HOST" => buildkit_host.clone(),
        "DOCKER_HOST" => docker_host.clone(),
        _ => None,
    };
    let resolved = Address::resolve_with(None, &env, &|_: &Path| false);
    if let (Some(text), Ok(address)) = (buildkit_host.as_deref(), &resolved) {
        if !text.trim().is_empty() {
            assert_eq!(text.parse::<Address>().ok().as_ref(), Some(address));
        }
    }
    if let Ok(address) = resolved {
        check("(resolved)", &address);
    }
});
