-- Datasets harvested from the open-data portal (CKAN), one row per product. Rows stay after the
-- portal withdraws a dataset (withdrawn_us is set), so the history survives and a dataset that
-- returns is revived under the same product id. Times are microseconds since the Unix epoch.
CREATE TABLE harvested_datasets (
    product_id    TEXT PRIMARY KEY,
    ckan_id       TEXT NOT NULL,
    ckan_name     TEXT NOT NULL,
    -- The portal's metadata_modified: a different value means the dataset changed.
    modified      TEXT NOT NULL,
    -- The portal's record (the fields the catalog uses), as JSON.
    record        TEXT NOT NULL,
    harvested_us  BIGINT NOT NULL,
    withdrawn_us  BIGINT
);
