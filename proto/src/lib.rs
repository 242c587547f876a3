//! Wire types and gRPC stubs for talking to a [BuildKit] daemon.
//!
//! Everything in this crate is generated at build time from the `.proto`
//! files bundled under `protos/` (compiled with [`protox`](https://docs.rs/protox), so no system
//! `protoc` is needed) by `prost` and `tonic`. The files are our own
//! definitions, kept wire-compatible with upstream BuildKit (Control API as
//! of v0.26, and still usable against v0.13 and older daemons), fsutil,
//! googleapis and gRPC health.
//!
//! Modules mirror the protobuf packages one to one:
//!
//! | Rust module | proto package | contents |
//! |---|---|---|
//! | [`moby::buildkit::v1`] | `moby.buildkit.v1` | `Control` service: Solve, Status, Session, Info, ListWorkers, DiskUsage, Prune, build history |
//! | [`moby::buildkit::v1::types`] | `moby.buildkit.v1.types` | `WorkerRecord`, `GcPolicy`, `BuildkitVersion`, `CdiDevice` |
//! | [`moby::buildkit::v1::sourcepolicy`] | `moby.buildkit.v1.sourcepolicy` | source policy rules |
//! | [`pb`] | `pb` | LLB: `Definition`, `Op`, `ExecOp`, `SourceOp`, `FileOp`, ... |
//! | [`moby::filesync::v1`] | `moby.filesync.v1` | session services `FileSync`, `FileSend`, `Auth` |
//! | [`moby::filesync::v1::packets`] | `moby.filesync.v1` (variant) | `FileSend` typed with fsutil packets |
//! | [`moby::buildkit::secrets::v1`] | `moby.buildkit.secrets.v1` | session service `Secrets` |
//! | [`moby::sshforward::v1`] | `moby.sshforward.v1` | session service `SSH` |
//! | [`moby::upload::v1`] | `moby.upload.v1` | session service `Upload` |
//! | [`moby::exporter::v1`] | `moby.exporter.v1` | session service `Exporter` |
//! | [`fsutil::types`] | `fsutil.types` | diffcopy `Packet` and `Stat` |
//! | [`google::rpc`] | `google.rpc` | `Status` |
//! | [`grpc::health::v1`] | `grpc.health.v1` | `Health` service |
//!
//! `google.protobuf` well-known types (`Timestamp`, `Any`) come from
//! [`prost_types`], re-exported here as [`prost_types`].
//!
//! Each service gets both a client (`<service>_client::<Service>Client`) and
//! a server (`<service>_server::<Service>Server` plus a `<Service>` trait).
//! In a BuildKit session the roles are inverted: the daemon is the gRPC
//! client and the build client serves `FileSync`, `Auth`, `Health` and
//! friends, so the server halves matter as much as the clients.
//!
//! Field names are converted to Rust `snake_case` by prost, e.g.
//! `SolveRequest.ExporterDeprecated` becomes `exporter_deprecated` and
//! `Packet.ID` becomes `id`.
//!
//! ```no_run
//! use cicd_agents_proto::moby::buildkit::v1::{control_client::ControlClient, Exporter, SolveRequest};
//!
//! # async fn demo(channel: tonic::transport::Channel) -> Result<(), tonic::Status> {
//! let mut control = ControlClient::new(channel);
//! let request = SolveRequest {
//!     r#ref: "example-build-ref".into(),
//!     frontend: "dockerfile.v0".into(),
//!     // Old daemons (< v0.13) only read the single-exporter fields...
//!     exporter_deprecated: "image".into(),
//!     // ...newer ones read the list.
//!     exporters: vec![Exporter { r#type: "image".into(), attrs: Default::default() }],
//!     ..Default::default()
//! };
//! let response = control.solve(request).await?.into_inner();
//! println!("{:?}", response.exporter_response);
//! # Ok(())
//! # }
//! ```
//!
//! [BuildKit]: https://github.com/moby/buildkit

pub use prost;
pub use prost_types;
pub use tonic;

