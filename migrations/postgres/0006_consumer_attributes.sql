-- Attributes of a consumer that policies may refer to (`sluis:subject.NAME`), such as the CBS
-- wijk codes of a municipality's own districts: a JSON object of name → list of strings.
ALTER TABLE consumers ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
