use std::path::Path;

use super::*;
use crate::config::secrets::Secret;

fn worker(yaml: &str) -> WorkerDef {
    serde_yaml::from_str(yaml).unwrap_or_else(|err| panic!("{yaml}: {err}"))
}

fn user(home: Option<&Path>) -> HostUser {
    HostUser {
        uid: 1234,
        gid: 5678,
        home: home.map(Path::to_path_buf),
    }
}

fn secrets(token: &str) -> Secrets {
    let mut secrets = Secrets::default();
    secrets.set_token("agent", "main", Secret::new(token));
    secrets
}

fn keys(spec: &ContainerSpec) -> Vec<&str> {
    spec.env.iter().map(|(key, _)| key.as_str()).collect()
}

fn value<'a>(spec: &'a ContainerSpec, key: &str) -> Option<&'a str> {
    spec.env
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
}

#[test]
fn environment_is_set_in_reference_order() {
    let worker = worker(
        "name: w\ndocker:\n  image: img\n  token: agent.main\n  api_key: key-1\n  \
         env:\n    ZED: z\n    ALPHA: a\n  plugins: [p1, p2]\n  plugin_marketplaces: [m1]\n",
    );
    let spec = assemble(&worker, &secrets("sk-ant-api03-x"), &user(None), "").expect("assembles");
    assert_eq!(
        keys(&spec),
        [
            "ANTHROPIC_API_KEY",
            "ALPHA",
            "ZED",
            "WORKER_API_KEY",
            "WORKER_TIMEOUT",
            "HOME",
            "CLAUDE_PLUGINS",
            "CLAUDE_PLUGIN_MARKETPLACES"
        ]
    );
    assert_eq!(value(&spec, "ANTHROPIC_API_KEY"), Some("sk-ant-api03-x"));
    assert_eq!(value(&spec, "WORKER_API_KEY"), Some("key-1"));
    assert_eq!(
        value(&spec, "WORKER_TIMEOUT"),
        Some("600000"),
        "the default 10m"
    );
    assert_eq!(value(&spec, "HOME"), Some("/tmp"));
    assert_eq!(value(&spec, "CLAUDE_PLUGINS"), Some("p1\np2"));
    assert_eq!(value(&spec, "CLAUDE_PLUGIN_MARKETPLACES"), Some("m1"));
}

#[test]
fn docker_env_replaces_the_token_variable_in_place() {
    let worker = worker(
        "name: w\ndocker:\n  image: img\n  token: agent.main\n  env:\n    ANTHROPIC_API_KEY: mine\n",
    );
    let spec = assemble(&worker, &secrets("sk-ant-api03-x"), &user(None), "").expect("assembles");
    assert_eq!(keys(&spec), ["ANTHROPIC_API_KEY", "WORKER_TIMEOUT", "HOME"]);
    assert_eq!(value(&spec, "ANTHROPIC_API_KEY"), Some("mine"));
}

#[test]
fn token_prefix_picks_the_variable() {
    let worker = worker("name: w\ndocker:\n  image: img\n  token: agent.main\n");
    for (token, variable) in [
        ("sk-ant-oat01-abc", "CLAUDE_CODE_OAUTH_TOKEN"),
        ("sk-ant-api03-abc", "ANTHROPIC_API_KEY"),
        ("sk-proj-abc", "CODEX_API_KEY"),
    ] {
        let spec = assemble(&worker, &secrets(token), &user(None), "").expect(token);
        assert_eq!(spec.env[0], (variable.to_owned(), token.to_owned()));
    }
    let err = assemble(&worker, &secrets("ghp_canarytoken123"), &user(None), "")
        .err()
        .expect("unknown prefix");
    let text = err.to_string();
    assert!(text.contains("does not start with sk-ant-oat"), "{text}");
    assert!(!text.contains("canary"), "the token never appears: {text}");
    let err = assemble(&worker, &Secrets::default(), &user(None), "")
        .err()
        .expect("no tokens");
    assert!(err.to_string().contains("agent.main"), "{err}");
}

