//! `docs/CLI.md` is the binary's own help: the top-level `--help` and each subcommand's
//! `--help`, as the real binary prints them, in one Markdown page. This test fails when the page
//! and the help disagree; `CKPTSCOPE_BLESS=1 cargo test --test cli reference` rewrites the page
//! from the help (the help texts live in `src/cli/`, one file per subcommand).

use crate::common;

use std::path::PathBuf;

use common::run;

fn page_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/CLI.md")
}

/// `--help` of `args` (empty: the top level), which must succeed and print on stdout.
fn help(args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push("--help");
    let (code, out, err) = run(&all);
    assert_eq!(code, 0, "ckptscope {} --help: {err}", args.join(" "));
    assert!(err.is_empty(), "ckptscope {} --help: {err}", args.join(" "));
    out
}

/// The subcommands the top-level help lists under `Commands:`, in its order (`help` left out:
/// it only points back here).
fn subcommands(top: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut lines = top.lines().skip_while(|l| *l != "Commands:").skip(1);
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        // A name sits two spaces in; a wrapped description sits deeper.
        if let Some(rest) = line.strip_prefix("  ")
            && !rest.starts_with(' ')
            && let Some(name) = rest.split_whitespace().next()
            && name != "help"
        {
            names.push(name.to_string());
        }
    }
    names
}

/// The page: a contents list, then one section per command with its help verbatim.
fn page() -> String {
    let top = help(&[]);
    let names = subcommands(&top);
    assert!(
        !names.is_empty(),
        "no `Commands:` in the top-level help:\n{top}"
    );
    let mut sections = vec![("ckptscope".to_string(), top)];
    for name in &names {
        sections.push((format!("ckptscope {name}"), help(&[name])));
    }
    let mut page = String::from(
        "# ckptscope command line\n\
         \n\
         This page is generated from the binary's own help (`ckptscope --help` and \
         `ckptscope COMMAND --help`): edit the help texts in `src/cli/`, then regenerate it with \
         `CKPTSCOPE_BLESS=1 cargo test --test cli reference` (the test fails while the two \
         differ).\n\
         \n",
    );
    for (title, _) in &sections {
        let anchor = title.replace(' ', "-");
        page.push_str(&format!("- [`{title}`](#{anchor})\n"));
    }
    for (title, text) in &sections {
        // Without the spaces clap leaves at the end of some lines, which editors strip.
        let lines: Vec<&str> = text.trim_end().lines().map(str::trim_end).collect();
        page.push_str(&format!(
            "\n## {title}\n\n```text\n{}\n```\n",
            lines.join("\n")
        ));
    }
    page
}

#[test]
fn docs_cli_md_is_the_binarys_help() {
    let want = page();
    let path = page_path();
    if std::env::var_os("CKPTSCOPE_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
        panic!(
            "docs/CLI.md differs from the binary's help from line {}: regenerate it with \
             `CKPTSCOPE_BLESS=1 cargo test --test cli reference`\n--- docs/CLI.md\n{}\n--- help\n{}",
            line + 1,
            have.lines().nth(line).unwrap_or("(end)"),
            want.lines().nth(line).unwrap_or("(end)"),
        );
    }
}

#[test]
fn the_command_list_is_read_from_the_help() {
    let top = "Usage: x\n\nCommands:\n  info     List a thing that\n           wraps\n  scan     Judge\n  help     Print\n\nArguments:\n  [FILES]...\n";
    assert_eq!(subcommands(top), ["info", "scan"]);
}

#[test]
fn every_subcommand_states_its_exit_status() {
    for name in subcommands(&help(&[])) {
        let text = help(&[&name]);
        assert!(
            text.contains("Exit status"),
            "`ckptscope {name} --help` does not say what its exit status means:\n{text}"
        );
    }
}
