//! A private Postgres cluster for `basalt-server dev`, made from the Postgres
//! binaries already on the machine (`pg_config --bindir`, `PATH`, or
//! `/usr/lib/postgresql/*/bin`).
//!
//! The cluster lives under `<state dir>/pg`, listens on a Unix socket in that
//! directory only (no TCP port to collide with or to expose), and uses trust
//! authentication on that socket. `initdb` and `postgres` refuse to run as root, so
//! when we are root they run as the `postgres` system user, which then owns
//! `<state dir>/pg`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The superuser of the private cluster (the operator's psql login).
const ADMIN_USER: &str = "basalt_admin";
const DATABASE: &str = "basalt";
const PORT: u16 = 5432;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPgError {
    #[error("no Postgres server binaries found (looked at `pg_config --bindir`, PATH and /usr/lib/postgresql/*/bin); install the `postgresql` package")]
    NoBinaries,
    #[error(
        "running as root, but there is no `postgres` system user to run Postgres as; install the `postgresql` package"
    )]
    NoPostgresUser,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// A running private cluster. Call [`EmbeddedPostgres::stop`] to shut it down.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bindir: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<nix::unistd::User>,
}

impl EmbeddedPostgres {
    /// Initializes the cluster on first use, starts it, and creates the database.
    pub fn start(state_dir: &Path) -> Result<EmbeddedPostgres, EmbeddedPgError> {
        let bindir = find_bindir().ok_or(EmbeddedPgError::NoBinaries)?;
        let run_as = if nix::unistd::geteuid().is_root() {
            Some(nix::unistd::User::from_name("postgres").ok().flatten().ok_or(EmbeddedPgError::NoPostgresUser)?)
        } else {
            None
        };
        let root = absolute(&state_dir.join("pg"))?;
        let pg = EmbeddedPostgres { bindir, data: root.join("data"), socket_dir: root.join("run"), run_as };
        for dir in [&root, &pg.socket_dir] {
            std::fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
            pg.give_to_postgres(dir)?;
        }
        if !pg.data.join("PG_VERSION").exists() {
            pg.run(
                "initdb",
                &["-D", path_str(&pg.data), "-U", ADMIN_USER, "--auth=trust", "-E", "UTF8", "--no-locale"],
            )?;
        }
        let log = root.join("postgres.log");
        let opts = format!("-c listen_addresses='' -k {} -p {PORT}", path_str(&pg.socket_dir));
        pg.run("pg_ctl", &["-D", path_str(&pg.data), "-l", path_str(&log), "-o", &opts, "-w", "-t", "60", "start"])?;
        pg.create_database()?;
        Ok(pg)
    }

    /// The superuser URL of the cluster's `basalt` database (for migrations and psql).
    pub fn admin_url(&self) -> String {
        format!("postgres://{ADMIN_USER}@localhost/{DATABASE}?host={}&port={PORT}", path_str(&self.socket_dir))
    }

    /// Stops the cluster (fast shutdown: open sessions are ended, data is kept).
    pub fn stop(&self) -> Result<(), EmbeddedPgError> {
        self.run("pg_ctl", &["-D", path_str(&self.data), "-m", "fast", "-w", "stop"]).map(|_| ())
    }

    fn create_database(&self) -> Result<(), EmbeddedPgError> {
        let sock = path_str(&self.socket_dir);
        let port = PORT.to_string();
        let exists = self.run(
            "psql",
            &[
                "-h",
                sock,
                "-p",
                &port,
                "-U",
                ADMIN_USER,
                "-d",
                "postgres",
                "-tAc",
                &format!("SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"),
            ],
        )?;
        if exists.trim() != "1" {
            self.run("createdb", &["-h", sock, "-p", &port, "-U", ADMIN_USER, DATABASE])?;
        }
        Ok(())
    }

    /// Runs one of the Postgres programs (as `postgres` when we are root).
    fn run(&self, program: &str, args: &[&str]) -> Result<String, EmbeddedPgError> {
        use std::os::unix::process::CommandExt;
        let exe = self.bindir.join(program);
        let exe = if exe.exists() { exe } else { PathBuf::from(program) };
        let mut cmd = Command::new(&exe);
        cmd.args(args).current_dir(self.data.parent().unwrap_or(Path::new("/")));
        if let Some(user) = &self.run_as {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw()).env("HOME", &user.dir).env("USER", &user.name);
        }
        let out = cmd
            .output()
            .map_err(|e| EmbeddedPgError::Command { what: exe.display().to_string(), detail: e.to_string() })?;
        if !out.status.success() {
            return Err(EmbeddedPgError::Command {
                what: format!("{program} {}", args.join(" ")),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn give_to_postgres(&self, dir: &Path) -> Result<(), EmbeddedPgError> {
        if let Some(user) = &self.run_as {
            nix::unistd::chown(dir, Some(user.uid), Some(user.gid)).map_err(|e| io(dir, std::io::Error::from(e)))?;
        }
        Ok(())
    }
}

fn find_bindir() -> Option<PathBuf> {
    let has_server = |d: &Path| d.join("initdb").exists() && d.join("pg_ctl").exists();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&dir) {
            return Some(dir);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|d| has_server(d)) {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| has_server(d))
        .collect();
    versions.sort_by_key(|d| {
        d.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0)
    });
    versions.pop()
}

fn absolute(p: &Path) -> Result<PathBuf, EmbeddedPgError> {
    std::fs::create_dir_all(p).map_err(|source| io(p, source))?;
    p.canonicalize().map_err(|source| io(p, source))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn io(p: &Path, source: std::io::Error) -> EmbeddedPgError {
    EmbeddedPgError::Io { path: p.display().to_string(), source }
}
