//! Interop target: a payment endpoint on axum's WebSocket support, default settings.
//!
//! Written the way axum's examples write one: a `WebSocketUpgrade` handler that checks the
//! `Authorization: Bearer` header first (401 otherwise, the usual pattern of an API service),
//! then a loop over `socket.recv()` that parses each text message into a struct with
//! `serde_json::from_str(..)?` and no handling of its own: an error ends the handler, and
//! whatever axum does then is the behaviour under test. Every `WebSocketUpgrade` option is left
//! at its default (message and frame size limits, no pings, no origin check, no compression).
//!
//! usage: INTEROP_TOKEN=secret target/debug/examples/interop_axum
//!        -> prints "PORT <n>", serves ws://127.0.0.1:<n>/ws

use std::error::Error;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

/// What the service reads of a business message.
#[derive(Deserialize)]
struct Payment {
    #[serde(rename = "type")]
    kind: String,
    reference: Option<String>,
}

async fn ws_handler(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    State(token): State<String>,
) -> Response {
    let expected = format!("Bearer {token}");
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str());
    if !authorized {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    ws.on_upgrade(handle_socket)
}

async fn handle_socket(mut socket: WebSocket) {
    if let Err(e) = payments(&mut socket).await {
        eprintln!("connection ended: {e}");
    }
}

async fn payments(socket: &mut WebSocket) -> Result<(), Box<dyn Error + Send + Sync>> {
    while let Some(msg) = socket.recv().await {
        let msg = msg?;
        if let Message::Text(text) = msg {
            let payment: Payment = serde_json::from_str(&text)?;
            let reply = if payment.kind == "payment" {
                serde_json::json!({ "type": "ack", "reference": payment.reference })
            } else {
                serde_json::json!({ "type": "error", "reason": "unknown type" })
            };
            socket.send(Message::Text(reply.to_string().into())).await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let token = std::env::var("INTEROP_TOKEN")?;
    let app = Router::new()
        .route("/ws", get(ws_handler))
        .with_state(token);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("PORT {}", listener.local_addr()?.port());
    axum::serve(listener, app).await?;
    Ok(())
}
