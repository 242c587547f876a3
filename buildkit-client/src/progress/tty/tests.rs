use super::view::Output;
use super::*;
use crate::progress::event::{LogChunk, StatusItem, VertexUpdate, Warning};
use std::num::NonZeroU16;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

/// A terminal emulator the renderer writes into.
#[derive(Clone)]
struct Term(Arc<Mutex<vt100::Parser>>);

impl Term {
    fn new(cols: u16, rows: u16) -> Self {
        let (Some(rows), Some(cols)) = (NonZeroU16::new(rows), NonZeroU16::new(cols)) else {
            panic!("a terminal has a size");
        };
        Term(Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 10_000))))
    }

    fn resize(&self, cols: u16, rows: u16) {
        let (Some(rows), Some(cols)) = (NonZeroU16::new(rows), NonZeroU16::new(cols)) else {
            panic!("a terminal has a size");
        };
        self.0.lock().unwrap().set_size(rows, cols);
    }

    /// Every row ever shown: the scrollback, then the screen, trailing
    /// blank rows of the screen left out.
    fn all_rows(&self) -> Vec<String> {
        let mut parser = self.0.lock().unwrap();
        let screen = parser.screen_mut();
        screen.set_scrollback(usize::MAX);
        let history = screen.scrollback();
        let (_, cols) = screen.size();
        let mut rows = Vec::new();
        for offset in (1..=history).rev() {
            screen.set_scrollback(offset);
            rows.extend(screen.rows(0, cols.get()).take(1));
        }
        screen.set_scrollback(0);
        rows.extend(screen.rows(0, cols.get()));
        while rows.last().is_some_and(|r| r.trim().is_empty()) {
            rows.pop();
        }
        rows
    }

    fn cursor_row(&self) -> u16 {
        self.0.lock().unwrap().screen().cursor_position().0
    }
}

