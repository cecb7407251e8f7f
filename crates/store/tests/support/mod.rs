#![allow(dead_code)] // each test binary uses a different part of the fixtures

//! Fixtures: a fresh, migrated store per test on each backend, removed afterwards
//! even when the test panics.

use hanzo_store::Store;
use std::sync::Arc;

/// A migrated store and the URL it was opened with (to reopen it).
pub struct Fixture {
    pub url: String,
    pub store: Arc<dyn Store>,
    _guard: Guard,
}

enum Guard {
    Sqlite(tempfile::TempDir),
    Postgres(PgDatabase),
}

impl Fixture {
    /// A new store on the same database (the old one stays open).
    pub async fn reopen(&self) -> Arc<dyn Store> {
        hanzo_store::connect(&self.url).await.expect("reopen store")
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self._guard, Guard::Postgres(_))
    }
}

/// SQLite in a fresh temporary directory (in a subdirectory that does not exist
/// yet, so opening also proves the parent is created).
pub async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("data/hanzo.db").display());
    let store = hanzo_store::connect(&url).await.expect("open sqlite store");
    Fixture {
        url,
        store,
        _guard: Guard::Sqlite(dir),
    }
}

/// The superuser URL from `HANZO_TEST_POSTGRES_URL`, or `None` (after printing
/// why) when it is unset and services are not required.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("HANZO_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("HANZO_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("HANZO_TEST_POSTGRES_URL is not set but HANZO_REQUIRE_SERVICES=1");
            }
            println!("skipped: HANZO_TEST_POSTGRES_URL not set");
            None
        }
    }
}

/// PostgreSQL in a fresh database `hanzo_test_<random>`, dropped afterwards.
pub async fn postgres() -> Option<Fixture> {
    let admin = postgres_admin_url()?;
    let name = format!("hanzo_test_{}", uuid::Uuid::new_v4().simple());
    let db = PgDatabase::create(&admin, &name).await;
    let url = db.url.clone();
    let store = hanzo_store::connect(&url)
        .await
        .expect("open postgres store");
    Some(Fixture {
        url,
        store,
        _guard: Guard::Postgres(db),
    })
}

/// Replaces the database name (the path) of a PostgreSQL URL.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

pub struct PgDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin: &str, name: &str) -> PgDatabase {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .expect("connect to HANZO_TEST_POSTGRES_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        PgDatabase {
            admin: admin.to_string(),
            name: name.to_string(),
            url: with_database(admin, name),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop may run inside the test's runtime: do the async work on a thread of its own.
        let admin = self.admin.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await?;
                Ok::<_, sqlx::Error>(())
            })
            .map_err(std::io::Error::other)
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "warning: could not drop test database {}: {dropped:?}",
                self.name
            );
        }
    }
}
