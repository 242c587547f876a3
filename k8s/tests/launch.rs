//! The Job launcher against a scripted Kubernetes API server.
//!
//! There is no cluster on this machine: kube's `Client` talks to a `tower_test` mock service,
//! and a small dispatcher plays the API server's part, answering create, list/watch of the
//! Job (first an interim condition, then `Complete` or `Failed`), the pod list, the logs and
//! the delete, and recording every request so that the tests can check what the launcher did.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cicd_agents_k8s::buildkit::BuildJob;
use cicd_agents_k8s::launch::{
    is_job_finished, job_finished, Cleanup, CleanupReport, JobLauncher, JobResult, LaunchError,
    LaunchOptions, LogLine,
};
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::wait::Condition;
use serde_json::{json, Value};

const NS: &str = "ci";

#[derive(Clone, Copy, PartialEq)]
enum Ending {
    Complete,
    Failed,
    /// The Job never finishes; its pod waits on an image pull.
    Never,
    /// Someone deletes the Job while it runs.
    Deleted,
}

struct Script {
    ending: Ending,
    /// Answer only the legacy `job-name` label (an old cluster).
    legacy_label: bool,
    logs: &'static str,
}

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    uri: String,
    body: String,
}

fn job_json(created: &Value, conditions: Value) -> Value {
    let mut job = created.clone();
    job["status"] = json!({ "active": if conditions.as_array().is_some_and(|c| c.is_empty()) { 1 } else { 0 }, "conditions": conditions });
    job
}

fn condition(kind: &str, reason: &str, message: &str) -> Value {
    json!({ "type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": "2026-11-22T10:00:00Z" })
}

fn pod_json(job: &str, ending: Ending, legacy_label: bool) -> Value {
    let label = if legacy_label {
        "job-name"
    } else {
        "batch.kubernetes.io/job-name"
    };
    let (phase, state) = match ending {
        Ending::Complete => (
            "Succeeded",
            json!({ "terminated": { "exitCode": 0, "reason": "Completed" } }),
        ),
        Ending::Failed => (
            "Failed",
            json!({ "terminated": { "exitCode": 1, "reason": "Error" } }),
        ),
        Ending::Never | Ending::Deleted => (
            "Pending",
            json!({ "waiting": { "reason": "ImagePullBackOff", "message": "Back-off pulling image" } }),
        ),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": format!("{job}-pod1"), "namespace": NS, "labels": { label: job } },
        "spec": { "containers": [{ "name": "buildkit", "image": "moby/buildkit:rootless" }] },
        "status": {
            "phase": phase,
            "containerStatuses": [{ "name": "buildkit", "ready": false, "restartCount": 0, "image": "moby/buildkit:rootless", "imageID": "", "state": state }]
        }
    })
}

fn respond(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}