#[test]
fn reserved_keys_stored_by_an_older_mecha_are_refused() {
    // Built directly, as a row from the database would be, bypassing `mecha worker add`.
    let mut worker = worker("name: w\ndocker:\n  image: img\n");
    let docker = worker.docker.as_mut().expect("docker");
    docker.env.insert("home".to_owned(), "/root".to_owned());
    let err = assemble(&worker, &Secrets::default(), &user(None), "")
        .err()
        .expect("reserved");
    assert!(err.to_string().contains("HOME is set by mecha"), "{err}");
    let mut worker = self::worker("name: w\ndocker:\n  image: img\n  lifecycle: disposable\n");
    let docker = worker.docker.as_mut().expect("docker");
    docker.env.insert("Worker_Extra".to_owned(), "x".to_owned());
    let err = assemble(&worker, &Secrets::default(), &user(None), "")
        .err()
        .expect("reserved prefix");
    assert!(err.to_string().contains("WORKER_*"), "{err}");
}

#[test]
fn cwd_is_resolved_checked_and_mounted_at_workspace() {
    let temp = tempfile::tempdir().expect("temp");
    let root = temp.path().canonicalize().expect("resolves");
    let project = root.join("project");
    std::fs::create_dir(&project).expect("mkdir");
    std::os::unix::fs::symlink(&project, root.join("link")).expect("link");
    let yaml = format!(
        "name: w\ndocker:\n  image: img\n  cwd: {}\n",
        root.join("link").display()
    );
    let spec = assemble(&worker(&yaml), &Secrets::default(), &user(None), "").expect("assembles");
    assert_eq!(spec.binds, [format!("{}:/workspace", project.display())]);

    for sensitive in ["/etc", "/proc/self", "/root"] {
        let yaml = format!("name: w\ndocker:\n  image: img\n  cwd: {sensitive}\n");
        let err = assemble(&worker(&yaml), &Secrets::default(), &user(None), "")
            .err()
            .expect(sensitive);
        assert!(err.to_string().contains("docker.cwd"), "{sensitive}: {err}");
    }
    let yaml = format!(
        "name: w\ndocker:\n  image: img\n  cwd: {}\n",
        root.join("gone").display()
    );
    let err = assemble(&worker(&yaml), &Secrets::default(), &user(None), "")
        .err()
        .expect("missing");
    assert!(err.to_string().contains("cannot be used"), "{err}");
}

#[test]
fn credentials_are_mounted_read_only_and_move_home() {
    let temp = tempfile::tempdir().expect("temp");
    let home = temp.path();
    std::fs::create_dir(home.join(".claude")).expect("mkdir");
    let worker = worker("name: w\ndocker:\n  image: img\n  credentials: [claude, codex]\n");
    let err = assemble(&worker, &Secrets::default(), &user(Some(home)), "")
        .err()
        .expect("no ~/.codex");
    assert!(err.to_string().contains(".codex does not exist"), "{err}");
    let err = assemble(&worker, &Secrets::default(), &user(None), "")
        .err()
        .expect("no home");
    assert!(err.to_string().contains("HOME is not set"), "{err}");

    std::fs::create_dir(home.join(".codex")).expect("mkdir");
    let spec = assemble(&worker, &Secrets::default(), &user(Some(home)), "").expect("assembles");
    assert_eq!(
        spec.binds,
        [
            format!("{}/.claude:/home/worker/.claude:ro", home.display()),
            format!("{}/.codex:/home/worker/.codex:ro", home.display()),
        ]
    );
    assert_eq!(value(&spec, "HOME"), Some("/home/worker"));
}

