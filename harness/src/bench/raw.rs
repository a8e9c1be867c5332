//! Each backend's own client on the same load: the floor a component built on it stands on.

use std::sync::Arc;

use fixtures::BackendKind;

use super::BenchProfile;
use super::load::Measured;
use super::load::drive;

/// Measures each backend's own client on the same load: the floor a component builds on.
pub(super) async fn measure_raw(
    kind: BackendKind,
    url: &str,
    profile: &BenchProfile,
    prefix: &str,
) -> Result<Measured, String> {
    let value = vec![b'x'; profile.payload_bytes];
    match kind {
        BackendKind::Redis => {
            let client = redis::Client::open(url).map_err(|e| e.to_string())?;
            let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
            let key = format!("{prefix}-raw");
            redis::cmd("SET").arg(&key).arg(&value).query_async::<()>(&mut conn).await.map_err(|e| e.to_string())?;
            Ok(drive(profile.load, move |_| {
                let (mut conn, key) = (conn.clone(), key.clone());
                async move {
                    redis::cmd("GET")
                        .arg(&key)
                        .query_async::<Vec<u8>>(&mut conn)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            })
            .await)
        }
        BackendKind::Postgres => {
            let (client, connection) =
                tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS certify_raw_bench (key TEXT PRIMARY KEY, value BYTEA NOT NULL)",
                )
                .await
                .map_err(|e| e.to_string())?;
            let key = format!("{prefix}-raw");
            client
                .execute("INSERT INTO certify_raw_bench VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", &[&key, &value])
                .await
                .map_err(|e| e.to_string())?;
            let statement = client
                .prepare("SELECT value FROM certify_raw_bench WHERE key = $1")
                .await
                .map_err(|e| e.to_string())?;
            let client = Arc::new(client);
            Ok(drive(profile.load, move |_| {
                let (client, statement, key) = (Arc::clone(&client), statement.clone(), key.clone());
                async move { client.query_opt(&statement, &[&key]).await.map(|_| ()).map_err(|e| e.to_string()) }
            })
            .await)
        }
        // Brokers have no key-value read to compare with; their baseline is publish-to-delivery.
        BackendKind::RabbitMq | BackendKind::Kafka => Err(format!("no raw-client baseline for {kind}")),
    }
}
