-- Uses of a product per consumer and counting window, for ODRL `count` constraints. Incremented
-- atomically by whichever replica serves the request, so a limit holds across replicas.
CREATE TABLE usage_counters (
    party_id      TEXT NOT NULL,
    target        TEXT NOT NULL,
    window_key    TEXT NOT NULL,
    window_start  BIGINT NOT NULL,
    uses          BIGINT NOT NULL,
    PRIMARY KEY (party_id, target, window_key, window_start)
);
