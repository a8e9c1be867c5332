//! The loopback floor: an empty axum handler on 127.0.0.1, called by the client the HTTP
//! sidecar driver uses, under the same load. What any HTTP sidecar pays before it does
//! anything; the sidecar's added latency is read against it.

use std::future::IntoFuture;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::serve::ListenerExt;

use super::load::{Measured, drive};
use super::profile::BenchProfile;
use crate::http::SidecarClient;

/// Serves the echo on loopback and drives `profile`'s load at it.
pub(super) async fn measure_echo(profile: &BenchProfile) -> Result<Measured, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    // As the reference sidecar serves: TCP_NODELAY on every accepted connection.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let router = axum::Router::new().route("/echo", axum::routing::get(|| async { StatusCode::NO_CONTENT }));
    let server = tokio::spawn(axum::serve(listener, router).into_future());
    let client = Arc::new(SidecarClient::new(&base, None).map_err(|e| e.to_string())?);
    let measured = drive(profile.load, move |_| {
        let client = Arc::clone(&client);
        async move {
            let answer = client.send(client.get("/echo")).await.map_err(|e| e.to_string())?;
            match answer.status().is_success() {
                true => Ok(()),
                false => Err(format!("the echo answered {}", answer.status())),
            }
        }
    })
    .await;
    server.abort();
    Ok(measured)
}