impl Write for Term {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        // A terminal's line discipline turns `\n` into `\r\n` (ONLCR).
        let mut cooked = Vec::with_capacity(data.len() + 64);
        for &byte in data {
            if byte == b'\n' {
                cooked.push(b'\r');
            }
            cooked.push(byte);
        }
        self.0.lock().unwrap().process(&cooked);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn at(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(millis)
}

fn vertex(digest: &str, name: &str, started: Option<u64>, completed: Option<u64>) -> VertexUpdate {
    VertexUpdate {
        digest: digest.into(),
        name: name.into(),
        inputs: vec![],
        cached: false,
        started: started.map(at),
        completed: completed.map(at),
        error: String::new(),
    }
}

fn counter(
    digest: &str,
    id: &str,
    current: i64,
    started: u64,
    completed: Option<u64>,
) -> StatusItem {
    StatusItem {
        id: id.into(),
        vertex: digest.into(),
        name: String::new(),
        current,
        total: 0,
        started: Some(at(started)),
        timestamp: Some(at(completed.unwrap_or(started))),
        completed: completed.map(at),
    }
}

fn log(digest: &str, text: &str) -> LogChunk {
    LogChunk {
        vertex: digest.into(),
        stream: 1,
        data: text.as_bytes().to_vec(),
        timestamp: None,
    }
}

const LONG_RUN: &str = "[3/3] RUN sleep 6 && echo 'a long command that goes on and on past the right edge of any reasonable terminal window, on and on and on, and still on' && true";

/// The build from issue 13: a 300 MB context and a six-second `RUN`, the
/// steps announced (unstarted) out of order first, as the daemon does.
/// Each element is (time in ms, update).
fn recorded_build() -> Vec<(u64, StatusUpdate)> {
    let mut events = Vec::new();
    let mut push = |ms: u64, update: StatusUpdate| events.push((ms, update));
    push(
        0,
        StatusUpdate {
            vertexes: vec![vertex(
                "def",
                "[internal] load build definition from Dockerfile",
                Some(0),
                None,
            )],
            ..Default::default()
        },
    );
    push(
        40,
        StatusUpdate {
            vertexes: vec![vertex(
                "def",
                "[internal] load build definition from Dockerfile",
                Some(0),
                Some(40),
            )],
            statuses: vec![counter("def", "transferring dockerfile:", 130, 5, Some(40))],
            ..Default::default()
        },
    );
    push(
        60,
        StatusUpdate {
            vertexes: vec![
                vertex(
                    "meta",
                    "[internal] load metadata for docker.io/library/alpine:3.19",
                    Some(60),
                    Some(300),
                ),
                vertex("ign", "[internal] load .dockerignore", Some(60), Some(80)),
            ],
            statuses: vec![counter("ign", "transferring context:", 2, 62, Some(80))],
            ..Default::default()
        },
    );
    // Announced before they start, the RUN first.
    push(
        320,
        StatusUpdate {
            vertexes: vec![
                vertex("run", LONG_RUN, None, None),
                vertex("copy", "[2/3] COPY . /ctx", None, None),
                vertex(
                    "from",
                    "[1/3] FROM docker.io/library/alpine:3.19@sha256:0123456789abcdef",
                    None,
                    None,
                ),
                vertex("ctx", "[internal] load build context", None, None),
            ],
            ..Default::default()
        },
    );
    push(
        330,
        StatusUpdate {
            vertexes: vec![
                vertex("ctx", "[internal] load build context", Some(330), None),
                VertexUpdate {
                    cached: true,
                    ..vertex(
                        "from",
                        "[1/3] FROM docker.io/library/alpine:3.19@sha256:0123456789abcdef",
                        Some(330),
                        Some(330),
                    )
                },
            ],
            ..Default::default()
        },
    );
    for step in 1..=10u64 {
        let ms = 330 + step * 200;
        let done = (step == 10).then_some(ms);
        push(
            ms,
            StatusUpdate {
                vertexes: if step == 10 {
                    vec![vertex(
                        "ctx",
                        "[internal] load build context",
                        Some(330),
                        done,
                    )]
                } else {
                    vec![]
                },
                statuses: vec![counter(
                    "ctx",
                    "transferring context:",
                    step as i64 * 30_007_000,
                    335,
                    done,
                )],
                ..Default::default()
            },
        );
    }
    push(
        2400,
        StatusUpdate {
            vertexes: vec![vertex("copy", "[2/3] COPY . /ctx", Some(2400), Some(3900))],
            ..Default::default()
        },
    );
    push(
        3900,
        StatusUpdate {
            vertexes: vec![vertex("run", LONG_RUN, Some(3900), None)],
            ..Default::default()
        },
    );
    for second in 1..=6u64 {
        push(
            3900 + second * 1000,
            StatusUpdate {
                logs: vec![log(
                    "run",
                    &format!("tick {second}\r\x1b[1mbold\x1b[0m tick {second}\tdone\n"),
                )],
                ..Default::default()
            },
        );
    }
    events
}

fn finish_build(renderer: &mut TtyRenderer<Term>, now: u64) {
    let update = StatusUpdate {
        vertexes: vec![vertex("run", LONG_RUN, Some(3900), Some(now))],
        ..Default::default()
    };
    renderer.view.apply(&update, at(now));
    renderer.draw(at(now), true);
}

/// Feeds the recorded build, drawing a frame every 100 ms as the ticks do.
fn play(
    renderer: &mut TtyRenderer<Term>,
    events: &[(u64, StatusUpdate)],
    until: u64,
    mut each_frame: impl FnMut(u64, &mut TtyRenderer<Term>),
) {
    let mut next = 0;
    for ms in (0..=until).step_by(100) {
        while next < events.len() && events[next].0 <= ms {
            renderer.view.apply(&events[next].1, at(events[next].0));
            next += 1;
        }
        each_frame(ms, renderer);
        renderer.draw(at(ms), false);
    }
}

fn renderer(term: &Term, cols: u16, rows: u16) -> TtyRenderer<Term> {
    TtyRenderer::new(term.clone())
        .size(TermSize { cols, rows })
        .builder_name("docker://unix:///var/run/docker.sock")
        .color(true)
}

fn position(rows: &[String], needle: &str) -> usize {
    rows.iter()
        .position(|r| r.contains(needle))
        .unwrap_or_else(|| panic!("no row with {needle:?} in\n{}", rows.join("\n")))
}

#[test]
fn one_header_redrawn_in_place_steps_in_order_with_sub_lines_and_cut_to_the_width() {
    let term = Term::new(120, 30);
    let mut view = renderer(&term, 120, 30);
    let events = recorded_build();
    let mut seen_running_log = false;
    play(&mut view, &events, 9_000, |ms, _| {
        if ms == 8_000 {
            let rows = term.all_rows();
            // While RUN runs, its last output rows are under it, cleaned
            // of escapes, carriage returns and tabs.
            let run = position(&rows, "[3/3] RUN");
            assert!(
                rows[run + 1].starts_with(" => => # bold tick 1     done"),
                "{rows:#?}"
            );
            assert_eq!(
                rows.iter().filter(|r| r.starts_with(" => => # ")).count(),
                4,
                "{rows:#?}"
            );
            seen_running_log = true;
        }
    });
    assert!(seen_running_log);
    // Mid-build: one header, at the top, with the builder at the right.
    let rows = term.all_rows();
    assert_eq!(
        rows.iter().filter(|r| r.contains("[+] Building")).count(),
        1,
        "{rows:#?}"
    );
    assert!(
        rows[0].starts_with("[+] Building 9.0s (6/7)"),
        "{}",
        rows[0]
    );
    assert!(
        rows[0].ends_with("docker://unix:///var/run/docker.sock"),
        "{:?}",
        rows[0]
    );

    finish_build(&mut view, 10_000);
    let rows = term.all_rows();
    let text = rows.join("\n");
    assert_eq!(
        rows.iter().filter(|r| r.contains("[+] Building")).count(),
        1,
        "{text}"
    );
    assert!(
        rows[0].starts_with("[+] Building 10.0s (7/7) FINISHED"),
        "{text}"
    );
    assert_eq!(rows.len(), 11, "{text}");
    // Steps in the order they started, each counter under its step.
    let order = [
        "=> [internal] load build definition from Dockerfile",
        "=> => transferring dockerfile: 130B",
        "=> [internal] load metadata for docker.io/library/alpine:3.19",
        "=> [internal] load .dockerignore",
        "=> => transferring context: 2B",
        "=> [internal] load build context",
        "=> => transferring context: 300.07MB",
        "=> CACHED [1/3] FROM docker.io/library/alpine:3.19@sha256:0123456789abcdef",
        "=> [2/3] COPY . /ctx",
        "=> [3/3] RUN sleep 6",
    ];
    for (row, needle) in rows[1..11].iter().zip(order) {
        assert!(
            row.starts_with(&format!(" {needle}")),
            "{row:?} is not {needle:?}\n{text}"
        );
    }
    // Timers at the right, in the second-to-last column; nothing wraps.
    assert!(rows[6].ends_with(" 2.0s"), "{:?}", rows[6]);
    assert!(rows[7].ends_with(" 2.0s"), "{:?}", rows[7]);
    assert!(rows[10].ends_with(" 6.1s"), "{:?}", rows[10]);
    assert!(
        rows[10].contains("any reasonable terminal"),
        "{:?}",
        rows[10]
    );
    for row in &rows {
        assert!(row.chars().count() <= 120, "{row:?}");
        assert!(
            !row.starts_with("on and on") && !row.starts_with(" reasonable"),
            "wrapped: {text}"
        );
    }
    // Output rows of a finished step are gone; the cursor is under the view.
    assert!(!text.contains(" => => # "), "{text}");
    assert_eq!(term.cursor_row(), 11);
}

#[test]
fn the_view_follows_a_resize_and_fits_a_narrow_terminal() {
    let term = Term::new(120, 30);
    let mut size = TermSize {
        cols: 120,
        rows: 30,
    };
    let shared = Arc::new(Mutex::new(size));
    let reading = shared.clone();
    let mut view = TtyRenderer::new(term.clone())
        .size_from(move || Some(*reading.lock().unwrap()))
        .builder_name("docker://unix:///var/run/docker.sock")
        .color(false);
    let events = recorded_build();
    play(&mut view, &events, 9_000, |ms, _| {
        if ms == 5_000 {
            size = TermSize { cols: 40, rows: 30 };
            *shared.lock().unwrap() = size;
            term.resize(40, 30);
        }
    });
    let rows = term.all_rows();
    let text = rows.join("\n");
    assert_eq!(
        rows.iter().filter(|r| r.contains("[+] Building")).count(),
        1,
        "{text}"
    );
    // The header is cut to 39 columns, the builder's name with it (as buildx does).
    assert_eq!(rows[0], "[+] Building 9.0s (6/7)  docker://unix:", "{text}");
    for row in &rows {
        assert!(row.trim_end().chars().count() <= 39, "{row:?}");
    }
    let ctx = position(&rows, "=> [internal] load build context");
    assert!(rows[ctx].ends_with(" 2.0s"), "{:?}", rows[ctx]);
    // The counter's bytes still fit beside a cut name.
    assert!(
        rows[ctx + 1].starts_with(" => => transferring cont 300.07MB"),
        "{:?}",
        rows[ctx + 1]
    );
    let run = position(&rows, "[3/3] RUN sleep 6 && ec");
    assert!(rows[run].ends_with(" 5.1s"), "{:?}", rows[run]);
    // Output rows are cut to 40 - 10 columns, as buildx's are.
    assert!(rows[run + 1].starts_with(" => => # "), "{text}");

    // Narrower than a step line can be: only the header remains.
    *shared.lock().unwrap() = TermSize { cols: 20, rows: 30 };
    term.resize(20, 30);
    finish_build(&mut view, 10_000);
    let rows = term.all_rows();
    assert_eq!(
        rows.iter().filter(|r| r.contains("[+] Build")).count(),
        1,
        "{rows:#?}"
    );
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0], "[+] Building 10.0s ", "{rows:#?}");
}

