-- One hash chain per writer (server instance); records are appended to their writer's chain.
CREATE TABLE audit_chains (
    chain_id      TEXT PRIMARY KEY,
    writer        TEXT NOT NULL,
    created_us    BIGINT NOT NULL
);

-- The audit log: one record per request, committed before any data leaves.
-- Times are microseconds since the Unix epoch in both dialects, so the same queries run on each.
CREATE TABLE audit_records (
    transaction_id  TEXT PRIMARY KEY,
    chain_id        TEXT NOT NULL REFERENCES audit_chains (chain_id),
    seq             BIGINT NOT NULL,
    time_us         BIGINT NOT NULL,
    party_id        TEXT,
    product         TEXT,
    action          TEXT NOT NULL,
    purpose         TEXT,
    decision        TEXT NOT NULL CHECK (decision IN ('permit', 'deny')),
    reasons         TEXT NOT NULL,
    policy_id       TEXT,
    policy_version  TEXT,
    status          INTEGER NOT NULL,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    trace_id        TEXT,
    span_id         TEXT,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    UNIQUE (chain_id, seq)
);
