//! `herald plugin new --lang js`: an npm project built with componentize-js.
//!
//! The templates are files under `templates/js/`, so they read (and lint) as
//! the JavaScript they are; `{name}` and `{package}` are filled in.

use std::path::{Path, PathBuf};

use super::{CONFIG_YAML, POD_JSON, WIT};

/// `(path in the project, template)`.
const TEMPLATES: &[(&str, &str)] = &[
    ("package.json", include_str!("templates/js/package.json")),
    ("src/rules.js", include_str!("templates/js/src/rules.js")),
    ("src/plugin.js", include_str!("templates/js/src/plugin.js")),
    (
        "test/rules.test.js",
        include_str!("templates/js/test/rules.test.js"),
    ),
    ("README.md", include_str!("templates/js/README.md")),
    (".gitignore", include_str!("templates/js/gitignore")),
];

/// The files of the project, relative to its directory.
pub(super) fn project_files(name: &str) -> Vec<(PathBuf, String)> {
    // npm refuses capitals in a package's name.
    let package = name.to_ascii_lowercase();
    let mut files: Vec<(PathBuf, String)> = TEMPLATES
        .iter()
        .map(|(path, text)| {
            (
                PathBuf::from(path),
                text.replace("{name}", name).replace("{package}", &package),
            )
        })
        .collect();
    files.push((PathBuf::from("wit/herald.wit"), WIT.to_string()));
    files.push((PathBuf::from("pod.json"), POD_JSON.to_string()));
    files.push((PathBuf::from("config.yaml"), CONFIG_YAML.to_string()));
    files
}

/// What to run next, in the project's directory `dir`.
pub(super) fn next_steps(dir: &Path, name: &str) -> String {
    format!(
        "wrote {dir}: a filter plugin in JavaScript with its tests. Next (Node.js 18 or newer):\n  \
         cd {dir}\n  \
         npm install\n  \
         npm test\n  \
         npm run build\n  \
         herald plugin test {name}.wasm pod.json --config config.yaml",
        dir = dir.display(),
    )
}
