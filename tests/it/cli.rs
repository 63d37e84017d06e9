//! The `zachetka` binary as a shell sees it: a closed stdout is a quiet exit for every command
//! that prints (no panic), and a refused `init` leaves the directory as it found it.

use super::support::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn zachetka() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zachetka"));
    c.env("RUST_LOG", "warn").env_remove("ZACHETKA_DATABASE_URL");
    c
}

/// Runs `cmd` with `stdin` as its input and a stdout whose reader is already gone, as behind
/// `| head` once `head` has exited: every write the command makes meets a broken pipe.
fn run_with_closed_stdout(mut cmd: Command, stdin: &str) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = cmd.stdin(Stdio::piped()).stdout(writer).stderr(Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

/// A bare ledger (rules `none`) made by the binary, with one appended event.
fn cli_ledger(dir: &Path) {
    let out = run({
        let mut c = zachetka();
        c.args(["init", "--rules", "none", "--origin", ORIGIN, "--authority-did", &authority().did(), "--dir"])
            .arg(dir);
        c
    });
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    append(dir, &[grade(1, "learner/a", None)]);
}

/// `zachetka <cmd> | head` where head has already left: every printing command (audit aside,
/// its printing is being rewritten) exits quietly with 141 (128 + SIGPIPE) instead of panicking.
#[test]
fn a_closed_stdout_is_a_quiet_exit_for_every_printing_command() {
    let tmp = tempfile::tempdir().unwrap();
    let ledger = tmp.path().join("ledger");
    cli_ledger(&ledger);
    let key_file = tmp.path().join("teacher.key");
    std::fs::write(&key_file, teacher().to_key_file()).unwrap();
    let personal = {
        let mut c = zachetka();
        c.args(["personal", "--dir"]).arg(&ledger).args(["put", "learner/a"]);
        c.stdin(Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(br#"{"name":"x"}"#).unwrap();
        }
        child.wait().unwrap()
    };
    assert!(personal.success());
    let event = serde_json::json!({"ledger": ORIGIN, "stream": "learner/b", "type": "t", "data": {}}).to_string();
    let cases: Vec<(&str, Vec<String>, String)> = vec![
        (
            "init",
            vec![
                "init".into(),
                "--origin".into(),
                "o.example".into(),
                "--dir".into(),
                tmp.path().join("new").display().to_string(),
            ],
            String::new(),
        ),
        ("keygen", vec!["keygen".into(), "--out".into(), tmp.path().join("k2").display().to_string()], String::new()),
        ("sign", vec!["sign".into(), "--key".into(), key_file.display().to_string()], event),
        (
            "append",
            vec!["append".into(), "--dir".into(), ledger.display().to_string()],
            grade(2, "learner/a", None).to_string(),
        ),
        (
            "import",
            [
                "import",
                "--dir",
                &ledger.display().to_string(),
                "--system",
                "BARS",
                "--key",
                &key_file.display().to_string(),
            ]
            .map(String::from)
            .to_vec(),
            serde_json::json!({"record": "r-1", "type": "journal.grade_recorded", "stream": "learner/c",
                "occurred_at": "2019-03-01T09:00:00Z", "data": {}})
            .to_string(),
        ),
        ("checkpoint", vec!["checkpoint".into(), "--dir".into(), ledger.display().to_string()], String::new()),
        (
            "prove",
            ["prove", "--dir", &ledger.display().to_string(), "inclusion", "--leaf-index", "0", "--tree-size", "2"]
                .map(String::from)
                .to_vec(),
            String::new(),
        ),
        (
            "personal get",
            ["personal", "--dir", &ledger.display().to_string(), "get", "learner/a"].map(String::from).to_vec(),
            String::new(),
        ),
        (
            "token create",
            ["token", "create", "--dir", &ledger.display().to_string(), "--role", "auditor"].map(String::from).to_vec(),
            String::new(),
        ),
        (
            "token list",
            ["token", "list", "--dir", &ledger.display().to_string()].map(String::from).to_vec(),
            String::new(),
        ),
    ];
    for (name, args, stdin) in cases {
        let mut c = zachetka();
        c.args(&args);
        let out = run_with_closed_stdout(c, &stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{name}: {stderr}");
        assert!(stderr.is_empty(), "{name} wrote to stderr: {stderr}");
    }
    // The token nobody saw was revoked, not left live.
    let tokens = zachetka::access::read_tokens(&ledger.join("tokens.json")).unwrap();
    assert!(tokens.len() == 1 && tokens[0].revoked, "{tokens:?}");
}

/// Every file under `dir` with its bytes (sled's store included).
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn key_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "key"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// `init` over a directory that already holds a ledger is refused and writes nothing: no fresh
/// `authority.key` beside a ledger made with `--authority-did`, no new `ledger.key` where the
/// store holds a ledger but the key file was moved away, existing key files untouched.
#[test]
fn a_refused_init_leaves_no_new_key_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    cli_ledger(&dir);
    let init = |with_authority: bool| {
        let mut c = zachetka();
        c.args(["init", "--origin", ORIGIN, "--dir"]).arg(&dir);
        if with_authority {
            c.args(["--authority-did", &authority().did()]);
        }
        run(c)
    };
    let keys_before = key_files(&dir);
    assert_eq!(keys_before.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["ledger.key"]);
    for authority in [false, true] {
        let out = init(authority);
        assert_eq!(out.status.code(), Some(2), "refused");
        assert!(String::from_utf8_lossy(&out.stderr).contains("already holds ledger"), "{out:?}");
        assert_eq!(key_files(&dir), keys_before, "no key file written or changed (authority given: {authority})");
    }
    // The store holds a ledger, its key file is elsewhere: still refused, and no new key appears.
    std::fs::rename(dir.join("ledger.key"), tmp.path().join("ledger.key.moved")).unwrap();
    let before = snapshot(&dir);
    for authority in [false, true] {
        let out = init(authority);
        assert_eq!(out.status.code(), Some(2), "refused");
        assert!(key_files(&dir).is_empty(), "no fresh key beside a store that holds a ledger: {:?}", key_files(&dir));
    }
    assert_eq!(
        snapshot(&dir).iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
        before.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()
    );
    // A refused init into a fresh directory (bad authority) creates no store either.
    let fresh = tmp.path().join("fresh");
    let mut c = zachetka();
    c.args(["init", "--origin", ORIGIN, "--authority-did", "did:key:zNope", "--dir"]).arg(&fresh);
    assert_eq!(run(c).status.code(), Some(2));
    assert!(!fresh.join("store").exists() && !fresh.join("ledger.key").exists());
}

/// Appends signed events to the ledger in `dir` through the binary.
fn append(dir: &Path, events: &[serde_json::Value]) {
    let mut c = zachetka();
    c.args(["append", "--dir"]).arg(dir).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let lines: Vec<String> = events.iter().map(|e| e.to_string()).collect();
        child.stdin.take().unwrap().write_all(lines.join("\n").as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// Review s9, finding 15: `token create` refuses a scope naming an institution or territory the
/// ledger never registered (a typo would give a token that is 403 everywhere), exit 2 with the
/// unknown id and how to check, and adds nothing to the token file; a registered one is
/// accepted, and `--allow-unknown-scope` accepts an institution to be registered later. A learner
/// scope likewise names a learner the log knows.
#[test]
fn a_token_scope_naming_no_registered_institution_or_territory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ledger = tmp.path().join("ledger");
    cli_ledger(&ledger);
    let ev = serde_json::json!({"ledger": ORIGIN, "stream": "registry", "type": "registry.institution_registered",
        "id": id(900), "occurred_at": "2026-08-01T08:00:00Z", "author": authority().did(),
        "data": {"v": 1, "institution": "sch-001", "kind": "school", "territory": "luga"}});
    append(&ledger, &[zachetka::event::sign_event(&ev, &authority()).unwrap()]);
    let d = ledger.display().to_string();
    let create = |args: &[&str]| {
        run({
            let mut c = zachetka();
            c.args(["token", "create", "--dir", &d]).args(args);
            c
        })
    };
    let tokens = || zachetka::access::read_tokens(&ledger.join("tokens.json")).unwrap_or_default().len();
    for (args, unknown) in [
        (&["--role", "staff", "--institution", "nonexistent-inst"][..], "institution nonexistent-inst"),
        (&["--role", "read-service", "--institution", "sch-01"], "institution sch-01"),
        (&["--role", "staff", "--territory", "tihkvin"], "territory tihkvin"),
    ] {
        let out = create(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: no token printed");
        assert!(err.contains(&format!("{unknown} is not registered in the ledger")), "{args:?}: {err}");
        assert!(err.contains("--allow-unknown-scope"), "{args:?}: {err}");
        assert_eq!(tokens(), 0, "{args:?}: nothing added");
    }
    // Registered ones (the institution, its territory) are accepted.
    for args in [&["--role", "staff", "--institution", "sch-001"][..], &["--role", "staff", "--territory", "luga"]] {
        let out = create(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // An institution to be registered later: the operator says so.
    let out = create(&["--role", "staff", "--institution", "sch-009", "--allow-unknown-scope"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not known to the ledger yet"), "a warning says so");
    assert_eq!(tokens(), 3);
    // A learner scope names a learner the log knows: by their stream (`learner/a` has the grade
    // `cli_ledger` wrote), or by an application on a territory's queue stream (a child waiting
    // for a kindergarten has no stream of its own yet).
    let out = create(&["--role", "learner", "--learner", "47-000777"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("learner 47-000777 is not known to the ledger"), "{err}");
    assert_eq!(tokens(), 3, "nothing added");
    let ev = serde_json::json!({"ledger": ORIGIN, "stream": "queue/kg/luga", "type": "queue.application_submitted",
        "id": id(901), "occurred_at": "2026-08-01T09:00:00Z", "author": authority().did(),
        "data": {"v": 1, "application_id": "luga-2027-00001", "number": 1, "learner": "47-000777",
            "birth_month": "2024-03", "desired_date": "2027-09-01", "preferred": ["kg-001"], "group_type": "general"}});
    append(&ledger, &[zachetka::event::sign_event(&ev, &authority()).unwrap()]);
    for args in [&["--role", "learner", "--learner", "47-000777"][..], &["--role", "learner", "--learner", "a"]] {
        let out = create(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(tokens(), 5);
}

/// Review s9, finding 15: `verify` of a file that is not a record bundle at all (`null`, an
/// array, another JSON document) says so, naming the file and the code, exit 1, without a
/// verdict about "learner  in ledger " with empty names.
#[test]
fn verify_of_a_file_that_is_not_a_bundle_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let vkey = "ru-47.edu.example+3a1c0b2e+AZxrbVRzaplvFcXgfgsEtvtNIhuRcaiZAmdpn6mxRPAG";
    for body in ["null", "[[[[[[[[", "{\"format\":\"zachetka-record\"}", "not json"] {
        let file = tmp.path().join("b.json");
        std::fs::write(&file, body).unwrap();
        let out = run({
            let mut c = zachetka();
            c.args(["verify", "--vkey", vkey]).arg(&file);
            c
        });
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{body}: {text} {}", String::from_utf8_lossy(&out.stderr));
        assert!(!text.contains("record of learner"), "{body}: {text}");
        assert!(
            text.starts_with(&format!("NOT VERIFIED: {} is not a record bundle (bundle_malformed): ", file.display())),
            "{body}: {text}"
        );
        assert_eq!(text.lines().count(), 1, "{body}: nothing else to say: {text}");
    }
}

/// DESIGN 3.6 (review s11, finding 8): a bundle's checkpoint cosigned by two witnesses with
/// `cosign` and put back verifies with `--witness` x3 `--witnesses-required 2`, and is refused
/// `cosignatures_insufficient` when 3 are required; `cosign` refuses a note the ledger did not sign.
#[test]
fn witnesses_cosign_a_bundles_checkpoint_and_verify_demands_k_of_n() {
    use super::record::{applied, concerned_by_scan, copy_into_ledger_dir, ledger, vkey};
    let store = tempfile::tempdir().unwrap();
    let (learner, vk) = {
        let l = ledger(store.path(), zachetka::ledger::RulesMode::Enforce);
        super::rules::append_region(&l);
        applied(&l);
        (concerned_by_scan(&l).into_iter().max_by_key(|(_, s)| s.len()).unwrap().0, vkey(&l))
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    copy_into_ledger_dir(store.path(), &dir);
    let path = |name: &str| tmp.path().join(name);
    let cmd = |args: &[&str]| {
        let mut c = zachetka();
        c.args(args);
        run(c)
    };
    let bundle = path("bundle.json");
    let o = cmd(&["export", "--dir", dir.to_str().unwrap(), "--learner", &learner, "--out", bundle.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut witnesses = Vec::new();
    for n in 1..=3 {
        let key = path(&format!("w{n}.key"));
        assert!(cmd(&["keygen", "--out", key.to_str().unwrap()]).status.success());
        let name = format!("w{n}.witness.example");
        let o = cmd(&["cosign", "--key", key.to_str().unwrap(), "--name", &name, "--print-vkey"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let witness_vkey = String::from_utf8(o.stdout).unwrap().trim_end().to_owned();
        assert!(witness_vkey.starts_with(&format!("{name}+")), "{witness_vkey}");
        witnesses.push((key, name, witness_vkey));
    }
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let note = path("checkpoint.note");
    std::fs::write(&note, json["checkpoint"].as_str().unwrap()).unwrap();
    // Two witnesses cosign, one after the other, the second writing to a file.
    let o = {
        let (key, name, _) = &witnesses[0];
        let mut c = zachetka();
        c.args(["cosign", "--key", key.to_str().unwrap(), "--name", name, "--ledger-vkey", &vk]).arg(&note);
        run(c)
    };
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let once = path("once.note");
    std::fs::write(&once, &o.stdout).unwrap();
    let twice = path("twice.note");
    // `cosign` by witness `n` of `note`, written to `out` (stdout without).
    let cosign = |n: usize, note: &Path, out: Option<&Path>| {
        let (key, name, _) = &witnesses[n];
        let mut args = vec!["cosign", "--key", key.to_str().unwrap(), "--name", name, "--ledger-vkey", &vk];
        if let Some(out) = out {
            args.extend(["--out", out.to_str().unwrap()]);
        }
        args.push(note.to_str().unwrap());
        cmd(&args)
    };
    let o = cosign(1, &once, Some(&twice));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cosigned = std::fs::read_to_string(&twice).unwrap();
    assert!(cosigned.starts_with(json["checkpoint"].as_str().unwrap()), "the ledger's note is kept: {cosigned}");
    assert_eq!(cosigned.lines().count(), json["checkpoint"].as_str().unwrap().lines().count() + 2);
    json["checkpoint"] = cosigned.into();
    std::fs::write(&bundle, json.to_string()).unwrap();

    let verify = |required: &str| {
        let mut args = vec!["verify", bundle.to_str().unwrap(), "--vkey", &vk, "--json"];
        for (_, _, w) in &witnesses {
            args.extend(["--witness", w.as_str()]);
        }
        args.extend(["--witnesses-required", required]);
        let o = cmd(&args);
        let report: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&o.stderr)));
        (o.status.code(), report)
    };
    let (code, report) = verify("2");
    assert_eq!((code, &report["ok"]), (Some(0), &serde_json::json!(true)), "{report}");
    let who: Vec<&str> = report["cosignatures"]["checkpoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["witness"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["w1.witness.example", "w2.witness.example"]);
    let (code, report) = verify("3");
    assert_eq!(code, Some(1), "{report}");
    let failures: Vec<&str> =
        report["failures"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert_eq!(failures, ["cosignatures_insufficient"]);
    // More required than witnesses given: the command cannot run.
    let o = cmd(&[
        "verify",
        bundle.to_str().unwrap(),
        "--vkey",
        &vk,
        "--witness",
        &witnesses[0].2,
        "--witnesses-required",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stdout));
    // A witness key that is not one (the ledger's own key, type 0x01): refused before verifying.
    let o = cmd(&["verify", bundle.to_str().unwrap(), "--vkey", &vk, "--witness", &vk]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is of signature type 0x01"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // `cosign` checks the ledger's signature first: a changed tree size is not cosigned.
    let forged = path("forged.note");
    let text = std::fs::read_to_string(&note).unwrap();
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    lines[1] = (lines[1].parse::<u64>().unwrap() + 1).to_string();
    std::fs::write(&forged, lines.join("\n")).unwrap();
    let o = cosign(2, &forged, None);
    assert_ne!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is not a checkpoint the ledger"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Review s11 (ops finding 8): the ledger directory, `store/`, `store/index/` (sled's files in
/// it are 0644) and `snapshots/` were 0755, so any local user could read the index and the
/// snapshots (learners' marks). `init` makes them 0700, and every open for writing makes them so
/// again, also for a ledger made before.
#[test]
fn init_and_every_open_for_writing_leave_the_ledger_directories_private() {
    use std::os::unix::fs::PermissionsExt;
    let ground = tempfile::tempdir().unwrap();
    let dir = ground.path().join("ledger");
    cli_ledger(&dir);
    let dirs = [dir.clone(), dir.join("store"), dir.join("store/index"), dir.join("snapshots")];
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for d in &dirs[..3] {
        assert_eq!(mode(d), 0o700, "{} after init", d.display());
    }
    std::fs::create_dir_all(&dirs[3]).unwrap();
    for d in &dirs {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    append(&dir, &[grade(2, "learner/a", None)]);
    for d in &dirs {
        assert_eq!(mode(d), 0o700, "{} after an append", d.display());
    }
    // `rebuild` too.
    for d in &dirs {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let o = zachetka().args(["rebuild", "--dir"]).arg(&dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for d in &dirs {
        assert_eq!(mode(d), 0o700, "{} after a rebuild", d.display());
    }
}

/// Review s11 (ops finding 12): messages that named no path or the wrong cause. `init` into a
/// directory it cannot create names it; `token create --dir` of a directory with no ledger says
/// so (not "couldn't open the lock file"); `--dir` has a description in `serve --help`.
#[test]
fn misdirected_commands_name_the_directory_and_the_cause() {
    let ground = tempfile::tempdir().unwrap();
    let nowhere = ground.path().join("file");
    std::fs::write(&nowhere, b"").unwrap();
    let target = nowhere.join("ledger");
    let out = run({
        let mut c = zachetka();
        c.args(["init", "--rules", "none", "--origin", ORIGIN, "--dir"]).arg(&target);
        c
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&target.display().to_string()), "{stderr}");

    let empty = ground.path().join("empty");
    let out = run({
        let mut c = zachetka();
        c.args(["token", "create", "--role", "auditor", "--label", "x", "--dir"]).arg(&empty);
        c
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("holds no ledger") && stderr.contains(&empty.display().to_string()), "{stderr}");
    assert!(!empty.exists(), "a refused token command created {}", empty.display());

    let out = run({
        let mut c = zachetka();
        c.args(["serve", "--help"]);
        c
    });
    let help = String::from_utf8_lossy(&out.stdout);
    let dir_line =
        help.lines().skip_while(|l| !l.trim_start().starts_with("--dir")).take(2).collect::<Vec<_>>().join(" ");
    assert!(dir_line.contains("Ledger directory"), "{help}");
}

/// Review s12 (read API L6): the demo's keys were reachable only through the library, so an
/// integrator could not sign an event against `zachetka demo`. `keygen --demo LABEL` writes the
/// demo's key of that role; `sign` with it makes an event the demo's key signed.
#[test]
fn keygen_writes_the_demo_key_of_a_role_and_sign_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("t0.key");
    let o = run({
        let mut c = zachetka();
        c.args(["keygen", "--demo", "teacher/0", "--out"]).arg(&key);
        c
    });
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = zachetka::demo::demo_key("ru-47.edu.example", "teacher/0").did();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), want);
    let other = dir.path().join("other.key");
    let o = run({
        let mut c = zachetka();
        c.args(["keygen", "--demo", "teacher/0", "--origin", "ru-78.edu.example", "--out"]).arg(&other);
        c
    });
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        zachetka::demo::demo_key("ru-78.edu.example", "teacher/0").did()
    );
    // Signed with it: the author is the demo's teacher, and the id a UUIDv7 (README's advice).
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"stream":"learner/47-000001","type":"journal.grade_recorded","data":{"v":1}}"#).unwrap();
    let o = run({
        let mut c = zachetka();
        c.args(["sign", "--ledger", "ru-47.edu.example", "--key"]).arg(&key).arg(&event);
        c
    });
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let signed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(signed["event"]["author"], want.as_str());
    assert_eq!(&signed["event"]["id"].as_str().unwrap()[14..15], "7");
}
