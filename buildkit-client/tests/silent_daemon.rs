//! Daemons that do not answer in BuildKit's gRPC, played in-process: a
//! listener that accepts and never says anything, and one that answers in
//! HTTP/1.1 as the Docker API does. The connect timeout covers the first
//! call; the HTTP/1.1 answer is named, with the address to use instead.

use std::time::{Duration, Instant};

use cicd_agents_buildkit::{Client, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

const TIMEOUT: Duration = Duration::from_millis(1500);

/// Connects with [`TIMEOUT`] and asks for the daemon's info; the error, and
/// how long it took from the start of the connect.
async fn connect_and_ask(address: &str) -> (Error, Duration) {
    let started = Instant::now();
    let result = async {
        let client = Client::builder()
            .address(address)
            .connect_timeout(TIMEOUT)
            .connect()
            .await?;
        client.info().await
    };
    let outcome = tokio::time::timeout(Duration::from_secs(20), result)
        .await
        .expect("the call gave up by itself");
    match outcome {
        Ok(info) => panic!("a silent listener answered: {info:?}"),
        Err(err) => (err, started.elapsed()),
    }
}

fn assert_timed_out(err: &Error, took: Duration) {
    assert!(
        matches!(err, Error::ConnectTimeout { .. }),
        "not a connect timeout: {err:?}"
    );
    assert!(err.to_string().contains("no answer within"), "{err}");
    assert!(err.is_connection(), "{err:?}");
    assert!(
        took >= TIMEOUT && took < TIMEOUT + Duration::from_secs(2),
        "gave up after {took:?} with a {TIMEOUT:?} timeout"
    );
}

/// Accepts connections and holds them open without a byte.
fn hold_silently<S: Send + 'static>(mut accept: impl FnMut() -> Option<S> + Send + 'static) {
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Some(stream) = accept() {
            held.push(stream);
        }
    });
}

#[tokio::test]
async fn a_silent_unix_listener_fails_the_first_call_within_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    hold_silently(move || listener.accept().ok());
    let (err, took) = connect_and_ask(&format!("unix://{}", path.display())).await;
    assert_timed_out(&err, took);
}

#[tokio::test]
async fn a_silent_tcp_listener_fails_the_first_call_within_the_connect_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    hold_silently(move || listener.accept().ok());
    let (err, took) = connect_and_ask(&format!("tcp://127.0.0.1:{port}")).await;
    assert_timed_out(&err, took);
}

/// The error for a daemon that answered in HTTP/1.1: quick, naming the `docker://` address.
fn assert_says_use_docker(err: &Error, took: Duration, address: &str) {
    let text = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(text.contains("HTTP/1.1"), "{text}");
    assert!(text.contains(&format!("docker://{address}")), "{text}");
    assert!(took < TIMEOUT, "took {took:?}");
}

/// Answers every connection the way Docker's API answers HTTP/2's preface.
async fn answer_http1<S: AsyncReadExt + AsyncWriteExt + Unpin>(mut stream: S) {
    let mut buf = [0u8; 1024];
    let _ = stream.read(&mut buf).await;
    let _ = stream
        .write_all(
            b"HTTP/1.1 301 Moved Permanently\r\nLocation: /%2A\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
    let _ = stream.shutdown().await;
}

#[tokio::test]
async fn an_http1_answer_on_unix_says_to_use_docker() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer_http1(stream));
        }
    });
    let address = format!("unix://{}", path.display());
    let (err, took) = connect_and_ask(&address).await;
    assert_says_use_docker(&err, took, &address);
}

#[tokio::test]
async fn an_http1_answer_on_tcp_says_to_use_docker() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer_http1(stream));
        }
    });
    let (err, _) = connect_and_ask(&format!("tcp://127.0.0.1:{port}")).await;
    let text = err.to_string();
    assert!(
        text.contains(&format!("docker://tcp://127.0.0.1:{port}")),
        "{text}"
    );
}

/// A daemon that hangs up on HTTP/2 before its answer is read (the race the Docker API's
/// answer-and-close can win) is asked again in HTTP/1.1: an HTTP/1.1 answer is named, with the
/// address to use; a daemon that hangs up on that too is said to have closed the connection.
#[tokio::test]
async fn a_hang_up_before_any_answer_is_told_apart_by_asking_in_http1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut stream, _)) = listener.accept().await {
            if std::mem::take(&mut first) {
                // HTTP/2's preface: hang up without a byte.
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                drop(stream);
            } else {
                tokio::spawn(answer_http1(stream));
            }
        }
    });
    let address = format!("unix://{}", path.display());
    let (err, took) = connect_and_ask(&address).await;
    assert_says_use_docker(&err, took, &address);

    let path = dir.path().join("rude.sock");
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            drop(stream);
        }
    });
    let (err, _) = connect_and_ask(&format!("unix://{}", path.display())).await;
    let text = err.to_string();
    assert!(
        text.contains("closed the connection without answering"),
        "{text}"
    );
}
