//! PostgreSQL store.
pub struct PgStore;
impl PgStore {
    pub async fn connect(url: &str) -> crate::Result<crate::sqlite::SqliteStore> {
        crate::sqlite::SqliteStore::connect(url).await
    }
}