#[test]
fn a_long_build_keeps_within_the_height_until_the_last_frame() {
    let term = Term::new(80, 12);
    let mut view = renderer(&term, 80, 12);
    let mut updates = Vec::new();
    for i in 0..30u64 {
        let start = i * 100;
        updates.push((
            start,
            StatusUpdate {
                vertexes: vec![vertex(
                    &format!("d{i}"),
                    &format!("[{i}/30] RUN step {i}"),
                    Some(start),
                    Some(start + 150),
                )],
                ..Default::default()
            },
        ));
    }
    let mut scrolled = false;
    play(&mut view, &updates, 3_000, |_, _| {
        let parser = term.0.lock().unwrap();
        scrolled |= parser.screen().scrollback_len() > 0;
    });
    // 12 rows: the header and the last 10 steps, the screen never scrolled.
    assert!(!scrolled);
    let rows = term.all_rows();
    assert_eq!(rows.len(), 11, "{rows:#?}");
    assert!(rows[1].contains("[20/30] RUN step 20"), "{rows:#?}");
    // The last frame lists every step and scrolls the screen once.
    view.draw(at(3_200), true);
    let rows = term.all_rows();
    assert_eq!(rows.len(), 31, "{rows:#?}");
    assert_eq!(
        rows.iter().filter(|r| r.contains("[+] Building")).count(),
        1
    );
    assert!(
        rows[0].starts_with("[+] Building 3.2s (30/30) FINISHED"),
        "{rows:#?}"
    );
    assert!(rows[1].contains("[0/30] RUN step 0"), "{rows:#?}");
}

