-- Signed checkpoints: statements (chain, seq, hash, time, kind) signed with the connector key, so
-- that `sluis audit verify` can tell a chain that was cut short or rewritten from one that was not.
-- kind: genesis (seq 0, when a writer opens its chain), batch / interval (every N records or T
-- seconds), shutdown (the chain was closed cleanly; nothing may follow), prune (retention removed
-- everything up to and including seq; the remaining records continue from hash).
CREATE TABLE audit_checkpoints (
    chain_id   TEXT NOT NULL REFERENCES audit_chains (chain_id),
    seq        BIGINT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('genesis', 'batch', 'interval', 'shutdown', 'prune')),
    hash       TEXT NOT NULL,
    time_us    BIGINT NOT NULL,
    statement  TEXT NOT NULL,
    PRIMARY KEY (chain_id, seq, kind)
);

-- Keyset pagination for /admin/audit and /audit: newest first by (time_us, transaction_id),
-- optionally narrowed to one party, product or decision. Every index is paid for by every
-- audited request, so the party and decision indexes are partial: anonymous requests (open
-- data) and permits — the bulk of the traffic — do not touch them. Denies are the rare records
-- worth finding fast; a permit filter walks the time index.
CREATE INDEX audit_records_time ON audit_records (time_us, transaction_id);
CREATE INDEX audit_records_party ON audit_records (party_id, time_us, transaction_id)
    WHERE party_id IS NOT NULL;
CREATE INDEX audit_records_product ON audit_records (product, time_us, transaction_id);
CREATE INDEX audit_records_deny ON audit_records (time_us, transaction_id)
    WHERE decision = 'deny';
