//! Backups of a SQLite database (docs/deploy.md): a consistent copy taken while the server
//! writes, and its restore. Postgres has its own tools (`pg_dump`), which the docs describe.
//!
//! `VACUUM INTO` writes a transactionally consistent snapshot of the database to a new file
//! through SQLite itself (no file copying behind its back, no unsafe code), from a read-only
//! connection: in WAL mode it neither blocks the server's writers nor waits for them, and the copy
//! holds exactly what was committed when it began.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

/// What a backup or a restore holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Contents {
    pub sessions: i64,
    pub events: i64,
    pub trials: i64,
}

/// The file of a `sqlite://` URL; an error for any other database.
pub fn sqlite_path(url: &str) -> anyhow::Result<PathBuf> {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        bail!(
            "backup and restore work on SQLite databases; for Postgres use pg_dump and \
             pg_restore (docs/deploy.md, \"Backups\")"
        );
    };
    let path = rest.split('?').next().unwrap_or(rest);
    ensure!(
        !path.is_empty() && path != ":memory:",
        "`{url}` names no database file"
    );
    Ok(PathBuf::from(path))
}

async fn open(path: &Path, read_only: bool) -> anyhow::Result<SqliteConnection> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .read_only(read_only)
        .busy_timeout(Duration::from_secs(30));
    SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Checks that `path` is an intact proglab database and counts what it holds.
pub async fn inspect(path: &Path) -> anyhow::Result<Contents> {
    ensure!(path.is_file(), "{} is not a file", path.display());
    let mut connection = open(path, true).await?;
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut connection)
        .await
        .with_context(|| format!("{} is not a SQLite database", path.display()))?;
    ensure!(check == "ok", "{} is damaged: {check}", path.display());
    let migrated: Option<(i64,)> =
        sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_optional(&mut connection)
            .await
            .ok()
            .flatten();
    ensure!(
        migrated.is_some_and(|(n,)| n > 0),
        "{} is not a proglab database (it has no schema history)",
        path.display()
    );
    let count = |table: &'static str| format!("SELECT COUNT(*) FROM {table}");
    let mut contents = Contents {
        sessions: 0,
        events: 0,
        trials: 0,
    };
    for (table, slot) in [
        ("sessions", &mut contents.sessions),
        ("events", &mut contents.events),
        ("trials", &mut contents.trials),
    ] {
        let (n,): (i64,) = sqlx::query_as(&count(table))
            .fetch_one(&mut connection)
            .await?;
        *slot = n;
    }
    connection.close().await?;
    Ok(contents)
}

/// Writes a consistent copy of the database at `url` to `out`, which must not exist yet.
pub async fn backup(url: &str, out: &Path) -> anyhow::Result<Contents> {
    let source = sqlite_path(url)?;
    ensure!(
        source.is_file(),
        "there is no database at {}",
        source.display()
    );
    ensure!(
        !out.exists(),
        "{} exists already; a backup never overwrites a file",
        out.display()
    );
    let mut connection = open(&source, true).await?;
    sqlx::query("VACUUM INTO ?")
        .bind(out.display().to_string())
        .execute(&mut connection)
        .await
        .with_context(|| format!("cannot write the backup to {}", out.display()))?;
    connection.close().await?;
    inspect(out).await
}

/// Replaces the database at `url` with the backup `from`. The server must be stopped: with
/// `force` an existing database (and its write-ahead log, which belongs to it) is replaced;
/// without, an existing database is refused.
pub async fn restore(from: &Path, url: &str, force: bool) -> anyhow::Result<Contents> {
    let target = sqlite_path(url)?;
    let contents = inspect(from)
        .await
        .with_context(|| format!("{} cannot be restored", from.display()))?;
    if target.exists() && !force {
        bail!(
            "{} exists; stop the server and pass --force to replace it with the backup",
            target.display()
        );
    }
    // The copy goes next to the target first, so that the database is replaced in one rename
    // and a failure half way leaves the old one in place.
    let staging = target.with_extension("restoring");
    std::fs::copy(from, &staging)
        .with_context(|| format!("cannot copy the backup to {}", staging.display()))?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", target.display()));
        if side.exists() {
            std::fs::remove_file(&side)
                .with_context(|| format!("cannot remove {}", side.display()))?;
        }
    }
    std::fs::rename(&staging, &target)
        .with_context(|| format!("cannot move the backup to {}", target.display()))?;
    // Put it back in the server's journal mode (a VACUUM INTO copy is in rollback mode).
    let mut connection = open(&target, false).await?;
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&mut connection)
        .await?;
    connection.close().await?;
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sqlite_urls_name_a_file() {
        assert_eq!(
            sqlite_path("sqlite://./data/proglab.db").unwrap(),
            PathBuf::from("./data/proglab.db")
        );
        assert_eq!(
            sqlite_path("sqlite:///srv/p.db?mode=rwc").unwrap(),
            PathBuf::from("/srv/p.db")
        );
        let postgres = sqlite_path("postgres://u@h/db").unwrap_err().to_string();
        assert!(postgres.contains("pg_dump"), "{postgres}");
        assert!(sqlite_path("sqlite::memory:").is_err());
    }
}