#[test]
fn running_steps_cut_off_the_top_come_back_in_place_of_finished_ones() {
    let term = Term::new(80, 8);
    let mut view = renderer(&term, 80, 8);
    let mut update = StatusUpdate::default();
    update
        .vertexes
        .push(vertex("slow", "[1/9] RUN the slow one", Some(0), None));
    for i in 2..=9u64 {
        update.vertexes.push(vertex(
            &format!("d{i}"),
            &format!("[{i}/9] RUN quick {i}"),
            Some(i),
            Some(i + 1),
        ));
    }
    update.warnings.push(Warning {
        vertex: "d9".into(),
        level: 1,
        short: b"JSONArgsRecommended: use JSON".to_vec(),
        detail: vec![],
        url: String::new(),
    });
    view.view.apply(&update, at(0));
    view.draw(at(1_000), false);
    let rows = term.all_rows();
    assert_eq!(rows.len(), 7, "{rows:#?}");
    assert!(rows[1].contains("[1/9] RUN the slow one"), "{rows:#?}");
    assert!(rows[1].ends_with(" 1.0s"), "{rows:#?}");
    assert!(rows[5].contains("[9/9] RUN quick 9"), "{rows:#?}");
    assert!(
        rows[6].contains("=> WARN: JSONArgsRecommended: use JSON"),
        "{rows:#?}"
    );
}