fn json_response(value: &Value) -> Response<Body> {
    respond(
        StatusCode::OK,
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

/// Starts the scripted API server; returns the client and the request log.
fn api_server(script: Script) -> (kube::Client, Arc<Mutex<Vec<Recorded>>>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let recorded: Arc<Mutex<Vec<Recorded>>> = Arc::default();
    let log = recorded.clone();
    tokio::spawn(async move {
        let mut handle = std::pin::pin!(handle);
        let mut created: Option<Value> = None;
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let body = body
                .collect_bytes()
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let uri = parts.uri.to_string();
            log.lock().unwrap().push(Recorded {
                method: parts.method.clone(),
                uri: uri.clone(),
                body: body.clone(),
            });
            let path = parts.uri.path().to_string();
            let query = parts.uri.query().unwrap_or_default().to_string();
            let jobs_path = format!("/apis/batch/v1/namespaces/{NS}/jobs");
            let pods_path = format!("/api/v1/namespaces/{NS}/pods");

            let response = if parts.method == Method::POST && path == jobs_path {
                let mut job: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                if job["metadata"]["name"].is_null() {
                    let prefix = job["metadata"]["generateName"]
                        .as_str()
                        .unwrap_or("job-")
                        .to_string();
                    job["metadata"]["name"] = json!(format!("{prefix}x7k2p"));
                }
                job["metadata"]["namespace"] = json!(NS);
                job["metadata"]["uid"] = json!("6f1c0d3e-0000-4000-8000-000000000001");
                job["metadata"]["resourceVersion"] = json!("100");
                created = Some(job.clone());
                respond(
                    StatusCode::CREATED,
                    serde_json::to_vec(&job).unwrap_or_default(),
                )
            } else if parts.method == Method::GET
                && path == jobs_path
                && query.contains("watch=true")
            {
                let Some(job) = created.clone() else { continue };
                if script.ending == Ending::Never {
                    // A watch that stays open with nothing to say.
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        drop(send);
                    });
                    continue;
                }
                if script.ending == Ending::Deleted {
                    let event = json!({ "type": "DELETED", "object": job_json(&job, json!([])) });
                    send.send_response(respond(StatusCode::OK, format!("{event}\n").into_bytes()));
                    continue;
                }
                let (interim, last) = match script.ending {
                    Ending::Complete => (
                        condition(
                            "SuccessCriteriaMet",
                            "CompletionsReached",
                            "Reached expected number of succeeded pods",
                        ),
                        condition(
                            "Complete",
                            "CompletionsReached",
                            "Reached expected number of succeeded pods",
                        ),
                    ),
                    _ => (
                        condition(
                            "FailureTarget",
                            "BackoffLimitExceeded",
                            "Job has reached the specified backoff limit",
                        ),
                        condition(
                            "Failed",
                            "BackoffLimitExceeded",
                            "Job has reached the specified backoff limit",
                        ),
                    ),
                };
                let mut stream = String::new();
                for (version, conditions) in [
                    ("101", json!([interim.clone()])),
                    ("102", json!([interim, last])),
                ] {
                    let mut object = job_json(&job, conditions);
                    object["metadata"]["resourceVersion"] = json!(version);
                    stream.push_str(
                        &serde_json::to_string(&json!({ "type": "MODIFIED", "object": object }))
                            .unwrap_or_default(),
                    );
                    stream.push('\n');
                }
                respond(StatusCode::OK, stream.into_bytes())
            } else if parts.method == Method::GET && path == jobs_path {
                let items: Vec<Value> =
                    created.iter().map(|job| job_json(job, json!([]))).collect();
                json_response(
                    &json!({ "apiVersion": "batch/v1", "kind": "JobList", "metadata": { "resourceVersion": "100" }, "items": items }),
                )
            } else if parts.method == Method::GET && path == pods_path {
                let name = created
                    .as_ref()
                    .and_then(|j| j["metadata"]["name"].as_str())
                    .unwrap_or_default()
                    .to_string();
                let selector = parts
                    .uri
                    .query()
                    .and_then(|q| {
                        q.split('&')
                            .find_map(|pair| pair.strip_prefix("labelSelector="))
                    })
                    .unwrap_or_default()
                    .replace("%2F", "/")
                    .replace("%3D", "=");
                let wanted = if script.legacy_label {
                    format!("job-name={name}")
                } else {
                    format!("batch.kubernetes.io/job-name={name}")
                };
                let items = if selector == wanted {
                    vec![pod_json(&name, script.ending, script.legacy_label)]
                } else {
                    vec![]
                };
                json_response(
                    &json!({ "apiVersion": "v1", "kind": "PodList", "metadata": { "resourceVersion": "100" }, "items": items }),
                )
            } else if parts.method == Method::GET
                && path.starts_with(&pods_path)
                && path.ends_with("/log")
            {
                respond(StatusCode::OK, script.logs.as_bytes().to_vec())
            } else if parts.method == Method::DELETE && path.starts_with(&jobs_path) {
                let mut job = created.clone().unwrap_or(Value::Null);
                job["metadata"]["deletionTimestamp"] = json!("2026-11-22T10:01:00Z");
                json_response(&job)
            } else {
                respond(
                    StatusCode::NOT_FOUND,
                    serde_json::to_vec(&json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": format!("no route for {} {uri}", parts.method) }))
                        .unwrap_or_default(),
                )
            };
            send.send_response(response);
        }
    });
    (kube::Client::new(service, NS), recorded)
}

fn build_job() -> k8s_openapi::api::batch::v1::Job {
    BuildJob::new(
        "build-app",
        "https://github.com/example-org/app.git",
        "docker.io/example/app",
    )
    .generate_name(true)
    .tag("1.4.2")
    .build()
    .unwrap()
}

fn options() -> LaunchOptions {
    LaunchOptions {
        timeout: Duration::from_secs(20),
        pod_poll_interval: Duration::from_millis(50),
        log_drain: Duration::from_secs(5),
        ..LaunchOptions::default()
    }
}

