//! The Debian package: built by `examples/packaging/build-deb.sh` (cargo-deb),
//! unpacked into a temporary root with `dpkg-deb -x`; the binary it ships
//! validates the config it ships.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn has(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_deb_ships_the_binary_unit_config_and_man_page_and_its_config_validates() {
    if !has("cargo-deb", "--version") {
        eprintln!("skipped: cargo-deb is not installed (cargo install cargo-deb --locked)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // The connector this test binary was built with, packaged from a target
    // dir of its own: no second build of the workspace.
    let built = run(
        Command::new(workspace().join("examples/packaging/build-deb.sh"))
            .arg(tmp.path().join("out"))
            .arg("dev")
            .env("HNC_BINARY", env!("CARGO_BIN_EXE_connector"))
            .env("CARGO_TARGET_DIR", tmp.path().join("target")),
    );
    let deb = PathBuf::from(built.lines().last().expect("the script prints the .deb"));
    let (root, control) = (tmp.path().join("root"), tmp.path().join("control"));
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));

    // Metadata: depends on HAProxy, the config is a conffile.
    let fields = read(&control.join("control"));
    assert!(
        fields.contains("Package: haproxy-nomad-connector"),
        "{fields}"
    );
    let depends = fields
        .lines()
        .find(|l| l.starts_with("Depends:"))
        .unwrap_or_default();
    assert!(depends.contains("haproxy (>= 2.6)"), "{fields}");
    assert!(
        read(&control.join("conffiles")).contains("/etc/haproxy-nomad-connector/connector.toml")
    );

    // The unit runs the packaged binary; it is installed, not enabled.
    let unit = ["lib", "usr/lib"]
        .iter()
        .map(|d| {
            root.join(d)
                .join("systemd/system/haproxy-nomad-connector.service")
        })
        .find(|p| p.exists())
        .expect("the systemd unit is in the package");
    assert!(read(&unit).contains("ExecStart=/usr/bin/haproxy-nomad-connector run --config /etc/haproxy-nomad-connector/connector.toml"));

    // The maintainer script creates what the service writes, owned by its user.
    let postinst = read(&control.join("postinst"));
    for dir in [
        "/var/lib/haproxy-nomad-connector",
        "/var/cache/haproxy-nomad-connector",
    ] {
        assert!(
            postinst.contains("install -d -o haproxy -g haproxy") && postinst.contains(dir),
            "{postinst}"
        );
    }
    run(Command::new("sh").arg("-n").arg(control.join("postinst")));
    run(Command::new("sh").arg("-n").arg(control.join("postrm")));

    // The man page, generated from the command line.
    let man = root.join("usr/share/man/man1");
    let page = std::fs::read_dir(&man)
        .unwrap_or_else(|e| panic!("{}: {e}", man.display()))
        .filter_map(Result::ok)
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("haproxy-nomad-connector.1")
        })
        .expect("the man page is in the package")
        .path();
    let text = if page.extension().is_some_and(|e| e == "gz") {
        run(Command::new("gzip").arg("-dc").arg(&page))
    } else {
        read(&page)
    };
    assert!(text.contains(".TH haproxy-nomad-connector 1"), "{text}");
    assert!(
        text.contains("validate"),
        "the subcommands are listed: {text}"
    );

    // The shipped binary accepts the shipped config.
    let binary = root.join("usr/bin/haproxy-nomad-connector");
    let config = root.join("etc/haproxy-nomad-connector/connector.toml");
    let said = run(Command::new(&binary)
        .arg("validate")
        .arg(&config)
        .env_remove("NOMAD_ADDR"));
    assert!(said.contains("is valid"), "{said}");
}
