//! Wire-compatibility guards.
//!
//! Each test encodes a message with a few fields set and checks the raw
//! field numbers and wire types on the wire, so that renumbering a field or
//! changing its scalar encoding in `protos/` fails loudly. The expected
//! values come from upstream BuildKit / fsutil / googleapis / gRPC.

use std::collections::HashMap;

use cicd_agents_proto::fsutil::types::{packet::PacketType, Packet, Stat};
use cicd_agents_proto::google::rpc::Status;
use cicd_agents_proto::grpc::health::v1::{
    health_check_response::ServingStatus, HealthCheckResponse,
};
use cicd_agents_proto::moby::buildkit::v1 as control;
use cicd_agents_proto::moby::buildkit::v1::types::{BuildkitVersion, GcPolicy, WorkerRecord};
use cicd_agents_proto::pb;
use prost::Message;

/// Protobuf wire types.
const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

fn read_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = buf[*pos];
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

/// A top-level field as found on the wire.
#[derive(Debug, Clone, PartialEq)]
struct Field {
    number: u32,
    wire_type: u8,
    /// Raw varint value (VARINT fields only).
    varint: Option<u64>,
    /// Payload bytes (LEN fields only).
    payload: Vec<u8>,
}

/// Splits an encoded message into its top-level fields, in wire order.
fn fields(buf: &[u8]) -> Vec<Field> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = read_varint(buf, &mut pos);
        let number = u32::try_from(key >> 3).unwrap();
        let wire_type = (key & 7) as u8;
        let mut field = Field {
            number,
            wire_type,
            varint: None,
            payload: Vec::new(),
        };
        match wire_type {
            VARINT => field.varint = Some(read_varint(buf, &mut pos)),
            I64 => pos += 8,
            LEN => {
                let len = usize::try_from(read_varint(buf, &mut pos)).unwrap();
                field.payload = buf[pos..pos + len].to_vec();
                pos += len;
            }
            I32 => pos += 4,
            other => panic!("unexpected wire type {other}"),
        }
        out.push(field);
    }
    out
}

/// The (number, wire type) pairs of an encoded message.
fn layout<M: Message>(msg: &M) -> Vec<(u32, u8)> {
    fields(&msg.encode_to_vec())
        .into_iter()
        .map(|f| (f.number, f.wire_type))
        .collect()
}

/// The single field of a message that has exactly one field set.
fn only_field<M: Message>(msg: &M) -> Field {
    let mut all = fields(&msg.encode_to_vec());
    assert_eq!(
        all.len(),
        1,
        "expected exactly one encoded field, got {all:?}"
    );
    all.pop().unwrap()
}