/// Encoded `google.protobuf.FileDescriptorSet` of the main proto set
/// (including imports), e.g. for gRPC reflection or descriptor-driven tests.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/descriptor_set.bin"));

/// Moby project packages (BuildKit and its session services).
pub mod moby {
    /// `moby.buildkit.*` packages.
    pub mod buildkit {
        /// `moby.buildkit.v1`: the daemon's `Control` API.
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/moby.buildkit.v1.rs"));

            /// `moby.buildkit.v1.types`: worker descriptions.
            #[allow(missing_docs, clippy::all)]
            pub mod types {
                include!(concat!(env!("OUT_DIR"), "/moby.buildkit.v1.types.rs"));
            }

            /// `moby.buildkit.v1.sourcepolicy`: source policy rules.
            #[allow(missing_docs, clippy::all)]
            pub mod sourcepolicy {
                include!(concat!(
                    env!("OUT_DIR"),
                    "/moby.buildkit.v1.sourcepolicy.rs"
                ));
            }
        }

        /// `moby.buildkit.secrets.*` packages.
        pub mod secrets {
            /// `moby.buildkit.secrets.v1`: the session `Secrets` service.
            #[allow(missing_docs, clippy::all)]
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/moby.buildkit.secrets.v1.rs"));
            }
        }
    }

    /// `moby.filesync.*` packages.
    pub mod filesync {
        /// `moby.filesync.v1`: session services `FileSync`, `FileSend` and `Auth`.
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/moby.filesync.v1.rs"));

            /// `FileSend` with fsutil [`Packet`](crate::fsutil::types::Packet)
            /// streams instead of [`BytesMessage`] chunks.
            ///
            /// The daemon's `local` exporter calls the same gRPC path
            /// (`/moby.filesync.v1.FileSend/DiffCopy`) as the tar-style
            /// exporters but runs an fsutil diffcopy over it. Serve this
            /// variant when the session only needs to receive `local` exports.
            #[allow(missing_docs, clippy::all)]
            pub mod packets {
                include!(concat!(
                    env!("OUT_DIR"),
                    "/filesend_packet/moby.filesync.v1.rs"
                ));
            }
        }
    }

    /// `moby.sshforward.*` packages.
    pub mod sshforward {
        /// `moby.sshforward.v1`: the session `SSH` agent-forwarding service.
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/moby.sshforward.v1.rs"));
        }
    }

    /// `moby.upload.*` packages.
    pub mod upload {
        /// `moby.upload.v1`: the session `Upload` service.
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/moby.upload.v1.rs"));
        }
    }

    /// `moby.exporter.*` packages.
    pub mod exporter {
        /// `moby.exporter.v1`: the session `Exporter` service used with
        /// `SolveRequest.enable_session_exporter`.
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/moby.exporter.v1.rs"));
        }
    }
}

/// `pb`: the LLB build graph (`Definition`, `Op`, ...).
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/pb.rs"));
}

/// `errdefs`: typed details of a failed solve (the failing vertex, its
/// source location), carried in `google.rpc.Status.details`.
#[allow(missing_docs, clippy::all)]
pub mod errdefs {
    include!(concat!(env!("OUT_DIR"), "/errdefs.rs"));
}

/// `fsutil.*` packages.
pub mod fsutil {
    /// `fsutil.types`: diffcopy [`Packet`](types::Packet) and [`Stat`](types::Stat).
    #[allow(missing_docs, clippy::all)]
    pub mod types {
        include!(concat!(env!("OUT_DIR"), "/fsutil.types.rs"));
    }
}

/// `google.*` packages (other than `google.protobuf`, see [`prost_types`]).
pub mod google {
    /// `google.rpc`: the rich error [`Status`](rpc::Status).
    #[allow(missing_docs, clippy::all)]
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

/// `grpc.*` packages.
pub mod grpc {
    /// `grpc.health.*` packages.
    pub mod health {
        /// `grpc.health.v1`: the standard `Health` service BuildKit probes
        /// on every session.
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/grpc.health.v1.rs"));
        }
    }
}
