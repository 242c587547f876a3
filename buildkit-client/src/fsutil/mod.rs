//! fsutil, the file transfer of BuildKit sessions, on the client and without
//! the gRPC plumbing: the sending side (local directories for the daemon,
//! `moby.filesync.v1.FileSync/DiffCopy`), the receiving side (the `local`
//! exporter's files, `FileSend/DiffCopy`), both speaking `fsutil.types.Packet`,
//! and the rules they share: `.dockerignore` patterns, fsutil's walk order
//! and its validator, Go's file modes and path functions. Upstream keeps
//! these in `tonistiigi/fsutil` and `moby/patternmatcher`, apart from the
//! session services; so does this crate (the services are in
//! [`session`](crate::session)).
//!
//! # How the daemon gets a local directory
//!
//! During a build the daemon calls back into the client's session. For
//! every `local://` source it needs (the build context, the Dockerfile's
//! directory, named contexts) it opens a bidirectional `DiffCopy` stream to
//! us, naming the directory and its filters in request metadata
//! ([`DiffCopyRequest`]): `dir-name`, `include-patterns`, `exclude-patterns`,
//! `followpaths`, each URL-encoded with a `<key>-encoded: 1` companion when
//! non-ASCII.
//!
//! The *client* applies the filters. The dockerfile frontend typically asks
//! three times: the `dockerfile` local with followpaths `[Dockerfile,
//! Dockerfile.dockerignore]`; the `context` local with followpaths
//! `[.dockerignore]`; then the `context` local with the ignore patterns as
//! `exclude-patterns` (and, with newer frontends, followpaths limited to what
//! `COPY`/`ADD` use). See [`load_dockerignore`] for the ignore file precedence.
//!
//! # The exchange
//!
//! We are the *sender*, the daemon the *receiver* (see [`send`]):
//!
//! ```text
//!  sender (us)                               receiver (daemon)
//!  STAT{entry 0} STAT{entry 1} ... ──────►   compares with its cached copy
//!  STAT{} (end of listing)         ──────►
//!                                  ◄──────   REQ{id} for each changed file
//!  DATA{id, bytes}... DATA{id, ""} ──────►   (any time after its STAT)
//!                                  ◄──────   FIN once everything arrived
//!  FIN                             ──────►
//! ```
//!
//! * The listing ([`walk_context`]) is depth-first with each directory's entries
//!   sorted bytewise by *name*, parents before children; the receiver
//!   rejects anything else ("changes out of order").
//! * An entry's ID is its index in the listing, directories included. Only
//!   regular files (no `os.FileMode` type bits) can be requested.
//! * Stat fields follow Go: `mode` is an `os.FileMode` (directory 1<<31,
//!   symlink 1<<27, ...), `modTime` is Unix nanoseconds, paths are relative
//!   and `/`-separated, symlinks carry their raw target, later paths of a
//!   hard-linked inode carry the first path as `linkname`, uid/gid are
//!   zeroed (as the Go client does).
//! * The receiver only requests files whose metadata changed since its last
//!   copy for the session's shared key, which is what makes rebuilds cheap:
//!   exact nanosecond mtimes matter.
//! * ERR (either way) carries a message and ends the exchange.
//!
//! # Files
//!
//! The public surface is re-exported here; the files are private.
//!
//! * `walk/`: the directory walk producing the STAT stream
//!   ([`walk_context`]): entry types and options (`mod.rs`), the parallel
//!   directory read (`read.rs`), the deterministic assembly of the stream and
//!   its stat fields (`assemble.rs`), follow paths (`follow.rs`).
//! * [`patterns`]: `.dockerignore` matching (moby/patternmatcher), fsutil's
//!   include/exclude filtering, ignore-file parsing.
//! * `dockerignore.rs`: which ignore file applies to a Dockerfile build
//!   ([`load_dockerignore`]).
//! * `sender/`: the sending side's packet state machine ([`send`]) over
//!   abstract sink/source traits, and the confined reading of requested files.
//! * `metadata.rs`: the `DiffCopy` request metadata ([`DiffCopyRequest`]).
//! * `serve.rs`: one `DiffCopy` call end to end (walk, then send;
//!   [`serve_diffcopy`]), for the session's gRPC service.
//! * `receive.rs`: the receiving side, for the `local` exporter (the daemon
//!   sends; [`receive_local_export`]).
//! * `export_dir.rs`: the confined disk writer the receiver writes through
//!   (paths, symlinks and hard links from the daemon never leave the
//!   destination).
//! * `validator.rs`: the receiver's order check of a STAT stream
//!   ([`OrderValidator`]).
//! * [`go_mode`], `go_path.rs`: Go's `os.FileMode` bits and path functions,
//!   which the protocol carries and upstream's rules are written in.

pub mod go_mode;
pub mod patterns;

mod dockerignore;
mod export_dir;
mod go_path;
mod metadata;
mod receive;
mod sender;
mod serve;
mod validator;
mod walk;

pub use dockerignore::{find_dockerignore, load_dockerignore, DockerIgnore, DockerIgnoreError};
pub use export_dir::ExportPathError;
pub use metadata::DiffCopyRequest;
pub use patterns::{parse_ignore_file, PathFilter, PatternError, PatternMatcher};
pub use receive::{receive_local_export, LocalExportError, LocalExportSummary};
pub use sender::{
    packet_type, send, MissingFilePolicy, Packet, PacketSink, PacketSource, SendError, SendSummary,
    SenderOptions, TransportError, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE,
};
pub use serve::{serve_diffcopy, ServeError, ServeOptions, ServeSummary};
pub(crate) use serve::{serve_walked, walk_options};
pub use validator::{OrderError, OrderValidator};
pub use walk::{
    walk_context, walk_context_async, ContextEntry, ContextSnapshot, EntryKind, FileIdentity,
    WalkError, WalkOptions,
};
