//! Incremental context transfer against the real daemon: a first build of a
//! 20,000-file context sends everything, a no-change rebuild sends (almost)
//! nothing, and changing one file sends that one file.

use std::time::{Duration, SystemTime};

use cicd_agents_buildkit::build::{BuildOptions, Output};
use cicd_agents_buildkit::Client;
use cicd_agents_testenv::TestEnv;

const DIRS: usize = 200;
const FILES_PER_DIR: usize = 100;

#[tokio::test]
async fn no_change_rebuild_of_20000_files_sends_almost_nothing() {
    let env = TestEnv::load().expect("test environment (run scripts/testenv.sh up)");
    let client = Client::connect(&env.docker_addr).await.unwrap();
    let context = tempfile::tempdir().unwrap();
    let marker = env.unique_name("ctx");
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nCOPY . /ctx\n",
    )
    .unwrap();
    for d in 0..DIRS {
        let dir = context.path().join(format!("pkg{:03}/sub", d));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..FILES_PER_DIR {
            let mut body = format!("{marker} {d} {f}\n").into_bytes();
            body.resize(1024, b'.');
            std::fs::write(dir.join(format!("file{f:03}.txt")), body).unwrap();
        }
    }
    let options = BuildOptions::local(context.path()).output(Output::new("cacheonly", []));

    let first = client.build(&options).await.expect("first build");
    assert!(
        first.context_transfer.files >= (DIRS * FILES_PER_DIR) as u64,
        "{:?}",
        first.context_transfer
    );
    assert!(first.context_transfer.bytes >= (DIRS * FILES_PER_DIR * 1024) as u64);

    // The Dockerfile frontend reads its `dockerfile` local without a differ
    // (`local.differ=none`), so the Dockerfile itself is sent every time;
    // nothing of the context is.
    let dockerfile_len = std::fs::metadata(context.path().join("Dockerfile"))
        .unwrap()
        .len();
    let again = client.build(&options).await.expect("no-change rebuild");
    assert!(
        again.context_transfer.files <= 1,
        "a no-change rebuild re-sent files: {:?}",
        again.context_transfer
    );
    assert!(
        again.context_transfer.bytes <= dockerfile_len,
        "{:?}",
        again.context_transfer
    );

    let changed = context.path().join("pkg007/sub/file042.txt");
    std::fs::write(&changed, b"changed content\n").unwrap();
    let file = std::fs::File::options().write(true).open(&changed).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(1))
        .unwrap();
    let one = client.build(&options).await.expect("one-file rebuild");
    assert!(
        one.context_transfer.files <= 2,
        "{:?}",
        one.context_transfer
    );
    assert_eq!(
        one.context_transfer.bytes,
        "changed content\n".len() as u64 + again.context_transfer.bytes
    );
}
