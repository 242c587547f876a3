//! Finding the `cicd-agents` binary the workspace built, for command-line tests.

use std::path::PathBuf;
use std::process::Command;

/// The `cicd-agents` binary of this build (`target/<profile>/cicd-agents`).
///
/// Test executables live in `target/<profile>/deps/`; the binary sits one
/// level up. `cargo test --workspace` builds it; a missing binary is a clear
/// panic rather than a silently skipped test.
pub fn cli_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let candidates = exe
        .ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join("cicd-agents"));
    for candidate in candidates {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("the cicd-agents binary was not found next to {}; run `cargo build -p cicd-agents-cli` first", exe.display());
}

/// A `Command` for the `cicd-agents` binary.
pub fn cli() -> Command {
    Command::new(cli_binary())
}

/// `cicd-agents build --addr ADDR` for the test environment's dockerd: add the build's
/// flags and context.
pub fn cli_build(env: &crate::TestEnv) -> Command {
    let mut command = cli();
    command.args(["build", "--addr", &env.docker_addr]);
    command
}
