//! `herald plugin new --lang python`: a Python project built with
//! componentize-py.
//!
//! The templates are files under `templates/python/`, so they read (and
//! lint) as the Python they are; `{name}` is filled in.

use std::path::{Path, PathBuf};

use super::{CONFIG_YAML, POD_JSON, WIT};

/// `(path in the project, template)`.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "requirements.txt",
        include_str!("templates/python/requirements.txt"),
    ),
    ("build.sh", include_str!("templates/python/build.sh")),
    ("rules.py", include_str!("templates/python/rules.py")),
    (
        "component.py",
        include_str!("templates/python/component.py"),
    ),
    (
        "test_rules.py",
        include_str!("templates/python/test_rules.py"),
    ),
    ("README.md", include_str!("templates/python/README.md")),
    (".gitignore", include_str!("templates/python/gitignore")),
];

/// The files of the project, relative to its directory.
pub(super) fn project_files(name: &str) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = TEMPLATES
        .iter()
        .map(|(path, text)| (PathBuf::from(path), text.replace("{name}", name)))
        .collect();
    files.push((PathBuf::from("wit/herald.wit"), WIT.to_string()));
    files.push((PathBuf::from("pod.json"), POD_JSON.to_string()));
    files.push((PathBuf::from("config.yaml"), CONFIG_YAML.to_string()));
    files
}

/// What to run next, in the project's directory `dir`.
pub(super) fn next_steps(dir: &Path, name: &str) -> String {
    format!(
        "wrote {dir}: a filter plugin in Python with its tests. Next (Python 3.10 or newer):\n  \
         cd {dir}\n  \
         python3 -m venv .venv && .venv/bin/pip install -r requirements.txt\n  \
         python3 -m unittest\n  \
         COMPONENTIZE_PY=.venv/bin/componentize-py ./build.sh\n  \
         herald plugin test {name}.wasm pod.json --config config.yaml",
        dir = dir.display(),
    )
}
