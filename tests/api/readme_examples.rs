//! Every shell example of README.md and docs/*.md runs against a sandbox-mode gateway and prints what the docs show.

// The convention the docs follow, and this test reads:
// - A ```sh block is an example. Right after it (only blank lines between) comes what it prints: a ```json block (the
//   JSON values it prints, in order) or a ```text block (its lines; `...` stands for any text). An example that
//   prints nothing has neither and says so in a `# prints nothing` comment.
// - ```sh no-run marks the few examples that cannot run here (starting the server, Docker, Kubernetes, real providers,
//   long loads). They are skipped, and listed in the test's output.
// - The examples of one file run in order in one bash (`set -euo pipefail`) against a gateway of their own, so later
//   examples use the variables and the state earlier ones left. `localhost:8080` and `127.0.0.1:8080` become that
//   gateway's address, `<NAME port>` (`<sumsub port>`) the port of the sandbox provider of that name, as its
//   start-up log lists them; `kyc-gateway` and `cargo run -q -- ARGS` run the built binary; the examples run in a
//   temporary directory.
// - An example fails when it exits non-zero; when its answers hold error codes (`errors[].extensions.code`) other than
//   those its documented output holds; when an HTTP answer is an error (4xx, 5xx) without such codes; or when what it
//   prints differs from the documented output in shape: object keys, null or not, empty lists or not, booleans and
//   UPPER_CASE enum values. Ids, tokens, times, counts and other strings are not compared.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kyc_gateway::config::sandbox_providers;
use serde_json::Value;

use crate::helpers::Process;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn every_shell_example_of_the_readme_and_docs_answers_what_the_docs_show() {
    let curl = find_on_path("curl").unwrap_or_else(|| {
        panic!("curl is needed: the docs' examples use it (install it, e.g. `apt-get install curl`; .ci/run does)")
    });
    let work = TempDir::new();
    let bin = work.0.join("bin");
    write_shims(&bin, &curl);

    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut ran = 0;
    for path in doc_files() {
        let name = path.strip_prefix(ROOT).expect("under the repository").display().to_string();
        let text = std::fs::read_to_string(&path).expect("a readable doc");
        let parsed = examples(&name, &text);
        failures.extend(parsed.problems);
        skipped.extend(parsed.skipped.iter().map(|line| format!("{name}:{line}")));
        if parsed.examples.is_empty() {
            continue;
        }
        ran += parsed.examples.len();
        let dir = work.0.join(name.replace('/', "_"));
        std::fs::create_dir_all(&dir).expect("a work directory");
        failures.extend(run_file(&parsed.examples, &bin, &dir));
    }
    eprintln!("ran {ran} examples; skipped (no-run): {}", skipped.join(", "));
    assert!(ran > 0, "no shell example found");
    assert!(failures.is_empty(), "{} example(s) fail:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// README.md, then docs/*.md in name order.
fn doc_files() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    docs.insert(0, Path::new(ROOT).join("README.md"));
    docs
}

/// A fenced block: its info string, the lines of its opening and closing fences (1-based), its body unindented.
struct Block {
    info: String,
    line: usize,
    end: usize,
    body: String,
}

/// The fenced blocks of a markdown text; a fence may be indented (inside a list item).
fn fenced_blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let indent = lines[i].len() - lines[i].trim_start().len();
        let Some(info) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let mut body = Vec::new();
        let mut j = i + 1;
        while j < lines.len() && lines[j].trim() != "```" {
            let blank = lines[j].len() - lines[j].trim_start().len();
            body.push(&lines[j][blank.min(indent)..]);
            j += 1;
        }
        blocks.push(Block { info: info.trim().to_owned(), line: i + 1, end: j + 1, body: body.join("\n") });
        i = j + 1;
    }
    blocks
}

struct Example {
    at: String,
    script: String,
    expected: Expected,
}

enum Expected {
    Json(String),
    Text(String),
    Nothing,
}

