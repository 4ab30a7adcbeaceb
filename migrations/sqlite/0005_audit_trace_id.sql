-- The W3C trace id of the request behind an audit event, while traces are exported.
ALTER TABLE audit_events ADD COLUMN trace_id TEXT;
