//! Builder pool members from DNS: the `dns+tcp://` address of a headless Service.
//!
//! `dns+tcp://<service-host>:<port>` names a Kubernetes headless Service (`clusterIP: None`,
//! `publishNotReadyAddresses: false`) in front of a StatefulSet of `buildkitd`s, as
//! `cicd-agents k8s render pool` makes it. The Service's name resolves to one address per
//! *ready* replica; each replica also has its own stable name,
//! `<sts>-<i>.<service-host>`, where `<sts>` is the first label of the service host (the
//! StatefulSet and the Service share the name).
//!
//! **Members are the replicas' names, not their IPs.** A pod's IP changes when it restarts,
//! its name and its cache volume do not; routing by name keeps a project on the replica that
//! holds its cache. So discovery resolves the Service name (which replicas are ready), then
//! the per-replica names `<sts>-0`, `<sts>-1`, … until every ready address is matched (giving
//! up after [`MAX_GAP`] names in a row that match nothing). A member is dialled at the address
//! DNS gave and, with TLS, its certificate is verified against its DNS name (the
//! certificate's wildcard `*.<service-host>` covers every replica). A ready address that no
//! replica name matches (the Service is not a StatefulSet's, or the StatefulSet has another
//! name) becomes a member named by its IP and verified against the Service's name.
//!
//! The resolver sits behind [`Resolver`], so that tests use a stand-in; [`SystemResolver`] asks
//! the system's resolver (`getaddrinfo`, which in a pod is the cluster DNS).

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use futures::future::BoxFuture;

use cicd_agents_types::redact_userinfo;

use crate::address::{AddressOrigin, AddressProblem, Scheme};
use crate::error::Error;

/// The scheme of a pool address whose members come from DNS.
pub const DNS_SCHEME: &str = "dns+tcp://";

/// How many replica names in a row may match no ready address before discovery stops.
pub const MAX_GAP: usize = 8;

/// Looks names up. [`SystemResolver`] is the real one; tests give a stand-in.
pub trait Resolver: Send + Sync + fmt::Debug {
    /// Every address `host` has, each with `port`. A name that does not exist is an empty
    /// list or an error; both mean "no such member".
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>>;
}

/// The system's resolver (`getaddrinfo` through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// A `dns+tcp://<service-host>:<port>` address (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsPoolAddress {
    host: String,
    port: u16,
}

impl DnsPoolAddress {
    /// Whether `text` is written in this form (starts with `dns+tcp://`).
    pub fn is_dns(text: &str) -> bool {
        text.trim()
            .get(..DNS_SCHEME.len())
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case(DNS_SCHEME))
    }

    /// The Service's host name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The daemons' port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The name of replica `index`: `<first label>-<index>.<host>`.
    pub fn replica_host(&self, index: usize) -> String {
        let first = self.host.split('.').next().unwrap_or(&self.host);
        format!("{first}-{index}.{}", self.host)
    }

    /// Finds the ready members (see the [module documentation](self)).
    pub async fn discover(&self, resolver: &dyn Resolver) -> Result<Vec<Discovered>, String> {
        let ready: BTreeSet<SocketAddr> = resolver
            .resolve(&self.host, self.port)
            .await
            .map_err(|err| format!("could not resolve {}: {err}", self.host))?
            .into_iter()
            .collect();
        let mut unmatched = ready.clone();
        let mut members = Vec::new();
        let mut gap = 0;
        let mut index = 0;
        while !unmatched.is_empty() && gap < MAX_GAP {
            let host = self.replica_host(index);
            index += 1;
            let addresses = resolver.resolve(&host, self.port).await.unwrap_or_default();
            match addresses.into_iter().find(|a| unmatched.contains(a)) {
                Some(address) => {
                    gap = 0;
                    unmatched.remove(&address);
                    members.push(Discovered {
                        name: format!("tcp://{host}:{}", self.port),
                        dial: format!("tcp://{address}"),
                        server_name: host,
                    });
                }
                None => gap += 1,
            }
        }
        for address in unmatched {
            members.push(Discovered {
                name: format!("tcp://{address}"),
                dial: format!("tcp://{address}"),
                server_name: self.host.clone(),
            });
        }
        Ok(members)
    }
}

/// One member found in DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// Its stable name, `tcp://<replica-host>:<port>`: what routing ranks and errors show.
    pub name: String,
    /// Where to dial it now, `tcp://<ip>:<port>`.
    pub dial: String,
    /// The name its TLS certificate must carry.
    pub server_name: String,
}

impl fmt::Display for DnsPoolAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{DNS_SCHEME}{}:{}", self.host, self.port)
    }
}

