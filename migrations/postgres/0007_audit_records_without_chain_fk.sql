-- audit_records keeps no foreign key to audit_chains on PostgreSQL. The check ran for every
-- audited request (a lookup in audit_chains and a key-share lock on the chain's row, per row
-- inserted) and cost PostgreSQL about 3 µs of its 17 µs of CPU per request under load. It guarded
-- nothing the log does not already guard: the writer opens its chain (row and signed genesis
-- checkpoint) before its first record and chains are never deleted, and `sluis audit verify`
-- walks the chains of audit_records too and rejects one without a signed start.
-- SQLite keeps the constraint: there the check is a page already in cache, and dropping it would
-- mean rebuilding the table.
ALTER TABLE audit_records DROP CONSTRAINT IF EXISTS audit_records_chain_id_fkey;
