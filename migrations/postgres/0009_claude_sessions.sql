-- The Claude Code session a `claude` command ran in, and what its run reported at the end
-- (cost, turns, duration, error). Resuming checks a session against its project's commands.
ALTER TABLE commands ADD COLUMN session_id TEXT;
ALTER TABLE commands ADD COLUMN run_summary JSONB;
CREATE INDEX commands_project_session ON commands (project, session_id, created_at) WHERE session_id IS NOT NULL;
