-- A tablet may send an output report again when it never saw the answer (the Wi-Fi dropped, the
-- request timed out). The same Idempotency-Key from the same person is one report: counted once.
-- NULL keys (clients that send none) are distinct in a unique index on both dialects.
ALTER TABLE output_reports ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX output_reports_idempotency ON output_reports(actor_id, idempotency_key);
