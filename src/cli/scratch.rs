//! Fresh stores for benchmark runs (`bench`, `bench-ws`).

use super::anyhow_like::Error;
use crate::store::DatabaseUrl;
use std::path::PathBuf;

/// A store that exists for one run, so every run starts from an empty log.
pub(super) struct Scratch {
    pub(super) url: String,
    place: Place,
}

enum Place {
    /// A database made on the server of `admin` (a URL the bench may CREATE DATABASE with).
    Postgres { admin: String, name: String },
    /// An SQLite file; `dir` is removed too when the bench made it.
    Sqlite { file: PathBuf, dir: Option<PathBuf> },
}

impl Scratch {
    pub(super) async fn create(base: Option<&str>) -> Result<Scratch, Error> {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let tag = tag.get(..12).unwrap_or(&tag);
        match base.map(DatabaseUrl::parse).transpose()? {
            Some(DatabaseUrl::Postgres(admin)) => {
                use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
                let name = format!("timebank_bench_{tag}");
                let mut conn = AsyncPgConnection::establish(&admin).await?;
                conn.batch_execute(&format!("CREATE DATABASE {name}")).await?;
                Ok(Scratch { url: with_database(&admin, &name), place: Place::Postgres { admin, name } })
            }
            Some(DatabaseUrl::Sqlite(path)) => {
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                std::fs::create_dir_all(&dir)?;
                let file = dir.join(format!("timebank-bench-{tag}.db"));
                Ok(Scratch { url: format!("sqlite://{}", file.display()), place: Place::Sqlite { file, dir: None } })
            }
            None => {
                let dir = std::env::temp_dir().join(format!("timebank-bench-{tag}"));
                std::fs::create_dir_all(&dir)?;
                let file = dir.join("timebank.db");
                Ok(Scratch {
                    url: format!("sqlite://{}", file.display()),
                    place: Place::Sqlite { file, dir: Some(dir) },
                })
            }
        }
    }

    pub(super) fn backend(&self) -> &'static str {
        match self.place {
            Place::Postgres { .. } => "postgres",
            Place::Sqlite { .. } => "sqlite",
        }
    }

    /// Best effort: a leftover is named `timebank_bench_…` / `timebank-bench-…`.
    pub(super) async fn remove(self) {
        match self.place {
            Place::Postgres { admin, name } => {
                use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
                let dropped = match AsyncPgConnection::establish(&admin).await {
                    // FORCE: the run's pool may still hold connections while its actors stop.
                    Ok(mut c) => c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(error) = dropped {
                    tracing::warn!(%error, database = %name, "cannot drop the bench database");
                }
            }
            Place::Sqlite { file, dir } => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut name = file.clone().into_os_string();
                    name.push(suffix);
                    let _ = std::fs::remove_file(name);
                }
                if let Some(dir) = dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
        }
    }
}

/// `postgres://…/admin?opts` with the database part replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |s| s + 3);
    let prefix = match base.rfind('/') {
        Some(i) if i >= authority => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_part_of_the_url_is_replaced() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "b"), "postgres://u@h:5432/b");
        assert_eq!(with_database("postgres://u@h/postgres?sslmode=disable", "b"), "postgres://u@h/b?sslmode=disable");
        assert_eq!(with_database("postgres://u@h", "b"), "postgres://u@h/b");
    }
}
