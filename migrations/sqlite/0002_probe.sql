-- One row that readiness checks write and read back: the write path of a request, in miniature.
CREATE TABLE readiness_probe (
    id  INTEGER PRIMARY KEY,
    at  BIGINT NOT NULL,
    pad BLOB NOT NULL
);