fn requests(log: &Arc<Mutex<Vec<Recorded>>>, method: Method, needle: &str) -> Vec<Recorded> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == method && r.uri.contains(needle))
        .cloned()
        .collect()
}

fn assert_deleted_in_background(log: &Arc<Mutex<Vec<Recorded>>>, name: &str) {
    let deletes = requests(
        log,
        Method::DELETE,
        &format!("/apis/batch/v1/namespaces/{NS}/jobs/{name}"),
    );
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    let body: Value = serde_json::from_str(&deletes[0].body).unwrap();
    assert_eq!(body["propagationPolicy"], "Background", "{body}");
}

#[tokio::test]
async fn a_successful_job_is_followed_logged_and_deleted() {
    let (client, log) = api_server(Script {
        ending: Ending::Complete,
        legacy_label: false,
        logs: "#1 building\n#2 pushing\ndone\n",
    });
    let launcher = JobLauncher::new(client, NS).options(options());
    let mut lines: Vec<LogLine> = Vec::new();
    let outcome = launcher
        .run(&build_job(), |line| lines.push(line.clone()))
        .await
        .unwrap();

    assert_eq!(
        outcome.name, "build-app-x7k2p",
        "generateName is resolved by the server"
    );
    assert_eq!(outcome.namespace, NS);
    assert_eq!(outcome.result, JobResult::Succeeded);
    assert!(outcome.succeeded());
    assert_eq!(outcome.cleanup, CleanupReport::Deleted);
    assert_eq!(outcome.pods.len(), 1);
    assert_eq!(outcome.pods[0].containers[0].state, "exited 0 (Completed)");
    let texts: Vec<&str> = lines.iter().map(|l| l.line.as_str()).collect();
    assert_eq!(texts, ["#1 building", "#2 pushing", "done"]);
    assert!(lines
        .iter()
        .all(|l| l.pod == "build-app-x7k2p-pod1" && l.container == "buildkit"));

    let creates = requests(&log, Method::POST, "/apis/batch/v1/namespaces/ci/jobs");
    assert_eq!(creates.len(), 1);
    let sent: Value = serde_json::from_str(&creates[0].body).unwrap();
    assert_eq!(sent["metadata"]["generateName"], "build-app-");
    assert!(
        !requests(&log, Method::GET, "watch=true").is_empty(),
        "the Job is watched"
    );
    assert!(!requests(
        &log,
        Method::GET,
        "labelSelector=batch.kubernetes.io%2Fjob-name%3Dbuild-app-x7k2p"
    )
    .is_empty());
    let log_requests = requests(&log, Method::GET, "/pods/build-app-x7k2p-pod1/log");
    assert!(
        log_requests
            .iter()
            .all(|r| r.uri.contains("container=buildkit") && r.uri.contains("follow=true")),
        "{log_requests:?}"
    );
    assert_eq!(log_requests.len(), 1, "each container is streamed once");
    assert_deleted_in_background(&log, "build-app-x7k2p");
}

#[tokio::test]
async fn a_failed_job_returns_with_its_reason_instead_of_waiting_forever() {
    let (client, log) = api_server(Script {
        ending: Ending::Failed,
        legacy_label: true,
        logs: "error: failed to solve: exit code 1\n",
    });
    let launcher = JobLauncher::new(client, NS).options(options());
    let mut lines: Vec<LogLine> = Vec::new();
    let outcome = tokio::time::timeout(
        Duration::from_secs(15),
        launcher.run(&build_job(), |line| lines.push(line.clone())),
    )
    .await
    .expect("the launcher returns on a Failed Job")
    .unwrap();

    assert_eq!(
        outcome.result,
        JobResult::Failed {
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into()
        }
    );
    assert!(!outcome.succeeded());
    assert_eq!(outcome.pods[0].phase, "Failed");
    assert_eq!(outcome.pods[0].containers[0].state, "exited 1 (Error)");
    assert_eq!(
        lines.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
        ["error: failed to solve: exit code 1"]
    );
    // Old cluster: pods were found by the legacy label.
    assert!(!requests(
        &log,
        Method::GET,
        "labelSelector=job-name%3Dbuild-app-x7k2p"
    )
    .is_empty());
    assert_deleted_in_background(&log, "build-app-x7k2p");
}