#[test]
fn output_rows_are_the_last_six_wrapped_at_the_width() {
    let mut output = Output::default();
    output.push(b"one\ntwo\nthree\nfour\nfive\nsix\nseven\n");
    assert_eq!(
        output.rows(20),
        ["two", "three", "four", "five", "six", "seven"]
    );
    output.push(b"0123456789abcdefghij-and-more\n\n\t\x1b[31mred");
    assert_eq!(
        output.rows(20),
        [
            "six",
            "seven",
            "0123456789abcdefghij",
            "-and-more",
            "        red"
        ]
    );
}

#[test]
fn odd_updates_draw_without_panicking() {
    let term = Term::new(30, 3);
    let mut view = renderer(&term, 30, 3);
    let far = UNIX_EPOCH.checked_add(Duration::from_secs(1 << 60));
    let update = StatusUpdate {
        vertexes: vec![
            VertexUpdate {
                started: far,
                completed: Some(UNIX_EPOCH),
                ..vertex("far", "\x1b]0;title\x07far\tstep", None, None)
            },
            VertexUpdate {
                started: Some(UNIX_EPOCH),
                ..vertex("old", "", None, None)
            },
        ],
        statuses: vec![counter("nowhere", "x", -5, 0, None)],
        logs: vec![
            log("nowhere", "lost\n"),
            log("old", &"\u{1F600}".repeat(5000)),
        ],
        ..Default::default()
    };
    view.view.apply(&update, at(0));
    for (cols, rows) in [(1, 1), (12, 2), (30, 3), (200, 1)] {
        term.resize(cols, rows);
        view = view.size(TermSize { cols, rows });
        view.draw(at(100), false);
        view.draw(at(200), true);
    }
    // The last frame is whole (a terminal shrunk below a frame's height
    // keeps what scrolled off above, as any does); no escape got through.
    let rows = term.all_rows();
    let last = &rows[rows.len() - 3..];
    assert!(last[0].starts_with("[+] Building 0.2s (1/2) "), "{rows:#?}");
    assert!(last[1].starts_with(" => far     step  "), "{rows:#?}");
    assert!(last[2].starts_with(" =>    "), "{rows:#?}");
    assert!(!rows.iter().any(|r| r.contains("title")), "{rows:#?}");
}

#[test]
fn a_second_build_gets_a_view_of_its_own_below_the_first() {
    let term = Term::new(80, 20);
    let mut view = renderer(&term, 80, 20);
    for (build, digest) in [(1, "a"), (2, "b")] {
        let start = build * 1_000;
        let name = format!("[1/1] RUN build {build}");
        view.view.apply(
            &StatusUpdate {
                vertexes: vec![vertex(digest, &name, Some(start), None)],
                ..Default::default()
            },
            at(start),
        );
        view.draw(at(start + 100), false);
        view.view.apply(
            &StatusUpdate {
                vertexes: vec![vertex(digest, &name, Some(start), Some(start + 500))],
                ..Default::default()
            },
            at(start + 500),
        );
        view.draw(at(start + 500), true);
        view.leave_on_screen();
    }
    let rows = term.all_rows();
    assert_eq!(rows.len(), 4, "{rows:#?}");
    assert!(
        rows[0].starts_with("[+] Building 0.5s (1/1) FINISHED"),
        "{rows:#?}"
    );
    assert!(rows[1].starts_with(" => [1/1] RUN build 1"), "{rows:#?}");
    assert!(
        rows[2].starts_with("[+] Building 0.5s (1/1) FINISHED"),
        "{rows:#?}"
    );
    assert!(rows[3].starts_with(" => [1/1] RUN build 2"), "{rows:#?}");
}