#[derive(Default)]
struct Parsed {
    examples: Vec<Example>,
    skipped: Vec<usize>,
    problems: Vec<String>,
}

fn examples(name: &str, text: &str) -> Parsed {
    let lines: Vec<&str> = text.lines().collect();
    let blocks = fenced_blocks(text);
    let mut parsed = Parsed::default();
    for (k, block) in blocks.iter().enumerate() {
        let at = format!("{name}:{}", block.line);
        match block.info.split_whitespace().next() {
            Some("bash" | "shell" | "console" | "zsh") => {
                parsed.problems.push(format!("{at}: a shell example is ```sh (or ```sh no-run), not ```{}", block.info))
            }
            Some("sh") if block.info == "sh no-run" => parsed.skipped.push(block.line),
            Some("sh") if block.info != "sh" => {
                parsed.problems.push(format!("{at}: unknown info string ```{}: ```sh or ```sh no-run", block.info))
            }
            Some("sh") => {
                let next = blocks.get(k + 1).filter(|next| {
                    lines[block.end..next.line - 1].iter().all(|l| l.trim().is_empty())
                        && matches!(next.info.as_str(), "json" | "text")
                });
                let expected = match next {
                    Some(output) if output.info == "json" => Expected::Json(output.body.clone()),
                    Some(output) => Expected::Text(output.body.clone()),
                    None if block.body.contains("# prints nothing") => Expected::Nothing,
                    None => {
                        parsed.problems.push(format!(
                            "{at}: no ```json or ```text block right after the example shows what it prints \
                             (or say `# prints nothing`, or mark it ```sh no-run)"
                        ));
                        continue;
                    }
                };
                parsed.examples.push(Example { at, script: block.body.clone(), expected });
            }
            _ => {}
        }
    }
    parsed
}