fn attrs(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------
// moby.buildkit.v1
// ---------------------------------------------------------------------------

#[test]
fn solve_request_exporters_is_field_13() {
    let req = control::SolveRequest {
        exporters: vec![control::Exporter {
            r#type: "image".into(),
            attrs: attrs(&[("push", "true")]),
        }],
        ..Default::default()
    };
    let f = only_field(&req);
    assert_eq!((f.number, f.wire_type), (13, LEN));
    // Exporter { Type = 1; Attrs = 2 }
    assert_eq!(
        fields(&f.payload)
            .iter()
            .map(|f| f.number)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
}

#[test]
fn solve_request_legacy_exporter_fields_are_3_and_4() {
    let req = control::SolveRequest {
        exporter_deprecated: "image".into(),
        exporter_attrs_deprecated: attrs(&[("name", "example.com/app:latest")]),
        ..Default::default()
    };
    assert_eq!(layout(&req), vec![(3, LEN), (4, LEN)]);
}

#[test]
fn solve_request_full_layout() {
    let req = control::SolveRequest {
        r#ref: "r".into(),
        definition: Some(pb::Definition {
            def: vec![vec![0]],
            ..Default::default()
        }),
        exporter_deprecated: "e".into(),
        exporter_attrs_deprecated: attrs(&[("a", "b")]),
        session: "s".into(),
        frontend: "dockerfile.v0".into(),
        frontend_attrs: attrs(&[("target", "t")]),
        cache: Some(control::CacheOptions::default()),
        entitlements: vec!["network.host".into()],
        frontend_inputs: [("context".to_owned(), pb::Definition::default())]
            .into_iter()
            .collect(),
        internal: true,
        source_policy: Some(Default::default()),
        exporters: vec![control::Exporter::default()],
        enable_session_exporter: true,
        source_policy_session: "p".into(),
        compatibility_version: 1,
        proxy_network: true,
    };
    assert_eq!(
        layout(&req),
        vec![
            (1, LEN),
            (2, LEN),
            (3, LEN),
            (4, LEN),
            (5, LEN),
            (6, LEN),
            (7, LEN),
            (8, LEN),
            (9, LEN),
            (10, LEN),
            (11, VARINT),
            (12, LEN),
            (13, LEN),
            (14, VARINT),
            (15, LEN),
            (16, VARINT),
            (17, VARINT),
        ]
    );
}

#[test]
fn cache_options_layout() {
    let opts = control::CacheOptions {
        export_ref_deprecated: "x".into(),
        import_refs_deprecated: vec!["y".into()],
        export_attrs_deprecated: attrs(&[("mode", "max")]),
        exports: vec![control::CacheOptionsEntry {
            r#type: "registry".into(),
            attrs: attrs(&[("ref", "r")]),
        }],
        imports: vec![control::CacheOptionsEntry {
            r#type: "local".into(),
            attrs: HashMap::new(),
        }],
    };
    assert_eq!(
        layout(&opts),
        vec![(1, LEN), (2, LEN), (3, LEN), (4, LEN), (5, LEN)]
    );
}

#[test]
fn status_response_layout() {
    let vertex = control::Vertex {
        digest: "sha256:aa".into(),
        started: Some(prost_types::Timestamp {
            seconds: 1,
            nanos: 0,
        }),
        error: "boom".into(),
        progress_group: Some(pb::ProgressGroup {
            id: "g".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        layout(&vertex),
        vec![(1, LEN), (5, LEN), (7, LEN), (8, LEN)]
    );

    let status = control::VertexStatus {
        id: "i".into(),
        current: 3,
        total: 9,
        ..Default::default()
    };
    assert_eq!(layout(&status), vec![(1, LEN), (4, VARINT), (5, VARINT)]);

    let log = control::VertexLog {
        vertex: "v".into(),
        stream: 2,
        msg: b"hi".to_vec(),
        ..Default::default()
    };
    assert_eq!(layout(&log), vec![(1, LEN), (3, VARINT), (4, LEN)]);

    let warning = control::VertexWarning {
        level: 1,
        detail: vec![b"d".to_vec()],
        url: "u".into(),
        info: Some(pb::SourceInfo::default()),
        ranges: vec![pb::Range::default()],
        ..Default::default()
    };
    assert_eq!(
        layout(&warning),
        vec![(2, VARINT), (4, LEN), (5, LEN), (6, LEN), (7, LEN)]
    );

    let resp = control::StatusResponse {
        vertexes: vec![vertex],
        statuses: vec![status],
        logs: vec![log],
        warnings: vec![warning],
    };
    assert_eq!(layout(&resp), vec![(1, LEN), (2, LEN), (3, LEN), (4, LEN)]);
}

#[test]
fn usage_and_prune_layout() {
    let rec = control::UsageRecord {
        id: "i".into(),
        size: 10,
        created_at: Some(prost_types::Timestamp::default()),
        record_type: "regular".into(),
        shared: true,
        parents: vec!["p".into()],
        ..Default::default()
    };
    assert_eq!(
        layout(&rec),
        vec![
            (1, LEN),
            (4, VARINT),
            (6, LEN),
            (10, LEN),
            (11, VARINT),
            (12, LEN)
        ]
    );

    let prune = control::PruneRequest {
        filter: vec!["f".into()],
        all: true,
        keep_duration: 1,
        reserved_space: 2,
        max_used_space: 3,
        min_free_space: 4,
    };
    assert_eq!(
        layout(&prune),
        vec![
            (1, LEN),
            (2, VARINT),
            (3, VARINT),
            (4, VARINT),
            (5, VARINT),
            (6, VARINT)
        ]
    );

    let du = control::DiskUsageRequest {
        filter: vec!["f".into()],
        age_limit: 5,
    };
    assert_eq!(layout(&du), vec![(1, LEN), (2, VARINT)]);
}

#[test]
fn build_history_layout() {
    let rec = control::BuildHistoryRecord {
        r#ref: "r".into(),
        error: Some(Status {
            code: 2,
            ..Default::default()
        }),
        result: Some(control::BuildResultInfo::default()),
        generation: 1,
        trace: Some(control::Descriptor::default()),
        external_error: Some(control::Descriptor::default()),
        num_warnings: 3,
        ..Default::default()
    };
    assert_eq!(
        layout(&rec),
        vec![
            (1, LEN),
            (5, LEN),
            (10, LEN),
            (12, VARINT),
            (13, LEN),
            (18, LEN),
            (19, VARINT)
        ]
    );

    let desc = control::Descriptor {
        media_type: "m".into(),
        digest: "d".into(),
        size: 1,
        annotations: attrs(&[("k", "v")]),
    };
    assert_eq!(
        layout(&desc),
        vec![(1, LEN), (2, LEN), (3, VARINT), (5, LEN)]
    );

    let event = control::BuildHistoryEvent {
        r#type: control::BuildHistoryEventType::Deleted as i32,
        record: None,
    };
    assert_eq!(only_field(&event).varint, Some(2));

    let req = control::BuildHistoryRequest {
        early_exit: true,
        limit: 4,
        ..Default::default()
    };
    assert_eq!(layout(&req), vec![(3, VARINT), (5, VARINT)]);

    let upd = control::UpdateBuildHistoryRequest {
        finalize: true,
        ..Default::default()
    };
    assert_eq!(layout(&upd), vec![(4, VARINT)]);
}

#[test]
fn info_and_workers_layout() {
    let worker = WorkerRecord {
        id: "w".into(),
        gc_policy: vec![GcPolicy {
            reserved_space: 1,
            filters: vec!["f".into()],
            ..Default::default()
        }],
        buildkit_version: Some(BuildkitVersion {
            version: "v0.26.0".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(layout(&worker), vec![(1, LEN), (4, LEN), (5, LEN)]);
    assert_eq!(layout(&worker.gc_policy[0]), vec![(3, VARINT), (4, LEN)]);

    let version = BuildkitVersion {
        dockerfile_version: "1.19".into(),
        ..Default::default()
    };
    assert_eq!(only_field(&version).number, 4);

    let info = control::InfoResponse {
        buildkit_version: Some(version),
    };
    assert_eq!(only_field(&info).number, 1);
}

// ---------------------------------------------------------------------------
// pb (LLB)
// ---------------------------------------------------------------------------

#[test]
fn llb_layout() {
    let exec = pb::Op {
        inputs: vec![pb::Input {
            digest: "sha256:x".into(),
            index: 0,
        }],
        op: Some(pb::op::Op::Exec(pb::ExecOp {
            meta: Some(pb::Meta {
                args: vec!["true".into()],
                ..Default::default()
            }),
            mounts: vec![pb::Mount {
                input: -1,
                dest: "/cache".into(),
                output: -1,
                mount_type: pb::MountType::Cache as i32,
                cache_opt: Some(pb::CacheOpt {
                    id: "c".into(),
                    sharing: pb::CacheSharingOpt::Locked as i32,
                }),
                ..Default::default()
            }],
            network: pb::NetMode::None as i32,
            ..Default::default()
        })),
        platform: Some(pb::Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Default::default()
        }),
        constraints: None,
    };
    assert_eq!(layout(&exec), vec![(1, LEN), (2, LEN), (10, LEN)]);

    let mount = pb::Mount {
        cache_opt: Some(Default::default()),
        content_cache: 2,
        ..Default::default()
    };
    assert_eq!(layout(&mount), vec![(20, LEN), (24, VARINT)]);

    let file = pb::Op {
        op: Some(pb::op::Op::File(pb::FileOp::default())),
        ..Default::default()
    };
    assert_eq!(layout(&file), vec![(4, LEN)]);

    let def = pb::Definition {
        def: vec![exec.encode_to_vec()],
        metadata: [(
            "sha256:x".to_owned(),
            pb::OpMetadata {
                ignore_cache: true,
                ..Default::default()
            },
        )]
        .into_iter()
        .collect(),
        source: Some(pb::Source::default()),
    };
    assert_eq!(layout(&def), vec![(1, LEN), (2, LEN), (3, LEN)]);

    let meta = pb::OpMetadata {
        export_cache: Some(pb::ExportCache { value: true }),
        progress_group: Some(pb::ProgressGroup::default()),
        ..Default::default()
    };
    assert_eq!(layout(&meta), vec![(4, LEN), (6, LEN)]);

    let copy = pb::FileActionCopy {
        mode: -1,
        timestamp: -1,
        required_paths: vec!["a".into()],
        ..Default::default()
    };
    assert_eq!(layout(&copy), vec![(4, VARINT), (11, VARINT), (16, LEN)]);

    let user = pb::UserOpt {
        user: Some(pb::user_opt::User::ById(0)),
    };
    assert_eq!(
        (only_field(&user).number, only_field(&user).wire_type),
        (2, VARINT)
    );

    // Enum numbering.
    assert_eq!(pb::NetMode::Host as i32, 1);
    assert_eq!(pb::SecurityMode::Insecure as i32, 1);
    assert_eq!(pb::MountType::Tmpfs as i32, 4);
}

// ---------------------------------------------------------------------------
// fsutil.types
// ---------------------------------------------------------------------------

#[test]
fn packet_type_values() {
    assert_eq!(PacketType::PacketStat as i32, 0);
    assert_eq!(PacketType::PacketReq as i32, 1);
    assert_eq!(PacketType::PacketData as i32, 2);
    assert_eq!(PacketType::PacketFin as i32, 3);
    assert_eq!(PacketType::PacketErr as i32, 4);
}

#[test]
fn packet_id_is_field_3_uint32() {
    let pkt = Packet {
        r#type: PacketType::PacketData as i32,
        stat: None,
        id: 7,
        data: b"abc".to_vec().into(),
    };
    let all = fields(&pkt.encode_to_vec());
    assert_eq!(
        all.iter()
            .map(|f| (f.number, f.wire_type))
            .collect::<Vec<_>>(),
        vec![(1, VARINT), (3, VARINT), (4, LEN)]
    );
    assert_eq!(all[0].varint, Some(2));
    assert_eq!(all[1].varint, Some(7));

    let with_stat = Packet {
        stat: Some(Stat {
            path: "a".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(layout(&with_stat), vec![(2, LEN)]);
}

#[test]
fn stat_mod_time_is_field_6_plain_int64() {
    // int64 (not sint64): -1 is a ten-byte two's-complement varint, which
    // reads back as u64::MAX. A zigzag sint64 would encode it as 1.
    let stat = Stat {
        mod_time: -1,
        ..Default::default()
    };
    let f = only_field(&stat);
    assert_eq!((f.number, f.wire_type), (6, VARINT));
    assert_eq!(f.varint, Some(u64::MAX));

    let ns = 1_700_000_000_123_456_789_i64;
    let f = only_field(&Stat {
        mod_time: ns,
        ..Default::default()
    });
    assert_eq!(f.varint, Some(ns as u64));
}

#[test]
fn stat_layout() {
    let stat = Stat {
        path: "dir/file".into(),
        mode: 0o644,
        uid: 1,
        gid: 2,
        size: 3,
        mod_time: 4,
        linkname: "l".into(),
        devmajor: 5,
        devminor: 6,
        xattrs: [("user.k".to_owned(), b"v".to_vec())].into_iter().collect(),
    };
    assert_eq!(
        layout(&stat),
        vec![
            (1, LEN),
            (2, VARINT),
            (3, VARINT),
            (4, VARINT),
            (5, VARINT),
            (6, VARINT),
            (7, LEN),
            (8, VARINT),
            (9, VARINT),
            (10, LEN),
        ]
    );
    // Go os.FileMode directory bit survives as a uint32.
    let dir = Stat {
        mode: (1u32 << 31) | 0o755,
        ..Default::default()
    };
    assert_eq!(
        only_field(&dir).varint,
        Some(u64::from((1u32 << 31) | 0o755))
    );
}

// ---------------------------------------------------------------------------
// session services, google.rpc, grpc.health
// ---------------------------------------------------------------------------

#[test]
fn session_message_layouts() {
    use cicd_agents_proto::moby::buildkit::secrets::v1::GetSecretRequest;
    use cicd_agents_proto::moby::filesync::v1::{
        BytesMessage, CredentialsResponse, FetchTokenRequest,
    };
    use cicd_agents_proto::moby::sshforward::v1::CheckAgentRequest;

    assert_eq!(
        layout(&BytesMessage {
            data: vec![1].into()
        }),
        vec![(1, LEN)]
    );
    assert_eq!(
        layout(&control::BytesMessage {
            data: vec![1].into()
        }),
        vec![(1, LEN)]
    );
    assert_eq!(
        layout(&CredentialsResponse {
            username: "u".into(),
            secret: "s".into()
        }),
        vec![(1, LEN), (2, LEN)]
    );
    assert_eq!(
        layout(&FetchTokenRequest {
            scopes: vec!["s".into()],
            ..Default::default()
        }),
        vec![(5, LEN)]
    );
    assert_eq!(
        layout(&GetSecretRequest {
            id: "i".into(),
            annotations: attrs(&[("a", "b")])
        }),
        vec![(1, LEN), (2, LEN)]
    );
    assert_eq!(
        layout(&CheckAgentRequest {
            id: "default".into()
        }),
        vec![(1, LEN)]
    );
}

#[test]
fn rpc_status_layout() {
    let st = Status {
        code: 13,
        message: "m".into(),
        details: vec![prost_types::Any {
            type_url: "t".into(),
            value: vec![],
        }],
    };
    assert_eq!(layout(&st), vec![(1, VARINT), (2, LEN), (3, LEN)]);
}

#[test]
fn health_layout() {
    let resp = HealthCheckResponse {
        status: ServingStatus::Serving as i32,
    };
    let f = only_field(&resp);
    assert_eq!((f.number, f.varint), (1, Some(1)));
    assert_eq!(ServingStatus::ServiceUnknown as i32, 3);
}

// ---------------------------------------------------------------------------
// gRPC service and method names
// ---------------------------------------------------------------------------

#[test]
fn service_names() {
    use cicd_agents_proto::grpc::health::v1::health_server;
    use cicd_agents_proto::moby::buildkit::secrets::v1::secrets_server;
    use cicd_agents_proto::moby::buildkit::v1::control_server;
    use cicd_agents_proto::moby::exporter::v1::exporter_server;
    use cicd_agents_proto::moby::filesync::v1::{
        auth_server, file_send_server, file_sync_server, packets,
    };
    use cicd_agents_proto::moby::sshforward::v1::ssh_server;
    use cicd_agents_proto::moby::upload::v1::upload_server;

    assert_eq!(control_server::SERVICE_NAME, "moby.buildkit.v1.Control");
    assert_eq!(health_server::SERVICE_NAME, "grpc.health.v1.Health");
    assert_eq!(file_sync_server::SERVICE_NAME, "moby.filesync.v1.FileSync");
    assert_eq!(file_send_server::SERVICE_NAME, "moby.filesync.v1.FileSend");
    assert_eq!(
        packets::file_send_server::SERVICE_NAME,
        "moby.filesync.v1.FileSend"
    );
    assert_eq!(auth_server::SERVICE_NAME, "moby.filesync.v1.Auth");
    assert_eq!(
        secrets_server::SERVICE_NAME,
        "moby.buildkit.secrets.v1.Secrets"
    );
    assert_eq!(ssh_server::SERVICE_NAME, "moby.sshforward.v1.SSH");
    assert_eq!(upload_server::SERVICE_NAME, "moby.upload.v1.Upload");
    assert_eq!(exporter_server::SERVICE_NAME, "moby.exporter.v1.Exporter");
}

/// Methods of every service as (name, client streaming, server streaming),
/// read back from the embedded descriptor set.
#[test]
fn rpc_methods_and_streaming() {
    let fds =
        prost_types::FileDescriptorSet::decode(cicd_agents_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut services: HashMap<String, Vec<(String, bool, bool)>> = HashMap::new();
    for file in &fds.file {
        for svc in &file.service {
            let full = format!("{}.{}", file.package(), svc.name());
            let methods = svc
                .method
                .iter()
                .map(|m| {
                    (
                        m.name().to_owned(),
                        m.client_streaming(),
                        m.server_streaming(),
                    )
                })
                .collect();
            services.insert(full, methods);
        }
    }
    let expect = |svc: &str, methods: &[(&str, bool, bool)]| {
        let got = services
            .get(svc)
            .unwrap_or_else(|| panic!("service {svc} missing"));
        let mut got = got.clone();
        got.sort();
        let mut want: Vec<_> = methods
            .iter()
            .map(|(n, c, s)| ((*n).to_owned(), *c, *s))
            .collect();
        want.sort();
        assert_eq!(got, want, "methods of {svc}");
    };
    expect(
        "moby.buildkit.v1.Control",
        &[
            ("DiskUsage", false, false),
            ("Prune", false, true),
            ("Solve", false, false),
            ("Status", false, true),
            ("Session", true, true),
            ("ListWorkers", false, false),
            ("Info", false, false),
            ("ListenBuildHistory", false, true),
            ("UpdateBuildHistory", false, false),
        ],
    );
    expect(
        "moby.filesync.v1.FileSync",
        &[("DiffCopy", true, true), ("TarStream", true, true)],
    );
    expect("moby.filesync.v1.FileSend", &[("DiffCopy", true, true)]);
    expect(
        "moby.filesync.v1.Auth",
        &[
            ("Credentials", false, false),
            ("FetchToken", false, false),
            ("GetTokenAuthority", false, false),
            ("VerifyTokenAuthority", false, false),
        ],
    );
    expect(
        "moby.buildkit.secrets.v1.Secrets",
        &[("GetSecret", false, false)],
    );
    expect(
        "moby.sshforward.v1.SSH",
        &[("CheckAgent", false, false), ("ForwardAgent", true, true)],
    );
    expect("moby.upload.v1.Upload", &[("Pull", true, true)]);
    expect(
        "moby.exporter.v1.Exporter",
        &[
            ("FindExporters", false, false),
            ("FinalizeExport", false, false),
        ],
    );
    expect(
        "grpc.health.v1.Health",
        &[("Check", false, false), ("Watch", false, true)],
    );

    // Streamed message types of the session tunnels.
    let file_sync = fds
        .file
        .iter()
        .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
        .find(|(pkg, s)| *pkg == "moby.filesync.v1" && s.name() == "FileSync")
        .unwrap()
        .1;
    assert_eq!(file_sync.method[0].input_type(), ".fsutil.types.Packet");
    assert_eq!(file_sync.method[0].output_type(), ".fsutil.types.Packet");
}
