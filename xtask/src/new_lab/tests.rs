//! Tests of `cargo xtask new-lab`: names, the skeleton's files, and the edits to the
//! workspace manifest and the book's table of contents.

use super::templates::PLACEHOLDERS;
use super::*;

#[test]
fn a_lab_name_is_lower_case_words_joined_by_dashes() {
    let names = Names::parse("event-sourcing").expect("a valid name");
    assert_eq!(names.snake, "event_sourcing");
    assert_eq!(names.title, "Event sourcing");
    assert_eq!(names.lab_crate(), "lab-event-sourcing");
    assert_eq!(names.core_crate(), "event-sourcing-core");
    for bad in [
        "",
        "Event",
        "event_sourcing",
        "-x",
        "x-",
        "a--b",
        "9lives",
        "x y",
    ] {
        assert!(Names::parse(bad).is_err(), "`{bad}` must be refused");
    }
}

#[test]
fn the_skeleton_has_every_file_a_lab_has_and_no_placeholder_left() {
    let names = Names::parse("discovery").expect("a valid name");
    let files = skeleton(&names, "patterns/service-discovery.md");
    let paths: Vec<String> = files
        .iter()
        .map(|f| f.path.to_string_lossy().into_owned())
        .collect();
    for wanted in [
        "labs/discovery/core/src/lib.rs",
        "labs/discovery/core/src/deadline.rs",
        "labs/discovery/exercise/deadline.rs",
        "labs/discovery/core/tests/graded.rs",
        "labs/discovery/grading.toml",
        "labs/discovery/lab.toml",
        "labs/discovery/src/main.rs",
        "labs/discovery/tests/service.rs",
        "book/src/patterns/discovery-lab.md",
        "book/src/patterns/discovery-solution.md",
    ] {
        assert!(
            paths.iter().any(|p| p == wanted),
            "the skeleton lacks {wanted}"
        );
    }
    for file in &files {
        for placeholder in PLACEHOLDERS {
            assert!(
                !file.contents.contains(placeholder),
                "{} still holds {placeholder}",
                file.path.display()
            );
        }
        if file.path.extension().is_some_and(|e| e == "rs") {
            assert!(
                file.contents.starts_with("//!"),
                "{} must open with a //! doc comment",
                file.path.display()
            );
        }
    }
    let fragment = &files
        .iter()
        .find(|f| f.path.ends_with("discovery-lab.md"))
        .expect("the fragment")
        .contents;
    assert!(
        fragment.contains("{{#include ../../../labs/discovery/core/tests/graded.rs:fires_test}}"),
        "the fragment includes by anchor, with a path that leads from book/src/patterns to labs/"
    );
    assert!(
        !fragment.contains("deadline.rs:due_at"),
        "only the solution page may include the graded reference"
    );
}

#[test]
fn the_workspace_gains_both_crates() {
    let names = Names::parse("discovery").expect("a valid name");
    let manifest = "[workspace]\nmembers = [\n    \"xtask\",\n]\n\n[workspace.dependencies]\nsansio-core = { path = \"labs/sansio-core\" }\n";
    let updated = add_to_workspace(manifest, &names).expect("a manifest with members");
    assert!(updated.contains("    \"labs/discovery/core\",\n    \"labs/discovery\",\n]"));
    assert!(updated.contains("discovery-core = { path = \"labs/discovery/core\" }\nsansio-core"));
}

#[test]
fn the_solution_page_is_listed_right_under_its_chapter() {
    let names = Names::parse("discovery").expect("a valid name");
    let summary = "# Patterns\n\n- [Patterns](patterns/index.md)\n  - [Service Discovery](patterns/service-discovery.md)\n  - [Circuit Breaker](patterns/circuit-breaker.md)\n";
    let updated = add_to_summary(summary, &names, "patterns/service-discovery.md")
        .expect("the chapter is listed");
    assert!(
        updated.contains(
            "  - [Service Discovery](patterns/service-discovery.md)\n    - [Solution: discovery](patterns/discovery-solution.md)\n  - [Circuit Breaker]"
        ),
        "got:\n{updated}"
    );
    assert!(add_to_summary(summary, &names, "patterns/nowhere.md").is_err());
}

#[test]
fn a_lab_may_name_its_core_otherwise_when_the_default_is_taken() {
    let names = Names::parse("tracing")
        .and_then(|names| names.with_core("trace-context-core"))
        .expect("a valid core name");
    assert_eq!(names.lab_crate(), "lab-tracing");
    assert_eq!(names.core_crate(), "trace-context-core");
    assert_eq!(names.core_snake(), "trace_context_core");
    let files = skeleton(&names, "patterns/distributed-tracing.md");
    let core_manifest = files
        .iter()
        .find(|file| file.path.ends_with("labs/tracing/core/Cargo.toml"))
        .expect("the core's manifest");
    assert!(
        core_manifest
            .contents
            .contains("name = \"trace-context-core\"")
    );
    assert!(
        files
            .iter()
            .any(|file| file.contents.contains("use trace_context_core::")),
        "Rust paths use the core's own name"
    );
    assert!(
        files
            .iter()
            .all(|file| !file.contents.contains("tracing_core")
                && !file.contents.contains("tracing-core")),
        "nothing names the taken crate"
    );
    for bad in ["trace-context", "Trace-core", "core"] {
        assert!(
            Names::parse("tracing")
                .and_then(|names| names.with_core(bad))
                .is_err(),
            "`{bad}` must be refused as a core's name"
        );
    }
}
