-- Registered consumers: who may ask for access tokens, with what certificate, in which groups.
CREATE TABLE consumers (
    party_id        TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    certificate     TEXT,
    groups          TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_us      BIGINT NOT NULL,
    updated_us      BIGINT NOT NULL
);

-- Client-assertion ids already used, kept until the assertion would have expired anyway.
-- Shared by every replica, so a replayed assertion is refused wherever it arrives.
CREATE TABLE assertion_jti (
    party_id        TEXT NOT NULL,
    jti             TEXT NOT NULL,
    expires_us      BIGINT NOT NULL,
    PRIMARY KEY (party_id, jti)
);
CREATE INDEX assertion_jti_expires ON assertion_jti (expires_us);
