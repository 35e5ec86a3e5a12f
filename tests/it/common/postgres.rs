//! A fresh PostgreSQL database per test: created on the server at `TEST_POSTGRES_URL` (default
//! the machine's `postgres://postgres@127.0.0.1:5432/test`, trust auth), dropped on drop. No
//! server → the test fails loudly; it never skips.

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{Connection, PgConnection};

/// The server and database the test databases are created from.
fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database of its own, empty.
pub struct TestDb {
    /// Its URL, for `[ledger] url`.
    pub url: String,
    name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "x402_test_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            hex::encode(rand::random::<[u8; 4]>())
        );
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("PostgreSQL is required for this test (TEST_POSTGRES_URL or {admin}): {e}")
        });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create a test database");
        let _ = conn.close().await;
        let base = admin.rsplit_once('/').expect("a database URL").0;
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Runs `sql` on the test database.
    pub async fn execute(&self, sql: &str) {
        let mut conn = PgConnection::connect(&self.url).await.expect("connect");
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
        let _ = conn.close().await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Dropped from async tests: a thread of its own with a small runtime.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
