//! `cicd-agents build` in a terminal: the real CLI runs with its stderr on a
//! pseudo-terminal of fixed size, against the real daemon, and a terminal
//! emulator reads back the screen it leaves (`--progress auto` picks the
//! `tty` view there).

use std::fs::OpenOptions;
use std::num::NonZeroU16;
use std::os::fd::OwnedFd;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cicd_agents_testenv::{cli, write_context, TestEnv};
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcsetwinsize, Winsize};

fn size(cols: u16, rows: u16) -> (NonZeroU16, NonZeroU16) {
    match (NonZeroU16::new(rows), NonZeroU16::new(cols)) {
        (Some(rows), Some(cols)) => (rows, cols),
        _ => panic!("a terminal has a size"),
    }
}

/// A pseudo-terminal whose output a vt100 emulator reads.
struct Pty {
    master: Arc<OwnedFd>,
    screen: Arc<Mutex<vt100::Parser>>,
}

impl Pty {
    /// Opens a `cols`×`rows` terminal; returns it and its other end.
    fn open(cols: u16, rows: u16) -> (Pty, OwnedFd) {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_string_lossy().as_ref())
            .expect("open the pty's other end");
        set_winsize(&master, cols, rows);
        let (r, c) = size(cols, rows);
        let pty = Pty {
            master: Arc::new(master),
            screen: Arc::new(Mutex::new(vt100::Parser::new(r, c, 10_000))),
        };
        (pty, OwnedFd::from(slave))
    }

    /// Copies what the terminal receives into the emulator until the other
    /// end is closed by everyone.
    fn pump(&self) -> std::thread::JoinHandle<()> {
        let master = self.master.clone();
        let screen = self.screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match rustix::io::read(&*master, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => screen.lock().unwrap().process(&buf[..n]),
                }
            }
        })
    }

    /// Resizes the terminal (the program gets SIGWINCH and a new size).
    fn resize(&self, cols: u16, rows: u16) {
        let mut screen = self.screen.lock().unwrap();
        let (r, c) = size(cols, rows);
        screen.set_size(r, c);
        set_winsize(&self.master, cols, rows);
    }

    /// Every row shown so far: the scrollback, then the screen (trailing
    /// blank rows left out).
    fn rows(&self) -> Vec<String> {
        let mut parser = self.screen.lock().unwrap();
        let screen = parser.screen_mut();
        screen.set_scrollback(usize::MAX);
        let history = screen.scrollback();
        let cols = screen.size().1.get();
        let mut rows = Vec::new();
        for offset in (1..=history).rev() {
            screen.set_scrollback(offset);
            rows.extend(screen.rows(0, cols).take(1));
        }
        screen.set_scrollback(0);
        rows.extend(screen.rows(0, cols));
        while rows.last().is_some_and(|r| r.trim().is_empty()) {
            rows.pop();
        }
        rows
    }
}

fn set_winsize(master: &OwnedFd, cols: u16, rows: u16) {
    tcsetwinsize(
        master,
        Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .expect("TIOCSWINSZ");
}

/// Waits for `child`, killing it after `limit`.
fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the build took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn position(rows: &[String], needle: &str) -> usize {
    rows.iter()
        .position(|r| r.contains(needle))
        .unwrap_or_else(|| panic!("no row with {needle:?} in\n{}", rows.join("\n")))
}

#[test]
fn the_terminal_view_redraws_one_header_lists_steps_in_order_and_fits_the_width() {
    let env = TestEnv::required();
    let context = tempfile::tempdir().unwrap();
    let marker = env.unique_name("tty");
    let dockerfile = format!(
        "FROM {base}\nCOPY . /ctx\nRUN for i in 1 2 3 4 5 6; do echo \"{marker} tick $i, a line long enough to be cut at the terminal's right edge, and then some more words\"; sleep 1; done\n",
        base = env.base_image
    );
    write_context(
        context.path(),
        [
            ("Dockerfile", dockerfile.as_str()),
            ("marker", marker.as_str()),
        ],
    )
    .unwrap();
    // A sizeable context (48 MB, unique to this run so nothing is cached).
    let mut state = marker.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut big = Vec::with_capacity(48 << 20);
    while big.len() < 48 << 20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        big.extend_from_slice(&state.to_le_bytes());
    }
    std::fs::write(context.path().join("big.bin"), &big).unwrap();
    drop(big);

    let (pty, slave) = Pty::open(120, 30);
    let pump = pty.pump();
    let mut child = cli()
        .args(["build", "--addr", &env.docker_addr, "--network", "host"])
        .args(["--progress", "auto"])
        .arg(context.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave))
        .env_remove("NO_COLOR")
        .spawn()
        .expect("run cicd-agents");

    // While the RUN runs: its output rows under it, one header, nothing
    // wider than the terminal. Then the terminal is made narrower.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen_output = false;
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        let rows = pty.rows();
        if rows
            .iter()
            .any(|r| r.starts_with(" => => # ") && r.contains(&format!("{marker} tick 2")))
        {
            assert_eq!(
                rows.iter().filter(|r| r.contains("[+] Building")).count(),
                1,
                "{}",
                rows.join("\n")
            );
            let run = position(&rows, "[3/3] RUN");
            assert!(
                rows[run + 1].starts_with(" => => # "),
                "{}",
                rows.join("\n")
            );
            seen_output = true;
            pty.resize(100, 30);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = wait(&mut child, Duration::from_secs(120));
    // Our copies of the terminal's other end are gone: the pump stops at the end.
    pump.join().unwrap();
    let rows = pty.rows();
    let text = rows.join("\n");
    assert!(status.success(), "{status}\n{text}");
    assert!(
        seen_output,
        "the RUN's output never showed under it:\n{text}"
    );

    // One header, redrawn in place, with the builder's address at the right.
    assert_eq!(
        rows.iter().filter(|r| r.contains("[+] Building")).count(),
        1,
        "{text}"
    );
    let header = position(&rows, "[+] Building");
    assert!(
        rows[header].contains(") FINISHED") && rows[header].trim_end().ends_with(&env.docker_addr),
        "{text}"
    );
    // The steps in the order they started, the transfer under its step.
    let context_step = position(&rows, "=> [internal] load build context");
    assert!(
        rows[context_step + 1].starts_with(" => => transferring context: ")
            && rows[context_step + 1].contains("MB"),
        "{text}"
    );
    let from = position(&rows, "[1/3] FROM");
    let copy = position(&rows, "=> [2/3] COPY . /ctx");
    let run = position(&rows, "=> [3/3] RUN for i in 1 2 3 4 5 6");
    assert!(
        header < context_step && context_step < copy && from < copy && copy < run,
        "{text}"
    );
    // Every line fits the (now 100-column) terminal: the RUN's name is cut
    // before its timer, never wrapped onto the next row.
    for row in &rows[header..] {
        assert!(row.trim_end().chars().count() < 100, "{row:?}\n{text}");
    }
    let seconds = rows[run]
        .trim_end()
        .rsplit(' ')
        .next()
        .and_then(|timer| timer.strip_suffix('s'))
        .and_then(|number| number.parse::<f64>().ok());
    assert!(seconds.is_some_and(|s| s >= 5.0), "{text}");
    assert!(!text.contains("and then some more words\""), "{text}");
    // The output rows of the finished RUN are gone from the last frame.
    assert!(
        !rows[run..].iter().any(|r| r.starts_with(" => => # ")),
        "{text}"
    );
}
