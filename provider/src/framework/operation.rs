//! Waiting for the API's long operations (`202 Accepted` with an operation to
//! poll): success answers the finished operation; a failure becomes an error
//! carrying the server's message; running out of time becomes an error naming the
//! operation, which goes on on the server.

use std::time::Duration;

use basalt_client::{Client, Operation, OperationStatus};

use super::diag::Error;
use super::timeouts;

/// Polls `op` until it ends or `timeout` passes.
pub async fn wait(client: &Client, op: &Operation, timeout: Duration) -> Result<Operation, Error> {
    let seen = if op.status.is_done() { op.clone() } else { client.wait_operation(op.id, timeout).await? };
    match seen.status {
        OperationStatus::Succeeded => Ok(seen),
        OperationStatus::Failed => Err(failure(&seen)),
        status => Err(Error::OperationTimeout {
            id: seen.id,
            kind: seen.kind,
            status: status.as_str().to_string(),
            timeout: timeouts::display(timeout),
        }),
    }
}

/// The error of a failed operation, from its `error: {code, message}`.
fn failure(op: &Operation) -> Error {
    let field = |k: &str| op.error.as_ref().and_then(|e| e.get(k)).and_then(|v| v.as_str()).map(String::from);
    Error::OperationFailed {
        id: op.id,
        kind: op.kind.clone(),
        code: field("code").unwrap_or_else(|| "unknown".into()),
        message: field("message").unwrap_or_else(|| "the server gave no reason".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(status: OperationStatus, error: Option<serde_json::Value>) -> Operation {
        let now = chrono::Utc::now();
        Operation {
            id: uuid::Uuid::nil(),
            tenant_id: None,
            kind: "vm.create".into(),
            target_type: "vm".into(),
            target_id: uuid::Uuid::nil(),
            status,
            progress: 100,
            error,
            created_at: now,
            updated_at: now,
            finished_at: Some(now),
        }
    }

    #[tokio::test]
    async fn finished_operations_need_no_poll() {
        // The client points nowhere: a done operation must not be fetched again.
        let client = Client::new("http://127.0.0.1:9", None);
        let ok = wait(&client, &op(OperationStatus::Succeeded, None), Duration::from_secs(1)).await;
        assert!(ok.is_ok());
        let error = serde_json::json!({"code": "no_capacity", "message": "no host has room"});
        match wait(&client, &op(OperationStatus::Failed, Some(error)), Duration::from_secs(1)).await {
            Err(Error::OperationFailed { code, message, .. }) => {
                assert_eq!((code.as_str(), message.as_str()), ("no_capacity", "no host has room"));
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