#[test]
fn limits_names_labels_and_ports() {
    let worker = worker(
        "name: w\ndocker:\n  image: img\n  resources: {cpu: 2, memory: 512m, pids: 64}\n  \
         labels: {team: a, mecha.worker: spoofed}\n",
    );
    let spec = assemble(&worker, &Secrets::default(), &user(None), "").expect("assembles");
    assert_eq!(spec.name, "mecha-worker-w");
    assert_eq!(spec.nano_cpus, Some(2_000_000_000));
    assert_eq!(spec.memory_bytes, Some(512 * 1024 * 1024));
    assert_eq!(spec.pids_limit, 64);
    assert_eq!(spec.user, "1234:5678");
    assert_eq!(spec.bind_ip, "127.0.0.1");
    assert_eq!(spec.labels["team"], "a");
    assert_eq!(spec.labels[WORKER_LABEL], "w", "mecha's label wins");
    assert!(!spec.labels.contains_key(LIFECYCLE_LABEL));

    let worker = self::worker(
        "name: d\ndocker:\n  image: img\n  lifecycle: disposable\n  resources: {memory: 2G}\n  \
         expose: true\n  api_key: k\n",
    );
    let spec = assemble(
        &worker,
        &Secrets::default(),
        &user(None),
        "0123456789abcdef",
    )
    .expect("assembles");
    assert_eq!(spec.name, "mecha-disposable-d-0123456789abcdef");
    assert_eq!(spec.labels[LIFECYCLE_LABEL], "disposable");
    assert_eq!(spec.memory_bytes, Some(2 * 1024 * 1024 * 1024));
    assert_eq!(spec.nano_cpus, None);
    assert_eq!(spec.pids_limit, DEFAULT_PIDS_LIMIT);
    assert_eq!(spec.bind_ip, "0.0.0.0");
}

#[test]
fn create_body_carries_the_hardening() {
    let worker = worker("name: w\ndocker:\n  image: img\n  api_key: k\ntimeout: 90s\n");
    let body = assemble(&worker, &Secrets::default(), &user(None), "")
        .expect("assembles")
        .create_body();
    let json = serde_json::to_value(&body).expect("serialises");
    let host = &json["HostConfig"];
    assert_eq!(json["Image"], "img");
    assert_eq!(json["User"], "1234:5678");
    assert_eq!(json["ExposedPorts"], serde_json::json!({ "8080/tcp": {} }));
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
    assert_eq!(
        host["SecurityOpt"],
        serde_json::json!(["no-new-privileges:true"])
    );
    assert_eq!(host["PidsLimit"], 1024);
    assert_eq!(
        host["PortBindings"]["8080/tcp"],
        serde_json::json!([{ "HostIp": "127.0.0.1", "HostPort": "" }])
    );
    assert_eq!(host["RestartPolicy"]["Name"], "no");
    assert_eq!(
        json["Env"],
        serde_json::json!(["WORKER_API_KEY=k", "WORKER_TIMEOUT=90000", "HOME=/tmp"])
    );
}

#[test]
fn a_root_daemon_runs_containers_unprivileged_unless_the_worker_says_otherwise() {
    use std::os::unix::fs::MetadataExt;

    let docker = |yaml: &str| -> DockerConfig { serde_yaml::from_str(yaml).expect(yaml) };
    let plain = docker("image: img\n");
    let root = HostUser {
        uid: 0,
        gid: 0,
        home: None,
    };
    assert_eq!(container_user(&plain, &user(None), None), "1234:5678");
    assert_eq!(container_user(&plain, &root, None), UNPRIVILEGED_USER);
    assert_eq!(
        container_user(&docker("image: img\nuser: '0:0'\n"), &root, None),
        "0:0",
        "the worker said so"
    );
    assert_eq!(
        container_user(&docker("image: img\nuser: 1000\n"), &user(None), None),
        "1000"
    );

    // A root daemon takes the owner of the workspace, never root or its group.
    let temp = tempfile::tempdir().expect("temp");
    let owner = std::fs::metadata(temp.path()).expect("metadata");
    let expected = match (owner.uid(), owner.gid()) {
        (0, _) => UNPRIVILEGED_USER.to_owned(),
        (uid, 0) => format!("{uid}:65534"),
        (uid, gid) => format!("{uid}:{gid}"),
    };
    assert_eq!(container_user(&plain, &root, Some(temp.path())), expected);
    // SAFETY: getuid cannot fail and touches no memory.
    if unsafe { libc::getuid() } == 0 {
        std::os::unix::fs::chown(temp.path(), Some(4321), Some(0)).expect("chown");
        assert_eq!(
            container_user(&plain, &root, Some(temp.path())),
            "4321:65534"
        );
        std::os::unix::fs::chown(temp.path(), Some(4321), Some(4322)).expect("chown");
        assert_eq!(
            container_user(&plain, &root, Some(temp.path())),
            "4321:4322"
        );
    }
}
