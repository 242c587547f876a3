//! Local directories for the daemon: the sending side of BuildKit's
//! FileSync protocol (`moby.filesync.v1.FileSync/DiffCopy`, packets
//! `fsutil.types.Packet`), without the gRPC plumbing.
//!
//! # How the daemon gets a local directory
//!
//! During a build the daemon calls back into the client's session. For
//! every `local://` source it needs (the build context, the Dockerfile's
//! directory, named contexts) it opens a bidirectional `DiffCopy` stream to
//! us, naming the directory and its filters in request metadata
//! ([`metadata`]): `dir-name`, `include-patterns`, `exclude-patterns`,
//! `followpaths`, each URL-encoded with a `<key>-encoded: 1` companion when
//! non-ASCII.
//!
//! The *client* applies the filters. The dockerfile frontend typically asks
//! three times: the `dockerfile` local with followpaths `[Dockerfile,
//! Dockerfile.dockerignore]`; the `context` local with followpaths
//! `[.dockerignore]`; then the `context` local with the ignore patterns as
//! `exclude-patterns` (and, with newer frontends, followpaths limited to what
//! `COPY`/`ADD` use). See [`dockerignore`] for the ignore file precedence.
//!
//! # The exchange
//!
//! We are the *sender*, the daemon the *receiver* (see [`sender`]):
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
//! * The listing ([`walk`]) is depth-first with each directory's entries
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
//! # Modules
//!
//! * [`patterns`]: `.dockerignore` matching (moby/patternmatcher), fsutil's
//!   include/exclude filtering, ignore-file parsing.
//! * [`walk`]: the directory walk producing the STAT stream, and follow
//!   paths.
//! * [`validator`]: the receiver's order check of a STAT stream.
//! * [`go_mode`], [`go_path`]: Go's `os.FileMode` bits and path functions,
//!   which the protocol carries and upstream's rules are written in.
//! * [`sender`]: the packet state machine over abstract sink/source traits.
//! * [`metadata`]: reading (and writing) the request metadata.
//! * [`dockerignore`]: which ignore file applies to a Dockerfile build.
//! * [`serve`]: one `DiffCopy` call end to end, for the gRPC layer to call.
//! * [`receive`]: the receiving side, for the `local` exporter (the daemon sends).
//! * [`export_dir`]: the confined disk writer the receiver writes through.

pub mod dockerignore;
pub mod export_dir;
pub mod go_mode;
pub mod go_path;
pub mod metadata;
pub mod patterns;
pub mod receive;
pub mod sender;
pub mod serve;
pub mod validator;
pub mod walk;

pub use dockerignore::{find_dockerignore, load_dockerignore, DockerIgnore, DockerIgnoreError};
pub use metadata::DiffCopyRequest;
pub use patterns::{parse_ignore_file, PathFilter, PatternError, PatternMatcher};
pub use sender::{
    send, MissingFilePolicy, Packet, PacketSink, PacketSource, SendError, SendSummary,
    SenderOptions, TransportError,
};
pub use serve::{serve_diffcopy, ServeError, ServeOptions, ServeSummary};
pub use validator::OrderValidator;
pub use walk::{
    walk_context, walk_context_async, ContextEntry, ContextSnapshot, EntryKind, WalkError,
    WalkOptions,
};
