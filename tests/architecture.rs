//! The architecture, checked from the `use` lines: no module imports from a layer above it, the
//! files of one module import each other without cycles, and the README's layout table names
//! every folder of `src/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module and the modules it may use: the layers, lowest first. A module uses
/// only modules listed before it, so the table is also the proof that there is no cycle.
const LAYERS: &[(&str, &[&str])] = &[
    ("crypto", &[]),
    ("wire", &[]),
    ("dialect", &[]),
    ("config", &["dialect"]),
    ("plan", &["config", "dialect"]),
    ("client", &["config", "dialect", "wire", "crypto"]),
    ("report", &["config", "plan"]),
    ("server", &["config", "dialect", "wire", "crypto"]),
    (
        "attacks",
        &[
            "client", "plan", "report", "config", "dialect", "wire", "crypto",
        ],
    ),
    (
        "run",
        &["attacks", "client", "plan", "report", "config", "crypto"],
    ),
    ("init", &["client", "config", "dialect", "crypto"]),
    (
        "scan",
        &["run", "attacks", "client", "report", "config", "crypto"],
    ),
    (
        "fuzzing",
        &[
            "run", "attacks", "client", "plan", "report", "config", "dialect", "wire", "crypto",
            "server",
        ],
    ),
    (
        "demo",
        &[
            "fuzzing", "scan", "run", "attacks", "client", "plan", "report", "config", "server",
            "dialect", "wire", "crypto",
        ],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without comments (line and block) and string literals, so paths named in
/// docs or messages are not taken for imports.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'r' && (b[i..].starts_with(b"r\"") || b[i..].starts_with(b"r#")) {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while j < b.len() && b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            if j < b.len() && b[j] == b'"' {
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                j += 1;
                while j < b.len() && !b[j..].starts_with(&close) {
                    j += 1;
                }
                i = j + close.len();
                out.push_str("\"\"");
            } else {
                out.push('r');
                i += 1;
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('"', '\''), not a lifetime.
            let mut j = i + 1;
            if b[j] == b'\\' {
                j += 2;
            } else {
                j += 1;
            }
            while j < b.len() && b[j] != b'\'' {
                j += 1;
            }
            i = j + 1;
            out.push_str("' '");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// `code` without its `#[cfg(test)]` modules: test code may use a module's fixtures (a sample
/// report) without that being part of the module's structure.
fn without_test_modules(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let Some(open) = after.find('{') else {
            return out;
        };
        let mut depth = 0;
        let mut end = after.len();
        for (j, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The paths a file names after `prefix` (`crate` or `super`), expanding `use crate::{a, b::c}`
/// groups: each as its segments.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let pat = format!("{prefix}::");
    let mut rest = code;
    while let Some(i) = rest.find(&pat) {
        let before = rest[..i].chars().last();
        rest = &rest[i + pat.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        expand(rest, Vec::new(), &mut out);
    }
    out
}

/// Reads one path (or a `{...}` group of them) at the start of `text`, appending each to `out`.
fn expand(text: &str, base: Vec<String>, out: &mut Vec<Vec<String>>) {
    let text = text.trim_start();
    if let Some(group) = text.strip_prefix('{') {
        let mut depth = 0;
        let mut start = 0;
        let mut items = Vec::new();
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    items.push(&group[start..i]);
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&group[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        for item in items {
            expand(item, base.clone(), out);
        }
        return;
    }
    let mut path = base;
    let mut rest = text;
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        path.push(rest[..end].to_string());
        rest = &rest[end..];
        if let Some(next) = rest.strip_prefix("::") {
            if next.trim_start().starts_with('{') {
                expand(next, path, out);
                return;
            }
            rest = next;
        } else {
            break;
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// The top-level module a file belongs to (`src/client/conn.rs` is `client`, `src/crypto.rs` is
/// `crypto`), `None` for `lib.rs` and `main.rs`.
fn top_module(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = LAYERS
        .iter()
        .map(|(m, uses)| (*m, uses.iter().copied().collect()))
        .collect();
    let mut violations = Vec::new();
    let mut seen_modules = BTreeSet::new();
    for file in rust_files(&src()) {
        let Some(module) = top_module(&file) else {
            continue;
        };
        seen_modules.insert(module.clone());
        let Some(may_use) = allowed.get(module.as_str()) else {
            violations.push(format!(
                "{}: module `{module}` is not in the layer table",
                file.display()
            ));
            continue;
        };
        let code = code_only(&std::fs::read_to_string(&file).expect("read"));
        for path in paths_after(&code, "crate") {
            let used = path[0].as_str();
            if used != module && allowed.contains_key(used) && !may_use.contains(used) {
                violations.push(format!(
                    "{}: `{module}` uses `crate::{}`, a layer it may not use",
                    file.strip_prefix(src()).unwrap_or(&file).display(),
                    path.join("::")
                ));
            }
        }
    }
    for (m, _) in LAYERS {
        assert!(
            seen_modules.contains(*m),
            "the layer table names `{m}`, which src/ does not have"
        );
    }
    assert!(
        violations.is_empty(),
        "imports from a layer above:\n{}",
        violations.join("\n")
    );
}

/// The files of one module directory, by name (`mod` for `mod.rs`).
fn module_files(dir: &Path) -> BTreeMap<String, PathBuf> {
    std::fs::read_dir(dir)
        .expect("module dir")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_stem()?.to_string_lossy().into_owned();
            (p.extension().is_some_and(|x| x == "rs")).then_some((name, p))
        })
        .collect()
}

#[test]
fn files_of_a_module_import_each_other_without_cycles() {
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(src()).expect("src") {
        let dir = entry.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        let module = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let files = module_files(&dir);
        // Names the module root re-exports from a child (`pub use conn::{Connection, ..}`), so
        // `super::Connection` counts as a use of `conn`.
        let mut reexports: BTreeMap<String, String> = BTreeMap::new();
        if let Some(root) = files.get("mod") {
            let code = code_only(&std::fs::read_to_string(root).expect("read"));
            for line in code
                .lines()
                .filter(|l| l.trim_start().starts_with("pub use "))
            {
                let body = line.trim_start().trim_start_matches("pub use ");
                let mut paths = Vec::new();
                expand(body, Vec::new(), &mut paths);
                for p in paths {
                    if p.len() >= 2 && files.contains_key(&p[0]) {
                        reexports.insert(p[p.len() - 1].clone(), p[0].clone());
                    }
                }
            }
        }
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, path) in &files {
            if name == "mod" {
                continue;
            }
            let code =
                without_test_modules(&code_only(&std::fs::read_to_string(path).expect("read")));
            let mut uses = BTreeSet::new();
            let mut add = |first: &str| {
                if let Some(child) = reexports.get(first) {
                    uses.insert(child.clone());
                } else if files.contains_key(first) && first != "mod" {
                    uses.insert(first.to_string());
                }
            };
            for p in paths_after(&code, "super") {
                add(&p[0]);
            }
            for p in paths_after(&code, "crate") {
                if p[0] == module && p.len() > 1 {
                    add(&p[1]);
                }
            }
            uses.remove(name);
            edges.insert(name.clone(), uses);
        }
        if let Some(cycle) = find_cycle(&edges) {
            problems.push(format!("src/{module}: {}", cycle.join(" -> ")));
        }
    }
    assert!(
        problems.is_empty(),
        "import cycles between files of a module:\n{}",
        problems.join("\n")
    );
}

/// A cycle in `edges`, as the names along it, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(c) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_readme_layout_table_names_every_folder_of_src() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let layout = readme
        .split("## Layout")
        .nth(1)
        .expect("a Layout section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    for entry in std::fs::read_dir(src()).expect("src") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if name == "lib.rs" {
            continue;
        }
        let shown = if path.is_dir() {
            format!("`src/{name}/`")
        } else {
            format!("`src/{name}`")
        };
        assert!(
            layout.contains(&shown),
            "the README layout table does not name {shown}"
        );
    }
    for line in layout.lines().filter(|l| l.starts_with("| `src/")) {
        let named = line
            .split('`')
            .nth(1)
            .unwrap_or_default()
            .trim_end_matches('/');
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(named).exists(),
            "the README layout table names {named}, which does not exist"
        );
    }
}