impl FromStr for DnsPoolAddress {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = |reason: AddressProblem| Error::InvalidAddress {
            address: redact_userinfo(text).into_owned(),
            reason,
            origin: AddressOrigin::Given,
        };
        let trimmed = text.trim();
        if !Self::is_dns(trimmed) {
            return Err(invalid(AddressProblem::NotDns));
        }
        let rest = trimmed[DNS_SCHEME.len()..].trim_end_matches('/');
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
            invalid(AddressProblem::MissingPort {
                example: Scheme::DnsTcp.example(),
            })
        })?;
        let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
            invalid(AddressProblem::InvalidPort {
                port: port.to_string(),
            })
        })?;
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
            return Err(invalid(AddressProblem::InvalidServiceName));
        }
        if host.parse::<std::net::IpAddr>().is_ok()
            || host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            return Err(invalid(AddressProblem::ServiceIp));
        }
        Ok(DnsPoolAddress { host, port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Default)]
    struct Table(BTreeMap<String, Vec<SocketAddr>>);

    impl Resolver for Table {
        fn resolve<'a>(
            &'a self,
            host: &'a str,
            _port: u16,
        ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
            let found = self.0.get(host).cloned();
            Box::pin(async move {
                found.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "NXDOMAIN"))
            })
        }
    }

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 1234))
    }

    #[test]
    fn addresses_parse_and_print() {
        let address: DnsPoolAddress = "DNS+TCP://BuildKitd-Pool.ci.svc:1234/".parse().unwrap();
        assert_eq!(address.to_string(), "dns+tcp://buildkitd-pool.ci.svc:1234");
        assert_eq!(
            address.replica_host(2),
            "buildkitd-pool-2.buildkitd-pool.ci.svc"
        );
        for bad in [
            "tcp://a:1",
            "dns+tcp://pool.ci.svc",
            "dns+tcp://pool.ci.svc:0",
            "dns+tcp://pool.ci.svc:99999",
            "dns+tcp://:1234",
            "dns+tcp://a b:1234",
            "dns+tcp://10.0.0.1:1234",
            "dns+tcp://-pool:1234",
        ] {
            let err = bad.parse::<DnsPoolAddress>().unwrap_err().to_string();
            assert!(err.contains(bad.trim()), "{bad}: {err}");
        }
        // Errors are typed, and hide user information as a daemon address's do.
        for (bad, reason) in [
            (
                "dns+tcp://pool.ci.svc:0",
                AddressProblem::InvalidPort { port: "0".into() },
            ),
            ("dns+tcp://10.0.0.1:1234", AddressProblem::ServiceIp),
            (
                "dns+tcp://ci:s3cret@pool.ci.svc:1234",
                AddressProblem::InvalidServiceName,
            ),
        ] {
            let parsed = bad.parse::<DnsPoolAddress>();
            let Err(Error::InvalidAddress {
                reason: found,
                address,
                ..
            }) = parsed
            else {
                panic!("{bad}: {parsed:?}");
            };
            assert_eq!(found, reason, "{bad}");
            assert!(!address.contains("s3cret"), "{bad}: {address}");
        }
    }

    #[tokio::test]
    async fn members_are_the_ready_replicas_by_name_with_gaps_and_strays() {
        let address: DnsPoolAddress = "dns+tcp://pool.ci.svc:1234".parse().unwrap();
        let mut table = Table::default();
        // Replica 1 is not ready (not in the Service's records); replica 3 is; a stray pod too.
        table
            .0
            .insert("pool.ci.svc".into(), vec![addr(10), addr(13), addr(99)]);
        table.0.insert("pool-0.pool.ci.svc".into(), vec![addr(10)]);
        table.0.insert("pool-1.pool.ci.svc".into(), vec![addr(11)]);
        table.0.insert("pool-3.pool.ci.svc".into(), vec![addr(13)]);
        let members = address.discover(&table).await.unwrap();
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "tcp://pool-0.pool.ci.svc:1234",
                "tcp://pool-3.pool.ci.svc:1234",
                "tcp://10.0.0.99:1234"
            ]
        );
        assert_eq!(members[1].dial, "tcp://10.0.0.13:1234");
        assert_eq!(members[1].server_name, "pool-3.pool.ci.svc");
        assert_eq!(members[2].server_name, "pool.ci.svc");

        table.0.insert("pool.ci.svc".into(), vec![]);
        assert!(address.discover(&table).await.unwrap().is_empty());
        table.0.remove("pool.ci.svc");
        let err = address.discover(&table).await.unwrap_err();
        assert!(err.contains("pool.ci.svc"), "{err}");
    }
}
