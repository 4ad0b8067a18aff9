-- Plugin installs shared by the daemons of one database (store/plugin_installs.rs): each
-- plugin's lock entry as the last change left it (NULL once removed), under the revision that
-- orders the changes, and the components its versions name.
CREATE TABLE plugin_installs (
    name       TEXT    NOT NULL PRIMARY KEY,
    entry      TEXT,
    revision   INTEGER NOT NULL UNIQUE,
    updated_at INTEGER NOT NULL
);

CREATE TABLE plugin_components (
    name   TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes  BLOB NOT NULL,
    PRIMARY KEY (name, sha256)
);