/// `curl`, `cargo` and `kyc-gateway` for the examples: the gateway built for this test, and curl noting HTTP statuses.
fn write_shims(bin: &Path, curl: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(bin).expect("the shims' directory");
    let gateway = env!("CARGO_BIN_EXE_kyc-gateway");
    std::os::unix::fs::symlink(gateway, bin.join("kyc-gateway")).expect("the kyc-gateway link");
    let cargo = format!(
        "#!/bin/sh\n\
         if [ \"$1\" = run ] && {{ [ \"$2\" = -q ] || [ \"$2\" = --quiet ]; }} && [ \"$3\" = -- ]; then\n\
         \x20 shift 3; exec '{gateway}' \"$@\"\n\
         fi\n\
         echo \"the docs' examples may only use 'cargo run -q -- ARGS', not: cargo $*\" >&2; exit 127\n"
    );
    // The statuses go to $KYC_DOCS_STATUS, one per answer; the examples' own options come after -D, so theirs win.
    let curl = format!(
        "#!/bin/sh\n\
         headers=$(mktemp)\n\
         '{}' -D \"$headers\" --max-time 60 \"$@\"; rc=$?\n\
         sed -n 's/^HTTP\\/[0-9.]* \\([0-9]*\\).*/\\1/p' \"$headers\" >> \"$KYC_DOCS_STATUS\"\n\
         rm -f \"$headers\"; exit $rc\n",
        curl.display()
    );
    for (name, text) in [("cargo", cargo), ("curl", curl)] {
        std::fs::write(bin.join(name), text).expect("a shim");
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).expect("executable");
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

/// Runs one file's examples in order in one bash, against a gateway of their own; answers the failures.
fn run_file(examples: &[Example], bin: &Path, dir: &Path) -> Vec<String> {
    let gateway = Process::start(4096, &[("RUST_LOG", "info"), ("KYC_GATEWAY_LOG_FORMAT", "json")]);
    let ports = sandbox_ports(&gateway);
    let mut script = String::from("set -euo pipefail\n");
    for (i, example) in examples.iter().enumerate() {
        let mut text = example.script.replace("127.0.0.1:8080", "localhost:8080");
        text = text.replace("localhost:8080", &gateway.addr.to_string());
        for (provider, port) in &ports {
            text = text.replace(&format!("<{provider} port>"), &port.to_string());
        }
        let d = dir.display();
        script.push_str(&format!(
            "export KYC_DOCS_STATUS='{d}/status.{i}'\n{{\n{text}\n}} >'{d}/out.{i}' 2>'{d}/err.{i}'\ntouch '{d}/done.{i}'\n"
        ));
    }
    std::fs::write(dir.join("examples.sh"), &script).expect("the script");
    let path = std::env::join_paths(
        std::iter::once(bin.to_path_buf()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("a PATH");
    let mut child = std::process::Command::new("bash")
        .arg(dir.join("examples.sh"))
        .current_dir(dir)
        .env("PATH", path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("bash runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the examples' status") {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    let mut failures = Vec::new();
    for (i, example) in examples.iter().enumerate() {
        let read = |what: &str| std::fs::read_to_string(dir.join(format!("{what}.{i}"))).ok();
        let Some(out) = read("out") else {
            failures.push(format!("{}: did not run, since an example before it in the file failed", example.at));
            break;
        };
        let err = read("err").unwrap_or_default();
        let statuses: Vec<u16> =
            read("status").unwrap_or_default().lines().filter_map(|s| s.trim().parse().ok()).collect();
        let outcome = if read("done").is_none() {
            Err(match status {
                Some(status) => format!("the example exits with {status}"),
                None => "the example did not end within 180 s".to_owned(),
            })
        } else {
            check(&example.expected, &out, &statuses)
        };
        if let Err(what) = outcome {
            let shown = match &example.expected {
                Expected::Json(text) | Expected::Text(text) => text.as_str(),
                Expected::Nothing => "(nothing)",
            };
            failures.push(format!(
                "{}: {what}\n--- it printed:\n{}\n--- on stderr:\n{}\n--- the docs show:\n{shown}",
                example.at,
                out.trim_end(),
                err.trim_end()
            ));
        }
    }
    failures
}

/// The sandbox providers' names and ports, from the gateway's start-up log line that lists them
/// (`sandbox providers (...): fractal http://127.0.0.1:41234, sumsub http://...; their webhooks ...`).
fn sandbox_ports(gateway: &Process) -> Vec<(String, u16)> {
    let started = Instant::now();
    loop {
        let logs = gateway.logs();
        let listed = logs.lines().find_map(|line| {
            let rest = &line[line.find("sandbox providers (")?..];
            let rest = &rest[rest.find("): ")? + 3..];
            Some(rest[..rest.find("; their webhooks")?].to_owned())
        });
        if let Some(listed) = listed {
            let ports: Vec<(String, u16)> = listed
                .split(", ")
                .filter_map(|entry| {
                    let (name, url) = entry.split_once(' ')?;
                    let authority = url.strip_prefix("http://")?.split('/').next()?;
                    Some((name.to_owned(), authority.rsplit(':').next()?.parse().ok()?))
                })
                .collect();
            let names: Vec<&str> = ports.iter().map(|(name, _)| name.as_str()).collect();
            assert_eq!(names, sandbox_providers(), "every sandbox provider: {listed}");
            return ports;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the gateway never logged its sandboxes:\n{logs}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check(expected: &Expected, out: &str, statuses: &[u16]) -> Result<(), String> {
    let got = error_codes(out);
    let shown = match expected {
        Expected::Json(text) | Expected::Text(text) => error_codes(text),
        Expected::Nothing => BTreeSet::new(),
    };
    if got != shown {
        return Err(format!("it answers the error codes {got:?}, its documented output shows {shown:?}"));
    }
    if let Some(status) = statuses.iter().find(|s| **s >= 400) {
        if got.is_empty() {
            return Err(format!("an answer is HTTP {status}"));
        }
    }
    match expected {
        Expected::Nothing if out.trim().is_empty() => Ok(()),
        Expected::Nothing => Err("it prints something, the docs say it prints nothing".to_owned()),
        Expected::Text(text) => same_text(text, out),
        Expected::Json(text) => {
            let shown = json_values(text).ok_or("the documented output is not JSON")?;
            let got = json_values(out).ok_or("it does not print JSON")?;
            if shown.len() != got.len() {
                return Err(format!("it prints {} JSON values, the docs show {}", got.len(), shown.len()));
            }
            shown.iter().zip(&got).enumerate().try_for_each(|(i, (s, g))| same_shape(s, g, &format!("value {}", i + 1)))
        }
    }
}

fn json_values(text: &str) -> Option<Vec<Value>> {
    serde_json::Deserializer::from_str(text).into_iter::<Value>().collect::<Result<_, _>>().ok()
}

/// The `extensions.code` of every GraphQL error in `text` (JSON, or lines of which some are JSON).
fn error_codes(text: &str) -> BTreeSet<String> {
    let values = json_values(text)
        .unwrap_or_else(|| text.lines().filter_map(|line| serde_json::from_str(line.trim()).ok()).collect());
    let mut codes = BTreeSet::new();
    let answers = values.iter().flat_map(|v| v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]));
    for answer in answers {
        for error in answer.get("errors").and_then(Value::as_array).into_iter().flatten() {
            codes.insert(error["extensions"]["code"].as_str().unwrap_or("(an error without a code)").to_owned());
        }
    }
    if codes.is_empty() && text.contains("\"errors\"") {
        codes.insert("(errors the test cannot read)".to_owned());
    }
    codes
}

/// Same keys, nullness, list emptiness, booleans and enum values; other strings and numbers may differ.
fn same_shape(shown: &Value, got: &Value, at: &str) -> Result<(), String> {
    match (shown, got) {
        (Value::Object(s), Value::Object(g)) => {
            let (sk, gk): (BTreeSet<_>, BTreeSet<_>) = (s.keys().collect(), g.keys().collect());
            if sk != gk {
                return Err(format!("at {at}: the docs show the keys {sk:?}, it prints {gk:?}"));
            }
            s.iter().try_for_each(|(k, v)| same_shape(v, &g[k], &format!("{at}.{k}")))
        }
        (Value::Array(s), Value::Array(g)) if s.is_empty() != g.is_empty() => {
            Err(format!("at {at}: the docs show {} entries, it prints {}", s.len(), g.len()))
        }
        (Value::Array(s), Value::Array(g)) => {
            s.iter().zip(g).enumerate().try_for_each(|(i, (s, g))| same_shape(s, g, &format!("{at}[{i}]")))
        }
        (Value::String(s), Value::String(g)) if is_enum_value(s) && s != g => {
            Err(format!("at {at}: the docs show {s:?}, it prints {g:?}"))
        }
        (Value::Bool(s), Value::Bool(g)) if s != g => Err(format!("at {at}: the docs show {s}, it prints {g}")),
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => Ok(()),
        _ => Err(format!("at {at}: the docs show {shown}, it prints {got}")),
    }
}

fn is_enum_value(s: &str) -> bool {
    s.len() > 1 && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Line by line, `...` in the documented text standing for any text.
fn same_text(shown: &str, got: &str) -> Result<(), String> {
    let (shown, got): (Vec<&str>, Vec<&str>) = (shown.trim_end().lines().collect(), got.trim_end().lines().collect());
    if shown.len() != got.len() {
        return Err(format!("it prints {} lines, the docs show {}", got.len(), shown.len()));
    }
    for (s, g) in shown.iter().zip(&got) {
        if !matches_pattern(s.trim_end(), g.trim_end()) {
            return Err(format!("the line {g:?} does not match the documented {s:?}"));
        }
    }
    Ok(())
}

fn matches_pattern(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// A directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("kyc-docs-{}", kyc_gateway::secret::random_token()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
