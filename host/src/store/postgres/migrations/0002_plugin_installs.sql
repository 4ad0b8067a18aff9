-- Plugin installs shared by the daemons of this database (store/plugin_installs.rs): each
-- plugin's lock entry as the last change left it (NULL once removed), under the revision that
-- orders the changes, and the components its versions name.
CREATE TABLE plugin_installs (
    name       TEXT   NOT NULL PRIMARY KEY,
    entry      TEXT,
    revision   BIGINT NOT NULL UNIQUE,
    updated_at BIGINT NOT NULL
);

CREATE TABLE plugin_components (
    name   TEXT  NOT NULL,
    sha256 TEXT  NOT NULL,
    bytes  BYTEA NOT NULL,
    PRIMARY KEY (name, sha256)
);
