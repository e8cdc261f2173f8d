//! The library's modules depend on each other without a cycle, read from the sources: the
//! top-level modules (`crate::X` paths), and inside `kernels` the files (`super::X` and
//! `crate::kernels::X`), where the kernels depend on the shared modules and not on each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Edges the check tolerates until they go (none now).
const KNOWN: &[(&str, &str)] = &[];

/// The kernels that must not depend on each other.
const KERNELS: &[&str] = &["conv", "winograd", "winograd4", "winograd_dw"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without `//` comments (doc links are not dependencies).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first path segment of every path after `prefix::` in `code`, through `{a, b::c}` groups.
fn heads(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let pat = format!("{prefix}::");
    for (i, _) in code.match_indices(&pat) {
        // not the tail of a longer path (`a::super::`) or name (`xcrate::`)
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = code[i + pat.len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident(group[start..j].trim()).to_string());
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(group[start..j].trim()).to_string());
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest).to_string());
        }
    }
    out.remove("");
    out
}

/// The top-level modules of lib.rs, and the names it re-exports from them.
fn crate_root() -> (BTreeSet<String>, BTreeMap<String, String>) {
    let lib = code(&src().join("lib.rs"));
    let mut modules = BTreeSet::new();
    let mut reexports = BTreeMap::new();
    for line in lib.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("pub mod ").or(line.strip_prefix("mod ")) {
            modules.insert(m.trim_end_matches(';').trim().to_string());
        } else if let Some(u) = line.strip_prefix("pub use ") {
            let (module, names) = u.split_once("::").unwrap();
            for name in names
                .trim_end_matches(';')
                .trim_matches(['{', '}'])
                .split(',')
            {
                reexports.insert(name.trim().to_string(), module.to_string());
            }
        }
    }
    (modules, reexports)
}

/// Top-level module → the top-level modules its files name.
fn module_graph() -> Graph {
    let (modules, reexports) = crate_root();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph = Graph::new();
    for file in files {
        let rel = file.strip_prefix(src()).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let module = first.trim_end_matches(".rs");
        if !modules.contains(module) {
            continue; // lib.rs, the binaries
        }
        let deps = graph.entry(module.to_string()).or_default();
        for head in heads(&code(&file), "crate") {
            let target = reexports.get(&head).cloned().unwrap_or(head);
            if modules.contains(&target) && target != module {
                deps.insert(target);
            }
        }
    }
    graph
}

/// File → the sibling files it names, inside `src/<module>/`.
fn file_graph(module: &str) -> Graph {
    let dir = src().join(module);
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let names: BTreeSet<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_str().unwrap().to_string())
        .filter(|n| n != "mod")
        .collect();
    let mut graph = Graph::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_str().unwrap().to_string();
        if name == "mod" {
            continue;
        }
        let code = code(file);
        let mut refs = heads(&code, "super");
        refs.extend(heads(&code, &format!("crate::{module}")));
        let deps: BTreeSet<String> = refs
            .into_iter()
            .filter(|r| names.contains(r) && *r != name)
            .collect();
        graph.insert(name, deps);
    }
    graph
}

/// A cycle of `graph`, if it has one.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut c = path[i..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn show(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(m, deps)| {
            format!(
                "  {m} → {}",
                deps.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn top_level_modules_have_no_cycle() {
    let mut graph = module_graph();
    // the layering this crate is built on, so that a parser gone blind fails here too
    for (from, to) in [
        ("cpu", "kernels"),
        ("ops", "kernels"),
        ("model", "ops"),
        ("cpu", "model"),
    ] {
        assert!(
            graph[from].contains(to),
            "{from} → {to} not found:\n{}",
            show(&graph)
        );
    }
    for (from, to) in KNOWN {
        graph.get_mut(*from).unwrap().remove(*to);
    }
    assert!(
        graph["kernels"].is_empty(),
        "kernels → {:?}",
        graph["kernels"]
    );
    if let Some(c) = cycle(&graph) {
        panic!("module cycle {}:\n{}", c.join(" → "), show(&graph));
    }
}

#[test]
fn kernels_depend_on_shared_modules_not_on_each_other() {
    let graph = file_graph("kernels");
    assert!(graph["plan"].contains("winograd4"), "{}", show(&graph));
    for k in KERNELS {
        let others: Vec<&String> = graph[*k]
            .iter()
            .filter(|d| KERNELS.contains(&d.as_str()))
            .collect();
        assert!(
            others.is_empty(),
            "{k} depends on {others:?}:\n{}",
            show(&graph)
        );
    }
    if let Some(c) = cycle(&graph) {
        panic!("cycle in kernels {}:\n{}", c.join(" → "), show(&graph));
    }
}

#[test]
fn the_parser_sees_groups_and_nesting() {
    let code = "use crate::{a, b::{c, d}, Error};\nuse crate::e::f;\nlet x = crate::g::h();\n\
                use super::{conv, winograd};";
    let want = ["Error", "a", "b", "e", "g"].map(String::from);
    assert_eq!(heads(code, "crate"), BTreeSet::from(want));
    let want = ["conv", "winograd"].map(String::from);
    assert_eq!(heads(code, "super"), BTreeSet::from(want));
    let mut g = Graph::new();
    g.insert("a".into(), ["b".to_string()].into());
    g.insert("b".into(), ["a".to_string()].into());
    assert!(cycle(&g).is_some());
    g.get_mut("b").unwrap().clear();
    assert!(cycle(&g).is_none());
}
