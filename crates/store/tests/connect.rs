//! Opening stores: URL forms, file creation, persistence and connection errors.

mod support;

use hanzo_store::postgres::PgStore;
use hanzo_store::sqlite::SqliteStore;
use hanzo_store::{NewApp, Store, StoreError};

fn new_app(name: &str) -> NewApp {
    NewApp {
        name: name.to_string(),
        org: "hanzo".to_string(),
        repo: "/srv/git/hello".to_string(),
        branch: "main".to_string(),
        runtime: "auto".to_string(),
    }
}

#[tokio::test]
async fn sqlite_file_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/hanzo.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let app = store.create_app(new_app("hello"), None).await.unwrap();
    store.close().await;
    assert!(path.exists());

    // A bare path names the same file.
    let reopened = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
    reopened.migrate().await.unwrap();
    assert_eq!(reopened.get_app("hanzo", "hello").await.unwrap(), app);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(reopened.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(reopened.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    reopened.close().await;
}

#[tokio::test]
async fn sqlite_in_memory_keeps_its_data_while_open() {
    let store = hanzo_store::connect("sqlite::memory:").await.unwrap();
    store.create_app(new_app("hello"), None).await.unwrap();
    // Several calls in a row see the same database.
    for _ in 0..3 {
        assert_eq!(store.list_apps(None).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn sqlite_unwritable_path_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let url = format!("sqlite://{}/hanzo.db", file.display());
    match SqliteStore::connect(&url).await {
        Err(e @ StoreError::Connect { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&url), "{msg}");
            assert!(msg.contains("DATABASE_URL"), "{msg}");
        }
        other => panic!("expected Connect error, got {other:?}"),
    }
}

#[tokio::test]
async fn postgres_connect_error_hides_the_password() {
    let Some(admin) = support::postgres_admin_url() else {
        return;
    };
    // Same server, wrong password.
    let scheme_end = admin.find("://").unwrap() + 3;
    let at = admin.rfind('@').unwrap();
    let user = admin[scheme_end..at].split(':').next().unwrap();
    let url = format!(
        "{}{user}:wrong-secret-password{}",
        &admin[..scheme_end],
        &admin[at..]
    );
    match PgStore::connect(&url).await {
        Err(e @ StoreError::Connect { .. }) => {
            let msg = e.to_string();
            assert!(!msg.contains("wrong-secret-password"), "{msg}");
            assert!(msg.contains(&format!("{user}:***@")), "{msg}");
        }
        other => panic!("expected Connect error, got {other:?}"),
    }
    // Nothing listening at all.
    match PgStore::connect("postgres://u:p4ss@127.0.0.1:1/db").await {
        Err(StoreError::Connect { url, .. }) => assert_eq!(url, "postgres://u:***@127.0.0.1:1/db"),
        other => panic!("expected Connect error, got {other:?}"),
    }
}

#[tokio::test]
async fn postgres_migrations_are_idempotent_and_concurrent_safe() {
    let Some(admin) = support::postgres_admin_url() else {
        return;
    };
    let name = format!("hanzo_test_{}", uuid::Uuid::new_v4().simple());
    let db = support::PgDatabase::create(&admin, &name).await;
    let a = PgStore::connect(&db.url).await.unwrap();
    let b = PgStore::connect(&db.url).await.unwrap();
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    a.migrate().await.unwrap();
    a.create_app(new_app("hello"), None).await.unwrap();
    assert_eq!(b.list_apps(None).await.unwrap().len(), 1);
    a.close().await;
    b.close().await;
}
