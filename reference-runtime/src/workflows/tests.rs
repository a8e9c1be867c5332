//! The engine's own rules for what a worker sends: malformed and stale answers change nothing.

use futures::StreamExt;
use runtime_api::durabletask::work_item::Request as Work;
use runtime_api::durabletask::workflow_action::WorkflowActionType as Action;

use super::*;

async fn next_turn(items: &mut (impl futures::Stream<Item = WorkItem> + Unpin)) -> (WorkflowRequest, String) {
    let item =
        tokio::time::timeout(std::time::Duration::from_secs(5), items.next()).await.expect("a work item in time");
    match item.expect("the stream is open") {
        WorkItem { request: Some(Work::WorkflowRequest(request)), completion_token } => (request, completion_token),
        other => panic!("expected a turn, got {other:?}"),
    }
}

/// An answer whose only action has no kind: malformed.
fn kindless(id: &str, token: String) -> WorkflowResponse {
    WorkflowResponse {
        instance_id: id.into(),
        actions: vec![WorkflowAction { id: 0, router: None, workflow_action_type: None }],
        completion_token: token,
        ..Default::default()
    }
}

async fn start(engine: &Engine, id: &str) {
    let request = CreateInstanceRequest { instance_id: id.into(), name: "n".into(), ..Default::default() };
    assert_eq!(engine.start(request).await, Ok(id.to_owned()));
}

fn completing(id: &str, token: &str, action_id: i32) -> WorkflowResponse {
    let done = CompleteWorkflowAction {
        workflow_status: OrchestrationStatus::Completed as i32,
        result: Some("\"done\"".into()),
        ..Default::default()
    };
    WorkflowResponse {
        instance_id: id.into(),
        actions: vec![WorkflowAction {
            id: action_id,
            router: None,
            workflow_action_type: Some(Action::CompleteWorkflow(done)),
        }],
        completion_token: token.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_malformed_answer_is_refused_and_the_turn_comes_again_unchanged() {
    let engine = Engine::new();
    let mut items = Box::pin(engine.work_items());
    start(&engine, "w").await;
    let (first, token) = next_turn(&mut items).await;
    let refused = engine.complete_turn(kindless("w", token)).await;
    assert!(matches!(refused, Err(WorkflowError::Invalid(ref why)) if why.contains("no kind")), "{refused:?}");
    assert_eq!(engine.history("w"), Some(Vec::new()), "nothing committed");
    let (again, token) = next_turn(&mut items).await;
    assert_eq!(again.past_events, first.past_events);
    assert_eq!(again.new_events[1..], first.new_events[1..], "the same events, after a new workflowStarted");
    // An answer with another turn's token is stale: dropped, and the turn still waits.
    assert_eq!(engine.complete_turn(completing("w", "not-the-token", 0)).await, Ok(()));
    assert_eq!(engine.history("w"), Some(Vec::new()));
    assert_eq!(engine.complete_turn(completing("w", &token, 0)).await, Ok(()));
    let state = engine.get("w", true).expect("the instance");
    assert_eq!(state.workflow_status, OrchestrationStatus::Completed as i32);
    assert_eq!(state.output.as_deref(), Some("\"done\""));
}

#[tokio::test]
async fn two_actions_with_one_id_are_refused() {
    let engine = Engine::new();
    let mut items = Box::pin(engine.work_items());
    start(&engine, "w").await;
    let (_, token) = next_turn(&mut items).await;
    let mut response = completing("w", &token, 3);
    response.actions.push(response.actions[0].clone());
    let refused = engine.complete_turn(response).await;
    assert!(matches!(refused, Err(WorkflowError::Invalid(ref why)) if why.contains("two actions")), "{refused:?}");
    assert_eq!(engine.history("w"), Some(Vec::new()));
}

#[tokio::test]
async fn a_turn_held_by_a_worker_that_goes_is_handed_to_the_next() {
    let engine = Engine::new();
    let mut first = Box::pin(engine.work_items());
    start(&engine, "w").await;
    let (held, _) = next_turn(&mut first).await;
    drop(first);
    let mut second = Box::pin(engine.work_items());
    let (again, token) = next_turn(&mut second).await;
    assert_eq!(again.new_events[1..], held.new_events[1..], "the same events, after a new workflowStarted");
    assert_eq!(engine.complete_turn(completing("w", &token, 0)).await, Ok(()));
    assert_eq!(engine.history("w").map(|h| h.len()), Some(3), "workflowStarted, executionStarted, executionCompleted");
}

#[tokio::test]
async fn a_worker_that_keeps_answering_wrong_fails_the_instance_instead_of_looping() {
    let engine = Engine::new();
    let mut items = Box::pin(engine.work_items());
    start(&engine, "w").await;
    for attempt in 1..=MAX_REFUSALS {
        let (_, token) = next_turn(&mut items).await;
        let answer = engine.complete_turn(kindless("w", token)).await;
        assert_eq!(answer.is_err(), attempt < MAX_REFUSALS, "attempt {attempt}: {answer:?}");
    }
    let state = engine.get("w", true).expect("the instance");
    assert_eq!(state.workflow_status, OrchestrationStatus::Failed as i32);
    let failure = state.failure_details.expect("failure details");
    assert_eq!(failure.error_type, "MalformedWorkerAnswer");
}

#[tokio::test]
async fn instances_outlive_the_engine_and_an_instance_named_index_is_only_an_instance() {
    let store: Arc<dyn StateStore> =
        Arc::new(crate::in_memory::state_memory::InMemoryStateStore::new(contract::system_clock()));
    let engine = Engine::durable(Arc::clone(&store), "p".into());
    for id in ["index", "other"] {
        start(&engine, id).await;
    }
    engine.stop().await;
    let again = Engine::durable(store, "p".into());
    assert_eq!(again.restore().await, Ok(2));
    for id in ["index", "other"] {
        let state = again.get(id, true).expect("kept");
        assert_eq!(state.workflow_status, OrchestrationStatus::Pending as i32, "{id}");
    }
}
