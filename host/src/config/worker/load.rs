//! Reading worker definitions from a file or a directory, reporting every problem at once.
//!
//! Unlike the Go mecha, which stops at the first bad file, [`load`] reads every file, runs every
//! check, and returns all the problems together (as Vector does for its components), each with
//! its file, line, column and field. Within one file, a YAML or type error stops that file (serde
//! cannot go on past it); the definition's own checks are then all reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::WorkerDef;
use super::interpolate::Lookup;
use super::problem::{FieldPath, LoadErrors, Problem, into_result, locate};

/// Reads the definition in `path`, or every `*.yml` and `*.yaml` directly inside the directory
/// `path` (in name order). Each is checked after `${VAR}` interpolation from the process
/// environment, but returned as written, ready to be stored. Names must be unique across files.
pub fn load(path: &Path) -> Result<Vec<WorkerDef>, LoadErrors> {
    load_with(path, &|name| std::env::var(name).ok())
}

fn load_with(path: &Path, lookup: Lookup<'_>) -> Result<Vec<WorkerDef>, LoadErrors> {
    let files = files(path).map_err(|problem| LoadErrors {
        problems: vec![problem],
    })?;
    let mut problems = Vec::new();
    let mut loaded = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(err) => {
                problems.push(in_file(&file, None, format!("cannot be read: {err}")));
                continue;
            }
        };
        match parse(&file, &text, lookup) {
            Ok(def) => loaded.push((file, text, def)),
            Err(found) => problems.extend(found),
        }
    }
    let mut first_file: BTreeMap<&str, &Path> = BTreeMap::new();
    for (file, text, def) in &loaded {
        match first_file.get(def.name.as_str()) {
            Some(first) => {
                let field = FieldPath::root().key("name");
                problems.push(Problem {
                    file: Some(file.clone()),
                    position: locate(text, field.segments()),
                    message: format!(
                        "`{}` is already the name of the worker in {}; names must be unique",
                        def.name,
                        first.display()
                    ),
                    field,
                });
            }
            None => {
                first_file.insert(&def.name, file);
            }
        }
    }
    into_result(problems)?;
    Ok(loaded.into_iter().map(|(_, _, def)| def).collect())
}

