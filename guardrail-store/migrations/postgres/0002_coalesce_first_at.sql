-- Guardrail schema, version 2 (PostgreSQL): the coalescing state keeps the instant of the
-- first block its entry counts, so that the server can apply the coalescing period from the
-- first block without reading the audit entry back.

ALTER TABLE audit_coalesce ADD COLUMN first_at TIMESTAMPTZ;

-- Existing rows take the instant of their audit entry, which is the first block's instant.
-- A row whose entry is gone keeps its latest repeat as the best instant known.
UPDATE audit_coalesce SET first_at = coalesce(
    (SELECT at FROM audit_log WHERE audit_log.id = audit_coalesce.audit_id),
    last_at
);

ALTER TABLE audit_coalesce ALTER COLUMN first_at SET NOT NULL;