#[tokio::test]
async fn a_failed_job_can_be_kept_for_inspection() {
    let (client, log) = api_server(Script {
        ending: Ending::Failed,
        legacy_label: false,
        logs: "",
    });
    let launcher = JobLauncher::new(client, NS).options(LaunchOptions {
        cleanup: Cleanup::OnSuccess,
        ..options()
    });
    let outcome = launcher.run(&build_job(), |_| {}).await.unwrap();
    assert!(!outcome.succeeded());
    assert_eq!(outcome.cleanup, CleanupReport::Kept);
    assert!(requests(&log, Method::DELETE, "/jobs/").is_empty());
}

#[tokio::test]
async fn a_job_that_never_finishes_times_out_is_deleted_and_says_why() {
    let (client, log) = api_server(Script {
        ending: Ending::Never,
        legacy_label: false,
        logs: "",
    });
    let launcher = JobLauncher::new(client, NS).options(LaunchOptions {
        timeout: Duration::from_millis(700),
        ..options()
    });
    let err = launcher.run(&build_job(), |_| {}).await.unwrap_err();
    assert!(matches!(err, LaunchError::Timeout { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("did not finish within 0s") || text.contains("did not finish within"),
        "{text}"
    );
    assert!(text.contains("waiting: ImagePullBackOff"), "{text}");
    assert!(
        requests(&log, Method::GET, "/log").is_empty(),
        "no logs from a container that never started"
    );
    assert_deleted_in_background(&log, "build-app-x7k2p");
}

#[tokio::test]
async fn cancelling_deletes_the_job() {
    let (client, log) = api_server(Script {
        ending: Ending::Never,
        legacy_label: false,
        logs: "",
    });
    let launcher = JobLauncher::new(client, NS).options(options());
    let err = launcher
        .run_until(
            &build_job(),
            |_| {},
            tokio::time::sleep(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, LaunchError::Cancelled { deleted: true, .. }),
        "{err:?}"
    );
    assert_deleted_in_background(&log, "build-app-x7k2p");
}

#[tokio::test]
async fn a_job_deleted_by_someone_else_is_reported() {
    let (client, log) = api_server(Script {
        ending: Ending::Deleted,
        legacy_label: false,
        logs: "",
    });
    let launcher = JobLauncher::new(client, NS).options(options());
    let err = launcher.run(&build_job(), |_| {}).await.unwrap_err();
    assert!(matches!(err, LaunchError::Vanished { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Job ci/build-app-x7k2p was deleted before it finished"
    );
    assert!(
        requests(&log, Method::DELETE, "/jobs/").is_empty(),
        "nothing left to delete"
    );
}

#[tokio::test]
async fn an_unnamed_job_is_refused_before_any_request() {
    let (client, log) = api_server(Script {
        ending: Ending::Complete,
        legacy_label: false,
        logs: "",
    });
    let mut job = build_job();
    job.metadata.generate_name = None;
    let err = JobLauncher::new(client, NS)
        .run(&job, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, LaunchError::Unnamed));
    assert!(log.lock().unwrap().is_empty());
}

#[test]
fn the_finish_condition_covers_complete_and_failed_but_not_interim_conditions() {
    let job = |conditions: Vec<Value>| -> k8s_openapi::api::batch::v1::Job {
        serde_json::from_value(
            json!({ "metadata": { "name": "j" }, "status": { "conditions": conditions } }),
        )
        .unwrap()
    };
    let failed = job(vec![
        condition("FailureTarget", "DeadlineExceeded", "x"),
        condition(
            "Failed",
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ),
    ]);
    assert_eq!(
        job_finished(&failed),
        Some(JobResult::Failed {
            reason: "DeadlineExceeded".into(),
            message: "Job was active longer than specified deadline".into()
        })
    );
    assert!(is_job_finished().matches_object(Some(&failed)));
    // kube's stock condition never fires on this one.
    assert!(!kube::runtime::wait::conditions::is_job_completed().matches_object(Some(&failed)));
    let complete = job(vec![condition("Complete", "CompletionsReached", "")]);
    assert_eq!(job_finished(&complete), Some(JobResult::Succeeded));
    let interim = job(vec![condition("FailureTarget", "BackoffLimitExceeded", "")]);
    assert_eq!(job_finished(&interim), None);
    let mut not_true = condition("Failed", "x", "");
    not_true["status"] = json!("False");
    assert_eq!(job_finished(&job(vec![not_true])), None);
    assert!(!is_job_finished().matches_object(None));
}
