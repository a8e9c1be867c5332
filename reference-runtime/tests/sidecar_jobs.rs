//! The Jobs API (actors-workflows-jobs.md §3): jobs scheduled over HTTP and gRPC reach the
//! app as `POST /job/{name}` with their data, as often as the schedule says; failure policies,
//! `overwrite`, delete and daprd's errors.

mod common;

use std::time::{Duration, Instant};

use common::sidecar_env::{Env, start};
use runtime_api::runtime::dapr_client::DaprClient;
use runtime_api::runtime::{GetJobRequest, Job, ScheduleJobRequest};
use runtime_api::tonic::Code;
use serde_json::{Value, json};

async fn env() -> Env {
    start(Some(json!([])), "", None).await
}

async fn post(e: &Env, name: &str, body: Value) -> reqwest::Response {
    e.http.post(e.url(&format!("/v1.0-alpha1/jobs/{name}"))).json(&body).send().await.expect("schedule")
}

async fn scheduled(e: &Env, name: &str, body: Value) {
    let r = post(e, name, body).await;
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_time_fires_once_with_the_data_as_json() {
    let e = env().await;
    let created = Instant::now();
    scheduled(&e, "once", json!({"dueTime": "1s", "data": {"expression": "val"}})).await;
    let seen = e.app().wait_for("/job/once", 1).await;
    assert!(created.elapsed() >= Duration::from_millis(900), "fired early: {:?}", created.elapsed());
    assert_eq!(seen[0].json(), json!({"expression": "val"}));
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(e.app().seen("/job/once").len(), 1, "a due time alone fires once");
    // Gone once done: a get is daprd's failed get.
    let r = e.http.get(e.url("/v1.0/jobs/once")).send().await.expect("get");
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["errorCode"], "DAPR_SCHEDULER_GET_JOB");
    assert_eq!(body["details"][0]["reason"], "DAPR_SCHEDULER_GET_JOB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_count_and_no_data_is_an_empty_body() {
    let e = env().await;
    scheduled(&e, "twice", json!({"schedule": "@every 200ms", "repeats": 2})).await;
    let seen = e.app().wait_for("/job/twice", 2).await;
    assert!(seen.iter().all(|r| r.body.is_empty()));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(e.app().seen("/job/twice").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_policies_bound_the_attempts_and_404_is_done() {
    let e = env().await;
    e.app().script("/job/flaky", &[(500, "")]);
    scheduled(
        &e,
        "flaky",
        json!({"dueTime": "0s", "failurePolicy": {"constant": {"interval": "0.1s", "maxRetries": 2}}}),
    )
    .await;
    e.app().script("/job/dropped", &[(500, "")]);
    scheduled(&e, "dropped", json!({"dueTime": "0s", "failurePolicy": {"drop": {}}})).await;
    e.app().script("/job/missing", &[(404, "")]);
    scheduled(&e, "missing", json!({"dueTime": "0s"})).await;
    e.app().wait_for("/job/flaky", 3).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(e.app().seen("/job/flaky").len(), 3, "maxRetries 2 is 3 attempts");
    assert_eq!(e.app().seen("/job/dropped").len(), 1, "drop never retries");
    assert_eq!(e.app().seen("/job/missing").len(), 1, "a 404 is done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_get_and_delete_behave_as_daprd() {
    let e = env().await;
    let body = json!({"schedule": "@every 1h", "data": "someData", "failurePolicy": {"drop": {}}});
    scheduled(&e, "kept", body.clone()).await;
    let r = post(&e, "kept", body.clone()).await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.expect("json")["errorCode"], "DAPR_SCHEDULER_SCHEDULE_JOB");
    let mut again = body.clone();
    again["overwrite"] = json!(true);
    again["repeats"] = json!(5);
    scheduled(&e, "kept", again).await;
    let got: Value = e.http.get(e.url("/v1.0/jobs/kept")).send().await.expect("get").json().await.expect("json");
    assert_eq!(got["name"], "kept");
    assert_eq!(got["schedule"], "@every 1h");
    assert_eq!(got["repeats"], 5);
    assert_eq!(got["data"], json!({"@type": "type.googleapis.com/google.protobuf.Value", "value": "someData"}));
    assert_eq!(got["failurePolicy"], json!({"drop": {}}));
    for _ in 0..2 {
        let r = e.http.delete(e.url("/v1.0/jobs/kept")).send().await.expect("delete");
        assert_eq!(r.status(), 204, "delete is idempotent");
    }
    assert_eq!(e.http.get(e.url("/v1.0/jobs/kept")).send().await.expect("get").status(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_jobs_get_daprd_errors_and_nothing_is_scheduled() {
    let e = env().await;
    for (body, status, code) in [
        (json!({"data": 1}), 400, "DAPR_SCHEDULER_SCHEDULE_EMPTY"),
        (json!({"name": "x", "dueTime": "1s"}), 400, "DAPR_SCHEDULER_JOB_NAME"),
        (json!({"schedule": "every day"}), 400, "DAPR_SCHEDULER_SCHEDULE_JOB"),
        (json!({"schedule": "@every 1s", "repeats": -1}), 400, "ERR_MALFORMED_REQUEST"),
        (json!({"dueTime": "1s", "repeats": 3}), 400, "DAPR_SCHEDULER_SCHEDULE_JOB"),
        (json!({"dueTime": "R2/PT1S"}), 400, "DAPR_SCHEDULER_SCHEDULE_JOB"),
    ] {
        let r = post(&e, "bad", body.clone()).await;
        assert_eq!(r.status(), status, "{body}");
        let answer: Value = r.json().await.expect("json");
        assert_eq!(answer["errorCode"], code, "{body}: {answer}");
    }
    let r = e.http.post(e.url("/v1.0/jobs/bad")).body("{").send().await.expect("post");
    assert_eq!(r.status(), 400);
    assert_eq!(e.http.get(e.url("/v1.0/jobs/bad")).send().await.expect("get").status(), 500, "nothing scheduled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_over_grpc_share_the_scheduler() {
    let e = env().await;
    let mut dapr = DaprClient::connect(e.grpc.clone()).await.expect("connect");
    let data = reference_runtime::jobs::data::from_json(&json!({"n": 7}));
    let job = Job { name: "rpc".into(), due_time: Some("0s".into()), data: Some(data), ..Default::default() };
    dapr.schedule_job(ScheduleJobRequest { job: Some(job.clone()), overwrite: false }).await.expect("ScheduleJob");
    assert_eq!(e.app().wait_for("/job/rpc", 1).await[0].json(), json!({"n": 7}));
    // Gone once its last trigger is settled, a moment after the app has it.
    let mut gone = None;
    for _ in 0..100 {
        if let Err(err) = dapr.get_job(GetJobRequest { name: "rpc".into() }).await {
            gone = Some(err.code());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gone, Some(Code::Internal), "a finished job is daprd's failed get");
    let later = Job { name: "later".into(), schedule: Some("@every 1h".into()), ..Default::default() };
    // The Alpha name SDKs fall back to serves the same scheduler.
    #[allow(deprecated)]
    dapr.schedule_job_alpha1(ScheduleJobRequest { job: Some(later.clone()), overwrite: false }).await.expect("Alpha1");
    let err = dapr.schedule_job(ScheduleJobRequest { job: Some(later), overwrite: false }).await.expect_err("exists");
    assert_eq!(err.code(), Code::AlreadyExists);
    let over_http: Value = e.http.get(e.url("/v1.0/jobs/later")).send().await.expect("get").json().await.expect("json");
    assert_eq!(over_http["schedule"], "@every 1h");
    let nameless =
        ScheduleJobRequest { job: Some(Job { due_time: Some("1s".into()), ..Default::default() }), overwrite: false };
    assert_eq!(dapr.schedule_job(nameless).await.expect_err("no name").code(), Code::InvalidArgument);
}

/// A runtime of the app `app_id` over `store` (flagged `actorStateStore`), delivering to the
/// app on `app_port`.
async fn runtime_over(
    store: std::sync::Arc<reference_runtime::in_memory::state_memory::InMemoryStateStore>,
    app_id: &str,
    app_port: u16,
) -> (String, std::sync::Arc<reference_runtime::sidecar::Sidecar>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let (base, _, sidecar, server) = common::sidecar_env::runtime_over(store, app_id, Some(app_port)).await;
    (base, sidecar, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_kept_in_the_actor_state_store_survive_a_restart() {
    let app = common::sidecar_env::TestApp::start(json!([])).await;
    let store = std::sync::Arc::new(reference_runtime::in_memory::state_memory::InMemoryStateStore::new(
        contract::system_clock(),
    ));
    let http = reqwest::Client::new();
    let (base, first, server) = runtime_over(std::sync::Arc::clone(&store), "testapp", app.port).await;
    for (name, body) in [("kept", json!({"dueTime": "2s", "data": "later"})), ("done", json!({"dueTime": "0s"}))] {
        let r = http.post(format!("{base}/v1.0-alpha1/jobs/{name}")).json(&body).send().await.expect("schedule");
        assert_eq!(r.status(), 204);
    }
    app.wait_for("/job/done", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.shutdown();
    let _ = server.await;
    let (base, _second, _server) = runtime_over(store, "testapp", app.port).await;
    // Taken up before the API serves: the first call already sees it.
    let again = http.post(format!("{base}/v1.0-alpha1/jobs/kept")).json(&json!({"dueTime": "1h"})).send().await;
    assert_eq!(again.expect("schedule").status(), 409, "the kept job was not back when the API served");
    let seen = app.wait_for("/job/kept", 1).await;
    assert_eq!(seen[0].json(), json!("later"));
    let r = http.get(format!("{base}/v1.0-alpha1/jobs/kept")).send().await.expect("get");
    assert_eq!(r.status(), 500, "a job that has fired its last trigger is gone");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.seen("/job/done").len(), 1, "a job that fired before the restart does not fire again");
    assert_eq!(app.seen("/job/kept").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_scoped_per_app_on_a_shared_store() {
    // J8: two apps' runtimes keep their jobs in one store; neither sees nor fires the other's.
    let (a, b) =
        (common::sidecar_env::TestApp::start(json!([])).await, common::sidecar_env::TestApp::start(json!([])).await);
    let store = std::sync::Arc::new(reference_runtime::in_memory::state_memory::InMemoryStateStore::new(
        contract::system_clock(),
    ));
    let http = reqwest::Client::new();
    let (base_a, first_a, server_a) = runtime_over(std::sync::Arc::clone(&store), "app-a", a.port).await;
    let (base_b, _b, _server_b) = runtime_over(std::sync::Arc::clone(&store), "app-b", b.port).await;
    let r = http.post(format!("{base_a}/v1.0-alpha1/jobs/shared")).json(&json!({"dueTime": "1s"})).send().await;
    assert_eq!(r.expect("schedule").status(), 204);
    let r = http.get(format!("{base_b}/v1.0-alpha1/jobs/shared")).send().await.expect("get");
    assert_eq!(r.status(), 500, "app B does not see app A's job");
    // A restarts over the shared store; B's runtime never takes A's job up.
    first_a.shutdown();
    let _ = server_a.await;
    let (_base, _a2, _server) = runtime_over(std::sync::Arc::clone(&store), "app-a", a.port).await;
    a.wait_for("/job/shared", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(b.seen("/job/shared").is_empty(), "app B received app A's job");
    assert_eq!(a.seen("/job/shared").len(), 1);
}