/// The files to read: `path` itself, or the YAML files directly inside it, sorted.
fn files(path: &Path) -> Result<Vec<PathBuf>, Problem> {
    let metadata = std::fs::metadata(path)
        .map_err(|err| in_file(path, None, format!("cannot be read: {err}")))?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|err| in_file(path, None, format!("cannot be listed: {err}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| in_file(path, None, format!("cannot be listed: {err}")))?;
        let file = entry.path();
        let is_yaml = file
            .extension()
            .is_some_and(|extension| extension == "yml" || extension == "yaml");
        if is_yaml && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// Parses and checks one definition; `text` is the content of `file`.
fn parse(file: &Path, text: &str, lookup: Lookup<'_>) -> Result<WorkerDef, Vec<Problem>> {
    if text.trim().is_empty() {
        return Err(vec![in_file(
            file,
            None,
            "is empty; a worker needs a name and one of endpoint, docker or adapter".into(),
        )]);
    }
    let def: WorkerDef =
        serde_yaml::from_str(text).map_err(|err| vec![parse_problem(file, err)])?;
    let (resolved, mut problems) = def.interpolate_all(lookup);
    // A field that could not be interpolated has been reported; its text is not checked.
    let unresolved: Vec<FieldPath> = problems.iter().map(|p| p.field.clone()).collect();
    problems.extend(
        resolved
            .problems()
            .into_iter()
            .filter(|problem| !unresolved.contains(&problem.field)),
    );
    if problems.is_empty() {
        return Ok(def);
    }
    for problem in &mut problems {
        problem.file = Some(file.to_path_buf());
        problem.position = locate(text, problem.field.segments());
    }
    // In the order of the file, for a reader going down it.
    problems.sort_by_key(|problem| problem.position.unwrap_or((usize::MAX, usize::MAX)));
    Err(problems)
}

/// A problem with the file as a whole.
fn in_file(file: &Path, position: Option<(usize, usize)>, message: String) -> Problem {
    Problem {
        file: Some(file.to_path_buf()),
        position,
        field: FieldPath::root(),
        message,
    }
}

/// A YAML or type error from serde_yaml, with its position moved to the front and without the
/// value it quoted (an `api_key` of the wrong type is still a key).
fn parse_problem(file: &Path, err: serde_yaml::Error) -> Problem {
    let (position, message) = crate::config::yaml::describe(&err);
    in_file(file, position, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config/testdata")
    }

    /// The variables the test data may use; every other one is unset.
    fn vars(name: &str) -> Option<String> {
        match name {
            "MECHA_TEST_API_KEY" => Some("test-key".into()),
            "MECHA_TEST_HOST" => Some("127.0.0.1".into()),
            _ => None,
        }
    }

    /// Each `invalid/<case>.yaml` fails with exactly the text of `invalid/<case>.err`, in which
    /// the file is named without its directory.
    #[test]
    fn invalid_definitions_fail_with_the_expected_messages() {
        let dir = testdata().join("invalid");
        let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("testdata/invalid")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
            .collect();
        cases.sort();
        assert!(cases.len() >= 12, "only {} cases", cases.len());
        let prefix = format!("{}/", dir.display());
        let mut failures = Vec::new();
        for case in &cases {
            let expected = std::fs::read_to_string(case.with_extension("err"))
                .unwrap_or_else(|_| panic!("{} has no .err file", case.display()));
            let actual = match load_with(case, &vars) {
                Ok(_) => "loaded without errors".to_owned(),
                Err(errors) => errors.to_string().replace(&prefix, ""),
            };
            if actual != expected.trim_end() {
                failures.push(format!(
                    "{}:\n  expected: {}\n  actual:   {actual}",
                    case.display(),
                    expected.trim_end()
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn valid_definitions_load_as_written() {
        let defs = load_with(&testdata().join("valid"), &vars).expect("valid examples");
        let names: Vec<&str> = defs.iter().map(|def| def.name.as_str()).collect();
        assert_eq!(names, ["local-llm", "reviewer", "triage"]);
        // Stored uninterpolated: the reference stays, the value is not there.
        let reviewer = &defs[1];
        let docker = reviewer.docker.as_ref().expect("docker");
        assert_eq!(docker.api_key.as_deref(), Some("${MECHA_TEST_API_KEY}"));
        assert!(
            !serde_json::to_string(&defs)
                .expect("json")
                .contains("test-key")
        );
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("write");
    }

    #[test]
    fn a_directory_reports_every_problem_of_every_file() {
        let temp = tempfile::tempdir().expect("temp");
        let dir = temp.path();
        write(dir, "a.yaml", "name: same\nendpoint: http://h\n");
        write(dir, "b.yml", "name: same\nendpoint: http://h\n");
        write(dir, "c.yaml", "name: c\nendpoint: http://h\ntimeot: 1m\n");
        write(
            dir,
            "d.yaml",
            "name: -d\nendpoint: ftp://h\nconcurrency: 0\n",
        );
        write(dir, "notes.txt", "not: yaml: at all");
        let errors = load_with(dir, &vars).expect_err("problems");
        let text = errors
            .to_string()
            .replace(&format!("{}/", dir.display()), "");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(
            lines[0].starts_with("c.yaml:3:1: unknown field `timeot`"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("d.yaml:1:7: name: `-d` is not a valid name"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("d.yaml:2:11: endpoint: `ftp://h` must start"),
            "{text}"
        );
        assert_eq!(lines[3], "d.yaml:3:14: concurrency: must be at least 1");
        assert!(
            lines[4].starts_with("b.yml:1:7: name: `same` is already the name of the worker in"),
            "{text}"
        );
        assert!(lines[4].ends_with("a.yaml; names must be unique"), "{text}");
    }

    #[test]
    fn a_single_file_and_missing_paths() {
        let temp = tempfile::tempdir().expect("temp");
        write(temp.path(), "w.yaml", "name: w\nendpoint: http://h\n");
        let defs = load_with(&temp.path().join("w.yaml"), &vars).expect("loads");
        assert_eq!(defs.len(), 1);
        let err = load_with(&temp.path().join("absent.yaml"), &vars)
            .expect_err("missing")
            .to_string();
        assert!(err.contains("absent.yaml: cannot be read"), "{err}");
        assert!(load_with(temp.path().join("empty").as_path(), &vars).is_err());
        std::fs::create_dir(temp.path().join("empty")).expect("mkdir");
        assert_eq!(load_with(&temp.path().join("empty"), &vars), Ok(Vec::new()));
    }
}