#[test]
fn colours_only_when_asked_and_cursor_hidden_while_drawing() {
    let mut out = Vec::new();
    {
        let mut view = TtyRenderer::new(&mut out)
            .size(TermSize { cols: 60, rows: 20 })
            .color(true);
        view.view.apply(
            &StatusUpdate {
                vertexes: vec![
                    vertex("a", "[1/2] RUN ok", Some(0), Some(100)),
                    VertexUpdate {
                        error: "process did not complete successfully".into(),
                        ..vertex("b", "[2/2] RUN fails", Some(100), Some(200))
                    },
                ],
                ..Default::default()
            },
            at(0),
        );
        view.draw(at(300), true);
    }
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("\x1b[?25l"), "{text:?}");
    assert!(text.ends_with("\x1b[?25h"), "{text:?}");
    assert!(text.contains("\x1b[34m => [1/2] RUN ok"), "{text:?}");
    assert!(
        text.contains("\x1b[31m => ERROR [2/2] RUN fails"),
        "{text:?}"
    );

    let mut plain = Vec::new();
    {
        let mut view = TtyRenderer::new(&mut plain).color(false);
        view.view.apply(
            &StatusUpdate {
                vertexes: vec![vertex("a", "[1/1] RUN ok", Some(0), Some(100))],
                ..Default::default()
            },
            at(0),
        );
        view.draw(at(300), true);
    }
    let text = String::from_utf8(plain).unwrap();
    assert!(!text.contains("\x1b[3"), "{text:?}");
}

/// On a pool, the header names the daemon that builds (not the pool), and the daemons passed
/// over are listed above the view; a build started again elsewhere leaves the lost build's
/// view on screen and gets one of its own below, naming its daemon.
#[test]
fn a_pool_build_names_its_daemon_and_those_passed_over() {
    let term = Term::new(100, 20);
    let mut view = TtyRenderer::new(term.clone())
        .size(TermSize {
            cols: 100,
            rows: 20,
        })
        .builder_name("pool tcp://a:1,tcp://b:1,tcp://c:1")
        .color(false);
    let refused = crate::pool::Attempt {
        address: "tcp://a:1".into(),
        reason: "connection refused".into(),
    };
    view.builder("tcp://b:1", std::slice::from_ref(&refused));
    let step = |completed: Option<u64>| StatusUpdate {
        vertexes: vec![vertex("a", "[1/1] RUN x", Some(1_000), completed)],
        ..Default::default()
    };
    view.view.apply(&step(None), at(1_000));
    view.draw(at(1_100), false);
    // Lost in the middle: no `finish` came.
    let lost = crate::pool::Attempt {
        address: "tcp://b:1".into(),
        reason: "lost during the build: reset\u{1b}[2J".into(),
    };
    view.builder("tcp://c:1", std::slice::from_ref(&lost));
    view.view.apply(&step(None), at(2_000));
    view.view.apply(&step(Some(2_500)), at(2_500));
    view.draw(at(2_500), true);
    let rows = term.all_rows();
    let trimmed: Vec<&str> = rows.iter().map(|r| r.trim_end()).collect();
    assert_eq!(
        trimmed[0], "passed over tcp://a:1: connection refused",
        "{rows:#?}"
    );
    assert!(trimmed[1].starts_with("[+] Building"), "{rows:#?}");
    assert!(trimmed[1].ends_with("tcp://b:1"), "{rows:#?}");
    assert!(trimmed[2].starts_with(" => [1/1] RUN x"), "{rows:#?}");
    assert!(
        trimmed[3].starts_with("passed over tcp://b:1: lost during the build: reset"),
        "{rows:#?}"
    );
    assert!(
        trimmed[4].starts_with("[+] Building") && trimmed[4].contains("(1/1) FINISHED"),
        "{rows:#?}"
    );
    assert!(trimmed[4].ends_with("tcp://c:1"), "{rows:#?}");
    assert!(!rows.iter().any(|r| r.contains("pool ")), "{rows:#?}");
}
