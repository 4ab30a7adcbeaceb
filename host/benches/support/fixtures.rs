//! Records written straight into a store, so that what a benchmark reads back does not depend
//! on timing.

use rdev::store::{CommandRecord, CommandState};

/// A finished command of `project` to hang output on.
pub fn finished_command(id: &str, project: &str) -> CommandRecord {
    CommandRecord {
        id: id.into(),
        project: project.into(),
        kind: "shell".into(),
        spec: r#"{"kind":"shell","script":"fixture"}"#.into(),
        state: CommandState::Succeeded,
        priority: 0,
        timeout_secs: 60,
        exit_code: Some(0),
        reason: None,
        key_id: "bench".into(),
        idempotency_key: None,
        request_hash: None,
        queue_seq: 1,
        pgid: None,
        runner: None,
        created_at: 1,
        started_at: Some(1),
        finished_at: Some(2),
        owner: None,
        session_id: None,
        run_summary: None,
    }
}
